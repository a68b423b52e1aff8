//! schema.graphql is what `incubase export-schema` prints.
#[test]
fn schema_graphql_is_up_to_date() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema.graphql");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let current = api::graphql::sdl();
    if committed != current {
        let diff: Vec<String> = diff_lines(&committed, &current);
        panic!(
            "schema.graphql is out of date. Regenerate it with\n\n    cargo run -- export-schema --output schema.graphql\n\n{}",
            diff.join("\n")
        );
    }
}

#[test]
fn the_extension_free_twin_serves_the_same_schema() {
    // Operations that collect no cache tags run on the twin: clients must not see a difference.
    let (limits, environment) = (api::config::Limits::default(), api::config::Environment::Development);
    let full = api::graphql::build_schema(None, &limits, &environment).sdl();
    let lean = api::graphql::build_lean_schema(None, &limits, &environment).sdl();
    assert!(full == lean, "the twins' SDL differs:\n{}", diff_lines(&full, &lean).join("\n"));
}

/// Lines only in one of the two texts, marked - (committed) and + (current).
fn diff_lines(old: &str, new: &str) -> Vec<String> {
    let old_set: std::collections::HashSet<&str> = old.lines().collect();
    let new_set: std::collections::HashSet<&str> = new.lines().collect();
    let mut out: Vec<String> = old.lines().filter(|l| !new_set.contains(l)).map(|l| format!("- {l}")).collect();
    out.extend(new.lines().filter(|l| !old_set.contains(l)).map(|l| format!("+ {l}")));
    out
}

#[test]
fn root_types_have_the_conventional_names() {
    let sdl = api::graphql::sdl();
    assert!(sdl.contains("schema {\n\tquery: Query\n\tmutation: Mutation\n\tsubscription: Subscription\n}"), "{sdl}");
    for root in ["type Query {", "type Mutation {", "type Subscription {"] {
        assert!(sdl.contains(root), "the SDL defines {root}");
    }
    assert!(!sdl.contains("QueryRoot") && !sdl.contains("MutationRoot") && !sdl.contains("SubscriptionRoot"));
}

crate::backend_tests! {
    async fn clients_see_query_mutation_and_subscription(app) {
        let data = app
            .ok(
                "{ __typename __schema { queryType { name } mutationType { name } subscriptionType { name } } }",
                serde_json::json!({}),
            )
            .await;
        assert_eq!(data["__typename"], "Query");
        assert_eq!(data["__schema"]["queryType"]["name"], "Query");
        assert_eq!(data["__schema"]["mutationType"]["name"], "Mutation");
        assert_eq!(data["__schema"]["subscriptionType"]["name"], "Subscription");
        // A fragment on the root type, as generated clients write them.
        let data = app.ok("query { ...Root } fragment Root on Query { viewer { isAuthenticated } }", serde_json::json!({})).await;
        assert_eq!(data["viewer"]["isAuthenticated"], true);
        let body = app.gql("mutation { __typename }", serde_json::json!({})).await;
        assert_eq!(body["data"]["__typename"], "Mutation", "{body}");
    }
}

/// Money travels as `Fen`, never as GraphQL's 32-bit `Int`: every field, argument and input
/// field whose name ends in `Fen`.
#[test]
fn every_money_value_is_fen() {
    let sdl = api::graphql::sdl();
    let mut int_money = Vec::new();
    for line in sdl.lines() {
        // `name: Type`, `name(args): Type`, and arguments inside parentheses.
        for part in line.split(['(', ',', ')']) {
            if let Some((name, ty)) = part.split_once(':') {
                let (name, ty) = (name.trim(), ty.trim().trim_start_matches('[').trim_end_matches(['!', ']', ' ']));
                let ty = ty.split_whitespace().next().unwrap_or("").trim_end_matches(['!', ']']);
                if name.ends_with("Fen") && ty != "Fen" {
                    int_money.push(line.trim().to_owned());
                }
            }
        }
    }
    assert!(int_money.is_empty(), "money not typed Fen: {int_money:#?}");
    assert!(sdl.contains("scalar Fen"), "the scalar is declared");
    assert!(sdl.contains("scalar Count"), "so is the 64-bit count of person-times");
    for counted in ["\ttotal: Count!", "\tpersonTimesFromEvents: Count!", "\twomen: Count!"] {
        assert!(sdl.contains(counted), "{counted}");
    }
}

crate::backend_tests! {
    // A goal of 30 million yuan (3,000,000,000 fen, beyond 2^31) goes in and comes out exact;
    // the scalar is documented; 64-bit inputs may be sent as strings; out-of-range and
    // fractional values are refused.
    async fn money_beyond_32_bits_round_trips_as_fen(app) {
        use serde_json::{Value, json};
        let scalar = app.ok(r#"{ __type(name: "Fen") { kind description } }"#, json!({})).await;
        assert_eq!(scalar["__type"]["kind"], "SCALAR");
        let description = scalar["__type"]["description"].as_str().expect("documented");
        assert!(description.contains("fen") && description.contains("64-bit"), "{description}");
        let field = app.ok(r#"{ __type(name: "Campaign") { fields { name type { ofType { name } } } } }"#, json!({})).await;
        let goal = field["__type"]["fields"].as_array().expect("fields").iter().find(|f| f["name"] == "goalFen").expect("goalFen").clone();
        assert_eq!(goal["type"]["ofType"]["name"], "Fen");

        let org = crate::organizations::create(&app, json!({ "name": "三十亿目标基金会" })).await;
        let now = chrono::Utc::now();
        const CREATE: &str = "mutation($i: CreateCampaignInput!) { createCampaign(input: $i) { campaign { id goalFen budget { amountFen } } } }";
        let input = |goal: Value| json!({ "i": { "organizationId": org["id"], "title": "乡村女童助学计划", "goalFen": goal,
            "startsAt": now.to_rfc3339(), "endsAt": (now + chrono::Duration::days(90)).to_rfc3339(),
            "budget": [{ "item": "助学金", "amountFen": 3_000_000_000_i64 }] } });
        let created = app.ok(CREATE, input(json!(3_000_000_000_i64))).await;
        assert_eq!(created["createCampaign"]["campaign"]["goalFen"], json!(3_000_000_000_i64));
        assert_eq!(created["createCampaign"]["campaign"]["budget"][0]["amountFen"], json!(3_000_000_000_i64));
        let read = app.ok("query($id: ID!) { campaign(id: $id) { goalFen } }",
            json!({ "id": created["createCampaign"]["campaign"]["id"] })).await;
        assert_eq!(read["campaign"]["goalFen"], json!(3_000_000_000_i64), "read back exact, as a JSON number");

        // As a string of digits (what some 64-bit clients send), and inline in the document.
        let as_text = app.ok(CREATE, input(json!("3000000000"))).await;
        assert_eq!(as_text["createCampaign"]["campaign"]["goalFen"], json!(3_000_000_000_i64));
        let inline = app.ok(&format!("mutation {{ createCampaign(input: {{ organizationId: \"{}\", title: \"内联目标\", goalFen: 3000000000,
            startsAt: \"{}\", endsAt: \"{}\" }}) {{ campaign {{ goalFen }} }} }}",
            org["id"].as_str().expect("id"), now.to_rfc3339(), (now + chrono::Duration::days(9)).to_rfc3339()), json!({})).await;
        assert_eq!(inline["createCampaign"]["campaign"]["goalFen"], json!(3_000_000_000_i64));

        // Variables typed `Fen!`, as generated clients declare them.
        let typed = app.ok("mutation($goal: Fen!, $org: ID!, $s: DateTime!, $e: DateTime!) { createCampaign(input: {
            organizationId: $org, title: \"变量目标\", goalFen: $goal, startsAt: $s, endsAt: $e }) { campaign { goalFen } } }",
            json!({ "goal": 3_000_000_000_i64, "org": org["id"], "s": now, "e": now + chrono::Duration::days(9) })).await;
        assert_eq!(typed["createCampaign"]["campaign"]["goalFen"], json!(3_000_000_000_i64));

        for bad in [json!(1.5), json!("三十亿"), json!(9_007_199_254_740_993_i64)] {
            let body = app.gql(CREATE, input(bad.clone())).await;
            assert!(body["errors"][0]["message"].as_str().is_some(), "{bad} is refused: {body}");
            assert!(body["data"].is_null() || body["data"]["createCampaign"].is_null(), "{body}");
        }
        use sea_orm::{EntityTrait, PaginatorTrait};
        let campaigns = entity::campaign::Entity::find().count(&app.state.db).await.expect("count");
        assert_eq!(campaigns, 4, "the refused ones created nothing");
    }
}
