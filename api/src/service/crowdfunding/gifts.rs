//! Gifts: pledges by accounts, partners and guests, with their idempotency.
#[allow(unused_imports)]
use super::*;

/// Who records a donation: an account giving as itself, a partner recording a guest, or
/// staff recording a guest's offline gift (bank transfer, cash).
#[derive(Clone, Debug)]
pub enum Donor {
    Account { id: i64, display_name: String },
    Partner { key_id: i64 },
    StaffForGuest { staff_account_id: i64 },
}

impl Donor {
    /// The scope its client keys are unique in.
    pub fn scope(&self) -> String {
        match self {
            Donor::Account { id, .. } => format!("account:{id}"),
            Donor::Partner { key_id } => format!("partner:{key_id}"),
            Donor::StaffForGuest { staff_account_id } => format!("staff:{staff_account_id}"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct NewDonation {
    pub campaign_id: i64,
    pub amount_fen: i64,
    pub channel: DonationChannel,
    pub external_reference: Option<String>,
    /// For accounts: how to show them (default their display name). For guests: required
    /// unless anonymous.
    pub donor_name: Option<String>,
    pub display_mode: DisplayMode,
    pub message: Option<String>,
    pub client_key: String,
}

/// What a donation is about, hashed to tell a replay from a reuse of its client key.
pub(super) fn content_digest(d: &NewDonation, donor_name: &str) -> String {
    use sea_orm::ActiveEnum;
    let content = serde_json::json!([
        d.campaign_id,
        d.amount_fen,
        d.channel.to_value(),
        d.external_reference,
        donor_name,
        d.display_mode.to_value(),
        d.message.as_deref().map(str::trim).unwrap_or_default(),
    ]);
    crate::service::identity::sha256_hex(&content.to_string())
}

pub(super) async fn find_by_client_key(
    db: &impl ConnectionTrait,
    scope: &str,
    key: &str,
) -> AppResult<Option<donation::Model>> {
    Ok(donation::Entity::find()
        .filter(donation::Column::ClientScope.eq(scope))
        .filter(donation::Column::ClientKey.eq(key))
        .one(db)
        .await?)
}

pub(super) fn replay_or_conflict(existing: donation::Model, digest: &str) -> AppResult<donation::Model> {
    if existing.content_digest == digest {
        Ok(existing)
    } else {
        Err(AppError::Conflict(
            "this clientKey was already used for a different donation; use a new key for a new donation".into(),
        ))
    }
}

/// Command: records a pledge. Signed-in accounts give as themselves; staff with
/// `record_for_guest` record a guest's offline gift; partner keys with DONATE record guests.
pub async fn donate_as(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    record_for_guest: bool,
    input: NewDonation,
    contact: crate::service::receipts::GuestContact,
) -> AppResult<donation::Model> {
    viewer.require_donate()?;
    let donor = match (&viewer.account, &viewer.partner) {
        (Some(a), _) if record_for_guest => {
            viewer.require_record_guest_donation()?;
            Donor::StaffForGuest { staff_account_id: a.id }
        }
        (Some(a), _) => Donor::Account { id: a.id, display_name: a.display_name.clone() },
        (None, Some(p)) => Donor::Partner { key_id: p.key_id },
        (None, None) => return Err(AppError::Unauthenticated),
    };
    as_viewer!(viewer, |actor| donate_with_contact(ctx, actor, &donor, input.clone(), &contact))
}

/// Command: confirms a pledge once its money arrived (staff or a RECONCILE key).
pub async fn confirm_donation(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    id: i64,
    external_reference: Option<String>,
) -> AppResult<donation::Model> {
    viewer.require_reconcile_donations()?;
    as_viewer!(viewer, |actor| confirm(ctx, actor, id, external_reference.clone()))
}

/// Command: cancels a pledge (whoever reconciles, or the donor who made it).
pub async fn cancel_donation(ctx: Ctx<'_>, viewer: &Viewer, id: i64) -> AppResult<donation::Model> {
    let current = match find_donation(ctx.db, id).await {
        Ok(d) => d,
        // Do not tell callers who may cancel nothing whether a donation exists.
        Err(e) => {
            viewer.require_cancel_donation(None)?;
            return Err(e);
        }
    };
    viewer.require_cancel_donation(current.donor_account_id)?;
    as_viewer!(viewer, |actor| cancel(ctx, actor, id))
}

/// Command: refunds a confirmed or held donation, in full or in part (staff or a RECONCILE key).
pub async fn refund_donation(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    id: i64,
    amount_fen: Option<i64>,
    reason: Option<String>,
) -> AppResult<(donation::Model, donation::Model)> {
    viewer.require_reconcile_donations()?;
    as_viewer!(viewer, |actor| refund(ctx, actor, id, amount_fen, reason.clone()))
}

/// Command: records that money for donation `id` arrived (staff or a RECONCILE key): a live
/// pledge is confirmed; money for an expired or cancelled pledge or a cancelled campaign is
/// held for staff; a repeat changes nothing.
pub async fn record_donation_payment(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    id: i64,
    external_reference: Option<String>,
) -> AppResult<(donation::Model, PaymentOutcome)> {
    viewer.require_reconcile_donations()?;
    as_viewer!(viewer, |actor| receive(ctx, actor, id, external_reference.clone(), Arrival::Payment))
}

/// Command: counts a held late payment after all (staff or a RECONCILE key).
pub async fn accept_late_payment(ctx: Ctx<'_>, viewer: &Viewer, id: i64) -> AppResult<donation::Model> {
    viewer.require_reconcile_donations()?;
    as_viewer!(viewer, |actor| accept_late(ctx, actor, id))
}

pub(crate) fn donation_event(kind: EventKind, d: &donation::Model) -> NewEvent {
    gift_event(kind, d.id, d.campaign_id, d.amount_fen, d.donor_account_id)
}

fn gift_event(kind: EventKind, id: i64, campaign_id: i64, amount_fen: i64, account: Option<i64>) -> NewEvent {
    NewEvent::new(kind, id).account(account).payload(json!({ "campaignId": campaign_id, "amountFen": amount_fen }))
}

/// Records a pledge. The same client key with the same content returns the original
/// donation (a network retry, which writes nothing); with different content it is a CONFLICT.
pub async fn donate(ctx: Ctx<'_>, actor: &Actor, donor: &Donor, input: NewDonation) -> AppResult<donation::Model> {
    donate_with_contact(ctx, actor, donor, input, &Default::default()).await
}

/// Records a pledge, a guest's with the phone or email they are named by (kept only as
/// digests, see `service::receipts`): with it the guest finds their receipts later.
pub async fn donate_with_contact(
    ctx: Ctx<'_>,
    actor: &Actor,
    donor: &Donor,
    input: NewDonation,
    contact: &crate::service::receipts::GuestContact,
) -> AppResult<donation::Model> {
    let db = ctx.db;
    if matches!(donor, Donor::Account { .. }) && !contact.is_empty() {
        return Err(AppError::bad_input(
            "guestPhone",
            "a guest's contact is for guests' donations; accounts find theirs under myDonations",
        ));
    }
    let (phone_digest, email_digest) = crate::service::receipts::digests_of(ctx.settings, contact)?;
    let now = crate::service::now();
    let client_key = input.client_key.trim().to_owned();
    if client_key.is_empty() || client_key.len() > 100 || client_key.chars().any(char::is_control) {
        return Err(AppError::bad_input("clientKey", "clientKey is 1 to 100 printable characters"));
    }
    if input.amount_fen <= 0 || input.amount_fen > MAX_DONATION_FEN {
        return Err(AppError::bad_input(
            "amountFen",
            format!("amountFen is between 1 and {MAX_DONATION_FEN} fen (1,000,000 yuan)"),
        ));
    }
    let external_reference = optional_text("externalReference", input.external_reference.clone(), 200)?;
    let message = long_text("message", input.message.clone(), 500)?;
    let named = optional_text("donorName", input.donor_name.clone(), 100)?;
    let donor_name = match (donor, named) {
        (_, Some(name)) => name,
        (Donor::Account { display_name, .. }, None) => display_name.clone(),
        (Donor::Partner { .. } | Donor::StaffForGuest { .. }, None) if input.display_mode == DisplayMode::Anonymous => {
            String::new()
        }
        (Donor::Partner { .. } | Donor::StaffForGuest { .. }, None) => {
            return Err(AppError::bad_input("donorName", "a guest's donation needs the donor's name unless anonymous"));
        }
    };
    let scope = donor.scope();
    let mut digest =
        content_digest(&NewDonation { external_reference: external_reference.clone(), ..input.clone() }, &donor_name);
    if phone_digest.is_some() || email_digest.is_some() {
        // A replay names the same guest; the digests are keyed, so this reveals nothing.
        digest = crate::service::identity::sha256_hex(&format!("{digest}:{phone_digest:?}:{email_digest:?}"));
    }
    let (account_id, partner_id) = match donor {
        Donor::Account { id, .. } => (Some(*id), None),
        Donor::Partner { key_id } => (None, Some(*key_id)),
        Donor::StaffForGuest { .. } => (None, None),
    };
    let row = donation::ActiveModel {
        campaign_id: Set(input.campaign_id),
        amount_fen: Set(input.amount_fen),
        channel: Set(input.channel),
        external_reference: Set(external_reference),
        donor_account_id: Set(account_id),
        partner_key_id: Set(partner_id),
        donor_name: Set(donor_name),
        display_mode: Set(input.display_mode),
        message: Set(message),
        status: Set(DonationStatus::Pledged),
        client_scope: Set(Some(scope.clone())),
        client_key: Set(Some(client_key.clone())),
        content_digest: Set(digest.clone()),
        refund_of_id: Set(None),
        refunded_at: Set(None),
        receipt_number: Set(None),
        confirmed_at: Set(None),
        cancelled_at: Set(None),
        created_at: Set(now),
        guest_phone_digest: Set(phone_digest),
        guest_email_digest: Set(email_digest),
        ..Default::default()
    };
    if db.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        let event = gift_event(EventKind::DonationPledged, 0, input.campaign_id, input.amount_fen, account_id);
        match pledge_in_one_statement(db, actor, &row, input.campaign_id, event, now).await {
            Ok(Some((model, appended))) => {
                ctx.log.published(&appended).await;
                return Ok(model);
            }
            // The campaign does not take gifts now: the transaction below says why, or
            // answers a replay.
            Ok(None) => {}
            Err(err) => return replay_if_taken(db, &scope, &client_key, &digest, err).await,
        }
    }
    let txn = db.begin().await?;
    let c = campaign::Entity::find_by_id(input.campaign_id)
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::bad_input("campaignId", "no such campaign"))
        .and_then(|c| accepting_donations(&c, now).map(|()| c));
    // A replay answers with the original even after the campaign ended. Looked up only when
    // the gift is refused or its key is taken (below): a new gift costs no extra round trip.
    let c = match c {
        Ok(c) => c,
        Err(refused) => {
            txn.rollback().await.ok();
            return match find_by_client_key(db, &scope, &client_key).await? {
                Some(existing) => replay_or_conflict(existing, &digest),
                None => Err(refused),
            };
        }
    };
    match row.insert(&txn).await {
        Ok(model) => {
            let mut event = donation_event(EventKind::DonationPledged, &model);
            event.organization_id = Some(c.organization_id);
            ctx.commit(txn, actor, vec![event]).await?;
            Ok(model)
        }
        Err(err) => {
            txn.rollback().await.ok();
            replay_if_taken(db, &scope, &client_key, &digest, err).await
        }
    }
}

/// A gift whose insert failed: when its client key was taken (a replay, or a concurrent
/// request with the same key that won the race), the original donation answers.
async fn replay_if_taken(
    db: &DatabaseConnection,
    scope: &str,
    client_key: &str,
    digest: &str,
    err: sea_orm::DbErr,
) -> AppResult<donation::Model> {
    if !matches!(err.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_))) {
        return Err(err.into());
    }
    match find_by_client_key(db, scope, client_key).await? {
        Some(existing) => replay_or_conflict(existing, digest),
        None => Err(err.into()),
    }
}

/// A new pledge in one statement (PostgreSQL): the campaign is checked to take gifts now, the
/// row is inserted and `event` appended for it (its aggregate is the new row), all or nothing, with no
/// transaction around several statements. `None` when the campaign does not take gifts now.
async fn pledge_in_one_statement(
    db: &DatabaseConnection,
    actor: &Actor,
    row: &donation::ActiveModel,
    campaign_id: i64,
    event: NewEvent,
    now: DateTime<Utc>,
) -> Result<Option<(donation::Model, crate::events::Appended)>, sea_orm::DbErr> {
    use sea_orm::{ActiveEnum, ActiveValue, FromQueryResult, IdenStatic, Iterable};
    let backend = db.get_database_backend();
    let value = |column: donation::Column| match row.get(column) {
        ActiveValue::Set(v) | ActiveValue::Unchanged(v) => Some(v),
        ActiveValue::NotSet => None,
    };
    let mut values: Vec<sea_orm::Value> =
        vec![campaign_id.into(), CampaignStatus::Active.to_value().into(), now.into()];
    let (mut columns, mut exprs) = (Vec::new(), Vec::new());
    for column in donation::Column::iter() {
        if let Some(v) = value(column) {
            values.push(v);
            columns.push(column.as_str());
            exprs.push(format!("${}", values.len()));
        }
    }
    let from = crate::events::log::FromStatement {
        aggregate_id: Some("d.id"),
        organization_id: Some("c.organization_id"),
        ..Default::default()
    };
    let event_row = crate::events::log::row(backend, actor, &event, now, from, &mut values);
    let sql = format!(
        "WITH c AS (SELECT id, organization_id FROM campaigns WHERE id = $1 AND status = $2 AND starts_at <= $3 \
           AND ends_at > $3), \
         d AS (INSERT INTO donations ({}) SELECT {} FROM c RETURNING *), \
         e AS (INSERT INTO domain_events ({}) SELECT {event_row} FROM d, c RETURNING id) \
         SELECT d.*, (SELECT id FROM e) AS event_id FROM d",
        columns.join(", "),
        exprs.join(", "),
        crate::events::log::COLUMNS
    );
    let Some(result) = db.query_one_raw(sea_orm::Statement::from_sql_and_values(backend, sql, values)).await? else {
        return Ok(None);
    };
    let model = donation::Model::from_query_result(&result, "")?;
    let event_id: i64 = result.try_get("", "event_id")?;
    let appended = crate::events::Appended { events: vec![(event_id, event.kind, model.id, event.payload)] };
    Ok(Some((model, appended)))
}

pub(crate) fn accepting_donations(c: &campaign::Model, now: DateTime<Utc>) -> AppResult<()> {
    let reason = match c.status {
        CampaignStatus::Active if now < c.starts_at => Some("has not started yet".to_owned()),
        CampaignStatus::Active if now >= c.ends_at => Some("has ended".to_owned()),
        CampaignStatus::Active => None,
        CampaignStatus::Ended => Some("has ended".to_owned()),
        CampaignStatus::Cancelled => Some("was cancelled".to_owned()),
        CampaignStatus::Draft | CampaignStatus::PendingReview => Some("is not published".to_owned()),
    };
    match reason {
        None => Ok(()),
        Some(r) => Err(AppError::bad_input("campaignId", format!("this campaign is not accepting donations: it {r}"))),
    }
}

pub async fn donations_by_ids(db: &impl ConnectionTrait, ids: &[i64]) -> AppResult<Vec<donation::Model>> {
    Ok(donation::Entity::find().filter(donation::Column::Id.is_in(ids.iter().copied())).all(db).await?)
}

pub async fn find_donation(db: &impl ConnectionTrait, id: i64) -> AppResult<donation::Model> {
    donation::Entity::find_by_id(id).one(db).await?.ok_or_else(|| AppError::NotFound("donation".into()))
}
