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
