//! The organizations slice end to end: directory, profiles, lifecycle, bad input.
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::TestApp;

pub const CREATE: &str = r#"
mutation($input: CreateOrganizationInput!) {
  createOrganization(input: $input) {
    organization { id slug name nameTraditional kind creditCode stage focusAreas allowedTransitions viewerCanEdit
      stageHistory { fromStage toStage } }
  }
}"#;

const TRANSITION: &str = r#"
mutation($input: TransitionOrganizationStageInput!) {
  transitionOrganizationStage(input: $input) {
    organization { stage stageChangedAt }
    transition { fromStage toStage note occurredAt }
  }
}"#;

/// A valid unified social credit code for a social service agency in Siming district.
pub fn credit_code(serial: u32) -> String {
    let first17 = format!("52350203{:09}", serial);
    let check = api::service::credit_code::check_char(&first17).expect("alphabet");
    format!("{first17}{check}")
}

pub async fn create(app: &TestApp, input: Value) -> Value {
    app.ok(CREATE, json!({ "input": input })).await["createOrganization"]["organization"].clone()
}

async fn count(app: &TestApp) -> i64 {
    app.ok("{ organizations { totalCount } }", json!({})).await["organizations"]["totalCount"].as_i64().expect("count")
}

fn names(data: &Value) -> Vec<String> {
    data["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["name"].as_str().expect("name").to_owned())
        .collect()
}

backend_tests! {
    async fn create_and_read_back(app) {
        let org = create(&app, json!({
            "name": "厦门市思明区巾帼社会工作服务中心",
            "nameTraditional": "廈門市思明區巾幗社會工作服務中心",
            "nameEn": "Siming Women Social Work Centre",
            "creditCode": credit_code(1).to_lowercase(),
            "focusAreas": ["WOMEN", "CHILDREN", "WOMEN"],
            "contact": { "name": "陈丽华", "phone": "0592-5123456", "email": "chen@example.org" },
        })).await;
        assert_eq!(org["stage"], "LIAISON");
        assert_eq!(org["creditCode"], credit_code(1), "codes are stored upper-case");
        assert_eq!(org["focusAreas"], json!(["WOMEN", "CHILDREN"]), "duplicates dropped");
        assert_eq!(org["kind"], "SOCIAL_SERVICE_AGENCY");
        assert_eq!(org["allowedTransitions"], json!(["APPLIED", "EXITED"]));
        assert_eq!(org["viewerCanEdit"], true);
        assert_eq!(org["stageHistory"], json!([{ "fromStage": null, "toStage": "LIAISON" }]));
        let slug = org["slug"].as_str().expect("slug");
        assert!(slug.starts_with("siming-women-social-work-centre-"), "slug from the English name: {slug}");

        let data = app.ok(
            "query($slug: String!) { organization(slug: $slug) { id name nameTraditional contact { name phone email } } }",
            json!({ "slug": slug }),
        ).await;
        assert_eq!(data["organization"]["id"], org["id"]);
        assert_eq!(data["organization"]["nameTraditional"], "廈門市思明區巾幗社會工作服務中心");
        assert_eq!(data["organization"]["contact"]["phone"], "0592-5123456");

        let missing = app.ok(r#"{ organization(slug: "no-such-org") { id } }"#, json!({})).await;
        assert_eq!(missing["organization"], Value::Null);
    }

    async fn node_and_nodes_resolve_global_ids(app) {
        let a = create(&app, json!({ "name": "甲组织" })).await;
        let b = create(&app, json!({ "name": "乙组织" })).await;
        let data = app.ok(
            "query($a: ID!, $ids: [ID!]!) { node(id: $a) { id ... on Organization { name } } nodes(ids: $ids) { id } }",
            json!({ "a": a["id"], "ids": [b["id"], "T3JnYW5pemF0aW9uOjk5OTk5", a["id"]] }),
        ).await;
        assert_eq!(data["node"]["name"], "甲组织");
        assert_eq!(data["nodes"], json!([{ "id": b["id"] }, null, { "id": a["id"] }]));

        let code = app.error_code(r#"{ node(id: "not-an-id") { id } }"#, json!({})).await;
        assert_eq!(code, "BAD_USER_INPUT");
    }

    async fn directory_filters_searches_and_orders(app) {
        create(&app, json!({ "name": "厦门市湖里区阳光家庭服务中心", "focusAreas": ["FAMILY"] })).await;
        create(&app, json!({ "name": "厦门市集美区彩虹儿童发展中心", "focusAreas": ["CHILDREN"], "kind": "COMMUNITY_GROUP" })).await;
        let applied = create(&app, json!({ "name": "厦门市海沧区心语女性协会", "nameEn": "Haicang Heart Talk Women", "focusAreas": ["WOMEN", "MENTAL_HEALTH"], "stage": "APPLIED" })).await;
        assert_eq!(applied["stage"], "APPLIED");

        let q = "query($f: OrganizationFilter, $o: OrganizationOrder) { organizations(filter: $f, orderBy: $o) { totalCount edges { node { name } } } }";
        let by_stage = app.ok(q, json!({ "f": { "stage": "APPLIED" } })).await;
        assert_eq!(names(&by_stage["organizations"]), vec!["厦门市海沧区心语女性协会"]);

        let by_area = app.ok(q, json!({ "f": { "focusArea": ["CHILDREN", "FAMILY"] } })).await;
        assert_eq!(by_area["organizations"]["totalCount"], 2);

        let by_kind = app.ok(q, json!({ "f": { "kind": "COMMUNITY_GROUP" } })).await;
        assert_eq!(names(&by_kind["organizations"]), vec!["厦门市集美区彩虹儿童发展中心"]);

        let chinese = app.ok(q, json!({ "f": { "search": "彩虹" } })).await;
        assert_eq!(names(&chinese["organizations"]), vec!["厦门市集美区彩虹儿童发展中心"]);
        let english = app.ok(q, json!({ "f": { "search": "heart TALK" } })).await;
        assert_eq!(english["organizations"]["totalCount"], 1, "Latin search ignores case");
        let wildcard = app.ok(q, json!({ "f": { "search": "%" } })).await;
        assert_eq!(wildcard["organizations"]["totalCount"], 0, "LIKE wildcards match literally");

        let asc = app.ok(q, json!({ "o": { "field": "NAME", "direction": "ASC" } })).await;
        let mut sorted = names(&asc["organizations"]);
        let as_returned = sorted.clone();
        sorted.sort();
        assert_eq!(as_returned, sorted, "name order is code point order");
        let desc = app.ok(q, json!({ "o": { "field": "NAME", "direction": "DESC" } })).await;
        sorted.reverse();
        assert_eq!(names(&desc["organizations"]), sorted);
    }

    async fn pages_forward_and_backward_with_cursors(app) {
        for i in 0..7 {
            create(&app, json!({ "name": format!("组织{i:02}") })).await;
        }
        let q = "query($first: Int, $after: String, $last: Int, $before: String) {
            organizations(first: $first, after: $after, last: $last, before: $before) {
              totalCount edges { cursor node { name } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }";
        let p1 = app.ok(q, json!({ "first": 3 })).await["organizations"].clone();
        assert_eq!(names(&p1), vec!["组织00", "组织01", "组织02"]);
        assert_eq!(p1["totalCount"], 7);
        assert_eq!(p1["pageInfo"]["hasNextPage"], true);
        assert_eq!(p1["pageInfo"]["hasPreviousPage"], false);

        let p2 = app.ok(q, json!({ "first": 3, "after": p1["pageInfo"]["endCursor"] })).await["organizations"].clone();
        assert_eq!(names(&p2), vec!["组织03", "组织04", "组织05"]);
        let p3 = app.ok(q, json!({ "first": 3, "after": p2["pageInfo"]["endCursor"] })).await["organizations"].clone();
        assert_eq!(names(&p3), vec!["组织06"]);
        assert_eq!(p3["pageInfo"]["hasNextPage"], false);

        let back = app.ok(q, json!({ "last": 2, "before": p2["pageInfo"]["startCursor"] })).await["organizations"].clone();
        assert_eq!(names(&back), vec!["组织01", "组织02"]);
        assert_eq!(back["pageInfo"]["hasPreviousPage"], true);
        assert_eq!(back["pageInfo"]["hasNextPage"], true);
        let tail = app.ok(q, json!({ "last": 2 })).await["organizations"].clone();
        assert_eq!(names(&tail), vec!["组织05", "组织06"]);

        let default_page = app.ok("{ organizations { edges { cursor } } }", json!({})).await;
        assert_eq!(default_page["organizations"]["edges"].as_array().map(Vec::len), Some(7));

        for bad in [json!({ "first": 101 }), json!({ "first": -1 }), json!({ "first": 2, "last": 2 }), json!({ "after": "garbage" })] {
            let body = app.gql(q, bad.clone()).await;
            assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{bad}: {body}");
        }
    }

    async fn lifecycle_allows_only_legal_transitions(app) {
        let org = create(&app, json!({ "name": "厦门市同安区春晖家庭服务中心" })).await;
        let id = org["id"].clone();
        let illegal = app.gql(TRANSITION, json!({ "input": { "id": id, "stage": "RESIDENT" } })).await;
        assert_eq!(illegal["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
        assert!(illegal["errors"][0]["message"].as_str().is_some_and(|m| m.contains("APPLIED")), "names allowed stages: {illegal}");

        for (stage, note) in [("APPLIED", "提交申请"), ("INCUBATING", "通过评审"), ("RESIDENT", "入驻")] {
            let data = app.ok(TRANSITION, json!({ "input": { "id": id, "stage": stage, "note": note } })).await;
            assert_eq!(data["transitionOrganizationStage"]["organization"]["stage"], stage);
            assert_eq!(data["transitionOrganizationStage"]["transition"]["note"], note);
        }
        let back_in_time = app.gql(TRANSITION, json!({ "input": { "id": id, "stage": "GRADUATED", "occurredAt": "2001-01-01T00:00:00Z" } })).await;
        assert_eq!(back_in_time["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");

        let history = app.ok(
            "query($slug: String!) { organization(slug: $slug) { stage stageHistory { fromStage toStage } } }",
            json!({ "slug": org["slug"] }),
        ).await;
        assert_eq!(history["organization"]["stage"], "RESIDENT");
        assert_eq!(history["organization"]["stageHistory"], json!([
            { "fromStage": null, "toStage": "LIAISON" },
            { "fromStage": "LIAISON", "toStage": "APPLIED" },
            { "fromStage": "APPLIED", "toStage": "INCUBATING" },
            { "fromStage": "INCUBATING", "toStage": "RESIDENT" },
        ]));

        let unknown = app.gql(TRANSITION, json!({ "input": { "id": "T3JnYW5pemF0aW9uOjk5OTk5", "stage": "APPLIED" } })).await;
        assert_eq!(unknown["errors"][0]["extensions"]["code"], "NOT_FOUND");
        let wrong_type = app.gql(TRANSITION, json!({ "input": { "id": "U3BhY2U6MQ", "stage": "APPLIED" } })).await;
        assert_eq!(wrong_type["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    }

    async fn concurrent_transitions_apply_once(app) {
        let org = create(&app, json!({ "name": "并发测试组织" })).await;
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let client = app.client.clone();
                let url = app.url("/graphql");
                let token = app.manager.token.clone();
                let body = json!({ "query": TRANSITION, "variables": { "input": { "id": org["id"], "stage": "APPLIED" } } });
                tokio::spawn(async move { client.post(url).bearer_auth(token).json(&body).send().await.expect("sent").json::<Value>().await.expect("json") })
            })
            .collect();
        let mut wins = 0;
        for t in tasks {
            let body = t.await.expect("task");
            if body.get("errors").is_none() {
                wins += 1;
            } else {
                let code = body["errors"][0]["extensions"]["code"].as_str().unwrap_or_default().to_owned();
                assert!(code == "BAD_USER_INPUT" || code == "CONFLICT", "losers get a clear error: {body}");
            }
        }
        assert_eq!(wins, 1, "exactly one transition applies");
        let history = app.ok(
            "query($slug: String!) { organization(slug: $slug) { stageHistory { toStage } } }",
            json!({ "slug": org["slug"] }),
        ).await;
        assert_eq!(history["organization"]["stageHistory"].as_array().map(Vec::len), Some(2));
    }

    async fn bad_input_is_refused_and_nothing_is_written(app) {
        create(&app, json!({ "name": "已有组织", "slug": "existing-org", "creditCode": credit_code(7) })).await;
        let before = count(&app).await;
        let cases = [
            (json!({ "name": "坏代码", "creditCode": "91350200MA2Y0000X1" }), "BAD_USER_INPUT", Some("creditCode")),
            (json!({ "name": "太短", "creditCode": "5235020300" }), "BAD_USER_INPUT", Some("creditCode")),
            (json!({ "name": "   " }), "BAD_USER_INPUT", Some("name")),
            (json!({ "name": "坏网址", "website": "javascript:alert(1)" }), "BAD_USER_INPUT", Some("website")),
            (json!({ "name": "坏邮箱", "contact": { "email": "not-an-email" } }), "BAD_USER_INPUT", Some("contactEmail")),
            (json!({ "name": "坏链接名", "slug": "Bad Slug!" }), "BAD_USER_INPUT", Some("slug")),
            (json!({ "name": "直接入驻", "stage": "RESIDENT" }), "BAD_USER_INPUT", Some("stage")),
            (json!({ "name": "未来成立", "foundedOn": "2999-01-01" }), "BAD_USER_INPUT", Some("foundedOn")),
            (json!({ "name": "重复链接", "slug": "existing-org" }), "CONFLICT", None),
            (json!({ "name": "重复代码", "creditCode": credit_code(7) }), "CONFLICT", None),
        ];
        for (input, code, field) in cases {
            let body = app.gql(CREATE, json!({ "input": input })).await;
            assert_eq!(body["errors"][0]["extensions"]["code"], code, "{input}: {body}");
            if let Some(field) = field {
                assert_eq!(body["errors"][0]["extensions"]["field"], field, "{input}: {body}");
            }
            assert!(body["data"].is_null(), "a failed mutation returns no payload");
        }
        assert_eq!(count(&app).await, before, "no failed create left a row behind");

        let org = create(&app, json!({ "name": "待更新组织", "focusAreas": ["WOMEN"] })).await;
        let update = "mutation($input: UpdateOrganizationInput!) { updateOrganization(input: $input) { organization { name focusAreas website } } }";
        let failed = app.gql(update, json!({ "input": { "id": org["id"], "name": "新名字", "focusAreas": ["ELDERLY"], "website": "ftp://x" } })).await;
        assert_eq!(failed["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
        let unchanged = app.ok("query($s: String!) { organization(slug: $s) { name focusAreas } }", json!({ "s": org["slug"] })).await;
        assert_eq!(unchanged["organization"], json!({ "name": "待更新组织", "focusAreas": ["WOMEN"] }), "a failed update changes nothing");

        let updated = app.ok(update, json!({ "input": { "id": org["id"], "name": "新名字", "focusAreas": ["ELDERLY"], "website": "https://example.org" } })).await;
        assert_eq!(updated["updateOrganization"]["organization"], json!({ "name": "新名字", "focusAreas": ["ELDERLY"], "website": "https://example.org" }));
        let cleared = app.ok(update, json!({ "input": { "id": org["id"], "website": null } })).await;
        assert_eq!(cleared["updateOrganization"]["organization"]["website"], Value::Null, "null clears a field");
        assert_eq!(cleared["updateOrganization"]["organization"]["name"], "新名字", "omitted fields stay");

        let missing = app.gql(update, json!({ "input": { "id": "T3JnYW5pemF0aW9uOjk5OTk5", "name": "x" } })).await;
        assert_eq!(missing["errors"][0]["extensions"]["code"], "NOT_FOUND");
    }

    async fn nested_relations_cost_the_same_for_any_page_size(app) {
        for i in 0..30 {
            let org = create(&app, json!({ "name": format!("批量组织{i:02}"), "focusAreas": ["WOMEN", "FAMILY"] })).await;
            app.ok(TRANSITION, json!({ "input": { "id": org["id"], "stage": "APPLIED" } })).await;
        }
        let q = "query($n: Int!) { organizations(first: $n) { edges { node { name focusAreas stageHistory { toStage } } } } }";
        let mut costs = Vec::new();
        for n in [3, 30] {
            let before = app.sql_statements();
            let data = app.ok_as(&crate::helpers::Credentials::anonymous(), q, json!({ "n": n })).await;
            costs.push(app.sql_statements() - before);
            let edges = data["organizations"]["edges"].as_array().expect("edges");
            assert_eq!(edges.len(), n as usize);
            assert!(edges.iter().all(|e| e["node"]["stageHistory"].as_array().map(Vec::len) == Some(2)));
        }
        assert_eq!(costs[0], costs[1], "statements for 3 and 30 organizations: {costs:?}");
        assert!(costs[1] <= 4, "page + focus areas + stage history (+ cache), got {}", costs[1]);
    }
}

#[tokio::test]
async fn production_mode_hides_introspection() {
    let app = crate::helpers::spawn_app_with(crate::helpers::Backend::Sqlite, |s| {
        s.environment = api::config::Environment::Production;
    })
    .await;
    let body = app.gql("{ __schema { queryType { name } } }", json!({})).await;
    assert_eq!(body["data"]["__schema"], Value::Null, "introspection is off: {body}");
    assert_eq!(count(&app).await, 0);
}

/// One organization page with its focus areas and stage history: read anonymously with every
/// cache off, one statement for the organization and both relations; signed in after a write,
/// the same one, the hot session none.
async fn an_organization_page_costs_one_statement(backend: crate::helpers::Backend) {
    use crate::helpers::Credentials;
    let page = "query($s: String!) { organization(slug: $s) { id name focusAreas contact { name } \
        stageHistory { fromStage toStage occurredAt } } }";
    let check = |who: &str, data: &Value, cost: u64| {
        let mut areas: Vec<&str> =
            data["organization"]["focusAreas"].as_array().expect("areas").iter().filter_map(Value::as_str).collect();
        areas.sort_unstable();
        assert_eq!(areas, ["CHILDREN", "FAMILY", "WOMEN"], "{who}: {data}");
        assert_eq!(data["organization"]["stageHistory"].as_array().map(Vec::len), Some(2), "{who}: {data}");
        assert_eq!(cost, 1, "{who}: the page costs {cost} statements");
    };
    let uncached = crate::helpers::spawn_app_with(backend, |s| {
        s.cache_enabled = false;
        s.response_cache_entries = 0;
    })
    .await;
    let org =
        create(&uncached, json!({ "name": "两条语句家庭服务中心", "focusAreas": ["WOMEN", "FAMILY", "CHILDREN"] }))
            .await;
    uncached.ok(TRANSITION, json!({ "input": { "id": org["id"], "stage": "APPLIED" } })).await;
    let before = uncached.sql_statements();
    let data = uncached.ok_as(&Credentials::anonymous(), page, json!({ "s": org["slug"] })).await;
    check("anonymous", &data, uncached.sql_statements() - before);
    // The page's one statement reads the history exactly as the directory's own read does:
    // order, notes, instants to the microsecond, absent fields.
    let at = chrono::Utc::now() + chrono::Duration::seconds(30);
    let occurred = at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let noted = json!({ "input": { "id": org["id"], "stage": "INCUBATING", "note": "入孵「测试」\n第二行",
        "occurredAt": occurred } });
    uncached.ok(TRANSITION, noted).await;
    let fields = "focusAreas stageHistory { fromStage toStage note occurredAt }";
    let page_query = format!("query($s: String!) {{ organization(slug: $s) {{ {fields} }} }}");
    let list_query = format!(
        "query($q: String!) {{ organizations(filter: {{ search: $q }}) {{ edges {{ node {{ {fields} }} }} }} }}"
    );
    let one = uncached.ok_as(&Credentials::anonymous(), &page_query, json!({ "s": org["slug"] })).await;
    let listed = uncached.ok(&list_query, json!({ "q": "两条语句家庭" })).await;
    assert_eq!(one["organization"], listed["organizations"]["edges"][0]["node"]);
    let history = one["organization"]["stageHistory"].as_array().expect("history");
    assert_eq!(history.len(), 3);
    let read: chrono::DateTime<chrono::Utc> =
        history[2]["occurredAt"].as_str().and_then(|t| t.parse().ok()).expect("an instant");
    assert_eq!(read.timestamp_micros(), at.timestamp_micros(), "{one}");
    assert_eq!(history[2]["note"], "入孵「测试」\n第二行");

    let app = crate::helpers::spawn_app(backend).await;
    let org =
        create(&app, json!({ "name": "两条语句妇女服务中心", "focusAreas": ["WOMEN", "FAMILY", "CHILDREN"] })).await;
    app.ok(TRANSITION, json!({ "input": { "id": org["id"], "stage": "APPLIED" } })).await;
    let donor = Credentials::account(&app.account("donor", &[api::service::identity::Role::Donor]).await);
    app.ok_as(&donor, "{ viewer { isAuthenticated } }", json!({})).await;
    // A write since the session was warmed: the page itself is read afresh.
    app.ok(UPDATE_NAME, json!({ "input": { "id": org["id"], "description": "改过" } })).await;
    let before = app.sql_statements();
    let data = app.ok_as(&donor, page, json!({ "s": org["slug"] })).await;
    check("signed in", &data, app.sql_statements() - before);
}

const UPDATE_NAME: &str =
    "mutation($input: UpdateOrganizationInput!) { updateOrganization(input: $input) { organization { id } } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organization_page_costs_one_statement_sqlite() {
    if crate::helpers::selected(crate::helpers::Backend::Sqlite) {
        an_organization_page_costs_one_statement(crate::helpers::Backend::Sqlite).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organization_page_costs_one_statement_postgres() {
    if crate::helpers::selected(crate::helpers::Backend::Postgres) {
        an_organization_page_costs_one_statement(crate::helpers::Backend::Postgres).await;
    }
}
