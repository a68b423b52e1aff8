//! Identity documents: purging them after the retention period; waitlist positions.
#[allow(unused_imports)]
use super::*;

/// Erases the identity document numbers of registrations for events that ended more than
/// `retention` ago (the type stays, to show that one was checked). Returns how many.
pub async fn purge_identity_documents(
    ctx: Ctx<'_>,
    actor: &Actor,
    retention: std::time::Duration,
    now: DateTime<Utc>,
) -> AppResult<u64> {
    let cutoff = now - Duration::from_std(retention).unwrap_or_else(|_| Duration::days(30));
    let ended = || {
        Query::select()
            .column(event::Column::Id)
            .from(event::Entity)
            .and_where(Expr::col(event::Column::EndsAt).lt(cutoff))
            .to_owned()
    };
    let txn = ctx.db.begin().await?;
    // Which events, and how many documents each: one event per event in the log.
    let affected: Vec<(i64, i64)> = registration::Entity::find()
        .select_only()
        .column(registration::Column::EventId)
        .column_as(registration::Column::Id.count(), "documents")
        .filter(registration::Column::IdDocNumber.is_not_null())
        .filter(registration::Column::EventId.in_subquery(ended()))
        .group_by(registration::Column::EventId)
        .into_tuple()
        .all(&txn)
        .await?;
    if affected.is_empty() {
        return Ok(0);
    }
    let result = registration::Entity::update_many()
        .col_expr(registration::Column::IdDocNumber, Expr::val(Option::<String>::None))
        .col_expr(registration::Column::IdDocPurgedAt, Expr::val(now))
        .filter(registration::Column::IdDocNumber.is_not_null())
        .filter(registration::Column::EventId.in_subquery(ended()))
        .exec(&txn)
        .await?;
    let events = affected
        .into_iter()
        .map(|(event_id, documents)| {
            LogEvent::new(Kind::EventIdentityDocumentsPurged, event_id).payload(json!({ "documents": documents }))
        })
        .collect();
    ctx.commit(txn, actor, events).await?;
    Ok(result.rows_affected)
}

/// Places in the waitlist (1 = next) of these registrations; others are left out.
pub async fn waitlist_positions(db: &impl ConnectionTrait, ids: &[i64]) -> AppResult<HashMap<i64, i64>> {
    let events = Query::select()
        .column(registration::Column::EventId)
        .from(registration::Entity)
        .and_where(Expr::col(registration::Column::Id).is_in(ids.iter().copied()))
        .to_owned();
    let waiting = registration::Entity::find()
        .select_only()
        .column(registration::Column::Id)
        .column(registration::Column::EventId)
        .filter(registration::Column::Status.eq(RegistrationStatus::Waitlisted))
        .filter(registration::Column::EventId.in_subquery(events))
        .order_by_asc(registration::Column::EventId)
        .order_by_asc(registration::Column::QueuedAt)
        .order_by_asc(registration::Column::Id)
        .into_tuple::<(i64, i64)>()
        .all(db)
        .await?;
    let mut map = HashMap::new();
    let mut current = (0_i64, 0_i64);
    for (id, event_id) in waiting {
        current = if current.0 == event_id { (event_id, current.1 + 1) } else { (event_id, 1) };
        if ids.contains(&id) {
            map.insert(id, current.1);
        }
    }
    Ok(map)
}
