//! Relay nodes for the objects with their own visibility: `node(id:)` resolves a donation, a
//! registration, a grant proposal and an account exactly for those who see them through their
//! own queries, and answers `null` to everyone else.
use chrono::Duration;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::crowdfunding::{DONATE, campaign_gid, campaign_in, row_of};
use crate::events::{organizer, published_event, register_as};
use crate::helpers::{Credentials, TestApp};
use api::service::identity::Role;

const NODE: &str = r#"query($id: ID!) { node(id: $id) { __typename id
  ... on Donation { amountFen status }
  ... on Registration { status partySize }
  ... on GrantProposal { title status }
  ... on Account { displayName email } } }"#;

async fn node_as(app: &TestApp, who: &Credentials, id: &Value) -> Value {
    app.ok_as(who, NODE, json!({ "id": id })).await["node"].clone()
}

backend_tests! {
    async fn nodes_resolve_with_the_visibility_of_their_own_queries(app) {
        let admin = app.account("admin", &[Role::Admin]).await;
        let donor = app.account("donor", &[Role::Donor]).await;
        let stranger = app.account("stranger", &[Role::Donor]).await;
        let reviewer = app.account("reviewer", &[Role::Reviewer]).await;
        let (me, other, anonymous, staff, boss) = (
            Credentials::account(&donor),
            Credentials::account(&stranger),
            Credentials::anonymous(),
            Credentials::account(&app.manager),
            Credentials::account(&admin),
        );

        // A donation: its donor and staff, as `myDonations` and `Campaign.donations`.
        let org = organizer(&app).await;
        let campaign = campaign_in(&app, row_of(&json!(org)), "ACTIVE").await;
        let pledged = app.ok_as(&me, DONATE, json!({ "i": { "campaignId": campaign_gid(campaign),
            "amountFen": 5_000_000, "channel": "ONLINE_PLATFORM", "clientKey": "node-1" } })).await;
        let donation = pledged["donate"]["donation"]["id"].clone();
        let mine = app.ok_as(&me, "{ myDonations { edges { node { id } } } }", json!({})).await;
        assert_eq!(mine["myDonations"]["edges"][0]["node"]["id"], donation);
        let seen = node_as(&app, &me, &donation).await;
        assert_eq!((seen["__typename"].as_str(), &seen["id"], seen["amountFen"].as_i64()), (Some("Donation"), &donation, Some(5_000_000)));
        assert_eq!(node_as(&app, &staff, &donation).await["id"], donation);
        assert_eq!(node_as(&app, &other, &donation).await, Value::Null);
        assert_eq!(node_as(&app, &anonymous, &donation).await, Value::Null);

        // A registration: its registrant and the event's organizers.
        let event = published_event(&app, &org, Duration::days(3), json!({ "capacity": 10, "groupLimit": 2 })).await;
        let registered = register_as(&app, &donor, json!({ "eventId": event, "privacyConsent": true, "partySize": 2 })).await;
        let registration = registered["data"]["register"]["registration"]["id"].clone();
        let seen = node_as(&app, &me, &registration).await;
        assert_eq!((seen["__typename"].as_str(), seen["partySize"].as_i64()), (Some("Registration"), Some(2)));
        let listed = app.ok(r#"query($id: ID!) { event(id: $id) { registrations { edges { node { id } } } } }"#,
            json!({ "id": event })).await;
        assert_eq!(listed["event"]["registrations"]["edges"][0]["node"]["id"], registration);
        assert_eq!(node_as(&app, &staff, &registration).await["id"], registration, "organizers see it");
        assert_eq!(node_as(&app, &other, &registration).await, Value::Null);
        assert_eq!(node_as(&app, &anonymous, &registration).await, Value::Null);

        // A proposal: staff, its organization's members and its assigned reviewers.
        let round = crate::grants::open_round(&app, 50_000_000, 10_000_000).await;
        let round_id = round["id"].as_str().expect("round").to_owned();
        let (proposal_org, owner) = crate::grants::org_with_owner(&app, "节点测试机构").await;
        let proposal = crate::grants::draft(&app, &owner, &round_id, &proposal_org, "社区妇女支持", 3_000_000).await["id"].clone();
        let as_owner = node_as(&app, &Credentials::account(&owner), &proposal).await;
        assert_eq!((as_owner["__typename"].as_str(), as_owner["title"].as_str()), (Some("GrantProposal"), Some("社区妇女支持")));
        assert_eq!(node_as(&app, &staff, &proposal).await["id"], proposal);
        let reviewer_creds = Credentials::account(&reviewer);
        assert_eq!(node_as(&app, &reviewer_creds, &proposal).await, Value::Null, "not assigned yet");
        app.ok_as(&Credentials::account(&owner), crate::grants::SUBMIT, json!({ "i": { "id": proposal } })).await;
        app.ok(crate::grants::ASSIGN, json!({ "i": { "proposalId": proposal, "reviewerId": reviewer.global_id } })).await;
        assert_eq!(node_as(&app, &reviewer_creds, &proposal).await["id"], proposal, "assigned reviewers see it");
        let own_query = app.ok_as(&reviewer_creds, "query($id: ID!) { grantProposal(id: $id) { id } }",
            json!({ "id": proposal })).await;
        assert_eq!(own_query["grantProposal"]["id"], proposal);
        assert_eq!(node_as(&app, &other, &proposal).await, Value::Null);
        assert_eq!(node_as(&app, &anonymous, &proposal).await, Value::Null);

        // An account: itself and admins.
        let account = json!(donor.global_id);
        let seen = node_as(&app, &me, &account).await;
        assert_eq!((seen["__typename"].as_str(), seen["email"].as_str()), (Some("Account"), Some(donor.email.as_str())));
        let viewer = app.ok_as(&me, "{ viewer { account { id } } }", json!({})).await;
        assert_eq!(viewer["viewer"]["account"]["id"], account);
        assert_eq!(node_as(&app, &boss, &account).await["email"], donor.email.as_str());
        assert_eq!(node_as(&app, &other, &account).await, Value::Null);
        assert_eq!(node_as(&app, &anonymous, &account).await, Value::Null);

        // `nodes` answers the same, in the order asked.
        let many = app.ok_as(&me, "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }",
            json!({ "ids": [account, proposal, registration, donation] })).await;
        let types: Vec<Value> = many["nodes"].as_array().expect("list").iter().map(|n| n["__typename"].clone()).collect();
        assert_eq!(types, vec![json!("Account"), Value::Null, json!("Registration"), json!("Donation")]);
    }
}
