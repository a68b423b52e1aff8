//! Notifications for people: the inbox written from the event log, in each person's script,
//! and email over a real SMTP conversation with a small SMTP server started by the test.
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::Duration as Span;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::events::{organizer, published_event, register_as};
use crate::helpers::{Backend, Credentials, TestApp, eventually, selected, spawn_app_with};
use api::service::identity::Role;

/// One message an SMTP client handed over.
#[derive(Clone, Debug, Default)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

/// A minimal SMTP server (RFC 5321: greeting, EHLO, MAIL, RCPT, DATA, QUIT) on loopback.
pub async fn smtp_server() -> (u16, Arc<Mutex<Vec<Mail>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let mails: Arc<Mutex<Vec<Mail>>> = Arc::default();
    let store = mails.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let store = store.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                let mut mail = Mail::default();
                write.write_all(b"220 test.smtp ESMTP\r\n").await.ok();
                while let Ok(Some(line)) = lines.next_line().await {
                    let upper = line.to_ascii_uppercase();
                    let answer: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                        b"250-test.smtp\r\n250 8BITMIME\r\n"
                    } else if upper.starts_with("MAIL FROM:") {
                        mail.from = line[10..].trim().to_owned();
                        b"250 OK\r\n"
                    } else if upper.starts_with("RCPT TO:") {
                        mail.to.push(line[8..].trim().to_owned());
                        b"250 OK\r\n"
                    } else if upper == "DATA" {
                        write.write_all(b"354 go ahead\r\n").await.ok();
                        while let Ok(Some(data)) = lines.next_line().await {
                            if data == "." {
                                break;
                            }
                            mail.data.push_str(&data);
                            mail.data.push('\n');
                        }
                        store.lock().unwrap().push(std::mem::take(&mut mail));
                        b"250 queued\r\n"
                    } else if upper == "QUIT" {
                        write.write_all(b"221 bye\r\n").await.ok();
                        return;
                    } else {
                        b"250 OK\r\n"
                    };
                    write.write_all(answer).await.ok();
                }
            });
        }
    });
    (port, mails)
}

/// The decoded subject and text body of a MIME message (RFC 2047 words; base64 or
/// quoted-printable bodies).
pub fn decode(data: &str) -> (String, String) {
    let (headers, body) = data.split_once("\n\n").unwrap_or((data, ""));
    let mut unfolded = String::new();
    for line in headers.lines() {
        if line.starts_with(' ') || line.starts_with('\t') {
            unfolded.push_str(line.trim_start());
        } else {
            unfolded.push('\n');
            unfolded.push_str(line);
        }
    }
    let header = |name: &str| {
        unfolded
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with(&format!("{}:", name.to_ascii_lowercase())))
            .map(|l| l[name.len() + 1..].trim().to_owned())
            .unwrap_or_default()
    };
    let raw_subject = header("Subject");
    let mut subject = String::new();
    for word in raw_subject.split_whitespace() {
        match word
            .strip_prefix("=?utf-8?b?")
            .or_else(|| word.strip_prefix("=?UTF-8?B?"))
            .and_then(|w| w.strip_suffix("?="))
        {
            Some(b64) => subject.push_str(&String::from_utf8(STANDARD.decode(b64).expect("b64")).expect("utf-8")),
            None => subject.push_str(word),
        }
    }
    let encoding = header("Content-Transfer-Encoding").to_ascii_lowercase();
    let text = match encoding.as_str() {
        "base64" => String::from_utf8(STANDARD.decode(body.split_whitespace().collect::<String>()).expect("b64"))
            .expect("utf-8"),
        "quoted-printable" => {
            let joined = body.replace("=\n", "");
            let mut bytes = Vec::new();
            let raw = joined.as_bytes();
            let mut i = 0;
            while i < raw.len() {
                if raw[i] == b'=' && i + 2 < raw.len() {
                    bytes.push(
                        u8::from_str_radix(std::str::from_utf8(&raw[i + 1..i + 3]).expect("hex"), 16).expect("hex"),
                    );
                    i += 3;
                } else {
                    bytes.push(raw[i]);
                    i += 1;
                }
            }
            String::from_utf8(bytes).expect("utf-8")
        }
        _ => body.to_owned(),
    };
    (subject, text)
}

const INBOX: &str = "{ viewer { unreadNotificationCount notifications(first: 10) { totalCount edges { node { id kind title body read subjectType emailStatus } } } } }";

async fn inbox(app: &TestApp, who: &Credentials) -> Value {
    app.ok_as(who, INBOX, json!({})).await["viewer"].clone()
}

async fn promoted_from_the_waitlist_by_mail_in_traditional_script(backend: Backend) {
    let (port, mails) = smtp_server().await;
    let app = spawn_app_with(backend, move |s| {
        s.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
        s.smtp_from = "妇女社会组织孵化基地 <noreply@incubase.test>".into();
        s.webhooks.poll_interval = Duration::from_millis(50);
    })
    .await;
    let org = organizer(&app).await;
    let event = published_event(&app, &org, Span::days(3), json!({ "capacity": 1, "title": "两岸青年交流营" })).await;
    let first = app.account("first", &[Role::Donor]).await;
    let guest = app.account("taipei-guest", &[Role::Donor]).await;
    let guest_credentials = Credentials::account(&guest);

    // The guest reads Traditional Chinese and wants only promotions by email.
    let prefs = app
        .ok_as(
            &guest_credentials,
            "mutation($i: UpdateNotificationPreferencesInput!) { updateNotificationPreferences(input: $i) { preferences { locale emailKinds } } }",
            json!({ "i": { "locale": "ZH_HANT", "emailKinds": ["registration.promoted"] } }),
        )
        .await;
    assert_eq!(prefs["updateNotificationPreferences"]["preferences"]["locale"], "ZH_HANT", "{prefs}");

    let taken = register_as(&app, &first, json!({ "eventId": event, "privacyConsent": true })).await;
    let registration = taken["data"]["register"]["registration"]["id"].as_str().expect("registration").to_owned();
    let waiting = register_as(&app, &guest, json!({ "eventId": event, "privacyConsent": true })).await;
    assert_eq!(waiting["data"]["register"]["registration"]["status"], "WAITLISTED", "{waiting}");
    app.ok_as(
        &Credentials::account(&first),
        "mutation($i: CancelRegistrationInput!) { cancelRegistration(input: $i) { registration { status } } }",
        json!({ "i": { "id": registration } }),
    )
    .await;

    // The promotion arrives over SMTP, to the guest, in Traditional Chinese.
    let arrived = eventually(Duration::from_secs(20), || async {
        mails.lock().unwrap().iter().any(|m| m.to.iter().any(|t| t.contains(&guest.email)))
    })
    .await;
    assert!(arrived, "no mail to the guest: {:#?}", mails.lock().unwrap());
    let mail =
        mails.lock().unwrap().iter().find(|m| m.to.iter().any(|t| t.contains(&guest.email))).cloned().expect("mail");
    assert!(mail.from.contains("noreply@incubase.test"), "{mail:?}");
    let (subject, body) = decode(&mail.data);
    assert_eq!(subject, "候補轉正：您已獲得名額", "{mail:?}");
    assert!(body.contains("「两岸青年交流营」") && body.contains("正式報名"), "{body}");
    // Only what the guest asked for went by email: not the waitlisting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let to_guest = mails.lock().unwrap().iter().filter(|m| m.to.iter().any(|t| t.contains(&guest.email))).count();
    assert_eq!(to_guest, 1, "one mail to the guest");
    // The first registrant (default choices: every kind) got the confirmation in Simplified script.
    let to_first: Vec<(String, String)> = mails
        .lock()
        .unwrap()
        .iter()
        .filter(|m| m.to.iter().any(|t| t.contains(&first.email)))
        .map(|m| decode(&m.data))
        .collect();
    assert!(to_first.iter().any(|(s, _)| s == "报名成功"), "{to_first:?}");

    // The inbox has both, newest first, unread; marking read empties the count.
    let mine = inbox(&app, &guest_credentials).await;
    assert_eq!(mine["unreadNotificationCount"], 2, "{mine}");
    let kinds: Vec<&str> = mine["notifications"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(kinds, vec!["registration.promoted", "registration.waitlisted"], "{mine}");
    assert_eq!(mine["notifications"]["edges"][0]["node"]["title"], "候補轉正：您已獲得名額");
    assert_eq!(mine["notifications"]["edges"][0]["node"]["emailStatus"], "SENT");
    assert_eq!(mine["notifications"]["edges"][1]["node"]["emailStatus"], "NONE");
    assert_eq!(mine["notifications"]["edges"][0]["node"]["subjectType"], "Registration");
    // A notification is a node, for the person it is for only.
    let node = "query($id: ID!) { node(id: $id) { __typename ... on Notification { kind } } }";
    let id = mine["notifications"]["edges"][0]["node"]["id"].clone();
    let found = app.ok_as(&guest_credentials, node, json!({ "id": id })).await["node"].clone();
    assert_eq!(found, json!({ "__typename": "Notification", "kind": "registration.promoted" }));
    for other in [Credentials::account(&app.manager), Credentials::anonymous()] {
        assert_eq!(app.ok_as(&other, node, json!({ "id": id })).await["node"], Value::Null, "not theirs");
    }
    let marked = app
        .ok_as(&guest_credentials, "mutation { markNotificationsRead(input: {}) { marked unreadCount } }", json!({}))
        .await;
    assert_eq!(marked["markNotificationsRead"]["marked"], 2, "{marked}");
    assert_eq!(marked["markNotificationsRead"]["unreadCount"], 0);
    let again =
        app.ok_as(&guest_credentials, "mutation { markNotificationsRead(input: {}) { marked } }", json!({})).await;
    assert_eq!(again["markNotificationsRead"]["marked"], 0, "nothing left to mark");

    // Cancelling the event tells its remaining registrant.
    app.ok(
        "mutation($i: TransitionEventStatusInput!) { transitionEventStatus(input: $i) { event { status } } }",
        json!({ "i": { "id": event, "status": "CANCELLED" } }),
    )
    .await;
    let told = eventually(Duration::from_secs(10), || async {
        inbox(&app, &guest_credentials).await["unreadNotificationCount"] == 1
    })
    .await;
    let mine = inbox(&app, &guest_credentials).await;
    assert!(told, "{mine}");
    assert_eq!(mine["notifications"]["edges"][0]["node"]["kind"], "event.cancelled");
    assert_eq!(mine["notifications"]["edges"][0]["node"]["title"], "活動已取消");

    // Someone else's inbox is not reachable; without an account there is none.
    let anonymous = app.gql_as(&Credentials::anonymous(), INBOX, json!({})).await;
    assert_eq!(anonymous["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{anonymous}");
    let unknown = app
        .gql_as(
            &guest_credentials,
            "mutation($i: UpdateNotificationPreferencesInput!) { updateNotificationPreferences(input: $i) { preferences { locale } } }",
            json!({ "i": { "emailKinds": ["campaign.exploded"] } }),
        )
        .await;
    assert_eq!(unknown["errors"][0]["extensions"]["reason"], "UNKNOWN_NOTIFICATION_KIND", "{unknown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waitlist_promotion_is_mailed_in_the_persons_script_sqlite() {
    if selected(Backend::Sqlite) {
        promoted_from_the_waitlist_by_mail_in_traditional_script(Backend::Sqlite).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waitlist_promotion_is_mailed_in_the_persons_script_postgres() {
    if selected(Backend::Postgres) {
        promoted_from_the_waitlist_by_mail_in_traditional_script(Backend::Postgres).await;
    }
}
