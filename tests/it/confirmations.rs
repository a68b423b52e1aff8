//! Confirmations that arrive while another runs are counted together on PostgreSQL (one
//! transaction for the waiting ones): the totals, donor counts, receipt numbers and events end
//! exactly as if each had run alone, and those the batch cannot count are answered as before.
use std::collections::HashMap;
use std::time::Duration;

use api::service::identity::Role;
use sea_orm::{ConnectionTrait, Statement, TransactionTrait};
use serde_json::{Value, json};

use crate::crowdfunding::{CONFIRM, DONATE, campaign_gid, campaign_in, donation_input, org, row_of, sql_i64};
use crate::helpers::{Backend, Credentials, TestApp, eventually, selected, spawn_app};

const CANCEL: &str = "mutation($i: DonationIdInput!) { cancelDonation(input: $i) { donation { status } } }";

async fn pledge(
    app: &TestApp,
    who: &Credentials,
    campaign: &str,
    amount: i64,
    key: &str,
    guest: Option<&str>,
) -> Value {
    let mut input = donation_input(campaign, amount, key);
    if let Some(name) = guest {
        input["recordForGuest"] = json!(true);
        input["donorName"] = json!(name);
    }
    app.ok_as(who, DONATE, json!({ "i": input })).await["donate"]["donation"]["id"].clone()
}

fn confirm(app: &std::sync::Arc<TestApp>, who: &Credentials, id: &Value) -> tokio::task::JoinHandle<Value> {
    let (app, who, id) = (app.clone(), who.clone(), id.clone());
    tokio::spawn(async move { app.gql_as(&who, CONFIRM, json!({ "i": { "id": id } })).await })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmations_waiting_together_count_exactly_once() {
    if !selected(Backend::Postgres) {
        return;
    }
    let app = spawn_app(Backend::Postgres).await;
    let (_, org_row) = org(&app, "厦门市鹭岛妇女儿童关爱中心").await;
    let (first_row, second_row) =
        (campaign_in(&app, org_row, "ACTIVE").await, campaign_in(&app, org_row, "ACTIVE").await);
    let (first, second) = (campaign_gid(first_row), campaign_gid(second_row));
    let [a, b, c, d] = [
        Credentials::account(&app.account("a", &[Role::Donor]).await),
        Credentials::account(&app.account("b", &[Role::Donor]).await),
        Credentials::account(&app.account("c", &[Role::Donor]).await),
        Credentials::account(&app.account("d", &[Role::Donor]).await),
    ];
    let manager = Credentials::account(&app.manager);
    let other_staff = app.account("staff", &[Role::Manager]).await;
    let staff = Credentials::account(&other_staff);

    // Before: A has given to the first campaign once (receipt 1).
    let earlier = pledge(&app, &a, &first, 1_000, "a-0", None).await;
    app.ok(CONFIRM, json!({ "i": { "id": earlier } })).await;
    let blocked = pledge(&app, &a, &first, 2_000, "a-1", None).await;
    // Counted together: A again (no new donor), B twice (one), two guests (two) on the first
    // campaign; A twice and C on the second (two donors).
    let gifts = [
        (pledge(&app, &a, &first, 3_001, "a-2", None).await, first_row),
        (pledge(&app, &b, &first, 3_002, "b-1", None).await, first_row),
        (pledge(&app, &b, &first, 3_003, "b-2", None).await, first_row),
        (pledge(&app, &manager, &first, 3_004, "g-1", Some("陈女士")).await, first_row),
        (pledge(&app, &manager, &first, 3_005, "g-2", Some("林女士")).await, first_row),
        (pledge(&app, &a, &second, 3_006, "a-3", None).await, second_row),
        (pledge(&app, &a, &second, 3_007, "a-4", None).await, second_row),
        (pledge(&app, &c, &second, 3_008, "c-1", None).await, second_row),
    ];
    let cancelled = pledge(&app, &d, &first, 9_999, "d-1", None).await;
    app.ok_as(&d, CANCEL, json!({ "i": { "id": cancelled } })).await;

    // Hold the receipt counter so that one confirmation waits on it while the others queue.
    let lock = app.state.db.begin().await.expect("begin");
    lock.query_one_raw(Statement::from_string(
        sea_orm::DatabaseBackend::Postgres,
        "SELECT last_number FROM receipt_counters FOR UPDATE",
    ))
    .await
    .expect("lock the counter");
    let app = std::sync::Arc::new(app);
    let lone = confirm(&app, &manager, &blocked);
    let waiting = eventually(Duration::from_secs(10), || async {
        sql_i64(
            &app,
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND wait_event_type = 'Lock' AND query LIKE '%incubase_confirm_donation(%'",
        )
        .await
            == 1
    })
    .await;
    assert!(waiting, "the first confirmation waits for the receipt counter");
    let mut tasks = Vec::new();
    for (k, (id, _)) in gifts.iter().enumerate() {
        // Each confirmation's event names whoever confirmed it.
        tasks.push((id.clone(), k % 2, confirm(&app, if k % 2 == 0 { &manager } else { &staff }, id)));
    }
    let repeat = confirm(&app, &staff, &gifts[1].0);
    let refused = confirm(&app, &manager, &cancelled);
    let queued =
        eventually(Duration::from_secs(10), || async { app.state.metrics.confirmations_waiting.get() == 10 }).await;
    assert!(queued, "ten confirmations wait behind the first");
    let (batches, together) =
        (app.state.metrics.confirmation_batches.get(), app.state.metrics.confirmations_counted_together.get());
    lock.rollback().await.expect("release");

    let lone = lone.await.expect("task");
    assert_eq!(
        lone["data"]["confirmDonation"]["donation"]["receiptNumber"].as_str().map(|r| &r[5..]),
        Some("000002"),
        "{lone}"
    );
    // Which of the two confirmations of the second gift reaches the queue first is up to the
    // scheduler: one of them confirms it, the other is answered as a repeat alone would be.
    let mut repeat = repeat.await.expect("task");
    let mut receipts = Vec::new();
    for (k, (id, who, task)) in tasks.into_iter().enumerate() {
        let mut body = task.await.expect("task");
        if k == 1 && body["errors"].is_array() {
            std::mem::swap(&mut body, &mut repeat);
        }
        let donation = &body["data"]["confirmDonation"]["donation"];
        assert_eq!(donation["status"], "CONFIRMED", "{body}");
        receipts.push((
            row_of(&id),
            who,
            donation["receiptNumber"].as_str().expect("receipt")[5..].parse::<i64>().expect("n"),
        ));
    }
    assert_eq!(repeat["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{repeat}");
    let refused = refused.await.expect("task");
    assert_eq!(refused["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{refused}");
    assert_eq!(app.state.metrics.confirmation_batches.get(), batches + 1, "the waiting ones went in one transaction");
    assert_eq!(app.state.metrics.confirmations_counted_together.get(), together + 8);

    // Gapless, consecutive, in donation order.
    receipts.sort();
    let numbers: Vec<i64> = receipts.iter().map(|(_, _, n)| *n).collect();
    assert_eq!(numbers, (3..=10).collect::<Vec<_>>(), "receipts follow the lone one without gaps");
    assert_eq!(sql_i64(&app, "SELECT last_number FROM receipt_counters").await, 10);
    let stored: Vec<i64> = {
        let rows = app
            .state
            .db
            .query_all_raw(Statement::from_string(
                sea_orm::DatabaseBackend::Postgres,
                "SELECT CAST(substr(receipt_number, 6) AS BIGINT) AS n FROM donations \
                 WHERE status = 'CONFIRMED' ORDER BY id",
            ))
            .await
            .expect("receipts");
        rows.iter().map(|r| r.try_get::<i64>("", "n").expect("n")).collect()
    };
    assert_eq!(stored, (1..=10).collect::<Vec<_>>(), "the stored numbers are the answered ones");

    // Totals and donor counts as if each had been confirmed alone.
    let mut expected: HashMap<i64, (i64, i64)> = HashMap::new();
    for (row, (fen, n)) in [(first_row, (1_000 + 2_000, 2)), (second_row, (0, 0))] {
        expected.insert(row, (fen, n));
    }
    for (k, (_, campaign)) in gifts.iter().enumerate() {
        let e = expected.get_mut(campaign).expect("campaign");
        e.0 += 3_001 + k as i64;
        e.1 += 1;
    }
    for (row, donors) in [(first_row, 4), (second_row, 2)] {
        let (fen, count) = expected[&row];
        let q = |col: &str| format!("SELECT {col} FROM campaigns WHERE id = {row}");
        assert_eq!(sql_i64(&app, &q("raised_fen")).await, fen, "campaign {row} raised");
        assert_eq!(sql_i64(&app, &q("donation_count")).await, count, "campaign {row} gifts");
        assert_eq!(
            sql_i64(&app, &q("donor_count")).await,
            donors,
            "campaign {row}: each account once, each guest gift"
        );
    }

    // One `donation.confirmed` per confirmed donation, by whoever confirmed it.
    assert_eq!(sql_i64(&app, "SELECT COUNT(*) FROM domain_events WHERE event_type = 'donation.confirmed'").await, 10);
    for (row, who, _) in &receipts {
        let actor = if *who == 0 { app.manager.id } else { other_staff.id };
        let q = format!(
            "SELECT COUNT(*) FROM domain_events WHERE event_type = 'donation.confirmed' \
             AND aggregate_id = {row} AND actor_id = {actor}"
        );
        assert_eq!(sql_i64(&app, &q).await, 1, "donation {row}'s event names its confirmer");
    }
    let page = app
        .ok("query($id: ID!) { campaign(id: $id) { progress { raisedFen donorCount } } }", json!({ "id": second }))
        .await;
    assert_eq!(page["campaign"]["progress"], json!({ "raisedFen": expected[&second_row].0, "donorCount": 2 }));
}
