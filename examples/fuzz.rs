//! A fuzz run against a real server: mutated GraphQL documents, variables and raw bodies.
//! Fails (exit 1) on any 5xx answer, a dropped connection or a dead server.
//!
//!     cargo run --release --example fuzz -- --iterations 20000 [--seed 7]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Instant;

use api::config::Settings;
use api::service::identity::{self, Role};
use api::startup::Application;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const CORPUS: &[&str] = &[
    "{ organizations(first: 5) { totalCount edges { cursor node { id name slug stage focusAreas stageHistory { fromStage toStage } } } pageInfo { hasNextPage endCursor } } }",
    "query($s: String!) { organization(slug: $s) { id name contact { name phone } members { role } } }",
    "query($f: OrganizationFilter, $o: OrganizationOrder) { organizations(filter: $f, orderBy: $o, last: 3) { edges { node { name } } } }",
    "query($id: ID!) { node(id: $id) { id ... on Organization { name kind } } }",
    "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
    "{ viewer { isAuthenticated roles account { email } memberships { role } partner { name } } }",
    "{ apiKeys(first: 2) { totalCount edges { node { prefix scopes } } } }",
    "mutation($i: CreateOrganizationInput!) { createOrganization(input: $i) { organization { id slug } } }",
    "mutation($i: UpdateOrganizationInput!) { updateOrganization(input: $i) { organization { id } } }",
    "mutation($i: TransitionOrganizationStageInput!) { transitionOrganizationStage(input: $i) { organization { stage } } }",
    "mutation($i: SignUpInput!) { signUp(input: $i) { accessToken } }",
    "mutation($i: SignInInput!) { signIn(input: $i) { accessToken } }",
    "query A { __typename } query B { organizations { totalCount } }",
    "fragment F on Organization { id name } { organizations(first: 2) { edges { node { ...F } } } }",
    "{ __schema { types { name fields { name } } } }",
];

const TOKENS: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    "...",
    "@include(if: true)",
    "@skip(if: $x)",
    "first: -1",
    "first: 2147483647",
    "last: 0",
    "after: \"x\"",
    "\"",
    "$v",
    "__typename",
    "fragment G on Query { ...G }",
    "query",
    "mutation",
    "subscription",
    "妇女儿童",
    "\u{0}",
    "\u{202e}",
    "99999999999999999999",
    "1e999",
    "null",
    "true",
    ":",
    ",",
    "#",
    "\"\"\"",
    "\\u0000",
    "input: {}",
    "id: \"T3JnYW5pemF0aW9uOjE\"",
    "stage: RESIDENT",
    "on Organization",
];

fn mutate(rng: &mut StdRng, text: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for _ in 0..rng.random_range(1..6) {
        let len = chars.len().max(1);
        match rng.random_range(0..5) {
            0 => {
                let at = rng.random_range(0..len);
                let end = (at + rng.random_range(1..10)).min(chars.len());
                chars.drain(at.min(chars.len())..end);
            }
            1 | 2 => {
                let at = rng.random_range(0..=chars.len());
                let token = TOKENS[rng.random_range(0..TOKENS.len())];
                chars.splice(at..at, token.chars());
            }
            3 => {
                let at = rng.random_range(0..len).min(chars.len().saturating_sub(1));
                let end = (at + rng.random_range(1..40)).min(chars.len());
                let copy: Vec<char> = chars[at..end].to_vec();
                for _ in 0..rng.random_range(1..20) {
                    chars.splice(at..at, copy.iter().copied());
                }
            }
            _ => {
                if !chars.is_empty() {
                    let at = rng.random_range(0..chars.len());
                    chars[at] = char::from_u32(rng.random_range(0x20..0x3000)).unwrap_or('?');
                }
            }
        }
    }
    chars.into_iter().take(200_000).collect()
}

fn random_value(rng: &mut StdRng, depth: usize) -> Value {
    match rng.random_range(0..if depth > 3 { 5 } else { 8 }) {
        0 => Value::Null,
        1 => json!(rng.random::<bool>()),
        2 => json!(rng.random::<i64>()),
        3 => json!(rng.random::<f64>()),
        4 => json!(TOKENS[rng.random_range(0..TOKENS.len())]),
        5 => Value::Array((0..rng.random_range(0..4)).map(|_| random_value(rng, depth + 1)).collect()),
        _ => {
            let keys = [
                "name",
                "id",
                "stage",
                "slug",
                "email",
                "password",
                "search",
                "first",
                "i",
                "f",
                "s",
                "ids",
                "creditCode",
            ];
            let mut map = serde_json::Map::new();
            for _ in 0..rng.random_range(0..5) {
                map.insert(keys[rng.random_range(0..keys.len())].into(), random_value(rng, depth + 1));
            }
            Value::Object(map)
        }
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: u64| -> u64 {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let iterations = arg("--iterations", 5000);
    let seed = arg("--seed", 20261129);

    let dir = std::env::temp_dir().join(format!("incubase-fuzz-{seed}-{}", std::process::id()));
    let mut settings = Settings::embedded();
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.database_url = format!("sqlite://{}/fuzz.db?mode=rwc", dir.display());
    settings.jwt_secret = Some("fuzz-secret-fuzz-secret-fuzz-secret-0123".into());
    settings.limits.operations_per_minute = 10_000_000;
    settings.limits.anonymous_mutations_per_minute = 10_000_000;
    settings.sign_in_per_account_per_minute = 10_000_000;
    settings.sign_in_per_address_per_minute = 10_000_000;
    let app = Application::build(settings).await.expect("server starts");
    let base = format!("http://{}", app.local_addr());
    let state = app.state().clone();
    api::seed::demo(state.ctx()).await.expect("seed");
    let actor = api::events::Actor::cli("fuzz");
    let manager = identity::create_account(
        state.ctx(),
        &actor,
        "fuzz-manager@example.org",
        "correct-horse-42",
        "fuzz",
        &[Role::Manager],
    )
    .await
    .expect("account");
    let token = identity::start_session(&state.db, &state.tokens, manager).await.expect("session").access_token;
    tokio::spawn(app.run_until(std::future::pending()));

    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(30)).build().unwrap();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    let mut failures = Vec::new();
    let started = Instant::now();
    for i in 0..iterations {
        let base_doc = CORPUS[rng.random_range(0..CORPUS.len())];
        let query = if rng.random_bool(0.15) { base_doc.to_owned() } else { mutate(&mut rng, base_doc) };
        let variables = random_value(&mut rng, 0);
        let mut request = match rng.random_range(0..10) {
            0 => client.get(format!("{base}/graphql")).query(&[("query", query.as_str()), ("variables", &variables.to_string())]),
            1 => {
                let garbage: Vec<u8> = (0..rng.random_range(0..300)).map(|_| rng.random()).collect();
                client.post(format!("{base}/graphql")).header("content-type", "application/json").body(garbage)
            }
            2 => client.post(format!("{base}/graphql")).header("content-type", "application/json").body(
                Value::Array((0..rng.random_range(0..14)).map(|_| json!({ "query": mutate(&mut rng, base_doc), "variables": random_value(&mut rng, 0) })).collect()).to_string(),
            ),
            3 => client.post(format!("{base}/graphql")).header("content-type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", "application/json; charset=utf-16"][rng.random_range(0..4)]).body(json!({ "query": query }).to_string()),
            _ => client.post(format!("{base}/graphql")).json(&json!({ "query": query, "variables": variables, "operationName": if rng.random_bool(0.1) { json!("A") } else { Value::Null } })),
        };
        if rng.random_bool(0.5) {
            request = request.bearer_auth(&token);
        } else if rng.random_bool(0.1) {
            request = request.header("authorization", mutate(&mut rng, "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x"));
        }
        if rng.random_bool(0.5) {
            request = request.header("accept", "application/graphql-response+json");
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                *statuses.entry(status).or_default() += 1;
                if status >= 500 {
                    let body = response.text().await.unwrap_or_default();
                    failures.push(format!("#{i}: {status} for {query:?} {variables} → {body}"));
                }
            }
            // Headers the HTTP client itself refuses to send never reach the server.
            Err(e) if e.is_builder() => *statuses.entry(0).or_default() += 1,
            Err(e) => failures.push(format!("#{i}: no answer ({e}) for {query:?}")),
        }
    }
    let healthy = client.get(format!("{base}/health")).send().await.is_ok_and(|r| r.status().is_success());
    println!("fuzz: {iterations} requests in {:.1}s, seed {seed}", started.elapsed().as_secs_f64());
    for (status, count) in &statuses {
        if *status == 0 {
            println!("  not sendable (client refused the headers): {count}");
        } else {
            println!("  HTTP {status}: {count}");
        }
    }
    println!("  server healthy afterwards: {healthy}");
    let _ = std::fs::remove_dir_all(&dir);
    if !failures.is_empty() || !healthy {
        for f in failures.iter().take(20) {
            println!("FAIL {f}");
        }
        println!("{} failures", failures.len());
        std::process::exit(1);
    }
    println!("no 5xx, no panic");
}
