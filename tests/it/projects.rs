//! Funded service projects and the impact dashboard: ledgers that never overpay, goals and
//! service records, and `baseStats` agreeing with the CSV report and staying correct after
//! writes.
use serde_json::{Value, json};

use crate::backend_tests;
use crate::grants::{ASSIGN, AWARD, SUBMIT, draft, open_round, org_with_owner};
use crate::helpers::{Credentials, TestApp};
use api::service::identity::Role;

const CREATE_PROJECT: &str = r#"
mutation($i: CreateServiceProjectInput!) {
  createServiceProject(input: $i) { project { id source fundedFen disbursedFen purchaser purchaserKind contractNumber
    proposalId campaignId startsOn endsOn organization { name } } }
}"#;
const DISBURSE: &str = r#"
mutation($i: RecordDisbursementInput!) {
  recordDisbursement(input: $i) { project { disbursedFen } disbursement { amountFen paidOn } }
}"#;
const ADD_RECORD: &str = r#"
mutation($i: AddServiceRecordInput!) { addServiceRecord(input: $i) { record { servedOn people { total women } } } }"#;
const STATS: &str = r#"
query($from: NaiveDate!, $to: NaiveDate!, $g: ImpactGroupBy) {
  baseStats(from: $from, to: $to, groupBy: $g) {
    organizationsByStage { stage count }
    totals { personTimes { total women children families elderly others } personTimesFromProjects personTimesFromEvents
      eventsHeld awardedFen contractedFen campaignRaisedFen projectsActive projectsStarted stageChangesTotal
      stageChanges { stage count } }
    series { label from to organizationsByStage { stage count }
      figures { personTimes { total } contractedFen projectsActive stageChangesTotal } }
  }
}"#;

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or("")
}

pub async fn government_project(app: &TestApp, org: &str, fen: i64, starts: &str, ends: &str, kind: &str) -> String {
    let data = app.ok(CREATE_PROJECT, json!({ "i": {
        "title": "社区妇女儿童关爱服务项目", "source": "GOVERNMENT_PURCHASE", "organizationId": org,
        "purchaser": "思明区嘉莲街道办事处", "purchaserKind": kind, "contractNumber": format!("XM-{starts}-{fen}"),
        "contractFen": fen, "startsOn": starts, "endsOn": ends,
        "budgetLines": [{ "item": "人员费用", "amountFen": fen / 2 }],
    }})).await;
    data["createServiceProject"]["project"]["id"].as_str().unwrap().to_owned()
}

async fn record(app: &TestApp, project: &str, day: &str, women: i64, children: i64, families: i64) -> Value {
    app.gql(
        ADD_RECORD,
        json!({ "i": { "projectId": project, "servedOn": day, "activity": "亲子阅读活动",
        "people": { "women": women, "children": children, "families": families }, "location": "嘉莲社区服务站" } }),
    )
    .await
}

fn stage_count(list: &Value, stage: &str) -> i64 {
    list.as_array().unwrap().iter().find(|s| s["stage"] == stage).map(|s| s["count"].as_i64().unwrap()).unwrap_or(0)
}

backend_tests! {
    async fn projects_keep_ledgers_goals_and_records(app) {
        let (org, owner) = org_with_owner(&app, "思明区巾帼社工服务中心").await;
        let as_owner = Credentials::account(&owner);
        let project = government_project(&app, &org, 16_000_000, "2026-01-01", "2026-12-31", "STREET_OFFICE").await;

        // Tranches: within the contract, then one too many.
        let paid = app.ok(DISBURSE, json!({ "i": { "projectId": project, "amountFen": 10_000_000, "paidOn": "2026-01-15", "note": "首期款" } })).await;
        assert_eq!(paid["recordDisbursement"]["project"]["disbursedFen"], 10_000_000);
        let over = app.gql(DISBURSE, json!({ "i": { "projectId": project, "amountFen": 6_000_001, "paidOn": "2026-06-15" } })).await;
        assert_eq!(code(&over), "CONFLICT");
        assert!(over["errors"][0]["message"].as_str().unwrap().contains("6000000 of 16000000 fen left"), "{over}");
        let future = app.gql(DISBURSE, json!({ "i": { "projectId": project, "amountFen": 1, "paidOn": "2099-01-01" } })).await;
        assert_eq!(code(&future), "BAD_USER_INPUT");
        let by_owner = app.gql_as(&as_owner, DISBURSE, json!({ "i": { "projectId": project, "amountFen": 1, "paidOn": "2026-02-01" } })).await;
        assert_eq!(code(&by_owner), "FORBIDDEN", "only staff pay tranches");
        let ledger = app.ok_as(&as_owner, "query($id: ID!) { serviceProject(id: $id) { disbursedFen disbursements { amountFen paidOn note } } }", json!({ "id": project })).await;
        assert_eq!(ledger["serviceProject"]["disbursedFen"], 10_000_000, "nothing half-written");
        assert_eq!(ledger["serviceProject"]["disbursements"], json!([{ "amountFen": 10_000_000, "paidOn": "2026-01-15", "note": "首期款" }]));
        let public = app.ok_as(&Credentials::anonymous(), "query($id: ID!) { serviceProject(id: $id) { title disbursements { amountFen } } }", json!({ "id": project })).await;
        assert_eq!(public["serviceProject"]["disbursements"], Value::Null);

        // Goals and progress by the organization itself.
        let goal = app.ok_as(&as_owner, "mutation($i: AddImpactGoalInput!) { addImpactGoal(input: $i) { goal { id target achieved } } }",
            json!({ "i": { "projectId": project, "goalType": "服务人次", "unit": "人次", "target": 1200 } })).await;
        let goal_id = goal["addImpactGoal"]["goal"]["id"].as_str().unwrap().to_owned();
        let progress = app.ok_as(&as_owner, "mutation($i: RecordGoalProgressInput!) { recordGoalProgress(input: $i) { goal { achieved updates { achieved note reportedOn } } } }",
            json!({ "i": { "goalId": goal_id, "achieved": 480, "note": "上半年进展", "reportedOn": "2026-06-30" } })).await;
        assert_eq!(progress["recordGoalProgress"]["goal"]["achieved"], 480);
        assert_eq!(progress["recordGoalProgress"]["goal"]["updates"][0]["reportedOn"], "2026-06-30");

        // Service records: inside the period, at least one person.
        let ok = app.gql_as(&as_owner, ADD_RECORD, json!({ "i": { "projectId": project, "servedOn": "2026-03-08", "activity": "三八妇女节健康讲座",
            "people": { "women": 80, "elderly": 12 }, "location": "嘉莲社区" } })).await;
        assert_eq!(ok["data"]["addServiceRecord"]["record"]["people"], json!({ "total": 92, "women": 80 }));
        let outside = record(&app, &project, "2025-12-31", 1, 0, 0).await;
        assert_eq!(code(&outside), "BAD_USER_INPUT");
        assert_eq!(outside["errors"][0]["extensions"]["field"], "servedOn");
        let nobody = record(&app, &project, "2026-03-09", 0, 0, 0).await;
        assert_eq!(code(&nobody), "BAD_USER_INPUT");
        let totals = app.ok("query($id: ID!) { serviceProject(id: $id) { personTimes { total women elderly } serviceRecords(first: 10) { totalCount } } }", json!({ "id": project })).await;
        assert_eq!(totals["serviceProject"]["personTimes"], json!({ "total": 92, "women": 80, "elderly": 12 }));
        assert_eq!(totals["serviceProject"]["serviceRecords"]["totalCount"], 1);

        // A project from an award is paid at most the award; a second project from it is refused.
        let round = open_round(&app, 10_000_000, 5_000_000).await;
        let round_id = round["id"].as_str().unwrap();
        let p = draft(&app, &owner, round_id, &org, "获奖项目", 3_000_000).await;
        let pid = p["id"].as_str().unwrap();
        let not_awarded = app.gql(CREATE_PROJECT, json!({ "i": { "title": "未获奖", "source": "AWARD", "proposalId": pid,
            "startsOn": "2026-01-01", "endsOn": "2026-12-31" } })).await;
        assert_eq!(code(&not_awarded), "BAD_USER_INPUT");
        app.ok_as(&as_owner, SUBMIT, json!({ "i": { "id": pid } })).await;
        let reviewer = app.account("reviewer", &[Role::Reviewer]).await;
        app.ok(ASSIGN, json!({ "i": { "proposalId": pid, "reviewerId": reviewer.global_id } })).await;
        app.ok(AWARD, json!({ "i": { "id": pid, "amountFen": 2_500_000 } })).await;
        let from_award = app.ok(CREATE_PROJECT, json!({ "i": { "title": "获奖项目实施", "source": "AWARD", "proposalId": pid,
            "startsOn": "2026-01-01", "endsOn": "2026-12-31" } })).await;
        let award_project = &from_award["createServiceProject"]["project"];
        assert_eq!(award_project["fundedFen"], 2_500_000);
        assert_eq!(award_project["proposalId"], pid);
        assert_eq!(award_project["organization"]["name"], "思明区巾帼社工服务中心");
        let twice = app.gql(CREATE_PROJECT, json!({ "i": { "title": "重复", "source": "AWARD", "proposalId": pid,
            "startsOn": "2026-01-01", "endsOn": "2026-12-31" } })).await;
        assert_eq!(code(&twice), "CONFLICT");
        let award_id = award_project["id"].as_str().unwrap();
        app.ok(DISBURSE, json!({ "i": { "projectId": award_id, "amountFen": 2_500_000, "paidOn": "2026-02-01" } })).await;
        let beyond = app.gql(DISBURSE, json!({ "i": { "projectId": award_id, "amountFen": 1, "paidOn": "2026-02-02" } })).await;
        assert_eq!(code(&beyond), "CONFLICT", "disbursing more than awarded");

        // A campaign project: the campaign is referenced, not checked (campaigns land elsewhere).
        let campaign = app.ok(CREATE_PROJECT, json!({ "i": { "title": "众筹项目", "source": "CAMPAIGN", "organizationId": org,
            "campaignId": api::graphql::ids::encode("Campaign", 7).to_string(), "fundedFen": 800_000,
            "startsOn": "2026-05-01", "endsOn": "2026-10-31" } })).await;
        assert_eq!(campaign["createServiceProject"]["project"]["source"], "CAMPAIGN");
        let missing = app.gql(CREATE_PROJECT, json!({ "i": { "title": "缺合同金额", "source": "GOVERNMENT_PURCHASE", "organizationId": org,
            "purchaser": "某街道", "purchaserKind": "STREET_OFFICE", "contractNumber": "X-1", "startsOn": "2026-01-01", "endsOn": "2026-02-01" } })).await;
        assert_eq!(code(&missing), "BAD_USER_INPUT");
        assert_eq!(missing["errors"][0]["extensions"]["field"], "contractFen");
    }

    async fn dashboard_figures_series_and_csv_agree(app) {
        // Two organizations joining in January; one moves to APPLIED at 01:00 on 1 April in
        // Shanghai, which is still 31 March in UTC: it must count in Q2.
        let a = crate::organizations::create(&app, json!({ "name": "甲机构", "joinedAt": "2026-01-10T02:00:00Z" })).await;
        crate::organizations::create(&app, json!({ "name": "乙机构", "joinedAt": "2026-01-20T02:00:00Z" })).await;
        app.ok("mutation($i: TransitionOrganizationStageInput!) { transitionOrganizationStage(input: $i) { organization { stage } } }",
            json!({ "i": { "id": a["id"], "stage": "APPLIED", "occurredAt": "2026-03-31T17:00:00Z" } })).await;
        let org = a["id"].as_str().unwrap();
        let street = government_project(&app, org, 30_000_000, "2026-01-01", "2026-03-31", "STREET_OFFICE").await;
        let community = government_project(&app, org, 12_000_000, "2026-04-01", "2026-12-31", "COMMUNITY").await;
        assert_eq!(record(&app, &street, "2026-02-14", 30, 20, 10).await["errors"], Value::Null);
        assert_eq!(record(&app, &community, "2026-05-01", 5, 5, 0).await["errors"], Value::Null);

        let vars = json!({ "from": "2026-01-01", "to": "2026-06-30", "g": "QUARTER" });
        let stats = app.ok(STATS, vars.clone()).await["baseStats"].clone();
        let totals = &stats["totals"];
        assert_eq!(totals["personTimes"], json!({ "total": 70, "women": 35, "children": 25, "families": 10, "elderly": 0, "others": 0 }));
        assert_eq!(totals["contractedFen"], 42_000_000);
        assert_eq!(totals["projectsActive"], 2);
        assert_eq!(totals["stageChangesTotal"], 3, "two joined, one applied");
        assert_eq!(stage_count(&totals["stageChanges"], "APPLIED"), 1);
        assert_eq!((totals["personTimesFromEvents"].as_i64(), totals["eventsHeld"].as_i64(), totals["campaignRaisedFen"].as_i64()),
            (Some(0), Some(0), Some(0)), "no event was held and no donation confirmed in the period");
        let series = stats["series"].as_array().unwrap();
        assert_eq!(series.iter().map(|b| b["label"].as_str().unwrap()).collect::<Vec<_>>(), ["2026-Q1", "2026-Q2"]);
        assert_eq!(series[0]["figures"]["personTimes"]["total"], 60);
        assert_eq!(series[1]["figures"]["personTimes"]["total"], 10);
        assert_eq!(series[0]["figures"]["contractedFen"], 30_000_000);
        assert_eq!(series[0]["figures"]["projectsActive"], 1);
        assert_eq!(series[0]["figures"]["stageChangesTotal"], 2);
        assert_eq!(series[1]["figures"]["stageChangesTotal"], 1, "01:00 on 1 April in Shanghai is Q2");
        assert_eq!(stage_count(&series[0]["organizationsByStage"], "LIAISON"), 2);
        assert_eq!(stage_count(&series[1]["organizationsByStage"], "APPLIED"), 1);
        assert_eq!(stage_count(&stats["organizationsByStage"], "LIAISON"), 1);

        // Monthly buckets add up to the same totals.
        let monthly = app.ok(STATS, json!({ "from": "2026-01-01", "to": "2026-06-30", "g": "MONTH" })).await;
        let months = monthly["baseStats"]["series"].as_array().unwrap();
        assert_eq!(months.len(), 6);
        assert_eq!(months.iter().map(|b| b["figures"]["personTimes"]["total"].as_i64().unwrap()).sum::<i64>(), 70);

        // The cached answer follows writes: a new service record and a stage change.
        assert_eq!(record(&app, &community, "2026-06-01", 0, 0, 4).await["errors"], Value::Null);
        app.ok("mutation($i: TransitionOrganizationStageInput!) { transitionOrganizationStage(input: $i) { organization { stage } } }",
            json!({ "i": { "id": a["id"], "stage": "INCUBATING", "occurredAt": "2026-06-15T02:00:00Z" } })).await;
        let after = app.ok(STATS, vars.clone()).await["baseStats"].clone();
        assert_eq!(after["totals"]["personTimes"]["total"], 74);
        assert_eq!(after["totals"]["stageChangesTotal"], 4);
        assert_eq!(stage_count(&after["organizationsByStage"], "INCUBATING"), 1);

        // The CSV report has the same figures (staff only).
        let url = app.url("/reports/impact.csv?from=2026-01-01&to=2026-06-30&groupBy=QUARTER");
        let response = app.client.get(&url).bearer_auth(&app.manager.token).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
        let csv = response.text().await.unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 4, "header, two quarters, total: {csv}");
        let header: Vec<&str> = lines[0].split(',').collect();
        let total: Vec<&str> = lines[3].split(',').collect();
        let cell = |row: &[&str], name: &str| -> i64 { row[header.iter().position(|h| *h == name).unwrap()].parse().unwrap() };
        assert_eq!(total[0], "total");
        let t = &after["totals"];
        assert_eq!(cell(&total, "person_times"), t["personTimes"]["total"].as_i64().unwrap());
        assert_eq!(cell(&total, "women"), t["personTimes"]["women"].as_i64().unwrap());
        assert_eq!(cell(&total, "families"), t["personTimes"]["families"].as_i64().unwrap());
        assert_eq!(cell(&total, "contracted_fen"), t["contractedFen"].as_i64().unwrap());
        assert_eq!(cell(&total, "awarded_fen"), t["awardedFen"].as_i64().unwrap());
        assert_eq!(cell(&total, "projects_active"), t["projectsActive"].as_i64().unwrap());
        assert_eq!(cell(&total, "stage_changes"), t["stageChangesTotal"].as_i64().unwrap());
        assert_eq!(cell(&total, "organizations_incubating"), 1);
        let q1: Vec<&str> = lines[1].split(',').collect();
        assert_eq!(q1[0], "2026-Q1");
        assert_eq!(cell(&q1, "person_times"), after["series"][0]["figures"]["personTimes"]["total"].as_i64().unwrap());

        let anonymous = app.client.get(&url).send().await.unwrap();
        assert_eq!(anonymous.status(), 401);
        let donor = app.account("donor", &[Role::Donor]).await;
        let forbidden = app.client.get(&url).bearer_auth(&donor.token).send().await.unwrap();
        assert_eq!(forbidden.status(), 403);
        let bad = app.client.get(app.url("/reports/impact.csv?from=2026-07-01&to=2026-01-01")).bearer_auth(&app.manager.token).send().await.unwrap();
        assert_eq!(bad.status(), 400);
        let backwards = app.gql(STATS, json!({ "from": "2026-07-01", "to": "2026-01-01" })).await;
        assert_eq!(code(&backwards), "BAD_USER_INPUT", "{backwards}");
    }

    async fn awards_count_on_the_day_they_are_decided(app) {
        let today = api::service::projects::today();
        let vars = json!({ "from": today.to_string(), "to": today.to_string(), "g": "YEAR" });
        let before = app.ok(STATS, vars.clone()).await;
        assert_eq!(before["baseStats"]["totals"]["awardedFen"], 0);
        let round = open_round(&app, 10_000_000, 5_000_000).await;
        let reviewer = app.account("reviewer", &[Role::Reviewer]).await;
        let pid = crate::grants::under_review(&app, round["id"].as_str().unwrap(), "年度资助项目", 4_000_000, &reviewer).await;
        app.ok(AWARD, json!({ "i": { "id": pid, "amountFen": 3_500_000 } })).await;
        let after = app.ok(STATS, vars).await;
        assert_eq!(after["baseStats"]["totals"]["awardedFen"], 3_500_000, "the cached answer was invalidated by the award");
    }
}

backend_tests! {
    async fn seed_demo_adds_up_like_the_real_base(app) {
        api::seed::demo(app.state.ctx()).await.expect("seed");
        let today = api::service::projects::today().to_string();
        let stats = app.ok(STATS, json!({ "from": "2023-01-01", "to": today, "g": "YEAR" })).await["baseStats"].clone();
        let totals = &stats["totals"];
        assert_eq!(totals["contractedFen"], 576_000_000, "5.76 million yuan of government purchases");
        let person_times = totals["personTimes"]["total"].as_i64().unwrap();
        assert!(person_times >= 40_000, "40,000+ person-times, got {person_times}");
        assert_eq!(stage_count(&stats["organizationsByStage"], "RESIDENT"), 20);
        assert_eq!(stage_count(&stats["organizationsByStage"], "LIAISON"), 136);

        let projects = app.ok(r#"{ serviceProjects(first: 100, filter: { source: [GOVERNMENT_PURCHASE] }) {
            totalCount edges { node { purchaserKind fundedFen disbursedFen personTimes { total women children families } } } } }"#, json!({})).await;
        let list = projects["serviceProjects"]["edges"].as_array().unwrap();
        assert_eq!(projects["serviceProjects"]["totalCount"], 36);
        let local = list.iter().filter(|e| matches!(e["node"]["purchaserKind"].as_str(), Some("STREET_OFFICE" | "COMMUNITY"))).collect::<Vec<_>>();
        assert!(local.len() * 100 > 70 * 36, "over 70% bought by street offices and communities: {}", local.len());
        for e in &local {
            let p = &e["node"]["personTimes"];
            let wcf = p["women"].as_i64().unwrap() + p["children"].as_i64().unwrap() + p["families"].as_i64().unwrap();
            assert!(wcf * 10 > p["total"].as_i64().unwrap() * 8, "they serve women, children and families: {p}");
            assert!(e["node"]["disbursedFen"].as_i64().unwrap() <= e["node"]["fundedFen"].as_i64().unwrap());
        }

        let rounds = app.ok(r#"{ grantRounds(first: 5) { edges { node { title budgetFen awardedTotalFen isOpen
            ranking { weightedMean spread submittedReviews proposal { status } } } } } }"#, json!({})).await;
        let round = &rounds["grantRounds"]["edges"][0]["node"];
        assert!(round["title"].as_str().unwrap().contains("凤凰之约"), "{round}");
        assert_eq!(round["isOpen"], false);
        let ranking = round["ranking"].as_array().unwrap();
        assert_eq!(ranking.len(), 12);
        assert!(ranking.iter().all(|r| r["submittedReviews"] == 3));
        let awarded = ranking.iter().filter(|r| r["proposal"]["status"] == "AWARDED").count();
        assert_eq!(awarded, 8);
        assert!(round["awardedTotalFen"].as_i64().unwrap() <= round["budgetFen"].as_i64().unwrap());
        assert_eq!(totals["awardedFen"], round["awardedTotalFen"]);
    }
}

backend_tests! {
    async fn concurrent_tranches_never_overpay(app) {
        let (org, _) = org_with_owner(&app, "海沧区同心家庭服务中心").await;
        let project = government_project(&app, &org, 1_000_000, "2026-01-01", "2026-12-31", "COMMUNITY").await;
        let app = std::sync::Arc::new(app);
        let handles: Vec<_> = (0..10).map(|_| {
            let (app, project) = (app.clone(), project.clone());
            tokio::spawn(async move {
                app.gql(DISBURSE, json!({ "i": { "projectId": project, "amountFen": 300_000, "paidOn": "2026-03-01" } })).await
            })
        }).collect();
        let mut paid = 0;
        for h in handles {
            let body = h.await.unwrap();
            if body.get("errors").is_none() { paid += 1 } else { assert_eq!(code(&body), "CONFLICT", "{body}") }
        }
        assert_eq!(paid, 3, "three tranches of 3,000 yuan fit in a 10,000 yuan contract");
        let data = app.ok("query($id: ID!) { serviceProject(id: $id) { disbursedFen disbursements { amountFen } } }", json!({ "id": project })).await;
        assert_eq!(data["serviceProject"]["disbursedFen"], 900_000);
        assert_eq!(data["serviceProject"]["disbursements"].as_array().unwrap().len(), 3, "no ledger row for a refused tranche");
    }
}
