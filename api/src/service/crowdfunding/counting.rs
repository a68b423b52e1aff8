//! Counting money in: campaign totals, donors, receipt numbers, and how a confirmation or an arrival is recorded.
#[allow(unused_imports)]
use super::*;

/// Adds `delta_fen`, `delta_count` and `delta_donors` to a campaign's totals in place (never
/// read-modify-write). On PostgreSQL the update locks the campaign row until commit, which
/// serializes everything that changes one campaign's totals.
pub(crate) async fn add_to_totals(
    db: &impl ConnectionTrait,
    campaign_id: i64,
    delta_fen: i64,
    delta_count: i64,
    delta_donors: i64,
) -> AppResult<()> {
    use campaign::Column as C;
    let mut update = campaign::Entity::update_many()
        .col_expr(C::RaisedFen, Expr::col(C::RaisedFen).add(delta_fen))
        .col_expr(C::DonationCount, Expr::col(C::DonationCount).add(delta_count));
    if delta_donors != 0 {
        update = update.col_expr(C::DonorCount, Expr::col(C::DonorCount).add(delta_donors));
    }
    update.filter(C::Id.eq(campaign_id)).exec(db).await?;
    Ok(())
}

/// Whether `account` has a confirmed, unrefunded donation to `campaign_id` other than
/// `except`. Called after `add_to_totals` in the same transaction: the campaign row lock is
/// held then, and at READ COMMITTED this statement sees every change committed by the
/// transactions that held it before, so two confirmations by one donor count them once.
pub(super) async fn gives_otherwise(
    db: &impl ConnectionTrait,
    campaign_id: i64,
    account: i64,
    except: i64,
) -> AppResult<bool> {
    let other = donation::Entity::find()
        .select_only()
        .column(donation::Column::Id)
        .filter(donation::Column::DonorAccountId.eq(account))
        .filter(donation::Column::CampaignId.eq(campaign_id))
        .filter(donation::Column::Status.eq(DonationStatus::Confirmed))
        .filter(donation::Column::RefundedAt.is_null())
        .filter(donation::Column::Id.ne(except))
        .limit(1)
        .into_tuple::<i64>()
        .one(db)
        .await?;
    Ok(other.is_some())
}

/// Keeps `donor_count` right when `d` starts (`sign` 1) or stops (`sign` -1) counting: a
/// guest donation is a donor of its own (already in `add_to_totals`), an account counts
/// while it has at least one counting donation.
pub(super) async fn adjust_donor_count(db: &impl ConnectionTrait, d: &donation::Model, sign: i64) -> AppResult<()> {
    let Some(account) = d.donor_account_id else { return Ok(()) };
    if !gives_otherwise(db, d.campaign_id, account, d.id).await? {
        add_to_totals(db, d.campaign_id, 0, 0, sign).await?;
    }
    Ok(())
}

/// How `add_to_totals` changes the donor count for `d` directly (guests only).
pub(crate) fn guest_donor(d: &donation::Model) -> i64 {
    i64::from(d.donor_account_id.is_none())
}

/// Why money is recorded: staff confirming a pledge (`confirmDonation`, refused for a
/// cancelled campaign) or a payment that arrived (a statement line, a platform notification,
/// `recordDonationPayment`), which is recorded whatever the campaign's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    Confirm,
    Payment,
}

/// What recording money for a donation did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaymentOutcome {
    /// It counts from now on, with a receipt number.
    Confirmed,
    /// The money is recorded but held for staff (see the donation's `hold_reason`).
    Held(HoldReason),
    /// The money was recorded before (a repeated statement line or notification): nothing changed.
    AlreadyRecorded,
}

/// Whether a pledge's time to be paid has run out. Exact whether or not the expiry sweep has
/// marked it yet: the status says PLEDGED until the sweep runs, the clock does not wait.
pub fn pledge_expired(d: &donation::Model, ttl: std::time::Duration, now: DateTime<Utc>) -> bool {
    pledge_expired_at(d.status, d.created_at, ttl, now)
}

/// [`pledge_expired`] from a donation's status and creation time alone.
pub fn pledge_expired_at(
    status: DonationStatus,
    created_at: DateTime<Utc>,
    ttl: std::time::Duration,
    now: DateTime<Utc>,
) -> bool {
    match status {
        DonationStatus::Expired => true,
        DonationStatus::Pledged => Duration::from_std(ttl).is_ok_and(|ttl| created_at + ttl <= now),
        _ => false,
    }
}

/// The status a donation has now: a pledge past its TTL is EXPIRED even before the sweep.
pub fn effective_status(d: &donation::Model, ttl: std::time::Duration, now: DateTime<Utc>) -> DonationStatus {
    if pledge_expired(d, ttl, now) { DonationStatus::Expired } else { d.status }
}

pub(crate) async fn lock_donation(db: &impl ConnectionTrait, id: i64) -> AppResult<donation::Model> {
    donation::Entity::find_by_id(id)
        .lock_exclusive()
        .one(db)
        .await?
        .ok_or_else(|| AppError::NotFound("donation".into()))
}

/// Reads donation `id` with its campaign in one statement, locking only the donation row
/// (`FOR UPDATE OF donations`): the campaign row, which every gift to it shares, is taken
/// later and as briefly as possible.
async fn lock_donation_with_campaign(
    db: &impl ConnectionTrait,
    id: i64,
) -> AppResult<(donation::Model, campaign::Model)> {
    use sea_orm::sea_query::LockType;
    let of_campaign: sea_orm::RelationDef = donation::Entity::belongs_to(campaign::Entity)
        .from(donation::Column::CampaignId)
        .to(campaign::Column::Id)
        .into();
    let mut select =
        donation::Entity::find_by_id(id).join(sea_orm::JoinType::InnerJoin, of_campaign).select_also(campaign::Entity);
    sea_orm::QueryTrait::query(&mut select).lock_with_tables(LockType::Update, [donation::Entity]);
    match select.one(db).await? {
        Some((d, Some(c))) => Ok((d, c)),
        Some((_, None)) => Err(AppError::NotFound("campaign".into())),
        None => Err(AppError::NotFound("donation".into())),
    }
}

/// Confirms a pledge once its money arrived: it counts in the totals from now on and gets
/// a receipt number. A pledge past its TTL takes the late-payment path (recorded, held for
/// staff); a pledge of a cancelled campaign is refused with `CONFLICT` / `CAMPAIGN_CANCELLED`.
pub async fn confirm(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: i64,
    external_reference: Option<String>,
) -> AppResult<donation::Model> {
    Ok(receive(ctx, actor, id, external_reference, Arrival::Confirm).await?.0)
}

/// What money arriving for a donation does, decided from the donation and its campaign.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Decision {
    /// Recorded before (a repeated payment): nothing changes.
    AlreadyRecorded,
    /// Recorded as `RECEIVED`, held for staff; `expired` when the pledge's time ran out.
    Hold { reason: HoldReason, expired: bool },
    /// Counts: CONFIRMED, in the totals, with a receipt number.
    Count,
}

fn decide(
    ctx: Ctx<'_>,
    current: &donation::Model,
    campaign_status: CampaignStatus,
    arrival: Arrival,
    now: DateTime<Utc>,
) -> AppResult<Decision> {
    match (current.status, arrival) {
        (DonationStatus::Confirmed | DonationStatus::Received, Arrival::Payment) => {
            return Ok(Decision::AlreadyRecorded);
        }
        (DonationStatus::Pledged | DonationStatus::Expired, _) | (DonationStatus::Cancelled, Arrival::Payment) => {}
        _ => {
            return Err(AppError::bad_input(
                "id",
                format!(
                    "only a PLEDGED donation can be confirmed; this one is {}",
                    donation_status_name(effective_status(current, ctx.settings.pledge_ttl, now))
                ),
            ));
        }
    }
    let expired = pledge_expired(current, ctx.settings.pledge_ttl, now);
    let reason = if campaign_status == CampaignStatus::Cancelled {
        if arrival == Arrival::Confirm {
            return Err(AppError::conflict(
                "CAMPAIGN_CANCELLED",
                "the campaign was cancelled: its pledges cannot be confirmed; money that arrives for them is \
                 held for a refund",
            ));
        }
        HoldReason::CampaignCancelled
    } else if current.status == DonationStatus::Cancelled {
        HoldReason::PledgeCancelled
    } else if expired {
        HoldReason::PledgeExpired
    } else {
        return Ok(Decision::Count);
    };
    Ok(Decision::Hold { reason, expired })
}

/// How often an unlocked confirmation reads again when the donation changed between its read
/// and its write, before it takes the locked path.
const OPTIMISTIC_ATTEMPTS: usize = 3;

/// Records that the money of donation `id` arrived: a live pledge is confirmed; money for an
/// expired or cancelled pledge, or for a cancelled campaign, is recorded as `RECEIVED` with
/// its hold reason and counts nowhere. A repeated payment changes nothing. Of concurrent
/// arrivals one records.
///
/// On PostgreSQL the common case is one statement with no lock and no transaction of its own
/// ([`confirm_statement`]): it reads the donation with its campaign's status and, when the
/// donation is to count, confirms it on the condition that its status is still the one read,
/// counts it and appends its event. When it did not count, the decision is taken in Rust on
/// the row it read: a repeat or a refusal is answered from it; when the status changed between
/// the statement's read and its write (a racing confirmation, cancellation, payment or the
/// expiry sweep) the statement runs again, so the answer is the one a confirmation that waited
/// would give. Holds (rare) and SQLite take the locked transaction. The first attempt goes
/// through this instance's confirmation task ([`ConfirmationBatches`]): alone it is the same
/// statement; while another confirmation runs, it waits and is counted together with the
/// others that waited, in one transaction; what that task does not answer is tried here.
pub async fn receive(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: i64,
    external_reference: Option<String>,
    arrival: Arrival,
) -> AppResult<(donation::Model, PaymentOutcome)> {
    let external_reference = optional_text("externalReference", external_reference, 200)?;
    if ctx.db.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        for attempt in 0..OPTIMISTIC_ATTEMPTS {
            // First with whatever else this instance is confirming now (see `batches`).
            let batched = match attempt {
                0 => ctx.confirmations.confirm(actor, id, external_reference.clone()).await?,
                _ => None,
            };
            let (now, (current, campaign_status, counted)) = match batched {
                Some(answer) => answer,
                None => {
                    let now = crate::service::now();
                    let statement =
                        confirm_statement(ctx.settings.pledge_ttl, actor, id, now, external_reference.clone());
                    (now, confirmed_or_read(ctx.db, statement, now).await?)
                }
            };
            if let Some((receipt, appended)) = counted {
                ctx.log.published(&appended).await;
                let reference = external_reference.clone().or(current.external_reference.clone());
                return Ok((confirmed_model(current, now, reference, receipt), PaymentOutcome::Confirmed));
            }
            match decide(ctx, &current, campaign_status, arrival, now)? {
                Decision::AlreadyRecorded => return Ok((current, PaymentOutcome::AlreadyRecorded)),
                Decision::Hold { .. } => break,
                // It was to count when read, and changed before the write: read again.
                Decision::Count => continue,
            }
        }
    }
    let txn = ctx.db.begin().await?;
    let (model, outcome, appended) = receive_in(&txn, ctx, actor, id, external_reference, arrival).await?;
    ctx.finish(txn, appended).await?;
    Ok((model, outcome))
}

/// `receive` inside a caller's transaction (statement imports apply many in one), with the
/// donation row locked first.
pub(crate) async fn receive_in(
    txn: &sea_orm::DatabaseTransaction,
    ctx: Ctx<'_>,
    actor: &Actor,
    id: i64,
    external_reference: Option<String>,
    arrival: Arrival,
) -> AppResult<(donation::Model, PaymentOutcome, crate::events::Appended)> {
    let now = crate::service::now();
    let (current, c) = lock_donation_with_campaign(txn, id).await?;
    let reference = external_reference.or(current.external_reference.clone());
    let (reason, expired) = match decide(ctx, &current, c.status, arrival, now)? {
        Decision::AlreadyRecorded => {
            return Ok((current, PaymentOutcome::AlreadyRecorded, crate::events::Appended::default()));
        }
        Decision::Count => {
            let (model, appended) = count_in(txn, actor, current, now, reference, DonationStatus::Pledged).await?;
            return Ok((model, PaymentOutcome::Confirmed, appended));
        }
        Decision::Hold { reason, expired } => (reason, expired),
    };
    let expired_at = if expired { current.expired_at.or(Some(now)) } else { current.expired_at };
    donation::Entity::update_many()
        .col_expr(donation::Column::Status, Expr::val(DonationStatus::Received))
        .col_expr(donation::Column::HoldReason, Expr::val(Some(reason)))
        .col_expr(donation::Column::ReceivedAt, Expr::val(Some(now)))
        .col_expr(donation::Column::ExpiredAt, Expr::val(expired_at))
        .col_expr(donation::Column::ExternalReference, Expr::val(reference.clone()))
        .filter(donation::Column::Id.eq(id))
        .exec(txn)
        .await?;
    let model = donation::Model {
        status: DonationStatus::Received,
        hold_reason: Some(reason),
        received_at: Some(now),
        expired_at,
        external_reference: reference,
        ..current
    };
    let event = donation_event(EventKind::DonationReceived, &model).organization(Some(c.organization_id)).payload(
        json!({ "campaignId": model.campaign_id, "amountFen": model.amount_fen, "holdReason": hold_reason_name(reason) }),
    );
    let appended = crate::events::log::append(txn, actor, vec![event]).await?;
    Ok((model, PaymentOutcome::Held(reason), appended))
}

/// What a confirmed donation's row holds, without reading it again.
fn confirmed_model(
    current: donation::Model,
    now: DateTime<Utc>,
    reference: Option<String>,
    receipt: String,
) -> donation::Model {
    donation::Model {
        status: DonationStatus::Confirmed,
        confirmed_at: Some(now),
        received_at: Some(current.received_at.unwrap_or(now)),
        hold_reason: None,
        external_reference: reference,
        receipt_number: Some(receipt),
        ..current
    }
}

/// The receipt number of sequence `n` in `year`.
pub(super) fn receipt_number(year: i32, n: i64) -> String {
    format!("{year}-{n:06}")
}

/// The one statement that confirms `current` inside a caller's transaction on PostgreSQL:
/// `incubase_confirm_donation` (migrations m20261208_000001, m20261209_000001) locks it if its
/// status is still `from`, counts it (campaign totals, donor count, the year's receipt number)
/// and makes it CONFIRMED with that number in one update, and the `donation.confirmed` event
/// is appended only when it did. The donation row, the campaign row and the year's receipt
/// counter are taken in that order, always.
fn count_statement(
    db: &impl ConnectionTrait,
    actor: &Actor,
    current: &donation::Model,
    now: DateTime<Utc>,
    reference: Option<String>,
    from: DonationStatus,
) -> sea_orm::Statement {
    use sea_orm::ActiveEnum;
    let backend = db.get_database_backend();
    let mut values: Vec<sea_orm::Value> = vec![
        current.id.into(),
        from.to_value().into(),
        DonationStatus::Confirmed.to_value().into(),
        now.into(),
        reference.into(),
        year_at_base(now).into(),
    ];
    let event = donation_event(EventKind::DonationConfirmed, current);
    let row = crate::events::log::row(backend, actor, &event, now, Default::default(), &mut values);
    let sql = format!(
        "WITH c AS (SELECT incubase_confirm_donation($1, $2, $3, $4, $5, $6) AS n), \
         e AS (INSERT INTO domain_events ({}) SELECT {row} FROM c WHERE c.n IS NOT NULL RETURNING id) \
         SELECT c.n AS last_number, (SELECT id FROM e) AS event_id FROM c",
        crate::events::log::COLUMNS
    );
    sea_orm::Statement::from_sql_and_values(backend, sql, values)
}

/// The one statement that confirms donation `id` on PostgreSQL if it is to count now: read
/// with its campaign's status (`cur`), it counts when it is PLEDGED, within its time to be paid
/// and its campaign is not cancelled (the condition under which [`decide`] says
/// [`Decision::Count`]); then `incubase_confirm_donation` confirms it if its status is still the
/// one read and counts it, and `donation.confirmed` is appended only when that returned a
/// receipt number. The row comes back as it was read, with the receipt sequence and the
/// event's id when it counted.
pub(super) fn confirm_statement(
    ttl: std::time::Duration,
    actor: &Actor,
    id: i64,
    now: DateTime<Utc>,
    reference: Option<String>,
) -> sea_orm::Statement {
    use sea_orm::ActiveEnum;
    let backend = sea_orm::DatabaseBackend::Postgres;
    let paid_from = paid_from(ttl, now);
    let mut values: Vec<sea_orm::Value> = vec![
        id.into(),
        DonationStatus::Pledged.to_value().into(),
        paid_from.into(),
        CampaignStatus::Cancelled.to_value().into(),
        DonationStatus::Confirmed.to_value().into(),
        now.into(),
        reference.into(),
        year_at_base(now).into(),
    ];
    let event = NewEvent::new(EventKind::DonationConfirmed, 0);
    let from = crate::events::log::FromStatement {
        aggregate_id: Some("ok.id"),
        account_id: Some("ok.donor_account_id"),
        // What `donation_event` writes, built from the row the statement read.
        payload: Some("jsonb_build_object('amountFen', ok.amount_fen, 'campaignId', ok.campaign_id)::json"),
        ..Default::default()
    };
    let row = crate::events::log::row(backend, actor, &event, now, from, &mut values);
    let sql = format!(
        "WITH cur AS (SELECT d.*, c.status AS campaign_status FROM donations d \
           LEFT JOIN campaigns c ON c.id = d.campaign_id WHERE d.id = $1), \
         ok AS (SELECT * FROM cur WHERE status = $2 AND ($3::timestamptz IS NULL OR created_at > $3) \
           AND campaign_status <> $4), \
         n AS (SELECT incubase_confirm_donation(ok.id, ok.status, $5, $6, COALESCE($7, ok.external_reference), $8) \
           AS n FROM ok), \
         e AS (INSERT INTO domain_events ({}) SELECT {row} FROM ok, n WHERE n.n IS NOT NULL RETURNING id) \
         SELECT cur.*, n.n AS last_number, (SELECT id FROM e) AS event_id FROM cur LEFT JOIN n ON true",
        crate::events::log::COLUMNS
    );
    sea_orm::Statement::from_sql_and_values(backend, sql, values)
}

/// The earliest creation time of a pledge still within its time to be paid at `now` (see
/// `pledge_expired_at`); `None` when the TTL is too large to subtract.
pub(super) fn paid_from(ttl: std::time::Duration, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    Duration::from_std(ttl).ok().and_then(|ttl| now.checked_sub_signed(ttl))
}

/// A donation as a confirmation read it, its campaign's status, and the receipt number with
/// the appended event when the confirmation counted it.
pub(super) type ConfirmationRead = (donation::Model, CampaignStatus, Option<(String, crate::events::Appended)>);

/// Runs a [`confirm_statement`]: the donation as it was read, its campaign's status, and the
/// receipt number with the appended event when it counted.
pub(super) async fn confirmed_or_read(
    db: &impl ConnectionTrait,
    statement: sea_orm::Statement,
    now: DateTime<Utc>,
) -> AppResult<ConfirmationRead> {
    let row = db.query_one_raw(statement).await?.ok_or_else(|| AppError::NotFound("donation".into()))?;
    let current = <donation::Model as sea_orm::FromQueryResult>::from_query_result(&row, "")?;
    let campaign_status = row
        .try_get::<Option<CampaignStatus>>("", "campaign_status")?
        .ok_or_else(|| AppError::NotFound("campaign".into()))?;
    let counted = match (row.try_get::<Option<i64>>("", "last_number")?, row.try_get::<Option<i64>>("", "event_id")?) {
        (Some(n), Some(event_id)) => Some((receipt_number(year_at_base(now), n), confirmed_event(&current, event_id))),
        _ => None,
    };
    Ok((current, campaign_status, counted))
}

/// Runs a [`count_statement`]: the receipt number and the appended event, or `None` when the
/// donation was no longer in the status it was read in.
async fn counted(
    db: &impl ConnectionTrait,
    statement: sea_orm::Statement,
    current: &donation::Model,
    now: DateTime<Utc>,
) -> AppResult<Option<(String, crate::events::Appended)>> {
    let row = db.query_one_raw(statement).await?.ok_or_else(|| AppError::Internal("no confirmation row".into()))?;
    let (Some(n), Some(event_id)) =
        (row.try_get::<Option<i64>>("", "last_number")?, row.try_get::<Option<i64>>("", "event_id")?)
    else {
        return Ok(None);
    };
    Ok(Some((receipt_number(year_at_base(now), n), confirmed_event(current, event_id))))
}

/// The `donation.confirmed` event a statement appended for `current` as `event_id`.
pub(super) fn confirmed_event(current: &donation::Model, event_id: i64) -> crate::events::Appended {
    let event = donation_event(EventKind::DonationConfirmed, current);
    crate::events::Appended { events: vec![(event_id, event.kind, event.aggregate_id, event.payload)] }
}

/// Makes `current` count: CONFIRMED, added to the campaign's totals, with the next receipt
/// number of the year. Conditional on the status being `from`.
pub(super) async fn count_in(
    txn: &sea_orm::DatabaseTransaction,
    actor: &Actor,
    current: donation::Model,
    now: DateTime<Utc>,
    reference: Option<String>,
    from: DonationStatus,
) -> AppResult<(donation::Model, crate::events::Appended)> {
    let changed = || AppError::Conflict("the donation changed meanwhile; reload and retry".into());
    if txn.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        let statement = count_statement(txn, actor, &current, now, reference.clone(), from);
        let (receipt, appended) = counted(txn, statement, &current, now).await?.ok_or_else(changed)?;
        return Ok((confirmed_model(current, now, reference, receipt), appended));
    }
    let id = current.id;
    let year = year_at_base(now);
    // Conditional on the status: of two concurrent confirmations, one applies.
    let updated = donation::Entity::update_many()
        .col_expr(donation::Column::Status, Expr::val(DonationStatus::Confirmed))
        .col_expr(donation::Column::ConfirmedAt, Expr::val(Some(now)))
        .col_expr(donation::Column::ReceivedAt, Expr::val(Some(current.received_at.unwrap_or(now))))
        .col_expr(donation::Column::HoldReason, Expr::val(Option::<HoldReason>::None))
        .col_expr(donation::Column::ExternalReference, Expr::val(reference.clone()))
        .filter(donation::Column::Id.eq(id))
        .filter(donation::Column::Status.eq(from))
        .exec(txn)
        .await?;
    if updated.rows_affected != 1 {
        return Err(changed());
    }
    let appended =
        crate::events::log::append(txn, actor, vec![donation_event(EventKind::DonationConfirmed, &current)]).await?;
    let receipt = count_and_number(txn, &current, year).await?;
    Ok((confirmed_model(current, now, reference, receipt), appended))
}

/// The shared rows of a confirmation on SQLite (PostgreSQL does it all in
/// [`count_statement`]): adds `d` to its campaign's totals, counts its account as a donor
/// unless it already has another counting donation to the campaign, takes the year's next
/// receipt number (creating the counter row if needed) and writes it on the donation. SQLite
/// has one writer at a time, so these run one after the other inside the transaction.
async fn count_and_number(txn: &sea_orm::DatabaseTransaction, d: &donation::Model, year: i32) -> AppResult<String> {
    use sea_orm::{ActiveEnum, Statement};
    let backend = txn.get_database_backend();
    add_to_totals(txn, d.campaign_id, d.amount_fen, 1, guest_donor(d)).await?;
    if let Some(account) = d.donor_account_id {
        let sql = "UPDATE campaigns SET donor_count = donor_count + 1 WHERE id = ?1 AND NOT EXISTS \
            (SELECT 1 FROM donations o WHERE o.donor_account_id = ?2 AND o.campaign_id = ?1 AND o.status = ?3 \
              AND o.refunded_at IS NULL AND o.id <> ?4)";
        let confirmed = DonationStatus::Confirmed.to_value();
        let values: Vec<sea_orm::Value> = vec![d.campaign_id.into(), account.into(), confirmed.into(), d.id.into()];
        txn.execute_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
    }
    let sql = "INSERT INTO receipt_counters (year, last_number) VALUES (?1, 1) \
        ON CONFLICT (year) DO UPDATE SET last_number = last_number + 1 RETURNING last_number";
    let row = txn
        .query_one_raw(Statement::from_sql_and_values(backend, sql, vec![year.into()]))
        .await?
        .ok_or_else(|| AppError::Internal("no receipt counter".into()))?;
    let receipt = receipt_number(year, row.try_get("", "last_number")?);
    donation::Entity::update_many()
        .col_expr(donation::Column::ReceiptNumber, Expr::val(Some(receipt.clone())))
        .filter(donation::Column::Id.eq(d.id))
        .exec(txn)
        .await?;
    Ok(receipt)
}

pub fn hold_reason_name(reason: HoldReason) -> String {
    use sea_orm::ActiveEnum;
    reason.to_value()
}
