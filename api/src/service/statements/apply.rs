//! Applying a plan: one transaction per batch of lines, each confirmation with its receipt
//! number and event.
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use entity::donation::{self, DisplayMode, DonationChannel, DonationStatus};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseTransaction, EntityTrait, QueryFilter,
    QuerySelect, Set, Statement, TransactionTrait,
};

use super::plan::{CREATED_SCOPE, LineAction, Mismatch, PlannedLine};
use crate::error::{AppError, AppResult};
use crate::events::{Actor, EventKind};
use crate::service::Ctx;
use crate::service::crowdfunding::{self as cf, Arrival, PaymentOutcome};

/// Applies one batch of planned lines in one transaction. Lines whose donation changed since
/// the plan (confirmed meanwhile by someone else) become `ALREADY_CONFIRMED` skips.
pub(super) async fn apply_batch(
    ctx: Ctx<'_>,
    actor: &Actor,
    import_id: i64,
    channel: DonationChannel,
    mut lines: Vec<PlannedLine>,
) -> AppResult<Vec<PlannedLine>> {
    let now = crate::service::now();
    let txn = ctx.db.begin().await?;
    let mut appended = crate::events::Appended::default();
    // New donations for chosen unmatched payments, as pledges confirmed with the rest below.
    for l in lines.iter_mut().filter(|l| l.action == LineAction::Create) {
        let (Some(campaign_id), Some(key)) = (l.campaign_id, l.line_id.clone().or_else(|| l.reference.clone())) else {
            continue;
        };
        let name = l.payer_name.clone().unwrap_or_default();
        let model = donation::ActiveModel {
            campaign_id: Set(campaign_id),
            amount_fen: Set(l.amount_fen),
            channel: Set(channel),
            external_reference: Set(l.reference.clone().or(l.line_id.clone())),
            display_mode: Set(if name.is_empty() { DisplayMode::Anonymous } else { DisplayMode::Masked }),
            donor_name: Set(name.chars().take(100).collect()),
            message: Set(String::new()),
            status: Set(DonationStatus::Pledged),
            client_scope: Set(Some(CREATED_SCOPE.into())),
            client_key: Set(Some(key.chars().take(100).collect())),
            content_digest: Set(format!("statement:{import_id}")),
            refunded_fen: Set(0),
            created_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        l.donation_id = Some(model.id);
    }
    // Held money, one by one (rare: late payments, cancelled campaigns).
    for l in lines.iter_mut().filter(|l| l.action == LineAction::Hold) {
        let Some(id) = l.donation_id else { continue };
        let (_, outcome, more) = cf::receive_in(&txn, ctx, actor, id, l.reference.clone(), Arrival::Payment).await?;
        if outcome == PaymentOutcome::AlreadyRecorded {
            (l.action, l.reason) = (LineAction::Skip, Some(Mismatch::AlreadyConfirmed));
        }
        appended.events.extend(more.events);
    }
    let confirming: Vec<usize> =
        (0..lines.len()).filter(|i| matches!(lines[*i].action, LineAction::Confirm | LineAction::Create)).collect();
    if !confirming.is_empty() {
        let ids: Vec<i64> = confirming.iter().filter_map(|i| lines[*i].donation_id).collect();
        let locked: HashMap<i64, donation::Model> = donation::Entity::find()
            .filter(donation::Column::Id.is_in(ids.clone()))
            .lock_exclusive()
            .all(&txn)
            .await?
            .into_iter()
            .map(|d| (d.id, d))
            .collect();
        let mut rows = Vec::new();
        for i in confirming {
            let line = &mut lines[i];
            match line.donation_id.and_then(|id| locked.get(&id)) {
                Some(d)
                    if d.status == DonationStatus::Pledged && !cf::pledge_expired(d, ctx.settings.pledge_ttl, now) =>
                {
                    rows.push((i, d.clone()));
                }
                _ => (line.action, line.reason) = (LineAction::Skip, Some(Mismatch::AlreadyConfirmed)),
            }
        }
        let numbers = confirm_many(&txn, actor, &rows, &lines, now, &mut appended).await?;
        for ((i, _), number) in rows.iter().zip(numbers) {
            lines[*i].receipt_number = Some(number);
        }
    }
    ctx.finish(txn, appended).await?;
    Ok(lines)
}

/// Confirms many pledges in one transaction with a fixed number of statements: their events
/// in one append, each campaign's totals in one update (in id order, so concurrent imports and
/// confirmations never wait in a cycle), the donor counts, one block of receipt numbers from
/// the year's counter (gapless: it commits or rolls back with them), one update of the rows.
async fn confirm_many(
    txn: &DatabaseTransaction,
    actor: &Actor,
    rows: &[(usize, donation::Model)],
    lines: &[PlannedLine],
    now: DateTime<Utc>,
    appended: &mut crate::events::Appended,
) -> AppResult<Vec<String>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let events = rows.iter().map(|(_, d)| cf::donation_event(EventKind::DonationConfirmed, d)).collect();
    appended.events.extend(crate::events::log::append(txn, actor, events).await?.events);
    let mut per_campaign: std::collections::BTreeMap<i64, (i64, i64, i64)> = Default::default();
    let mut accounts: HashSet<(i64, i64)> = HashSet::new();
    for (_, d) in rows {
        let entry = per_campaign.entry(d.campaign_id).or_default();
        entry.0 += d.amount_fen;
        entry.1 += 1;
        entry.2 += cf::guest_donor(d);
        if let Some(a) = d.donor_account_id {
            accounts.insert((d.campaign_id, a));
        }
    }
    for (campaign_id, (fen, count, guests)) in &per_campaign {
        cf::add_to_totals(txn, *campaign_id, *fen, *count, *guests).await?;
    }
    // With the campaign rows locked: accounts that already count on a campaign are not new donors.
    if !accounts.is_empty() {
        let account_ids: HashSet<i64> = accounts.iter().map(|(_, a)| *a).collect();
        let counting: HashSet<(i64, i64)> = donation::Entity::find()
            .select_only()
            .column(donation::Column::CampaignId)
            .column(donation::Column::DonorAccountId)
            .filter(donation::Column::CampaignId.is_in(per_campaign.keys().copied()))
            .filter(donation::Column::DonorAccountId.is_in(account_ids))
            .filter(donation::Column::Status.eq(DonationStatus::Confirmed))
            .filter(donation::Column::RefundedAt.is_null())
            .distinct()
            .into_tuple::<(i64, Option<i64>)>()
            .all(txn)
            .await?
            .into_iter()
            .filter_map(|(c, a)| Some((c, a?)))
            .collect();
        let mut new_donors: HashMap<i64, i64> = HashMap::new();
        for (campaign_id, account) in &accounts {
            if !counting.contains(&(*campaign_id, *account)) {
                *new_donors.entry(*campaign_id).or_default() += 1;
            }
        }
        let mut new_donors: Vec<(i64, i64)> = new_donors.into_iter().collect();
        new_donors.sort_unstable();
        for (campaign_id, n) in new_donors {
            cf::add_to_totals(txn, campaign_id, 0, 0, n).await?;
        }
    }
    let year = cf::year_at_base(now);
    let n = rows.len() as i64;
    let last = take_receipt_numbers(txn, year, n).await?;
    let numbers: Vec<String> = (0..n).map(|k| format!("{year}-{:06}", last - n + 1 + k)).collect();
    confirm_rows(txn, rows, lines, &numbers, now).await?;
    Ok(numbers)
}

/// Takes `n` receipt numbers of `year` in one statement (creating the year's counter row
/// when needed) and returns the last of them: the block is `last - n + 1 ..= last`. The
/// counter row is locked until commit, so blocks never overlap, and it commits or rolls back
/// with the confirmations: gapless.
async fn take_receipt_numbers(txn: &DatabaseTransaction, year: i32, n: i64) -> AppResult<i64> {
    let backend = txn.get_database_backend();
    let sql = "INSERT INTO receipt_counters (year, last_number) VALUES ($1, $2) \
        ON CONFLICT (year) DO UPDATE SET last_number = receipt_counters.last_number + excluded.last_number \
        RETURNING last_number";
    let sql = if backend == DatabaseBackend::Postgres { sql.to_owned() } else { sql.replace('$', "?") };
    let row = txn
        .query_one_raw(Statement::from_sql_and_values(backend, sql, [year.into(), n.into()]))
        .await?
        .ok_or_else(|| AppError::Internal("no receipt counter".into()))?;
    Ok(row.try_get("", "last_number")?)
}

/// Marks the locked pledges `rows` confirmed with their receipt numbers in one statement
/// (a join with the list of rows, not a CASE per row, which costs the square of the batch),
/// giving pledges recorded without a reference the statement's. Conditional on the status,
/// like every confirmation.
async fn confirm_rows(
    txn: &DatabaseTransaction,
    rows: &[(usize, donation::Model)],
    lines: &[PlannedLine],
    numbers: &[String],
    now: DateTime<Utc>,
) -> AppResult<()> {
    use sea_orm::ActiveEnum;
    let backend = txn.get_database_backend();
    let mark = |i: usize| match backend {
        DatabaseBackend::Postgres => format!("${i}"),
        _ => format!("?{i}"),
    };
    let mut values: Vec<sea_orm::Value> =
        vec![DonationStatus::Confirmed.to_value().into(), DonationStatus::Pledged.to_value().into(), now.into()];
    let mut list = String::new();
    for ((i, d), number) in rows.iter().zip(numbers) {
        let reference = match &d.external_reference {
            None => lines[*i].reference.clone(),
            Some(_) => None,
        };
        let at = values.len();
        if !list.is_empty() {
            list.push_str(", ");
        }
        list.push_str(&format!("({}, {}, {})", mark(at + 1), mark(at + 2), mark(at + 3)));
        values.push(d.id.into());
        values.push(number.clone().into());
        values.push(reference.into());
    }
    // VALUES columns are `column1`… on both backends.
    let sql = format!(
        "UPDATE donations SET status = {c}, confirmed_at = {t}, received_at = {t}, receipt_number = v.column2, \
           external_reference = COALESCE(donations.external_reference, v.column3) \
         FROM (VALUES {list}) AS v WHERE donations.id = v.column1 AND donations.status = {p}",
        c = mark(1),
        p = mark(2),
        t = mark(3),
    );
    txn.execute_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
    Ok(())
}
