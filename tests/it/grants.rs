//! Venture philanthropy end to end: a round from call to award, reviews and the ranking,
//! bad input, and the budget guarantee under concurrent award decisions.
use chrono::{Duration, Utc};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Credentials, TestAccount, TestApp};
use api::service::identity::{self, Role};
use entity::membership::MemberRole;

pub const CREATE_ROUND: &str = r#"
mutation($i: CreateGrantRoundInput!) {
  createGrantRound(input: $i) { round { id title budgetFen perProposalCapFen awardedTotalFen remainingFen isOpen
    eligibleStages rubric { minScore maxScore criteria { key name weight } } } }
}"#;
pub const CREATE_PROPOSAL: &str = r#"
mutation($i: CreateGrantProposalInput!) {
  createGrantProposal(input: $i) { proposal { id status requestedFen beneficiaries { women children families elderly others }
    budgetLines { item amountFen } attachments } }
}"#;
const UPDATE_PROPOSAL: &str = r#"
mutation($i: UpdateGrantProposalInput!) { updateGrantProposal(input: $i) { proposal { id title status } } }"#;
pub const SUBMIT: &str = r#"
mutation($i: GrantProposalIdInput!) { submitGrantProposal(input: $i) { proposal { id status submittedAt } } }"#;
pub const ASSIGN: &str = r#"
mutation($i: GrantReviewerInput!) { assignGrantReviewer(input: $i) { review { id status proposal { status } } } }"#;
const SAVE_REVIEW: &str = r#"
mutation($i: SaveGrantReviewInput!) { saveGrantReview(input: $i) { review { status scores { criterion score } comment } } }"#;
const SUBMIT_REVIEW: &str = r#"
mutation($i: SaveGrantReviewInput!) { submitGrantReview(input: $i) { review { status submittedAt } } }"#;
pub const AWARD: &str = r#"
mutation($i: AwardGrantProposalInput!) {
  awardGrantProposal(input: $i) { proposal { status awardedFen } round { awardedTotalFen remainingFen } }
}"#;
const RANKING: &str = r#"
query($id: ID!) { grantRound(id: $id) { ranking { proposal { title } submittedReviews weightedMean lowestScore
  highestScore spread criterionMeans { criterion mean } } } }"#;

pub fn rubric() -> Value {
    json!({ "minScore": 0, "maxScore": 10, "criteria": [
        { "key": "need", "name": "需求紧迫性", "weight": 40 },
        { "key": "design", "name": "项目设计", "weight": 35 },
        { "key": "capacity", "name": "机构能力", "weight": 25 },
    ]})
}

/// A round open now (opened a day ago, closes in a week).
pub async fn open_round(app: &TestApp, budget: i64, cap: i64) -> Value {
    let now = Utc::now();
    app.ok(
        CREATE_ROUND,
        json!({ "i": {
            "title": "2026年“凤凰之约”公益创投大赛",
            "description": "聚焦妇女儿童家庭服务",
            "budgetFen": budget, "perProposalCapFen": cap,
            "opensAt": now - Duration::days(1), "closesAt": now + Duration::days(7),
            "reviewEndsAt": now + Duration::days(14), "resultsAt": now + Duration::days(21),
            "rubric": rubric(),
        }}),
    )
    .await["createGrantRound"]["round"]
        .clone()
}

/// An organization with an owner account.
pub async fn org_with_owner(app: &TestApp, name: &str) -> (String, TestAccount) {
    let org = crate::organizations::create(app, json!({ "name": name })).await;
    let id = org["id"].as_str().unwrap().to_owned();
    let owner = app.account("owner", &[Role::Donor]).await;
    let row = api::graphql::ids::parse(&id).unwrap().1;
    identity::add_member(app.state.ctx(), &crate::helpers::actor(), row, &owner.email, MemberRole::Owner, 0)
        .await
        .unwrap();
    (id, owner)
}

pub async fn draft(app: &TestApp, who: &TestAccount, round: &str, org: &str, title: &str, fen: i64) -> Value {
    app.ok_as(&Credentials::account(who), CREATE_PROPOSAL, json!({ "i": {
        "roundId": round, "organizationId": org, "title": title,
        "summary": "为社区困境妇女提供心理支持", "problem": "缺乏专业支持", "plan": "小组工作与个案辅导",
        "beneficiaries": { "women": 120, "children": 60, "families": 40 },
        "requestedFen": fen,
        "budgetLines": [{ "item": "人员费用", "amountFen": fen / 2 }, { "item": "活动物料", "amountFen": fen - fen / 2 }],
        "attachments": ["https://files.example.org/plan.pdf"],
    }})).await["createGrantProposal"]["proposal"].clone()
}

/// A proposal drafted, submitted and assigned to `reviewer`: UNDER_REVIEW.
pub async fn under_review(app: &TestApp, round: &str, title: &str, fen: i64, reviewer: &TestAccount) -> String {
    let (org, owner) = org_with_owner(app, title).await;
    let p = draft(app, &owner, round, &org, title, fen).await;
    let id = p["id"].as_str().unwrap().to_owned();
    app.ok_as(&Credentials::account(&owner), SUBMIT, json!({ "i": { "id": id } })).await;
    app.ok(ASSIGN, json!({ "i": { "proposalId": id, "reviewerId": reviewer.global_id } })).await;
    id
}

fn scores(need: i64, design: i64, capacity: i64) -> Value {
    json!([{ "criterion": "need", "score": need }, { "criterion": "design", "score": design },
           { "criterion": "capacity", "score": capacity }])
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or("")
}

backend_tests! {
    async fn competition_from_call_to_award(app) {
        let round = open_round(&app, 50_000_000, 10_000_000).await;
        assert_eq!(round["isOpen"], true);
        assert_eq!(round["rubric"]["criteria"][0]["weight"], 40);
        let round_id = round["id"].as_str().unwrap().to_owned();
        let (org, owner) = org_with_owner(&app, "厦门市思明区巾帼社会工作服务中心").await;
        let as_owner = Credentials::account(&owner);

        let p = draft(&app, &owner, &round_id, &org, "妇女心理支持计划", 8_000_000).await;
        assert_eq!(p["status"], "DRAFT");
        assert_eq!(p["beneficiaries"]["women"], 120);
        let pid = p["id"].as_str().unwrap().to_owned();
        let edited = app.ok_as(&as_owner, UPDATE_PROPOSAL, json!({ "i": { "id": pid, "title": "妇女心理支持计划（修订）" } })).await;
        assert_eq!(edited["updateGrantProposal"]["proposal"]["title"], "妇女心理支持计划（修订）");
        let submitted = app.ok_as(&as_owner, SUBMIT, json!({ "i": { "id": pid } })).await;
        assert_eq!(submitted["submitGrantProposal"]["proposal"]["status"], "SUBMITTED");
        let locked = app.gql_as(&as_owner, UPDATE_PROPOSAL, json!({ "i": { "id": pid, "title": "改不了" } })).await;
        assert_eq!(code(&locked), "CONFLICT", "edits are locked after submission: {locked}");

        let alice = app.account("alice", &[Role::Reviewer]).await;
        let bob = app.account("bob", &[Role::Reviewer]).await;
        let assigned = app.ok(ASSIGN, json!({ "i": { "proposalId": pid, "reviewerId": alice.global_id } })).await;
        assert_eq!(assigned["assignGrantReviewer"]["review"]["proposal"]["status"], "UNDER_REVIEW");
        app.ok(ASSIGN, json!({ "i": { "proposalId": pid, "reviewerId": bob.global_id } })).await;
        let twice = app.gql(ASSIGN, json!({ "i": { "proposalId": pid, "reviewerId": bob.global_id } })).await;
        assert_eq!(code(&twice), "CONFLICT");

        // Alice saves a draft in two steps, then submits; Bob submits at once.
        let saved = app.ok_as(&Credentials::account(&alice), SAVE_REVIEW, json!({ "i": {
            "proposalId": pid, "scores": [{ "criterion": "need", "score": 9 }], "comment": "需求明确" } })).await;
        assert_eq!(saved["saveGrantReview"]["review"]["status"], "DRAFT");
        let incomplete = app.gql_as(&Credentials::account(&alice), SUBMIT_REVIEW, json!({ "i": { "proposalId": pid } })).await;
        assert_eq!(code(&incomplete), "BAD_USER_INPUT", "every criterion must be scored: {incomplete}");
        let done = app.ok_as(&Credentials::account(&alice), SUBMIT_REVIEW, json!({ "i": {
            "proposalId": pid, "scores": [{ "criterion": "design", "score": 8 }, { "criterion": "capacity", "score": 7 }] } })).await;
        assert_eq!(done["submitGrantReview"]["review"]["status"], "SUBMITTED");
        app.ok_as(&Credentials::account(&bob), SUBMIT_REVIEW, json!({ "i": { "proposalId": pid, "scores": scores(5, 6, 4) } })).await;

        // Reviewers see only their own assignments.
        let mine = app.ok_as(&Credentials::account(&alice), "{ myReviewAssignments { status scores { criterion score } proposal { title } } }", json!({})).await;
        let mine = mine["myReviewAssignments"].as_array().unwrap();
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0]["scores"].as_array().unwrap().len(), 3);

        // Ranking: Alice 9·.40+8·.35+7·.25 = 8.15, Bob 5·.40+6·.35+4·.25 = 5.1.
        let ranking = app.ok(RANKING, json!({ "id": round_id })).await;
        let row = &ranking["grantRound"]["ranking"][0];
        assert_eq!(row["submittedReviews"], 2);
        assert!((row["weightedMean"].as_f64().unwrap() - 6.625).abs() < 1e-9, "{row}");
        assert!((row["spread"].as_f64().unwrap() - 3.05).abs() < 1e-9, "{row}");
        assert_eq!(row["criterionMeans"][0], json!({ "criterion": "need", "mean": 7.0 }));

        // The organization never sees who scored what.
        let denied = app.gql_as(&as_owner, RANKING, json!({ "id": round_id })).await;
        assert_eq!(code(&denied), "FORBIDDEN");
        let own = app.ok_as(&as_owner, "query($id: ID!) { grantProposal(id: $id) { status reviews { reviewerId } } }", json!({ "id": pid })).await;
        assert_eq!(own["grantProposal"]["status"], "UNDER_REVIEW");
        assert_eq!(own["grantProposal"]["reviews"], Value::Null);
        let staff = app.ok("query($id: ID!) { grantProposal(id: $id) { reviews { reviewerId status } } }", json!({ "id": pid })).await;
        assert_eq!(staff["grantProposal"]["reviews"].as_array().unwrap().len(), 2);
        let stranger = app.account("stranger", &[Role::Donor]).await;
        let hidden = app.ok_as(&Credentials::account(&stranger), "query($id: ID!) { grantProposal(id: $id) { id } }", json!({ "id": pid })).await;
        assert_eq!(hidden["grantProposal"], Value::Null);

        let awarded = app.ok(AWARD, json!({ "i": { "id": pid, "amountFen": 7_500_000, "note": "评审通过" } })).await;
        assert_eq!(awarded["awardGrantProposal"]["proposal"], json!({ "status": "AWARDED", "awardedFen": 7_500_000 }));
        assert_eq!(awarded["awardGrantProposal"]["round"], json!({ "awardedTotalFen": 7_500_000, "remainingFen": 42_500_000 }));
        let again = app.gql(AWARD, json!({ "i": { "id": pid, "amountFen": 100 } })).await;
        assert_eq!(code(&again), "CONFLICT", "a proposal is awarded once");
    }

    async fn bad_input_is_refused_and_nothing_written(app) {
        let round = open_round(&app, 1_000_000, 600_000).await;
        let round_id = round["id"].as_str().unwrap().to_owned();
        let (org, owner) = org_with_owner(&app, "湖里区阳光家庭服务中心").await;
        let as_owner = Credentials::account(&owner);

        let over_cap = app.gql_as(&as_owner, CREATE_PROPOSAL, json!({ "i": {
            "roundId": round_id, "organizationId": org, "title": "超出上限", "requestedFen": 600_001 } })).await;
        assert_eq!(code(&over_cap), "BAD_USER_INPUT");
        assert_eq!(over_cap["errors"][0]["extensions"]["field"], "requestedFen");
        let bad_lines = app.gql_as(&as_owner, CREATE_PROPOSAL, json!({ "i": {
            "roundId": round_id, "organizationId": org, "title": "预算不符", "requestedFen": 1000,
            "budgetLines": [{ "item": "物料", "amountFen": 999 }] } })).await;
        assert_eq!(code(&bad_lines), "BAD_USER_INPUT");

        // Only members (and staff) write an organization's proposals.
        let other = app.account("other", &[Role::Donor]).await;
        let foreign = app.gql_as(&Credentials::account(&other), CREATE_PROPOSAL, json!({ "i": {
            "roundId": round_id, "organizationId": org, "title": "冒名", "requestedFen": 1000 } })).await;
        assert_eq!(code(&foreign), "FORBIDDEN");

        // A round restricted to resident organizations refuses a liaison organization.
        app.ok("mutation($i: UpdateGrantRoundInput!) { updateGrantRound(input: $i) { round { id } } }",
            json!({ "i": { "id": round_id, "eligibleStages": ["RESIDENT"] } })).await;
        let ineligible = app.gql_as(&as_owner, CREATE_PROPOSAL, json!({ "i": {
            "roundId": round_id, "organizationId": org, "title": "不符合条件", "requestedFen": 1000 } })).await;
        assert_eq!(code(&ineligible), "BAD_USER_INPUT", "{ineligible}");
        app.ok("mutation($i: UpdateGrantRoundInput!) { updateGrantRound(input: $i) { round { id } } }",
            json!({ "i": { "id": round_id, "eligibleStages": [] } })).await;

        // Submitting after the round closed.
        let late = draft(&app, &owner, &round_id, &org, "迟到的申报", 500_000).await;
        let now = Utc::now();
        app.ok("mutation($i: UpdateGrantRoundInput!) { updateGrantRound(input: $i) { round { isOpen } } }",
            json!({ "i": { "id": round_id, "opensAt": now - Duration::days(3), "closesAt": now - Duration::seconds(1) } })).await;
        let closed = app.gql_as(&as_owner, SUBMIT, json!({ "i": { "id": late["id"] } })).await;
        assert_eq!(code(&closed), "CONFLICT");
        assert!(closed["errors"][0]["message"].as_str().unwrap().contains("closed"), "{closed}");
        let still = app.ok_as(&as_owner, "query($id: ID!) { grantProposal(id: $id) { status submittedAt } }", json!({ "id": late["id"] })).await;
        assert_eq!(still["grantProposal"], json!({ "status": "DRAFT", "submittedAt": null }));
        app.ok("mutation($i: UpdateGrantRoundInput!) { updateGrantRound(input: $i) { round { isOpen } } }",
            json!({ "i": { "id": round_id, "closesAt": now + Duration::days(7) } })).await;

        let reviewer = app.account("reviewer", &[Role::Reviewer]).await;
        let a = under_review(&app, &round_id, "甲项目", 600_000, &reviewer).await;
        let b = under_review(&app, &round_id, "乙项目", 600_000, &reviewer).await;
        let unassigned = app.account("unassigned", &[Role::Reviewer]).await;
        let not_yours = app.gql_as(&Credentials::account(&unassigned), SAVE_REVIEW, json!({ "i": { "proposalId": a, "scores": scores(5, 5, 5) } })).await;
        assert_eq!(code(&not_yours), "FORBIDDEN", "{not_yours}");

        // Scores outside the range: refused, and the draft saved before is kept.
        app.ok_as(&Credentials::account(&reviewer), SAVE_REVIEW, json!({ "i": { "proposalId": a, "scores": scores(6, 6, 6), "comment": "初评" } })).await;
        let out = app.gql_as(&Credentials::account(&reviewer), SAVE_REVIEW, json!({ "i": { "proposalId": a, "scores": [{ "criterion": "need", "score": 3 }, { "criterion": "design", "score": 11 }] } })).await;
        assert_eq!(code(&out), "BAD_USER_INPUT");
        assert_eq!(out["errors"][0]["extensions"]["field"], "scores");
        let unknown = app.gql_as(&Credentials::account(&reviewer), SAVE_REVIEW, json!({ "i": { "proposalId": a, "scores": [{ "criterion": "beauty", "score": 3 }] } })).await;
        assert_eq!(code(&unknown), "BAD_USER_INPUT");
        let kept = app.ok_as(&Credentials::account(&reviewer), "{ myReviewAssignments { proposal { title } scores { criterion score } comment } }", json!({})).await;
        let kept = kept["myReviewAssignments"].as_array().unwrap().iter().find(|r| r["proposal"]["title"] == "甲项目").unwrap().clone();
        assert_eq!(kept["scores"], json!([{ "criterion": "capacity", "score": 6 }, { "criterion": "design", "score": 6 },
            { "criterion": "need", "score": 6 }]));
        assert_eq!(kept["comment"], "初评");

        // A reviewer who belongs to the proposing organization is never assigned.
        let (member_org, member) = org_with_owner(&app, "集美区亲子服务中心").await;
        identity::set_roles(app.state.ctx(), &crate::helpers::actor(), member.id, &[Role::Donor, Role::Reviewer]).await.unwrap();
        let own_p = draft(&app, &member, &round_id, &member_org, "自己的项目", 100_000).await;
        app.ok_as(&Credentials::account(&member), SUBMIT, json!({ "i": { "id": own_p["id"] } })).await;
        let conflict = app.gql(ASSIGN, json!({ "i": { "proposalId": own_p["id"], "reviewerId": member.global_id } })).await;
        assert_eq!(code(&conflict), "BAD_USER_INPUT", "{conflict}");

        // Awarding past the budget: refused, nothing changes.
        app.ok(AWARD, json!({ "i": { "id": a, "amountFen": 600_000 } })).await;
        let over = app.gql(AWARD, json!({ "i": { "id": b, "amountFen": 500_000 } })).await;
        assert_eq!(code(&over), "CONFLICT");
        assert!(over["errors"][0]["message"].as_str().unwrap().contains("budget"), "{over}");
        let after = app.ok("query($id: ID!, $p: ID!) { grantRound(id: $id) { awardedTotalFen } grantProposal(id: $p) { status awardedFen } }",
            json!({ "id": round_id, "p": b })).await;
        assert_eq!(after["grantRound"]["awardedTotalFen"], 600_000);
        assert_eq!(after["grantProposal"], json!({ "status": "UNDER_REVIEW", "awardedFen": null }));
        let budget_down = app.gql("mutation($i: UpdateGrantRoundInput!) { updateGrantRound(input: $i) { round { id } } }",
            json!({ "i": { "id": round_id, "budgetFen": 500_000, "perProposalCapFen": 500_000 } })).await;
        assert_eq!(code(&budget_down), "CONFLICT", "the budget never drops below what is awarded");
    }

    async fn concurrent_awards_never_exceed_the_budget(app) {
        let round = open_round(&app, 1_000_000, 300_000).await;
        let round_id = round["id"].as_str().unwrap().to_owned();
        let reviewer = app.account("reviewer", &[Role::Reviewer]).await;
        let mut proposals = Vec::new();
        for i in 0..12 {
            proposals.push(under_review(&app, &round_id, &format!("并发项目{i}"), 300_000, &reviewer).await);
        }
        let app = std::sync::Arc::new(app);
        let mut handles = Vec::new();
        for id in proposals.clone() {
            let app = app.clone();
            handles.push(tokio::spawn(async move {
                app.gql(AWARD, json!({ "i": { "id": id, "amountFen": 300_000 } })).await
            }));
        }
        let mut won = 0;
        let mut lost = 0;
        for h in handles {
            let body = h.await.unwrap();
            if body.get("errors").is_none() {
                won += 1;
                assert!(body["data"]["awardGrantProposal"]["round"]["awardedTotalFen"].as_i64().unwrap() <= 1_000_000);
            } else {
                assert_eq!(code(&body), "CONFLICT", "{body}");
                assert!(body["errors"][0]["message"].as_str().unwrap().contains("exceed the round's budget"), "{body}");
                lost += 1;
            }
        }
        assert_eq!((won, lost), (3, 9), "three awards of 3,000 yuan fit in a 10,000 yuan budget");
        let data = app.ok("query($id: ID!) { grantRound(id: $id) { awardedTotalFen remainingFen proposals(first: 50) { edges { node { status awardedFen } } } } }",
            json!({ "id": round_id })).await;
        assert_eq!(data["grantRound"]["awardedTotalFen"], 900_000);
        let sum: i64 = data["grantRound"]["proposals"]["edges"].as_array().unwrap().iter()
            .filter_map(|e| e["node"]["awardedFen"].as_i64()).sum();
        assert_eq!(sum, 900_000, "the awards add up to the round's total");
    }
}
