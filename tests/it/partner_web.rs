//! The reference partner page (`examples/partner-web/`): its operations checked against
//! `schema.graphql` with graphql-js, and the page itself in a real headless Chromium, served
//! from another origin than the API, with a publishable key and registered documents only.
use std::path::{Path, PathBuf};

use api::config::TrustedDocumentsMode;
use api::service::identity::Role;
use chrono::Duration;
use serde_json::{Value, json};

use crate::browser::Browser;
use crate::helpers::{Backend, Credentials, TestApp, selected, spawn_app_with};

fn page_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/partner-web")
}

/// Runs the page's operation check (graphql-js) with `args`; (success, output).
fn check_operations(args: &[&str]) -> (bool, String) {
    let dir = page_dir();
    assert!(
        dir.join("node_modules/graphql").is_dir(),
        "the page's npm packages are missing: scripts/test installs them (npm ci --prefix examples/partner-web)"
    );
    let output = std::process::Command::new("node")
        .arg("tools/check-operations.mjs")
        .args(args)
        .current_dir(&dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run node (Node.js is needed for the operation check): {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

#[test]
fn the_partner_pages_operations_are_valid_against_the_schema() {
    let (ok, output) = check_operations(&[]);
    assert!(ok, "a schema change broke the partner page's operations:\n{output}");
    for name in ["CampaignPage", "DonorWall", "Pledge", "CampaignProgress", "EventPage", "RegisterGuest"] {
        assert!(output.contains(name), "{name} is checked: {output}");
    }

    // The check fails when the schema drops what the page uses.
    let schema = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("schema.graphql")).expect("schema");
    assert!(schema.contains("campaignProgress("));
    let broken = std::env::temp_dir().join(format!("incubase-broken-{}.graphql", uuid::Uuid::new_v4().simple()));
    std::fs::write(&broken, schema.replace("campaignProgress(", "campaignProgressRenamed(")).expect("write");
    let (ok, output) = check_operations(&["--schema", broken.to_str().expect("path")]);
    let _ = std::fs::remove_file(&broken);
    assert!(!ok, "a broken schema must fail the check");
    assert!(output.contains("CampaignProgress") && output.contains("campaignProgress"), "names what broke: {output}");
}

/// Serves the page's files as a partner's web server would, on its own origin.
async fn serve_page(host: [u8; 4]) -> String {
    use poem::http::StatusCode;
    use poem::{Response, handler};
    #[handler]
    fn file(req: &poem::Request) -> Response {
        let path = req.uri().path().trim_start_matches('/');
        let path = if path.is_empty() { "index.html" } else { path };
        let allowed = !path.contains("..") && !path.starts_with("node_modules") && !path.starts_with("tools");
        let kind = match path.rsplit('.').next() {
            Some("html") => "text/html; charset=utf-8",
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("json") => "application/json",
            _ => "",
        };
        match std::fs::read(page_dir().join(path)) {
            Ok(bytes) if allowed && !kind.is_empty() => Response::builder().content_type(kind).body(bytes),
            _ => Response::builder().status(StatusCode::NOT_FOUND).finish(),
        }
    }
    let listener = std::net::TcpListener::bind((std::net::Ipv4Addr::from(host), 0)).expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let origin = format!("http://{}", listener.local_addr().expect("addr"));
    let acceptor = poem::listener::TcpAcceptor::from_std(listener).expect("acceptor");
    tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(poem::Route::new().at("/*path", file).at("/", file)));
    origin
}

async fn reference_page_in_a_real_browser(backend: Backend) {
    let Some(mut browser) = Browser::launch().await else { return };
    let page_origin = serve_page([127, 0, 0, 2]).await;
    // Registered documents only, and no global CORS list: the key's binding opens the origin.
    let app = spawn_app_with(backend, |s| s.trusted_documents = TrustedDocumentsMode::Require).await;
    let (key, manifest) = partner_setup(&app, &page_origin).await;
    assert!(key.starts_with("ib_pub_"));
    assert_eq!(manifest["registered"], 6, "{manifest}");
    let org = crate::events::organizer(&app).await;
    let org_row = api::graphql::ids::parse(&org).expect("id").1;
    let campaign_row = crate::crowdfunding::campaign_in(&app, org_row, "ACTIVE").await;
    let campaign = crate::crowdfunding::campaign_gid(campaign_row);
    let listed = app.ok("query($id: ID!) { campaign(id: $id) { title } }", json!({ "id": campaign })).await;
    let campaign_title = listed["campaign"]["title"].as_str().expect("title").to_owned();

    // The campaign page, from origin A, talking to the API on origin B.
    let query = |extra: &str| format!("api={}&key={key}&{extra}", app.address);
    let tab = browser.open(&format!("{page_origin}/index.html?{}", query(&format!("campaign={campaign}")))).await;
    let title =
        browser.wait_for(&tab, "document.body.dataset.ready && document.getElementById('title').textContent").await;
    assert_eq!(title, campaign_title.as_str());
    assert_eq!(browser.eval(&tab, "document.getElementById('raised').textContent").await, "¥0.00");
    assert_eq!(
        browser.eval(&tab, "document.getElementById('wall-empty').hidden").await,
        false,
        "no confirmed gift yet"
    );

    // A guest pledges, as a person fills the form in.
    browser.type_into(&tab, "input[name=amount]", "666").await;
    browser.type_into(&tab, "input[name=name]", "王小明").await;
    browser.click(&tab, "input[name=displayMode][value=MASKED]").await;
    browser.type_into(&tab, "input[name=message]", "加油！").await;
    browser.click(&tab, "#pledge-form button").await;
    let status = browser.wait_for(&tab, "document.getElementById('pledge-status').dataset.status").await;
    assert_eq!(status, "PLEDGED", "page errors: {:#?}", browser.errors);
    let shown = browser.eval(&tab, "document.getElementById('pledge-status').textContent").await;
    assert!(shown.as_str().is_some_and(|t| t.contains("¥666.00")), "{shown}");
    let donation = browser.eval(&tab, "document.getElementById('pledge-status').dataset.donationId").await;
    assert_eq!(
        browser.eval(&tab, "document.getElementById('raised').dataset.raisedFen").await,
        "0",
        "a pledge alone counts nothing"
    );

    // Staff confirm the money arrived: the page shows the pushed progress and the wall.
    let confirmed = app.ok(crate::crowdfunding::CONFIRM, json!({ "i": { "id": donation } })).await;
    assert_eq!(confirmed["confirmDonation"]["donation"]["status"], "CONFIRMED");
    browser.wait_for(&tab, "document.getElementById('raised').dataset.raisedFen === '66600'").await;
    assert_eq!(browser.eval(&tab, "document.getElementById('raised').textContent").await, "¥666.00");
    assert_eq!(browser.eval(&tab, "document.getElementById('donor-count').textContent").await, "1");
    let wall = browser
        .wait_for(
            &tab,
            "document.getElementById('wall').dataset.count === '1' && document.getElementById('wall').textContent",
        )
        .await;
    let wall = wall.as_str().expect("text");
    assert!(
        wall.contains("王*明") && wall.contains("¥666.00") && wall.contains("加油！"),
        "masked on the wall: {wall}"
    );
    assert!(!wall.contains("王小明"));
    browser.screenshot(&tab, "partner-web-campaign").await;

    // The event page: a guest registers and sees a ticket; the seats follow.
    let event =
        crate::events::published_event(&app, &org, Duration::days(5), json!({ "capacity": 10, "groupLimit": 3 })).await;
    browser.navigate(&tab, &format!("{page_origin}/event.html?{}", query(&format!("event={event}")))).await;
    browser.wait_for(&tab, "document.body.dataset.ready").await;
    assert_eq!(browser.eval(&tab, "document.getElementById('title').textContent").await, "巾帼经验分享沙龙");
    assert_eq!(browser.eval(&tab, "document.getElementById('seats-left').textContent").await, "10");
    browser.type_into(&tab, "input[name=name]", "陈淑芬").await;
    browser.type_into(&tab, "input[name=phone]", "139-5920-0002").await;
    browser.type_into(&tab, "input[name=partySize]", "2").await;
    browser.click(&tab, "input[name=consent]").await;
    browser.click(&tab, "#registration-form button").await;
    let status = browser.wait_for(&tab, "document.getElementById('registration-status').dataset.status").await;
    assert_eq!(status, "CONFIRMED", "page errors: {:#?}", browser.errors);
    let ticket = browser.eval(&tab, "document.getElementById('registration-status').dataset.ticket").await;
    let text = browser.eval(&tab, "document.getElementById('registration-status').textContent").await;
    assert!(text.as_str().zip(ticket.as_str()).is_some_and(|(t, code)| !code.is_empty() && t.contains(code)), "{text}");
    browser.wait_for(&tab, "document.getElementById('seats-left').textContent === '8'").await;
    let seats = app.ok("query($id: ID!) { event(id: $id) { seats { taken } } }", json!({ "id": event })).await;
    assert_eq!(seats["event"]["seats"]["taken"], 2, "the API agrees");
    browser.screenshot(&tab, "partner-web-event").await;
    assert!(browser.errors.is_empty(), "the pages ran without errors: {:#?}", browser.errors);

    // The same page served from a site the key is not bound to cannot use the API at all.
    let stranger = serve_page([127, 0, 0, 3]).await;
    browser.navigate(&tab, &format!("{stranger}/index.html?{}", query(&format!("campaign={campaign}")))).await;
    let code = browser.wait_for(&tab, "document.getElementById('page-error').dataset.code").await;
    assert_eq!(code, "NETWORK", "the browser refused the cross-origin call");
    assert_eq!(browser.eval(&tab, "document.getElementById('campaign').hidden").await, true);
}

/// What an admin does for a partner site: a publishable key bound to the site's origin and
/// the page's manifest registered. Returns the key and the registration's answer.
async fn partner_setup(app: &TestApp, origin: &str) -> (String, Value) {
    let admin = Credentials::account(&app.account("admin", &[Role::Admin]).await);
    let (key, _) = crate::partners::issue_key(
        app,
        json!({ "name": "向日葵官网", "publishable": true, "scopes": ["DONATE", "REGISTER"], "allowedOrigins": [origin] }),
    )
    .await;
    let manifest = std::fs::read_to_string(page_dir().join("persisted-documents.json")).expect("manifest");
    let registered = app
        .ok_as(
            &admin,
            "mutation($i: RegisterTrustedDocumentsInput!) { registerTrustedDocuments(input: $i) { registered } }",
            json!({ "i": { "manifest": manifest, "clientName": "partner-web" } }),
        )
        .await;
    (key, registered["registerTrustedDocuments"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_page_works_in_a_real_browser_on_sqlite() {
    if selected(Backend::Sqlite) {
        reference_page_in_a_real_browser(Backend::Sqlite).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_page_works_in_a_real_browser_on_postgres() {
    if selected(Backend::Postgres) {
        reference_page_in_a_real_browser(Backend::Postgres).await;
    }
}
