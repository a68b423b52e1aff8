//! A pledge's later life: late payments, expiry, cancellation, refunds and the refund queue.
#[allow(unused_imports)]
use super::*;

/// Counts a held late payment after all (its pledge expired or was cancelled, the money came
/// and the donor still wants to give): CONFIRMED with a receipt. Never for a cancelled campaign.
pub async fn accept_late(ctx: Ctx<'_>, actor: &Actor, id: i64) -> AppResult<donation::Model> {
    let now = crate::service::now();
    let txn = ctx.db.begin().await?;
    let current = lock_donation(&txn, id).await?;
    let late = matches!(current.hold_reason, Some(HoldReason::PledgeExpired | HoldReason::PledgeCancelled));
    if current.status != DonationStatus::Received || !late || current.refunded_fen != 0 {
        return Err(AppError::refused(
            "NOT_A_LATE_PAYMENT",
            "only money held as a late payment (its pledge expired or was cancelled) and not refunded can be accepted",
        ));
    }
    let c = load(&txn, current.campaign_id).await?;
    if c.status == CampaignStatus::Cancelled {
        return Err(AppError::conflict("CAMPAIGN_CANCELLED", "the campaign was cancelled: refund this payment"));
    }
    let reference = current.external_reference.clone();
    let (model, appended) = count_in(&txn, actor, current, now, reference, DonationStatus::Received).await?;
    ctx.finish(txn, appended).await?;
    Ok(model)
}

/// Marks pledges past the TTL `EXPIRED`, in batches of `batch`, each batch one transaction
/// with its events; returns how many. Counts never include pledges, so nothing else changes;
/// rows a confirmation holds right now are skipped (PostgreSQL) and left to the next run.
pub async fn expire_pledges(ctx: Ctx<'_>, actor: &Actor, now: DateTime<Utc>, batch: u64) -> AppResult<u64> {
    use sea_orm::sea_query::{LockBehavior, LockType};
    let ttl = Duration::from_std(ctx.settings.pledge_ttl).map_err(|e| AppError::Internal(e.to_string()))?;
    let mut total = 0;
    loop {
        let txn = ctx.db.begin().await?;
        let due = donation::Entity::find()
            .filter(donation::Column::Status.eq(DonationStatus::Pledged))
            .filter(donation::Column::CreatedAt.lte(now - ttl))
            .order_by_asc(donation::Column::CreatedAt)
            .order_by_asc(donation::Column::Id)
            .limit(batch)
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .all(&txn)
            .await?;
        if due.is_empty() {
            txn.rollback().await.ok();
            return Ok(total);
        }
        let ids: Vec<i64> = due.iter().map(|d| d.id).collect();
        let updated = donation::Entity::update_many()
            .col_expr(donation::Column::Status, Expr::val(DonationStatus::Expired))
            .col_expr(donation::Column::ExpiredAt, Expr::val(Some(now)))
            .filter(donation::Column::Id.is_in(ids))
            .filter(donation::Column::Status.eq(DonationStatus::Pledged))
            .exec(&txn)
            .await?;
        let events = due.iter().map(|d| donation_event(EventKind::DonationExpired, d)).collect();
        ctx.commit(txn, actor, events).await?;
        total += updated.rows_affected;
        if (due.len() as u64) < batch {
            return Ok(total);
        }
    }
}

pub async fn cancel(ctx: Ctx<'_>, actor: &Actor, id: i64) -> AppResult<donation::Model> {
    let now = crate::service::now();
    let txn = ctx.db.begin().await?;
    let current = lock_donation(&txn, id).await?;
    let status = effective_status(&current, ctx.settings.pledge_ttl, now);
    if status != DonationStatus::Pledged {
        return Err(AppError::bad_input(
            "id",
            format!("only a PLEDGED donation can be cancelled; this one is {}", donation_status_name(status)),
        ));
    }
    donation::Entity::update_many()
        .col_expr(donation::Column::Status, Expr::val(DonationStatus::Cancelled))
        .col_expr(donation::Column::CancelledAt, Expr::val(Some(now)))
        .filter(donation::Column::Id.eq(id))
        .filter(donation::Column::Status.eq(DonationStatus::Pledged))
        .exec_one(&txn, || changed_meanwhile("donation"))
        .await?;
    let model = donation::Model { status: DonationStatus::Cancelled, cancelled_at: Some(now), ..current };
    ctx.commit(txn, actor, vec![donation_event(EventKind::DonationCancelled, &model)]).await?;
    Ok(model)
}

/// Refunds `amount_fen` of a donation (all that is left when `None`) with a reversing record
/// (negative amount, status REFUNDED; RETURNED for held money, which never counted). A
/// donation may be refunded in several parts up to its amount; once nothing is left it is
/// marked `refunded_at` and stops counting as a donation and a donor. The donation row is
/// locked first and its `refunded_fen` grows only by a conditional update the database also
/// checks, so concurrent refunds never return more than was given. Returns (original,
/// reversing record).
pub async fn refund(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: i64,
    amount_fen: Option<i64>,
    reason: Option<String>,
) -> AppResult<(donation::Model, donation::Model)> {
    use donation::Column as D;
    let db = ctx.db;
    let now = crate::service::now();
    let reason = long_text("reason", reason, 500)?;
    let txn = db.begin().await?;
    let original = lock_donation(&txn, id).await?;
    let counted = match original.status {
        DonationStatus::Confirmed => true,
        DonationStatus::Received => false,
        _ => {
            return Err(AppError::bad_input("id", "only a confirmed or held donation can be refunded"));
        }
    };
    let left = original.amount_fen - original.refunded_fen;
    if left <= 0 || original.refunded_at.is_some() {
        return Err(AppError::rule("id", "NOTHING_LEFT_TO_REFUND", "this donation was refunded in full"));
    }
    let amount = amount_fen.unwrap_or(left);
    if amount <= 0 || amount > left {
        return Err(AppError::rule(
            "amountFen",
            "REFUND_EXCEEDS_REMAINING",
            format!("a refund of this donation is 1 to {left} fen (what is left of it)"),
        ));
    }
    let full = amount == left;
    let mut update = donation::Entity::update_many().col_expr(D::RefundedFen, Expr::col(D::RefundedFen).add(amount));
    if full {
        update = update.col_expr(D::RefundedAt, Expr::val(Some(now)));
    }
    update
        .filter(D::Id.eq(id))
        .filter(D::Status.eq(original.status))
        .filter(D::RefundedAt.is_null())
        .filter(Expr::col(D::RefundedFen).add(amount).lte(Expr::col(D::AmountFen)))
        .exec_one(&txn, || AppError::Conflict("the donation was refunded meanwhile; reload and retry".into()))
        .await?;
    let reversal = donation::ActiveModel {
        campaign_id: Set(original.campaign_id),
        amount_fen: Set(-amount),
        channel: Set(original.channel),
        external_reference: Set(original.external_reference.clone()),
        donor_account_id: Set(original.donor_account_id),
        partner_key_id: Set(original.partner_key_id),
        donor_name: Set(original.donor_name.clone()),
        display_mode: Set(original.display_mode),
        message: Set(reason),
        status: Set(if counted { DonationStatus::Refunded } else { DonationStatus::Returned }),
        content_digest: Set(String::new()),
        refund_of_id: Set(Some(original.id)),
        refunded_fen: Set(0),
        confirmed_at: Set(Some(now)),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    let event = NewEvent::new(EventKind::DonationRefunded, original.id)
        .account(original.donor_account_id)
        .payload(json!({ "campaignId": original.campaign_id, "amountFen": amount, "refundId": reversal.id,
            "remainingFen": left - amount, "counted": counted }));
    let appended = crate::events::log::append(&txn, actor, vec![event]).await?;
    if counted {
        let (count, donors) = if full { (-1, -guest_donor(&original)) } else { (0, 0) };
        add_to_totals(&txn, original.campaign_id, -amount, count, donors).await?;
        if full {
            adjust_donor_count(&txn, &original, -1).await?;
        }
    }
    let original = donation::Model {
        refunded_fen: original.refunded_fen + amount,
        refunded_at: if full { Some(now) } else { None },
        ..original
    };
    ctx.finish(txn, appended).await?;
    Ok((original, reversal))
}

/// Held money staff must act on, oldest first: payments for cancelled campaigns (to refund)
/// and late payments (to accept or refund). Refunding one takes it off the queue.
pub async fn refund_queue(
    db: &impl ConnectionTrait,
    campaign_id: Option<i64>,
    reasons: &[HoldReason],
    page: PageRequest<'_>,
) -> AppResult<Page<donation::Model>> {
    let mut select = donation::Entity::find()
        .filter(donation::Column::Status.eq(DonationStatus::Received))
        .filter(donation::Column::RefundedAt.is_null());
    if let Some(id) = campaign_id {
        select = select.filter(donation::Column::CampaignId.eq(id));
    }
    if !reasons.is_empty() {
        select = select.filter(donation::Column::HoldReason.is_in(reasons.iter().copied()));
    }
    let key = SortKey::<donation::Entity>::time(donation::Column::CreatedAt, donation::Column::Id, SortDirection::Asc);
    pagination::paginate(db, select, &key, page).await
}
