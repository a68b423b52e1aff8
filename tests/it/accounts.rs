//! Accounts people recover and control: password resets mailed over a real SMTP conversation
//! (the test's own SMTP server), changing the password, verifying and changing the address,
//! the data download and deleting the account, on both backends.
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Duration as Span;
use serde_json::{Value, json};

use crate::crowdfunding::{DONATE, campaign_gid, campaign_in, row_of};
use crate::events::{published_event, register_as};
use crate::helpers::{Backend, Credentials, TestAccount, TestApp, eventually, selected, spawn_app_with};
use crate::notifications::{Mail, decode, smtp_server};
use api::service::identity::Role;

type Mailbox = Arc<Mutex<Vec<Mail>>>;

const PASSWORD: &str = "correct-horse-42";

const REQUEST_RESET: &str =
    "mutation($i: RequestPasswordResetInput!) { requestPasswordReset(input: $i) { accepted validForMinutes } }";
const RESET: &str = "mutation($i: ResetPasswordInput!) { resetPassword(input: $i) { account { id email emailVerified } sessionsEnded } }";
const SIGN_IN: &str = "mutation($i: SignInInput!) { signIn(input: $i) { accessToken refreshToken } }";
const WHO: &str = "{ viewer { isAuthenticated emailVerified account { id email } } }";

/// An app whose mails go to a fresh SMTP server of the test's own.
async fn mail_app(backend: Backend, configure: impl FnOnce(&mut api::config::Settings)) -> (TestApp, Mailbox) {
    let (port, mails) = smtp_server().await;
    let app = spawn_app_with(backend, move |s| {
        s.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
        s.smtp_from = "妇女社会组织孵化基地 <noreply@incubase.test>".into();
        s.accounts.link_url = Some("https://www.example.org/account".into());
        configure(s);
    })
    .await;
    (app, mails)
}

fn mails_to(mails: &Mailbox, address: &str) -> Vec<(String, String)> {
    mails.lock().unwrap().iter().filter(|m| m.to.iter().any(|t| t.contains(address))).map(|m| decode(&m.data)).collect()
}

/// Waits for the `n`th mail to `address`; returns its (subject, body).
async fn nth_mail(mails: &Mailbox, address: &str, n: usize) -> (String, String) {
    let arrived = eventually(Duration::from_secs(20), || async { mails_to(mails, address).len() >= n }).await;
    assert!(arrived, "mail #{n} to {address} never came: {:#?}", mails.lock().unwrap());
    mails_to(mails, address).swap_remove(n - 1)
}

/// The token (`prefix` + 43 characters of URL-safe base64) in a mail's body.
fn token_in(body: &str, prefix: &str) -> String {
    let start = body.find(prefix).unwrap_or_else(|| panic!("no {prefix} token in {body}"));
    body[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').collect()
}

fn reason(body: &Value) -> &str {
    body["errors"][0]["extensions"]["reason"].as_str().unwrap_or_else(|| panic!("expected a reason: {body:#}"))
}

async fn sign_in(app: &TestApp, email: &str, password: &str) -> Value {
    app.gql_as(&Credentials::anonymous(), SIGN_IN, json!({ "i": { "email": email, "password": password } })).await
}

fn token_credentials(token: &str) -> Credentials {
    Credentials { token: Some(token.to_owned()), api_key: None }
}

async fn reset(app: &TestApp, token: &str, password: &str) -> Value {
    app.gql_as(&Credentials::anonymous(), RESET, json!({ "i": { "token": token, "newPassword": password } })).await
}

async fn request_reset(app: &TestApp, email: &str) -> Value {
    app.gql_as(&Credentials::anonymous(), REQUEST_RESET, json!({ "i": { "email": email } })).await
}

macro_rules! both_backends {
    ($($name:ident => $body:ident;)*) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if crate::helpers::selected(crate::helpers::Backend::Sqlite) {
                    super::$body(crate::helpers::Backend::Sqlite).await;
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if crate::helpers::selected(crate::helpers::Backend::Postgres) {
                    super::$body(crate::helpers::Backend::Postgres).await;
                }
            }
        }
    )*};
}

both_backends! {
    reset_token_works_once_and_a_newer_one_replaces_it => reset_once_and_replaced;
    unknown_email_gets_the_same_answer_and_no_mail => unknown_email;
    reset_token_expires => reset_expires;
    one_token_resets_once_under_concurrency => reset_race;
    changing_the_password_ends_other_sessions => change_password;
    verifying_and_changing_the_email_address => verify_and_change_email;
    deleting_an_account_keeps_campaign_totals_and_receipts_exact => delete_keeps_money_exact;
    data_export_holds_the_persons_records_and_nothing_of_others => export_is_own_data;
}

async fn reset_once_and_replaced(backend: Backend) {
    let (app, mails) = mail_app(backend, |_| {}).await;
    let person = app.account("forgetful", &[Role::Donor]).await;
    let mine = Credentials::account(&person);
    // Traditional script, and no notification by email at all: the reset mail still goes.
    app.ok_as(
        &mine,
        "mutation($i: UpdateNotificationPreferencesInput!) { updateNotificationPreferences(input: $i) { preferences { locale } } }",
        json!({ "i": { "locale": "ZH_HANT", "emailKinds": [] } }),
    )
    .await;
    // A second session, on another device.
    let other = sign_in(&app, &person.email, PASSWORD).await;
    let other_access = other["data"]["signIn"]["accessToken"].as_str().expect("access").to_owned();
    let other_refresh = other["data"]["signIn"]["refreshToken"].as_str().expect("refresh").to_owned();

    let asked = request_reset(&app, &person.email).await;
    assert_eq!(asked["data"]["requestPasswordReset"], json!({ "accepted": true, "validForMinutes": 30 }), "{asked}");
    let (subject, body) = nth_mail(&mails, &person.email, 1).await;
    assert_eq!(subject, "重設密碼");
    assert!(
        body.contains("30 分鐘") && body.contains("https://www.example.org/account/reset-password?token=pr_"),
        "{body}"
    );
    let first = token_in(&body, "pr_");

    // A newer request replaces the first token.
    request_reset(&app, &person.email).await;
    let (_, body) = nth_mail(&mails, &person.email, 2).await;
    let second = token_in(&body, "pr_");
    assert_ne!(first, second);
    let refused = reset(&app, &first, "new-secret-2027").await;
    assert_eq!(reason(&refused), "TOKEN_INVALID", "the older token is refused: {refused}");
    // The old password still works: nothing changed.
    assert!(sign_in(&app, &person.email, PASSWORD).await.get("errors").is_none());

    // A weak password is refused without using the token up.
    let weak = reset(&app, &second, "short").await;
    assert_eq!(weak["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{weak}");
    let done = reset(&app, &second, "new-secret-2027").await;
    assert!(done.get("errors").is_none(), "{done}");
    assert!(done["data"]["resetPassword"]["sessionsEnded"].as_i64().unwrap() >= 3, "{done}");
    assert_eq!(done["data"]["resetPassword"]["account"]["email"], person.email.as_str());
    // Proving the mailbox verified the address.
    assert_eq!(done["data"]["resetPassword"]["account"]["emailVerified"], true);

    // Once only.
    let again = reset(&app, &second, "another-secret-2028").await;
    assert_eq!(reason(&again), "TOKEN_INVALID", "{again}");

    // Every session ended: both access tokens and the refresh token.
    for token in [person.token.as_str(), other_access.as_str()] {
        let (status, body) = app.send(&token_credentials(token), WHO, json!({})).await;
        assert_eq!(status, 401, "{body}");
    }
    let refreshed = app
        .gql_as(
            &Credentials::anonymous(),
            "mutation($i: RefreshSessionInput!) { refreshSession(input: $i) { accessToken } }",
            json!({ "i": { "refreshToken": other_refresh } }),
        )
        .await;
    assert_eq!(refreshed["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{refreshed}");

    // The new password signs in; the old one no longer does.
    assert_eq!(sign_in(&app, &person.email, PASSWORD).await["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    let signed = sign_in(&app, &person.email, "new-secret-2027").await;
    let access = signed["data"]["signIn"]["accessToken"].as_str().expect("signed in").to_owned();
    let me = app.ok_as(&token_credentials(&access), WHO, json!({})).await;
    assert_eq!(me["viewer"]["emailVerified"], true, "{me}");
}

async fn unknown_email(backend: Backend) {
    let (app, mails) = mail_app(backend, |s| s.accounts.mails_per_email_per_hour = 2).await;
    let known = app.account("known", &[Role::Donor]).await;
    let unknown = "nobody-here@test.incubase.cn";

    let events_before = crate::helpers::event_count(&app).await;
    let for_unknown = request_reset(&app, unknown).await;
    assert_eq!(crate::helpers::event_count(&app).await, events_before, "an unknown address writes nothing");
    let for_known = request_reset(&app, &known.email).await;
    assert_eq!(for_unknown, for_known, "the same answer");
    assert!(for_known.get("errors").is_none(), "{for_known}");

    // The known address gets its mail; the unknown one none, even once the known one arrived.
    nth_mail(&mails, &known.email, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(mails_to(&mails, unknown).is_empty(), "no mail to an unknown address");
    assert_eq!(mails.lock().unwrap().len(), 1, "one mail in all");

    // Limited per address asked for, known or not, in the same way.
    request_reset(&app, unknown).await;
    request_reset(&app, &known.email).await;
    let over_unknown = request_reset(&app, unknown).await;
    let over_known = request_reset(&app, &known.email).await;
    assert_eq!(over_unknown["errors"][0]["extensions"]["code"], "RATE_LIMITED", "{over_unknown}");
    assert_eq!(over_known["errors"][0]["extensions"]["code"], "RATE_LIMITED", "{over_known}");
    assert_eq!(
        over_unknown["errors"][0]["extensions"]["code"], over_known["errors"][0]["extensions"]["code"],
        "the limit says nothing about the address either"
    );
    // Not an address at all: a clear input error.
    let bad = request_reset(&app, "not-an-address").await;
    assert_eq!(bad["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{bad}");
}

async fn reset_expires(backend: Backend) {
    let (app, mails) = mail_app(backend, |s| s.accounts.password_reset_ttl = Duration::from_secs(1)).await;
    let person = app.account("slow", &[Role::Donor]).await;
    request_reset(&app, &person.email).await;
    let (_, body) = nth_mail(&mails, &person.email, 1).await;
    let token = token_in(&body, "pr_");
    // Past the token's life (1 s here; 30 minutes by default).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let late = reset(&app, &token, "new-secret-2027").await;
    assert_eq!(reason(&late), "TOKEN_INVALID", "{late}");
    assert!(sign_in(&app, &person.email, PASSWORD).await.get("errors").is_none(), "the password is unchanged");
}

async fn reset_race(backend: Backend) {
    use api::service::account::issue_token;
    use entity::account_token::TokenPurpose;
    let (app, _mails) = mail_app(backend, |_| {}).await;
    let person = app.account("raced", &[Role::Donor]).await;
    let token =
        issue_token(&app.state.db, person.id, TokenPurpose::PasswordReset, &person.email, Duration::from_secs(600))
            .await
            .expect("token");
    let attempts: Vec<_> =
        (0..6).map(|i| reset(&app, &token, if i % 2 == 0 { "even-secret-2027" } else { "odd-secret-2027" })).collect();
    let answers = futures::future::join_all(attempts).await;
    let won = answers.iter().filter(|a| a.get("errors").is_none()).count();
    assert_eq!(won, 1, "exactly one reset wins: {answers:#?}");
    assert!(answers.iter().filter(|a| a.get("errors").is_some()).all(|a| reason(a) == "TOKEN_INVALID"), "{answers:#?}");
    let reset_events = entity::domain_event::Entity::find()
        .filter(entity::domain_event::Column::EventType.eq("account.password_reset"))
        .count(&app.state.db)
        .await
        .expect("count");
    assert_eq!(reset_events, 1);

    // Tokens issued at the same time: the row per account and purpose keeps exactly one live.
    let issued = futures::future::join_all((0..6).map(|_| {
        issue_token(&app.state.db, person.id, TokenPurpose::PasswordReset, &person.email, Duration::from_secs(600))
    }))
    .await;
    let tokens: Vec<String> = issued.into_iter().map(|t| t.expect("token")).collect();
    let mut live = 0;
    for token in &tokens {
        let row = entity::account_token::Entity::find()
            .filter(entity::account_token::Column::TokenHash.eq(api::service::identity::sha256_hex(token)))
            .one(&app.state.db)
            .await
            .expect("db");
        live += usize::from(row.is_some());
    }
    assert_eq!(live, 1, "one live token of the six");
    let rows = entity::account_token::Entity::find()
        .filter(entity::account_token::Column::AccountId.eq(person.id))
        .count(&app.state.db)
        .await
        .expect("count");
    assert_eq!(rows, 1);
}

use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

async fn change_password(backend: Backend) {
    let (app, mails) = mail_app(backend, |_| {}).await;
    let person = app.account("careful", &[Role::Donor]).await;
    let other = sign_in(&app, &person.email, PASSWORD).await;
    let other_access = other["data"]["signIn"]["accessToken"].as_str().expect("access").to_owned();
    const CHANGE: &str = "mutation($i: ChangePasswordInput!) { changePassword(input: $i) { sessionsEnded } }";
    let here = token_credentials(&other_access);

    let wrong = app
        .gql_as(
            &here,
            CHANGE,
            json!({ "i": { "currentPassword": "guess-2026-x", "newPassword": "fresh-secret-2027" } }),
        )
        .await;
    assert_eq!(reason(&wrong), "WRONG_PASSWORD", "{wrong}");
    let anonymous = app
        .gql_as(
            &Credentials::anonymous(),
            CHANGE,
            json!({ "i": { "currentPassword": PASSWORD, "newPassword": "fresh-secret-2027" } }),
        )
        .await;
    assert_eq!(anonymous["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");

    let changed = app
        .ok_as(&here, CHANGE, json!({ "i": { "currentPassword": PASSWORD, "newPassword": "fresh-secret-2027" } }))
        .await;
    assert_eq!(changed["changePassword"]["sessionsEnded"], 1, "{changed}");
    // This session stays; the other one ended.
    assert_eq!(app.ok_as(&here, WHO, json!({})).await["viewer"]["isAuthenticated"], true);
    let (status, _) = app.send(&Credentials::account(&person), WHO, json!({})).await;
    assert_eq!(status, 401);
    assert!(sign_in(&app, &person.email, "fresh-secret-2027").await.get("errors").is_none());
    let (subject, _) = nth_mail(&mails, &person.email, 1).await;
    assert_eq!(subject, "密码已更改");
}

async fn verify_and_change_email(backend: Backend) {
    let (app, mails) = mail_app(backend, |_| {}).await;
    let person = app.account("mover", &[Role::Donor]).await;
    let mine = Credentials::account(&person);
    assert_eq!(app.ok_as(&mine, WHO, json!({})).await["viewer"]["emailVerified"], false);

    const ASK: &str = "mutation { requestEmailVerification { sent } }";
    const VERIFY: &str =
        "mutation($i: VerifyEmailInput!) { verifyEmail(input: $i) { account { email emailVerified } } }";
    assert_eq!(app.ok_as(&mine, ASK, json!({})).await["requestEmailVerification"]["sent"], true);
    let (subject, body) = nth_mail(&mails, &person.email, 1).await;
    assert_eq!(subject, "验证邮箱地址");
    let token = token_in(&body, "ev_");
    // The link works without signing in.
    let verified = app.ok_as(&Credentials::anonymous(), VERIFY, json!({ "i": { "token": token } })).await;
    assert_eq!(verified["verifyEmail"]["account"]["emailVerified"], true, "{verified}");
    assert_eq!(app.ok_as(&mine, WHO, json!({})).await["viewer"]["emailVerified"], true);
    assert_eq!(app.ok_as(&mine, ASK, json!({})).await["requestEmailVerification"]["sent"], false, "verified already");
    let reused = app.gql_as(&Credentials::anonymous(), VERIFY, json!({ "i": { "token": token } })).await;
    assert_eq!(reason(&reused), "TOKEN_INVALID");

    // Changing the address: the password, then a token to the new address.
    const CHANGE: &str = "mutation($i: RequestEmailChangeInput!) { requestEmailChange(input: $i) { sent } }";
    let new_email = format!("moved-{}@test.incubase.cn", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let wrong =
        app.gql_as(&mine, CHANGE, json!({ "i": { "newEmail": new_email, "password": "not-my-password-1" } })).await;
    assert_eq!(reason(&wrong), "WRONG_PASSWORD", "{wrong}");
    let other = app.account("taken", &[Role::Donor]).await;
    let taken = app.gql_as(&mine, CHANGE, json!({ "i": { "newEmail": other.email, "password": PASSWORD } })).await;
    assert_eq!(reason(&taken), "EMAIL_TAKEN", "{taken}");
    app.ok_as(&mine, CHANGE, json!({ "i": { "newEmail": new_email, "password": PASSWORD } })).await;
    let (subject, body) = nth_mail(&mails, &new_email, 1).await;
    assert_eq!(subject, "确认新的邮箱地址");
    let token = token_in(&body, "ec_");
    // Nothing changes until the new address confirms.
    assert_eq!(app.ok_as(&mine, WHO, json!({})).await["viewer"]["account"]["email"], person.email.as_str());
    let changed = app.ok_as(&Credentials::anonymous(), VERIFY, json!({ "i": { "token": token } })).await;
    assert_eq!(changed["verifyEmail"]["account"]["email"], new_email.as_str(), "{changed}");
    assert_eq!(changed["verifyEmail"]["account"]["emailVerified"], true);
    // The old address is told, masked.
    let (subject, body) = nth_mail(&mails, &person.email, 2).await;
    assert_eq!(subject, "账户邮箱已更改");
    assert!(body.contains("m***@test.incubase.cn"), "{body}");
    assert!(sign_in(&app, &new_email, PASSWORD).await.get("errors").is_none());
    assert_eq!(sign_in(&app, &person.email, PASSWORD).await["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
}

const PROGRESS: &str = r#"
query($id: ID!) {
  campaign(id: $id) {
    progress { raisedFen donationCount donorCount }
    donorWall(first: 20) { edges { node { displayName anonymous amountFen message } } }
    donations(first: 20) { edges { node { id amountFen donorName displayMode message status receiptNumber } } }
  }
}"#;

async fn donate_confirmed(app: &TestApp, who: &TestAccount, campaign: &str, fen: i64) -> String {
    let pledged = app
        .ok_as(
            &Credentials::account(who),
            DONATE,
            json!({ "i": { "campaignId": campaign, "amountFen": fen, "channel": "BANK_TRANSFER",
                "message": "加油！", "clientKey": uuid::Uuid::new_v4().to_string() } }),
        )
        .await;
    let id = pledged["donate"]["donation"]["id"].as_str().expect("id").to_owned();
    app.ok(
        "mutation($i: ConfirmDonationInput!) { confirmDonation(input: $i) { donation { receiptNumber } } }",
        json!({ "i": { "id": id } }),
    )
    .await;
    id
}

/// A person with two confirmed gifts to one campaign, a confirmed seat at a full event with
/// someone waitlisted behind them, and a booking of their own.
struct Giver {
    person: TestAccount,
    campaign: String,
    gifts: Vec<String>,
    event: String,
    waiting: String,
    other: TestAccount,
    other_gift: String,
}

async fn giver(app: &TestApp) -> Giver {
    let org = crate::events::organizer(app).await;
    let org_row = api::graphql::ids::parse(&org).expect("id").1;
    let campaign = campaign_gid(campaign_in(app, org_row, "ACTIVE").await);
    let person = app.account("giver", &[Role::Donor]).await;
    let other = app.account("neighbour", &[Role::Donor]).await;
    let gifts = vec![
        donate_confirmed(app, &person, &campaign, 10_000).await,
        donate_confirmed(app, &person, &campaign, 2_500).await,
    ];
    let other_gift = donate_confirmed(app, &other, &campaign, 700).await;
    let event = published_event(app, &org, Span::days(5), json!({ "capacity": 1, "title": "家庭教育沙龙" })).await;
    let seat = register_as(app, &person, json!({ "eventId": event, "privacyConsent": true })).await;
    assert_eq!(seat["data"]["register"]["registration"]["status"], "CONFIRMED", "{seat}");
    let queued = register_as(app, &other, json!({ "eventId": event, "privacyConsent": true })).await;
    assert_eq!(queued["data"]["register"]["registration"]["status"], "WAITLISTED", "{queued}");
    let waiting = queued["data"]["register"]["registration"]["id"].as_str().expect("id").to_owned();
    let room = crate::spaces::space(app, "账户测试活动室", 10, json!({})).await;
    let booked = app
        .gql_as(
            &Credentials::account(&person),
            crate::spaces::CREATE_BOOKING,
            json!({ "input": { "spaceId": room["id"], "startsAt": crate::spaces::at(3, 10, 0),
                "endsAt": crate::spaces::at(3, 11, 0), "attendees": 3, "purpose": "读书会" } }),
        )
        .await;
    assert!(booked.get("errors").is_none(), "{booked}");
    Giver { person, campaign, gifts, event, waiting, other, other_gift }
}

async fn delete_keeps_money_exact(backend: Backend) {
    let (app, mails) = mail_app(backend, |_| {}).await;
    let g = giver(&app).await;
    let before = app.ok(PROGRESS, json!({ "id": g.campaign })).await;
    let progress = before["campaign"]["progress"].clone();
    assert_eq!(progress, json!({ "raisedFen": 13_200, "donationCount": 3, "donorCount": 2 }), "{before}");
    let receipts = |page: &Value| -> Vec<(String, Value)> {
        let mut list: Vec<(String, Value)> = page["campaign"]["donations"]["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .map(|e| (e["node"]["id"].as_str().unwrap().to_owned(), e["node"]["receiptNumber"].clone()))
            .collect();
        list.sort_by(|a, b| a.0.cmp(&b.0));
        list
    };
    let receipts_before = receipts(&before);
    assert!(receipts_before.iter().all(|(_, r)| r.is_string()), "{receipts_before:?}");

    const DELETE: &str = "mutation($i: DeleteAccountInput!) { deleteAccount(input: $i) { deleted registrationsCancelled bookingsCancelled donationsKept } }";
    let mine = Credentials::account(&g.person);
    let wrong = app.gql_as(&mine, DELETE, json!({ "i": { "password": "not-my-password-1" } })).await;
    assert_eq!(reason(&wrong), "WRONG_PASSWORD", "{wrong}");
    let deleted = app.ok_as(&mine, DELETE, json!({ "i": { "password": PASSWORD } })).await;
    assert_eq!(
        deleted["deleteAccount"],
        json!({ "deleted": true, "registrationsCancelled": 1, "bookingsCancelled": 1, "donationsKept": 2 }),
        "{deleted}"
    );

    // Totals, counts and receipts are what they were; the gifts are anonymous now.
    let after = app.ok(PROGRESS, json!({ "id": g.campaign })).await;
    assert_eq!(after["campaign"]["progress"], progress, "{after}");
    assert_eq!(receipts(&after), receipts_before);
    for edge in after["campaign"]["donations"]["edges"].as_array().unwrap() {
        let node = &edge["node"];
        if g.gifts.iter().any(|id| node["id"] == id.as_str()) {
            assert_eq!(node["donorName"], "匿名", "{node}");
            assert_eq!(node["displayMode"], "ANONYMOUS");
            assert_eq!(node["message"], "");
            assert_eq!(node["status"], "CONFIRMED");
        } else {
            assert_eq!(node["id"], g.other_gift.as_str());
            assert_eq!(node["message"], "加油！", "someone else's gift is untouched");
        }
    }
    let wall = after["campaign"]["donorWall"]["edges"].as_array().unwrap();
    assert!(
        wall.iter().filter(|e| e["node"]["amountFen"] != 700).all(|e| e["node"]["anonymous"] == true),
        "the wall no longer names the person: {wall:?}"
    );

    // Refunds afterwards keep the donor count exact: one person, two gifts.
    const REFUND: &str =
        "mutation($i: RefundDonationInput!) { refundDonation(input: $i) { progress { raisedFen donorCount } } }";
    let one = app.ok(REFUND, json!({ "i": { "id": g.gifts[1], "reason": "测试" } })).await;
    assert_eq!(one["refundDonation"]["progress"], json!({ "raisedFen": 10_700, "donorCount": 2 }), "{one}");
    let two = app.ok(REFUND, json!({ "i": { "id": g.gifts[0], "reason": "测试" } })).await;
    assert_eq!(two["refundDonation"]["progress"], json!({ "raisedFen": 700, "donorCount": 1 }), "{two}");

    // The seat went to the waitlist; the booking is cancelled.
    let waiting = app
        .ok("query($id: ID!) { node(id: $id) { ... on Registration { status } } }", json!({ "id": g.waiting }))
        .await;
    assert_eq!(waiting["node"]["status"], "CONFIRMED", "{waiting}");
    let seats = app.ok("query($id: ID!) { event(id: $id) { seats { taken } } }", json!({ "id": g.event })).await;
    assert_eq!(seats["event"]["seats"]["taken"], 1);

    // Signed out everywhere, the address and name gone, the address free for a new account.
    let (status, _) = app.send(&mine, WHO, json!({})).await;
    assert_eq!(status, 401);
    assert_eq!(sign_in(&app, &g.person.email, PASSWORD).await["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    let account = entity::account::Entity::find_by_id(g.person.id).one(&app.state.db).await.unwrap().unwrap();
    assert!(account.deleted_at.is_some() && !account.email.contains("giver") && account.display_name == "已注销用户");
    let registration = entity::registration::Entity::find()
        .filter(entity::registration::Column::AccountId.eq(g.person.id))
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert!(
        registration.name == "已注销用户" && registration.status == entity::registration::RegistrationStatus::Cancelled
    );
    let again = app
        .gql_as(
            &Credentials::anonymous(),
            "mutation($i: SignUpInput!) { signUp(input: $i) { account { email } } }",
            json!({ "i": { "email": g.person.email, "password": PASSWORD, "displayName": "新的我" } }),
        )
        .await;
    assert!(again.get("errors").is_none(), "{again}");
    // The person was told, before the address was erased.
    let told = eventually(Duration::from_secs(20), || async {
        mails_to(&mails, &g.person.email).iter().any(|(subject, _)| subject == "账户已注销")
    })
    .await;
    assert!(told, "{:?}", mails_to(&mails, &g.person.email));
    let _ = g.other;
}

async fn export_is_own_data(backend: Backend) {
    let (app, _mails) = mail_app(backend, |_| {}).await;
    let g = giver(&app).await;
    let download = |token: Option<String>| {
        let mut request = app.client.get(app.url("/account/export"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let anonymous = download(None).await.expect("request");
    assert_eq!(anonymous.status().as_u16(), 401);
    let response = download(Some(g.person.token.clone())).await.expect("request");
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.headers()["content-disposition"].to_str().unwrap().contains("attachment"));
    let text = response.text().await.expect("body");
    let data: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(data["profile"]["email"], g.person.email.as_str(), "{data:#}");
    let gifts: Vec<i64> = g.gifts.iter().map(|id| row_of(&json!(id))).collect();
    let mut exported: Vec<i64> =
        data["donations"].as_array().unwrap().iter().map(|d| d["id"].as_i64().unwrap()).collect();
    exported.sort_unstable();
    let mut expected = gifts.clone();
    expected.sort_unstable();
    assert_eq!(exported, expected);
    assert!(data["donations"].as_array().unwrap().iter().all(|d| d["receiptNumber"].is_string()));
    assert_eq!(data["registrations"].as_array().unwrap().len(), 1);
    assert_eq!(data["registrations"][0]["event"], "家庭教育沙龙");
    assert_eq!(data["registrations"][0]["name"], "giver");
    assert_eq!(data["registrations"][0]["status"], "CONFIRMED");
    assert_eq!(data["bookings"].as_array().unwrap().len(), 1);
    assert_eq!(data["bookings"][0]["purpose"], "读书会");
    assert_eq!(data["memberships"], json!([]));
    // Nothing of the neighbour who gave to the same campaign and waits for the same event.
    assert!(!text.contains(&g.other.email), "{text}");
    let ids = |section: &str| -> Vec<i64> {
        data[section].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect()
    };
    assert!(!ids("donations").contains(&row_of(&json!(g.other_gift))));
    assert!(!ids("registrations").contains(&row_of(&json!(g.waiting))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_owner_hands_the_organization_over_before_deleting() {
    if !selected(Backend::Sqlite) {
        return;
    }
    let (app, _mails) = mail_app(Backend::Sqlite, |_| {}).await;
    let owner = app.account("owner", &[Role::Donor]).await;
    let created = app
        .ok_as(
            &Credentials::account(&owner),
            "mutation($i: CreateOrganizationInput!) { createOrganization(input: $i) { organization { id } } }",
            json!({ "i": { "name": "注销测试社工服务中心" } }),
        )
        .await;
    assert!(created["createOrganization"]["organization"]["id"].is_string());
    let refused = app
        .gql_as(
            &Credentials::account(&owner),
            "mutation($i: DeleteAccountInput!) { deleteAccount(input: $i) { deleted } }",
            json!({ "i": { "password": PASSWORD } }),
        )
        .await;
    assert_eq!(reason(&refused), "LAST_OWNER", "{refused}");
    assert!(sign_in(&app, &owner.email, PASSWORD).await.get("errors").is_none(), "nothing was deleted");
}
