//! Charity crowdfunding end to end: campaign lifecycle and visibility, donations with
//! confirmation, refunds, receipts, donor privacy, idempotency, exact totals under
//! concurrency, and fresh cached reads.
use std::collections::HashSet;

use api::service::crowdfunding::{self as service, CampaignAction, NewCampaign};
use api::service::identity::{self, ApiScope, Role};
use chrono::{Duration, Utc};
use entity::membership::MemberRole;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Credentials, TestApp};

pub const CREATE: &str = r#"
mutation($i: CreateCampaignInput!) {
  createCampaign(input: $i) { campaign { id title status donorState goalFen budget { item amountFen } viewerCanManage } }
}"#;
const SUBMIT: &str = "mutation($i: CampaignIdInput!) { submitCampaign(input: $i) { campaign { status } } }";
const REVIEW: &str =
    "mutation($i: ReviewCampaignInput!) { reviewCampaign(input: $i) { campaign { status donorState publishedAt } } }";
const UPDATE: &str = "mutation($i: UpdateCampaignInput!) { updateCampaign(input: $i) { campaign { filingNumber fundraisingQualification } } }";
pub const DONATE: &str = r#"
mutation($i: DonateInput!) {
  donate(input: $i) { donation { id status amountFen donorName displayMode receiptNumber } }
}"#;
pub const CONFIRM: &str = r#"
mutation($i: ConfirmDonationInput!) {
  confirmDonation(input: $i) { donation { status receiptNumber confirmedAt } progress { raisedFen donationCount donorCount } }
}"#;
const REFUND: &str = r#"
mutation($i: RefundDonationInput!) {
  refundDonation(input: $i) {
    donation { status refundedAt } refund { status amountFen refundOfId }
    progress { raisedFen donationCount donorCount }
  }
}"#;
const PAGE: &str = r#"
query($id: ID!) {
  campaign(id: $id) {
    title status donorState fundraisingQualification filingNumber
    organization { name }
    progress { raisedFen goalFen donationCount donorCount percentOfGoal daysLeft donorState }
    donorWall(first: 20) { totalCount edges { node { displayName anonymous amountFen message } } }
    updates { title body }
  }
}"#;

/// A campaign of `org_row` moved to `status` through the service (fixtures for other tests).
pub async fn campaign_in(app: &TestApp, org_row: i64, status: &str) -> i64 {
    let ctx = app.state.ctx();
    let now = Utc::now();
    let record = service::create(
        ctx,
        &crate::helpers::actor(),
        NewCampaign {
            organization_id: org_row,
            title: format!("测试项目{}", &uuid::Uuid::new_v4().simple().to_string()[..6]),
            story: Some("为困境儿童提供课后陪伴。".into()),
            cover_url: None,
            goal_fen: 1_000_000,
            starts_at: now - Duration::days(1),
            ends_at: now + Duration::days(30),
            beneficiaries: Some("思明区困境儿童".into()),
            fundraising_qualification: Some("厦门市民政局公开募捐资格".into()),
            filing_number: Some("53350200MJ0000000X-2026-001".into()),
            budget: vec![],
            created_by_account_id: None,
        },
    )
    .await
    .expect("campaign");
    let id = record.campaign.id;
    let steps: &[CampaignAction] = match status {
        "DRAFT" => &[],
        "PENDING_REVIEW" => &[CampaignAction::Submit],
        "ACTIVE" => &[CampaignAction::Submit, CampaignAction::Approve],
        "ENDED" => &[CampaignAction::Submit, CampaignAction::Approve, CampaignAction::End],
        other => panic!("no fixture for {other}"),
    };
    for step in steps {
        service::change_status(ctx, &crate::helpers::actor(), id, *step, None).await.expect("status");
    }
    id
}

pub fn campaign_gid(row: i64) -> String {
    api::graphql::ids::encode("Campaign", row).to_string()
}

pub fn donation_gid(row: i64) -> String {
    api::graphql::ids::encode("Donation", row).to_string()
}

pub fn row_of(gid: &Value) -> i64 {
    api::graphql::ids::parse(gid.as_str().expect("id")).expect("global id").1
}

pub async fn org(app: &TestApp, name: &str) -> (String, i64) {
    let org = crate::organizations::create(app, json!({ "name": name })).await;
    let gid = org["id"].as_str().expect("id").to_owned();
    let row = row_of(&org["id"]);
    (gid, row)
}

pub fn donation_input(campaign: &str, amount: i64, key: &str) -> Value {
    json!({ "campaignId": campaign, "amountFen": amount, "channel": "ONLINE_PLATFORM", "clientKey": key })
}

pub async fn sql_i64(app: &TestApp, sql: &str) -> i64 {
    let backend = app.state.db.get_database_backend();
    let row = app.state.db.query_one_raw(Statement::from_string(backend, sql.to_owned())).await.expect("query");
    row.expect("row").try_get_by_index::<Option<i64>>(0).expect("value").unwrap_or(0)
}

/// raised_fen, and the SUM over the donation records it must equal.
async fn raised_and_sum(app: &TestApp, campaign_row: i64) -> (i64, i64) {
    let raised = sql_i64(app, &format!("SELECT raised_fen FROM campaigns WHERE id = {campaign_row}")).await;
    let sum = sql_i64(
        app,
        &format!(
            "SELECT CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) FROM donations \
             WHERE campaign_id = {campaign_row} AND status IN ('CONFIRMED', 'REFUNDED')"
        ),
    )
    .await;
    (raised, sum)
}

backend_tests! {
    async fn campaign_lifecycle_and_visibility(app) {
        let (org_gid, org_row) = org(&app, "厦门市阳光妇女儿童服务中心").await;
        let member = app.account("member", &[Role::Donor]).await;
        identity::add_member(app.state.ctx(), &crate::helpers::actor(), org_row, &member.email, MemberRole::Editor, 0).await.expect("member");
        let as_member = Credentials::account(&member);
        let now = Utc::now();
        let created = app.ok_as(&as_member, CREATE, json!({ "i": {
            "organizationId": org_gid,
            "title": "困境儿童课后陪伴计划",
            "story": "每周三次课后陪伴与作业辅导。",
            "goalFen": 5_000_000,
            "startsAt": (now - Duration::hours(1)).to_rfc3339(),
            "endsAt": (now + Duration::days(60)).to_rfc3339(),
            "beneficiaries": "思明区 40 名困境儿童",
            "budget": [{ "item": "辅导老师补贴", "amountFen": 3_000_000 }, { "item": "学习用品", "amountFen": 2_000_000 }],
        }})).await["createCampaign"]["campaign"].clone();
        assert_eq!(created["status"], "DRAFT");
        assert_eq!(created["donorState"], Value::Null);
        assert_eq!(created["budget"][1], json!({ "item": "学习用品", "amountFen": 2_000_000 }));
        assert_eq!(created["viewerCanManage"], true);
        let id = created["id"].clone();

        // A draft is invisible to the public, listed for neither anonymous callers nor donors.
        let anonymous = Credentials::anonymous();
        assert_eq!(app.ok_as(&anonymous, PAGE, json!({ "id": id })).await["campaign"], Value::Null);
        let list = app.ok_as(&anonymous, "{ campaigns { totalCount } }", json!({})).await;
        assert_eq!(list["campaigns"]["totalCount"], 0);

        // Submitting needs the qualification and filing number.
        let body = app.gql_as(&as_member, SUBMIT, json!({ "i": { "id": id } })).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
        assert_eq!(body["errors"][0]["extensions"]["field"], "fundraisingQualification");
        app.ok_as(&as_member, UPDATE, json!({ "i": { "id": id,
            "fundraisingQualification": "具有公开募捐资格（厦民〔2020〕12号）", "filingNumber": "53350200MJ1234567A-2026-003" } })).await;
        assert_eq!(app.ok_as(&as_member, SUBMIT, json!({ "i": { "id": id } })).await["submitCampaign"]["campaign"]["status"], "PENDING_REVIEW");

        // Only staff approve.
        let body = app.gql_as(&as_member, REVIEW, json!({ "i": { "id": id, "approve": true } })).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN");
        let approved = app.ok(REVIEW, json!({ "i": { "id": id, "approve": true, "note": "材料齐全" } })).await;
        assert_eq!(approved["reviewCampaign"]["campaign"]["status"], "ACTIVE");
        assert_eq!(approved["reviewCampaign"]["campaign"]["donorState"], "COLLECTING");

        let page = app.ok_as(&anonymous, PAGE, json!({ "id": id })).await["campaign"].clone();
        assert_eq!(page["filingNumber"], "53350200MJ1234567A-2026-003", "the filing is on the public page");
        assert_eq!(page["organization"]["name"], "厦门市阳光妇女儿童服务中心");
        assert_eq!(page["progress"]["raisedFen"], 0);
        assert_eq!(page["progress"]["daysLeft"], 60);
        let node = app.ok_as(&anonymous, "query($id: ID!) { node(id: $id) { ... on Campaign { title } } }", json!({ "id": id })).await;
        assert_eq!(node["node"]["title"], "困境儿童课后陪伴计划");

        // The terms of a live campaign are fixed; its story is not.
        let body = app.gql_as(&as_member, UPDATE, json!({ "i": { "id": id, "goalFen": 1 } })).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
        let post = "mutation($i: PostCampaignUpdateInput!) { postCampaignUpdate(input: $i) { update { title } } }";
        app.ok_as(&as_member, post, json!({ "i": { "campaignId": id, "title": "第一期陪伴开班", "body": "首批 12 名孩子已入班。" } })).await;
        let page = app.ok_as(&anonymous, PAGE, json!({ "id": id })).await["campaign"].clone();
        assert_eq!(page["updates"][0]["title"], "第一期陪伴开班");

        let list = app.ok_as(&anonymous, "{ campaigns { totalCount edges { node { title progress { donorState } } } } }", json!({})).await;
        assert_eq!(list["campaigns"]["totalCount"], 1);

        // Ending stops donations with a clear error.
        app.ok("mutation($i: CampaignIdInput!) { endCampaign(input: $i) { campaign { status } } }", json!({ "i": { "id": id } })).await;
        let donor = app.account("donor", &[Role::Donor]).await;
        let body = app.gql_as(&Credentials::account(&donor), DONATE, json!({ "i": donation_input(id.as_str().expect("id"), 100, "k1") })).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
        assert!(body["errors"][0]["message"].as_str().expect("message").contains("ended"), "{body}");
        assert_eq!(sql_i64(&app, "SELECT COUNT(*) FROM donations").await, 0, "nothing recorded");
    }

    async fn donations_confirm_refund_receipts_and_privacy(app) {
        let (_, org_row) = org(&app, "厦门市康乃馨家庭服务中心").await;
        let campaign = campaign_gid(campaign_in(&app, org_row, "ACTIVE").await);
        let draft = campaign_gid(campaign_in(&app, org_row, "DRAFT").await);
        let wang = app.account("wang", &[Role::Donor]).await;
        let secret = app.account("secret", &[Role::Donor]).await;
        let as_wang = Credentials::account(&wang);
        let as_secret = Credentials::account(&secret);

        let body = app.gql_as(&as_wang, DONATE, json!({ "i": donation_input(&draft, 100, "d") })).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "unpublished campaign: {body}");
        for (amount, field) in [(0, "amountFen"), (-5, "amountFen"), (100_000_001, "amountFen")] {
            let body = app.gql_as(&as_wang, DONATE, json!({ "i": donation_input(&campaign, amount, "bad") })).await;
            assert_eq!(body["errors"][0]["extensions"]["field"], field, "{amount}: {body}");
        }
        let anonymous = app.gql_as(&Credentials::anonymous(), DONATE, json!({ "i": donation_input(&campaign, 100, "x") })).await;
        assert_eq!(anonymous["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");

        let mut input = donation_input(&campaign, 20_000, "wang-1");
        input["donorName"] = json!("王小明");
        input["displayMode"] = json!("MASKED");
        input["message"] = json!("加油！");
        let masked = app.ok_as(&as_wang, DONATE, json!({ "i": input })).await["donate"]["donation"].clone();
        assert_eq!(masked["status"], "PLEDGED");
        assert_eq!(masked["receiptNumber"], Value::Null);
        let mut input = donation_input(&campaign, 50_000, "secret-1");
        input["displayMode"] = json!("ANONYMOUS");
        let hidden = app.ok_as(&as_secret, DONATE, json!({ "i": input })).await["donate"]["donation"].clone();

        // Pledges are not counted.
        let page = app.ok(PAGE, json!({ "id": campaign })).await["campaign"].clone();
        assert_eq!(page["progress"]["raisedFen"], 0);
        assert_eq!(page["donorWall"]["totalCount"], 0);

        // Donors cannot confirm their own pledges.
        let body = app.gql_as(&as_wang, CONFIRM, json!({ "i": { "id": masked["id"] } })).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN");
        let first = app.ok(CONFIRM, json!({ "i": { "id": masked["id"], "externalReference": "WX20261129001" } })).await;
        let year = (Utc::now() + Duration::hours(8)).format("%Y").to_string();
        assert_eq!(first["confirmDonation"]["donation"]["receiptNumber"], format!("{year}-000001"));
        assert_eq!(first["confirmDonation"]["progress"]["raisedFen"], 20_000);
        // A partner key with RECONCILE confirms too.
        let key = identity::create_api_key(app.state.ctx(), &crate::helpers::actor(), identity::NewApiKey::secret("对账系统", &[ApiScope::Reconcile], None), 0).await.expect("key");
        let second = app.ok_as(&Credentials::api_key(&key.secret), CONFIRM, json!({ "i": { "id": hidden["id"] } })).await;
        assert_eq!(second["confirmDonation"]["donation"]["receiptNumber"], format!("{year}-000002"));
        assert_eq!(second["confirmDonation"]["progress"]["raisedFen"], 70_000);
        assert_eq!(second["confirmDonation"]["progress"]["donorCount"], 2);
        let again = app.gql(CONFIRM, json!({ "i": { "id": hidden["id"] } })).await;
        assert_eq!(again["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "confirming twice: {again}");

        // The wall: newest first, masked, anonymous never revealed to anyone but staff.
        for who in [Credentials::anonymous(), as_wang.clone()] {
            let body = app.gql_as(&who, PAGE, json!({ "id": campaign })).await;
            let wall = &body["data"]["campaign"]["donorWall"];
            assert_eq!(wall["edges"][0]["node"], json!({ "displayName": "爱心人士", "anonymous": true, "amountFen": 50_000, "message": "" }));
            assert_eq!(wall["edges"][1]["node"]["displayName"], "王*明");
            let text = body.to_string();
            assert!(!text.contains("secret") && !text.contains("王小明"), "donor identity leaked: {text}");
            let donations = app.gql_as(&who, "query($id: ID!) { campaign(id: $id) { donations { totalCount } } }", json!({ "id": campaign })).await;
            assert_eq!(donations["data"]["campaign"]["donations"], Value::Null, "only staff see donation records");
        }
        let staff_view = app.ok("query($id: ID!) { campaign(id: $id) { donations { edges { node { donorName displayMode } } } } }", json!({ "id": campaign })).await;
        assert_eq!(staff_view["campaign"]["donations"]["edges"][0]["node"]["displayMode"], "ANONYMOUS");

        // A refund is a reversing record; totals follow.
        let body = app.gql_as(&as_wang, REFUND, json!({ "i": { "id": masked["id"] } })).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN");
        let refunded = app.ok(REFUND, json!({ "i": { "id": masked["id"], "reason": "捐赠人申请退款" } })).await["refundDonation"].clone();
        assert_eq!(refunded["refund"]["amountFen"], -20_000);
        assert_eq!(refunded["refund"]["status"], "REFUNDED");
        assert_eq!(refunded["refund"]["refundOfId"], masked["id"]);
        assert_eq!(refunded["donation"]["status"], "CONFIRMED");
        assert_eq!(refunded["progress"], json!({ "raisedFen": 50_000, "donationCount": 1, "donorCount": 1 }));
        let twice = app.gql(REFUND, json!({ "i": { "id": masked["id"] } })).await;
        assert_eq!(twice["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
        assert_eq!(sql_i64(&app, "SELECT COUNT(*) FROM donations").await, 3, "nothing deleted");

        // The donor's own list and summary.
        let mine = app.ok_as(&as_wang, "{ myDonations { totalCount edges { node { amountFen status receiptNumber } } } }", json!({})).await;
        assert_eq!(mine["myDonations"]["totalCount"], 2);
        assert_eq!(mine["myDonations"]["edges"][0]["node"]["amountFen"], -20_000);
        let summary = "query($f: DateTime!, $t: DateTime!) { myDonationSummary(from: $f, to: $t) { netFen confirmedFen refundedFen confirmedCount campaignCount } }";
        let range = json!({ "f": (Utc::now() - Duration::days(1)).to_rfc3339(), "t": (Utc::now() + Duration::days(1)).to_rfc3339() });
        let s = app.ok_as(&as_wang, summary, range.clone()).await;
        assert_eq!(s["myDonationSummary"], json!({ "netFen": 0, "confirmedFen": 20_000, "refundedFen": 20_000, "confirmedCount": 1, "campaignCount": 1 }));
        let s = app.ok_as(&as_secret, summary, range).await;
        assert_eq!(s["myDonationSummary"]["netFen"], 50_000);
        let body = app.gql_as(&Credentials::anonymous(), "{ myDonations { totalCount } }", json!({})).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");

        // The donor may cancel their own pledge, not someone else's.
        let pledge = app.ok_as(&as_wang, DONATE, json!({ "i": donation_input(&campaign, 300, "wang-2") })).await["donate"]["donation"].clone();
        let cancel = "mutation($i: DonationIdInput!) { cancelDonation(input: $i) { donation { status } } }";
        let body = app.gql_as(&as_secret, cancel, json!({ "i": { "id": pledge["id"] } })).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN");
        let done = app.ok_as(&as_wang, cancel, json!({ "i": { "id": pledge["id"] } })).await;
        assert_eq!(done["cancelDonation"]["donation"]["status"], "CANCELLED");
        let (raised, sum) = raised_and_sum(&app, row_of(&json!(campaign))).await;
        assert_eq!((raised, sum), (50_000, 50_000));
    }

    async fn client_key_makes_donate_idempotent(app) {
        let (_, org_row) = org(&app, "厦门市同心家庭发展中心").await;
        let campaign = campaign_gid(campaign_in(&app, org_row, "ACTIVE").await);
        let other = campaign_gid(campaign_in(&app, org_row, "ACTIVE").await);
        let donor = Credentials::account(&app.account("donor", &[Role::Donor]).await);
        let first = app.ok_as(&donor, DONATE, json!({ "i": donation_input(&campaign, 1_000, "retry-1") })).await;
        let replay = app.ok_as(&donor, DONATE, json!({ "i": donation_input(&campaign, 1_000, "retry-1") })).await;
        assert_eq!(first, replay, "a replay returns the original donation");
        let reuse = app.gql_as(&donor, DONATE, json!({ "i": donation_input(&campaign, 2_000, "retry-1") })).await;
        assert_eq!(reuse["errors"][0]["extensions"]["code"], "CONFLICT");
        let reuse = app.gql_as(&donor, DONATE, json!({ "i": donation_input(&other, 1_000, "retry-1") })).await;
        assert_eq!(reuse["errors"][0]["extensions"]["code"], "CONFLICT");
        // Keys belong to their donor: another donor may use the same key.
        let someone = Credentials::account(&app.account("someone", &[Role::Donor]).await);
        let theirs = app.ok_as(&someone, DONATE, json!({ "i": donation_input(&campaign, 1_000, "retry-1") })).await;
        assert_ne!(theirs["donate"]["donation"]["id"], first["donate"]["donation"]["id"]);
        // Partner keys record guests; the guest needs a name unless anonymous.
        let key = identity::create_api_key(app.state.ctx(), &crate::helpers::actor(), identity::NewApiKey::secret("小程序", &[ApiScope::Donate], None), 0).await.expect("key");
        let partner = Credentials::api_key(&key.secret);
        let body = app.gql_as(&partner, DONATE, json!({ "i": donation_input(&campaign, 500, "g-1") })).await;
        assert_eq!(body["errors"][0]["extensions"]["field"], "donorName");
        let mut guest = donation_input(&campaign, 500, "g-1");
        guest["donorName"] = json!("林美玲");
        let recorded = app.ok_as(&partner, DONATE, json!({ "i": guest })).await;
        assert_eq!(recorded["donate"]["donation"]["donorName"], "林美玲");
        // A replay still answers after the campaign ended.
        service::change_status(app.state.ctx(), &crate::helpers::actor(), row_of(&json!(campaign)), CampaignAction::End, None).await.expect("end");
        let late = app.ok_as(&donor, DONATE, json!({ "i": donation_input(&campaign, 1_000, "retry-1") })).await;
        assert_eq!(late, first);
        assert_eq!(sql_i64(&app, "SELECT COUNT(*) FROM donations").await, 3);
    }

    async fn a_page_of_campaigns_costs_the_same_statements_for_10_or_100(app) {
        let mut orgs = Vec::new();
        for name in ["厦门市繁星儿童服务中心", "厦门市紫荆家庭服务中心", "厦门市木棉妇女发展中心"] {
            orgs.push(org(&app, name).await.1);
        }
        let mut rows = Vec::new();
        for i in 0..24 {
            rows.push(campaign_in(&app, orgs[i % 3], "ACTIVE").await);
        }
        // Donations on a few campaigns: one donor twice, so walls hold more than they show.
        let donor = Credentials::account(&app.account("donor", &[Role::Donor]).await);
        for (n, row) in rows.iter().enumerate().take(4) {
            for k in 0..(n + 2) {
                let d = app.ok_as(&donor, DONATE, json!({ "i": donation_input(&campaign_gid(*row), 100 + k as i64, &format!("c{n}-{k}")) })).await;
                app.ok(CONFIRM, json!({ "i": { "id": d["donate"]["donation"]["id"] } })).await;
            }
        }
        let list = "query($n: Int!) { campaigns(first: $n) { edges { node { id title \
            organization { name focusAreas } budget { item } updates { title } progress { raisedFen donorCount } \
            donorWall(first: 3) { pageInfo { hasNextPage } edges { cursor node { displayName amountFen } } } } } } }";
        let anonymous = Credentials::anonymous();
        let mut costs = Vec::new();
        let mut pages = Vec::new();
        for n in [10, 100] {
            let before = app.sql_statements();
            let data = app.ok_as(&anonymous, list, json!({ "n": n })).await;
            costs.push(app.sql_statements() - before);
            pages.push(data["campaigns"]["edges"].as_array().expect("edges").clone());
        }
        assert_eq!((pages[0].len(), pages[1].len()), (10, 24));
        assert!(costs[0] > 0, "the list was read from the database");
        assert_eq!(costs[0], costs[1], "statements for 10 and 24 campaigns: {costs:?}");
        // Each campaign's wall is what its own page shows: newest first, three of them.
        let single = "query($id: ID!) { campaign(id: $id) { donorWall(first: 3) { pageInfo { hasNextPage } edges { cursor node { displayName amountFen } } } progress { raisedFen donorCount } } }";
        for edge in &pages[1] {
            let node = &edge["node"];
            let alone = app.ok_as(&anonymous, single, json!({ "id": node["id"] })).await;
            assert_eq!(node["donorWall"], alone["campaign"]["donorWall"], "wall of {}", node["title"]);
            assert_eq!(node["progress"], alone["campaign"]["progress"]);
            assert_eq!(node["organization"]["name"].as_str().map(str::is_empty), Some(false));
        }
        let busiest = pages[1].iter().find(|e| row_of(&e["node"]["id"]) == rows[3]).expect("campaign with 5 donations");
        let wall = &busiest["node"]["donorWall"];
        let amounts: Vec<i64> = wall["edges"].as_array().expect("edges").iter().map(|e| e["node"]["amountFen"].as_i64().expect("amount")).collect();
        assert_eq!(amounts, vec![104, 103, 102], "the newest three");
        assert_eq!(wall["pageInfo"]["hasNextPage"], true);
        assert_eq!(busiest["node"]["progress"], json!({ "raisedFen": 510, "donorCount": 1 }), "one donor, five gifts");
    }

    async fn donor_count_counts_each_account_once_and_follows_refunds(app) {
        let (_, org_row) = org(&app, "厦门市晨曦家庭服务中心").await;
        let campaign = campaign_gid(campaign_in(&app, org_row, "ACTIVE").await);
        let wang = Credentials::account(&app.account("wang", &[Role::Donor]).await);
        let li = Credentials::account(&app.account("li", &[Role::Donor]).await);
        let key = identity::create_api_key(app.state.ctx(), &crate::helpers::actor(), identity::NewApiKey::secret("小程序", &[ApiScope::Donate], None), 0).await.expect("key");
        let partner = Credentials::api_key(&key.secret);
        let mut ids = Vec::new();
        for (who, key) in [(&wang, "w1"), (&wang, "w2"), (&li, "l1"), (&partner, "g1"), (&partner, "g2")] {
            let mut input = donation_input(&campaign, 1_000, key);
            input["donorName"] = json!("林美玲");
            let d = app.ok_as(who, DONATE, json!({ "i": input })).await;
            ids.push(d["donate"]["donation"]["id"].clone());
        }
        let mut counts = Vec::new();
        for id in &ids {
            let c = app.ok(CONFIRM, json!({ "i": { "id": id } })).await;
            counts.push(c["confirmDonation"]["progress"]["donorCount"].as_i64().expect("count"));
        }
        // wang twice counts once; each guest gift is a donor of its own.
        assert_eq!(counts, vec![1, 1, 2, 3, 4]);
        let mut after_refund = Vec::new();
        for i in [0, 1, 3] {
            let r = app.ok(REFUND, json!({ "i": { "id": ids[i] } })).await;
            after_refund.push(r["refundDonation"]["progress"]["donorCount"].as_i64().expect("count"));
        }
        // wang still counts after one refund, not after both; a refunded guest stops counting.
        assert_eq!(after_refund, vec![4, 3, 2]);
        let recount = sql_i64(
            &app,
            &format!(
                "SELECT COUNT(DISTINCT donor_account_id) + SUM(CASE WHEN donor_account_id IS NULL THEN 1 ELSE 0 END) \
                 FROM donations WHERE campaign_id = {} AND status = 'CONFIRMED' AND refunded_at IS NULL",
                row_of(&json!(campaign))
            ),
        )
        .await;
        assert_eq!(recount, 2, "the kept count equals a recount over the records");
    }

    async fn concurrent_gifts_of_one_donor_count_once(app) {
        let (_, org_row) = org(&app, "厦门市同舟家庭服务中心").await;
        let campaign_row = campaign_in(&app, org_row, "ACTIVE").await;
        let campaign = campaign_gid(campaign_row);
        let donor = Credentials::account(&app.account("donor", &[Role::Donor]).await);
        let mut ids = Vec::new();
        for k in 0..6 {
            let d = app.ok_as(&donor, DONATE, json!({ "i": donation_input(&campaign, 500, &format!("gift-{k}")) })).await;
            ids.push(d["donate"]["donation"]["id"].clone());
        }
        let app = std::sync::Arc::new(app);
        let race = |document: &'static str| {
            let tasks: Vec<_> = ids
                .iter()
                .map(|id| {
                    let (app, id) = (app.clone(), id.clone());
                    tokio::spawn(async move { app.ok(document, json!({ "i": { "id": id } })).await })
                })
                .collect();
            futures::future::join_all(tasks)
        };
        let count = |app: std::sync::Arc<TestApp>| async move {
            let page = app.ok("query($id: ID!) { campaign(id: $id) { progress { donorCount donationCount } } }", json!({ "id": campaign_gid(campaign_row) })).await;
            page["campaign"]["progress"].clone()
        };
        race(CONFIRM).await;
        assert_eq!(count(app.clone()).await, json!({ "donorCount": 1, "donationCount": 6 }), "six gifts, one donor");
        race(REFUND).await;
        assert_eq!(count(app.clone()).await, json!({ "donorCount": 0, "donationCount": 0 }), "all refunded");
    }

    async fn staff_record_offline_gifts_for_guests(app) {
        let (_, org_row) = org(&app, "厦门市禾苗儿童发展中心").await;
        let campaign = campaign_gid(campaign_in(&app, org_row, "ACTIVE").await);
        let mut input = donation_input(&campaign, 500_000, "bank-1");
        input["channel"] = json!("BANK_TRANSFER");
        input["recordForGuest"] = json!(true);
        let donor = Credentials::account(&app.account("donor", &[Role::Donor]).await);
        let body = app.gql_as(&donor, DONATE, json!({ "i": input })).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN", "only staff record for guests");
        let body = app.gql(DONATE, json!({ "i": input })).await;
        assert_eq!(body["errors"][0]["extensions"]["field"], "donorName");
        input["donorName"] = json!("陈女士");
        let gift = app.ok(DONATE, json!({ "i": input })).await["donate"]["donation"].clone();
        assert_eq!(gift["donorName"], "陈女士");
        app.ok(CONFIRM, json!({ "i": { "id": gift["id"] } })).await;
        let mine = app.ok("{ myDonations { totalCount } }", json!({})).await;
        assert_eq!(mine["myDonations"]["totalCount"], 0, "the guest's gift is not the manager's");
        let page = app.ok(PAGE, json!({ "id": campaign })).await;
        assert_eq!(page["campaign"]["donorWall"]["edges"][0]["node"]["displayName"], "陈女士");
        assert_eq!(page["campaign"]["progress"]["raisedFen"], 500_000);
    }

    async fn racing_confirmations_and_refunds_apply_once(app) {
        let (_, org_row) = org(&app, "厦门市春晖家庭服务中心").await;
        let campaign_row = campaign_in(&app, org_row, "ACTIVE").await;
        let campaign = campaign_gid(campaign_row);
        let donor = Credentials::account(&app.account("donor", &[Role::Donor]).await);
        let d = app.ok_as(&donor, DONATE, json!({ "i": donation_input(&campaign, 7_700, "race-1") })).await;
        let id = d["donate"]["donation"]["id"].clone();
        let app = std::sync::Arc::new(app);
        let race = |document: &'static str| {
            let tasks: Vec<_> = (0..8)
                .map(|_| {
                    let (app, id) = (app.clone(), id.clone());
                    tokio::spawn(async move { app.gql(document, json!({ "i": { "id": id } })).await })
                })
                .collect();
            futures::future::join_all(tasks)
        };
        let confirmed = race(CONFIRM).await;
        let ok = confirmed.iter().filter(|r| r.as_ref().expect("task").get("errors").is_none()).count();
        assert_eq!(ok, 1, "one of eight concurrent confirmations applies");
        let refunded = race(REFUND).await;
        let ok = refunded.iter().filter(|r| r.as_ref().expect("task").get("errors").is_none()).count();
        assert_eq!(ok, 1, "one of eight concurrent refunds applies");
        assert_eq!(raised_and_sum(&app, campaign_row).await, (0, 0));
        assert_eq!(sql_i64(&app, "SELECT COUNT(*) FROM donations").await, 2, "the donation and one reversing record");
        assert_eq!(sql_i64(&app, "SELECT last_number FROM receipt_counters").await, 1, "one receipt number used");
    }

    /// Confirmations, recorded payments and cancellations of the same pledges, all at once:
    /// each pledge ends confirmed (counted once, one receipt, one `donation.confirmed`
    /// event) or cancelled (counting nowhere, its money held if it came), and the totals
    /// equal the records. On PostgreSQL a confirmation reads without a lock and writes on
    /// the condition that the status is still the one it read, so this is its race.
    async fn confirmations_racing_payments_and_cancellations_count_once(app) {
        let (_, org_row) = org(&app, "厦门市晨星社区服务中心").await;
        let campaign_row = campaign_in(&app, org_row, "ACTIVE").await;
        let campaign = campaign_gid(campaign_row);
        let donor = Credentials::account(&app.account("donor", &[Role::Donor]).await);
        let mut ids = Vec::new();
        for k in 0..8_i64 {
            let d = app.ok_as(&donor, DONATE, json!({ "i": donation_input(&campaign, 1_000 + k, &format!("mix-{k}")) })).await;
            ids.push(d["donate"]["donation"]["id"].clone());
        }
        let app = std::sync::Arc::new(app);
        const PAY: &str = "mutation($i: ConfirmDonationInput!) { recordDonationPayment(input: $i) { outcome } }";
        const CANCEL: &str = "mutation($i: DonationIdInput!) { cancelDonation(input: $i) { donation { status } } }";
        let mut tasks = Vec::new();
        for (k, id) in ids.iter().enumerate() {
            // The first pledge is not cancelled by anyone: it ends confirmed, whichever of its
            // confirmations and payments wins. The others race a cancellation too.
            let documents: &[&'static str] =
                if k == 0 { &[CONFIRM, PAY, CONFIRM, PAY] } else { &[CONFIRM, PAY, CONFIRM, CANCEL, PAY] };
            for &document in documents {
                let (app, id) = (app.clone(), id.clone());
                tasks.push(tokio::spawn(async move { app.gql(document, json!({ "i": { "id": id } })).await }));
            }
        }
        for result in futures::future::join_all(tasks).await {
            let body = result.expect("task");
            if let Some(code) = body["errors"][0]["extensions"]["code"].as_str() {
                assert_eq!(code, "BAD_USER_INPUT", "a loser is told the donation's state: {body}");
            }
        }
        let confirmed = sql_i64(&app, &format!("SELECT COUNT(*) FROM donations WHERE campaign_id = {campaign_row} AND status = 'CONFIRMED'")).await;
        let confirmed_fen = sql_i64(&app, &format!("SELECT CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) FROM donations WHERE campaign_id = {campaign_row} AND status = 'CONFIRMED'")).await;
        let others = sql_i64(&app, &format!("SELECT COUNT(*) FROM donations WHERE campaign_id = {campaign_row} AND status IN ('CANCELLED', 'RECEIVED')")).await;
        assert_eq!(confirmed + others, 8, "every pledge ended confirmed or cancelled");
        let first = row_of(&ids[0]);
        assert_eq!(
            sql_i64(&app, &format!("SELECT COUNT(*) FROM donations WHERE id = {first} AND status = 'CONFIRMED'")).await,
            1,
            "the pledge no one cancelled is confirmed once"
        );
        assert_eq!(sql_i64(&app, &format!("SELECT raised_fen FROM campaigns WHERE id = {campaign_row}")).await, confirmed_fen);
        assert_eq!(sql_i64(&app, &format!("SELECT donation_count FROM campaigns WHERE id = {campaign_row}")).await, confirmed);
        assert_eq!(sql_i64(&app, &format!("SELECT donor_count FROM campaigns WHERE id = {campaign_row}")).await, 1, "one donor");
        assert_eq!(sql_i64(&app, "SELECT last_number FROM receipt_counters").await, confirmed, "one receipt number per confirmation");
        let numbered = sql_i64(&app, &format!("SELECT COUNT(DISTINCT receipt_number) FROM donations WHERE campaign_id = {campaign_row} AND status = 'CONFIRMED'")).await;
        assert_eq!(numbered, confirmed, "every confirmed donation has its own receipt number");
        let events = sql_i64(&app, "SELECT COUNT(*) FROM domain_events WHERE event_type = 'donation.confirmed'").await;
        assert_eq!(events, confirmed, "one donation.confirmed event per confirmation, none for a lost race");
    }

    async fn concurrent_replays_record_one_donation(app) {
        let (_, org_row) = org(&app, "厦门市白鹭志愿服务队").await;
        let campaign = campaign_gid(campaign_in(&app, org_row, "ACTIVE").await);
        let donor = Credentials::account(&app.account("donor", &[Role::Donor]).await);
        let app = std::sync::Arc::new(app);
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let (app, donor, campaign) = (app.clone(), donor.clone(), campaign.clone());
            tasks.push(tokio::spawn(async move {
                app.ok_as(&donor, DONATE, json!({ "i": donation_input(&campaign, 8_800, "same-key") })).await["donate"]["donation"]["id"].clone()
            }));
        }
        let ids: HashSet<String> = futures::future::join_all(tasks)
            .await
            .into_iter()
            .map(|r| r.expect("task").as_str().expect("id").to_owned())
            .collect();
        assert_eq!(ids.len(), 1, "ten concurrent sends of one key answer with one donation");
        assert_eq!(sql_i64(&app, "SELECT COUNT(*) FROM donations").await, 1);
    }

    async fn concurrent_donations_and_refunds_keep_totals_exact(app) {
        let (_, org_row) = org(&app, "厦门市妇女儿童公益促进会").await;
        let campaign_row = campaign_in(&app, org_row, "ACTIVE").await;
        let campaign = campaign_gid(campaign_row);
        let donors: Vec<Credentials> = {
            let mut v = Vec::new();
            for i in 0..6 {
                v.push(Credentials::account(&app.account(&format!("donor{i}"), &[Role::Donor]).await));
            }
            v
        };
        let app = std::sync::Arc::new(app);
        let manager = Credentials::account(&app.manager);
        // 40 donors' donate → confirm chains, every fourth then refunded, all at once.
        let mut tasks = Vec::new();
        for i in 0..40_i64 {
            let (app, donor, manager, campaign) = (app.clone(), donors[i as usize % donors.len()].clone(), manager.clone(), campaign.clone());
            tasks.push(tokio::spawn(async move {
                let amount = 1_001 + i * 37;
                let d = app.ok_as(&donor, DONATE, json!({ "i": donation_input(&campaign, amount, &format!("c-{i}")) })).await;
                let id = d["donate"]["donation"]["id"].clone();
                let confirmed = app.ok_as(&manager, CONFIRM, json!({ "i": { "id": id } })).await;
                let receipt = confirmed["confirmDonation"]["donation"]["receiptNumber"].as_str().expect("receipt").to_owned();
                if i % 4 == 0 {
                    app.ok_as(&manager, REFUND, json!({ "i": { "id": id } })).await;
                    (receipt, 0)
                } else {
                    (receipt, amount)
                }
            }));
        }
        let results: Vec<(String, i64)> = futures::future::join_all(tasks).await.into_iter().map(|r| r.expect("task")).collect();
        let expected: i64 = results.iter().map(|(_, a)| a).sum();
        let receipts: HashSet<&String> = results.iter().map(|(r, _)| r).collect();
        assert_eq!(receipts.len(), 40, "every confirmation got its own receipt number");
        let mut numbers: Vec<i64> = results.iter().map(|(r, _)| r[5..].parse().expect("number")).collect();
        numbers.sort();
        assert_eq!(numbers, (1..=40).collect::<Vec<_>>(), "receipt numbers are sequential without gaps");

        let (raised, sum) = raised_and_sum(&app, campaign_row).await;
        assert_eq!(raised, sum, "raised_fen equals the SUM of confirmed minus refunded records");
        assert_eq!(raised, expected, "to the fen");
        let page = app.ok(PAGE, json!({ "id": campaign })).await;
        assert_eq!(page["campaign"]["progress"]["raisedFen"], expected);
        assert_eq!(page["campaign"]["progress"]["donationCount"], 30);
        assert_eq!(page["campaign"]["donorWall"]["totalCount"], 30);
    }

    async fn confirmed_donations_show_on_cached_pages_at_once(app) {
        let (_, org_row) = org(&app, "厦门市向日葵亲子服务中心").await;
        let campaign = campaign_gid(campaign_in(&app, org_row, "ACTIVE").await);
        let anonymous = Credentials::anonymous();
        let list = "{ campaigns { edges { node { progress { raisedFen donationCount } } } } }";
        // Warm the page and the list, and check a second read is a cache hit.
        app.ok_as(&anonymous, PAGE, json!({ "id": campaign })).await;
        app.ok_as(&anonymous, list, json!({})).await;
        // Relations (organization, updates) go through DataLoaders; the page itself is cached.
        let cached_page = "query($id: ID!) { campaign(id: $id) { title progress { raisedFen } donorWall { totalCount } } }";
        app.ok_as(&anonymous, cached_page, json!({ "id": campaign })).await;
        let before = app.sql_statements();
        app.ok_as(&anonymous, cached_page, json!({ "id": campaign })).await;
        app.ok_as(&anonymous, list, json!({})).await;
        assert_eq!(app.sql_statements(), before, "served from the cache");

        let donor = Credentials::account(&app.account("donor", &[Role::Donor]).await);
        let d = app.ok_as(&donor, DONATE, json!({ "i": donation_input(&campaign, 12_345, "cache-1") })).await;
        app.ok(CONFIRM, json!({ "i": { "id": d["donate"]["donation"]["id"] } })).await;
        let page = app.ok_as(&anonymous, PAGE, json!({ "id": campaign })).await;
        assert_eq!(page["campaign"]["progress"]["raisedFen"], 12_345);
        assert_eq!(page["campaign"]["donorWall"]["totalCount"], 1);
        let listed = app.ok_as(&anonymous, list, json!({})).await;
        assert_eq!(listed["campaigns"]["edges"][0]["node"]["progress"], json!({ "raisedFen": 12_345, "donationCount": 1 }));

        app.ok(REFUND, json!({ "i": { "id": d["donate"]["donation"]["id"] } })).await;
        let page = app.ok_as(&anonymous, PAGE, json!({ "id": campaign })).await;
        assert_eq!(page["campaign"]["progress"]["raisedFen"], 0);
        assert_eq!(page["campaign"]["donorWall"]["totalCount"], 0);
    }
}

#[test]
fn names_are_masked_per_character() {
    assert_eq!(service::mask_name("王小明"), "王*明");
    assert_eq!(service::mask_name("欧阳小明"), "欧**明");
    assert_eq!(service::mask_name("王明"), "王*");
    assert_eq!(service::mask_name("Li"), "L*");
}

// ---------------------------------------------------------------- live progress

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const PROGRESS: &str =
    "subscription($id: ID!) { campaignProgress(id: $id) { cursor progress { raisedFen donationCount donorState } } }";

/// Opens a graphql-transport-ws connection to `app` and subscribes to a campaign's progress.
async fn subscribe_progress(app: &TestApp, campaign: &str) -> Socket {
    subscribe_progress_with(app, campaign, json!({})).await
}

/// As `subscribe_progress`, sending `init` as the connection_init payload (credentials).
async fn subscribe_progress_with(app: &TestApp, campaign: &str, init: Value) -> Socket {
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = format!("{}/graphql/ws", app.address.replacen("http://", "ws://", 1));
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse().expect("header"));
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.expect("websocket connects");
    socket.send(Message::text(json!({ "type": "connection_init", "payload": init }).to_string())).await.expect("init");
    assert_eq!(next_message(&mut socket).await["type"], "connection_ack");
    let subscribe =
        json!({ "id": "1", "type": "subscribe", "payload": { "query": PROGRESS, "variables": { "id": campaign } } });
    socket.send(Message::text(subscribe.to_string())).await.expect("subscribe");
    socket
}

/// Whether the server closes a connection whose connection_init carries `init`.
async fn init_refused(app: &TestApp, init: Value) -> bool {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = format!("{}/graphql/ws", app.address.replacen("http://", "ws://", 1));
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse().expect("header"));
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.expect("websocket connects");
    socket.send(Message::text(json!({ "type": "connection_init", "payload": init }).to_string())).await.expect("init");
    let next = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next()).await.expect("an answer");
    matches!(next, None | Some(Err(_)) | Some(Ok(Message::Close(_))))
}

/// The next protocol message (bounded wait: a missing push fails instead of hanging).
async fn next_message(socket: &mut Socket) -> Value {
    use futures::StreamExt;
    loop {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
            .await
            .expect("a message within 10 s")
            .expect("socket open")
            .expect("message");
        if let tokio_tungstenite::tungstenite::Message::Text(text) = msg {
            let value: Value = serde_json::from_str(&text).expect("json");
            if value["type"] != "ping" && value["type"] != "pong" {
                return value;
            }
        }
    }
}

async fn next_progress(socket: &mut Socket) -> Value {
    let msg = next_message(socket).await;
    assert_eq!(msg["type"], "next", "{msg}");
    assert!(msg["payload"]["data"]["campaignProgress"]["cursor"].is_string(), "every message has a cursor: {msg}");
    msg["payload"]["data"]["campaignProgress"]["progress"].clone()
}

async fn pledge_and_confirm(app: &TestApp, campaign: &str, amount: i64, key: &str) -> Value {
    let donor = Credentials::account(&app.account("live", &[Role::Donor]).await);
    let d = app.ok_as(&donor, DONATE, json!({ "i": donation_input(campaign, amount, key) })).await;
    let id = d["donate"]["donation"]["id"].clone();
    app.ok(CONFIRM, json!({ "i": { "id": id } })).await;
    id
}

backend_tests! {
    async fn subscription_pushes_progress_on_confirm_and_refund(app) {
        let (_, org_row) = org(&app, "厦门市木棉花女性成长中心").await;
        let campaign = campaign_gid(campaign_in(&app, org_row, "ACTIVE").await);
        let mut socket = subscribe_progress(&app, &campaign).await;
        assert_eq!(next_progress(&mut socket).await, json!({ "raisedFen": 0, "donationCount": 0, "donorState": "COLLECTING" }));

        // A pledge alone pushes nothing; its confirmation does.
        let id = pledge_and_confirm(&app, &campaign, 66_600, "live-1").await;
        assert_eq!(next_progress(&mut socket).await["raisedFen"], 66_600);
        app.ok(REFUND, json!({ "i": { "id": id } })).await;
        assert_eq!(next_progress(&mut socket).await, json!({ "raisedFen": 0, "donationCount": 0, "donorState": "COLLECTING" }));

        // Drafts cannot be watched by the public.
        let draft = campaign_gid(campaign_in(&app, org_row, "DRAFT").await);
        let mut socket = subscribe_progress(&app, &draft).await;
        let msg = next_message(&mut socket).await;
        assert_eq!(msg["payload"]["errors"][0]["extensions"]["code"], "NOT_FOUND", "{msg}");
        assert_eq!(msg["payload"]["data"], Value::Null);

        // The organization's members may watch it, signing in through connection_init.
        let member = app.account("member", &[Role::Donor]).await;
        identity::add_member(app.state.ctx(), &crate::helpers::actor(), org_row, &member.email, MemberRole::Editor, 0).await.expect("member");
        let init = json!({ "authorization": format!("Bearer {}", member.token) });
        let mut socket = subscribe_progress_with(&app, &draft, init).await;
        assert_eq!(next_progress(&mut socket).await, json!({ "raisedFen": 0, "donationCount": 0, "donorState": null }));
        assert!(init_refused(&app, json!({ "authorization": "Bearer not-a-token" })).await, "bad credentials close the socket");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_reaches_subscribers_on_another_instance() {
    use crate::helpers::{Backend, spawn_app, spawn_app_with};
    if !crate::helpers::selected(Backend::Postgres) {
        return;
    }
    let a = spawn_app(Backend::Postgres).await;
    let (database_url, prefix) = (a.state.settings.database_url.clone(), a.state.settings.cache_prefix.clone());
    let b = spawn_app_with(Backend::Postgres, move |s| {
        s.database_url = database_url;
        s.cache_prefix = prefix;
    })
    .await;
    let (_, org_row) = org(&a, "厦门市海峡两岸妇女交流促进会").await;
    let campaign = campaign_gid(campaign_in(&a, org_row, "ACTIVE").await);

    // B serves (and caches) the page before A records anything.
    let anonymous = Credentials::anonymous();
    assert_eq!(b.ok_as(&anonymous, PAGE, json!({ "id": campaign })).await["campaign"]["progress"]["raisedFen"], 0);
    let mut on_b = subscribe_progress(&b, &campaign).await;
    assert_eq!(next_progress(&mut on_b).await["raisedFen"], 0);

    pledge_and_confirm(&a, &campaign, 52_000, "two-1").await;
    assert_eq!(next_progress(&mut on_b).await["raisedFen"], 52_000, "A's confirmation reaches B's subscriber");
    let page = b.ok_as(&anonymous, PAGE, json!({ "id": campaign })).await;
    assert_eq!(page["campaign"]["progress"]["raisedFen"], 52_000, "B's cached page was invalidated through Redis");
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_demo_adds_living_campaigns() {
    use crate::helpers::{Backend, spawn_app};
    if !crate::helpers::selected(Backend::Sqlite) {
        return;
    }
    let app = spawn_app(Backend::Sqlite).await;
    api::seed::demo(app.state.ctx()).await.expect("seed");
    let list = app
        .ok_as(
            &Credentials::anonymous(),
            "{ campaigns(first: 50) { totalCount edges { node { id title status progress { raisedFen donorState } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(list["campaigns"]["totalCount"], 5, "drafts and pending campaigns are not public");
    let states: HashSet<String> = list["campaigns"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["progress"]["donorState"].as_str().expect("state").to_owned())
        .collect();
    assert!(states.contains("COLLECTING") && states.contains("GOAL_REACHED") && states.contains("ENDED"), "{states:?}");
    let mut names = Vec::new();
    for edge in list["campaigns"]["edges"].as_array().expect("edges") {
        let id = &edge["node"]["id"];
        let (raised, sum) = raised_and_sum(&app, row_of(id)).await;
        assert_eq!(raised, sum, "seeded totals are exact");
        let page = app.ok_as(&Credentials::anonymous(), PAGE, json!({ "id": id })).await;
        for e in page["campaign"]["donorWall"]["edges"].as_array().expect("wall") {
            names.push(e["node"]["displayName"].as_str().expect("name").to_owned());
        }
    }
    assert!(names.iter().any(|n| n == "爱心人士"), "anonymous donors on the walls");
    assert!(names.iter().any(|n| n.contains('*')), "masked donors on the walls");
}
