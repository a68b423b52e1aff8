//! The audit trail: the log read newest first, filtered by aggregate, actor, kind and time,
//! and the retention that purges old operational events.
use chrono::{DateTime, Utc};
use entity::domain_event;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use super::kinds::Aggregate;
use super::log::ActorKind;
use crate::error::AppResult;
use crate::service::pagination::{self, Page, PageRequest, SortDirection, SortKey};

#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub aggregate: Option<(Aggregate, i64)>,
    pub actor: Option<(ActorKind, Option<i64>)>,
    /// Any of these kinds (by name).
    pub types: Vec<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

fn newest_first() -> SortKey<domain_event::Entity> {
    SortKey::<domain_event::Entity>::time(
        domain_event::Column::OccurredAt,
        domain_event::Column::Id,
        SortDirection::Desc,
    )
}

pub async fn list(
    db: &impl ConnectionTrait,
    filter: &AuditFilter,
    page: PageRequest<'_>,
) -> AppResult<Page<domain_event::Model>> {
    let mut select = domain_event::Entity::find();
    if let Some((aggregate, id)) = filter.aggregate {
        select = select
            .filter(domain_event::Column::AggregateType.eq(aggregate.type_name()))
            .filter(domain_event::Column::AggregateId.eq(id));
    }
    if let Some((kind, id)) = filter.actor {
        select = select.filter(domain_event::Column::ActorKind.eq(kind.as_str()));
        if let Some(id) = id {
            select = select.filter(domain_event::Column::ActorId.eq(id));
        }
    }
    if !filter.types.is_empty() {
        select = select.filter(domain_event::Column::EventType.is_in(filter.types.clone()));
    }
    if let Some(from) = filter.from {
        select = select.filter(domain_event::Column::OccurredAt.gte(from));
    }
    if let Some(to) = filter.to {
        select = select.filter(domain_event::Column::OccurredAt.lt(to));
    }
    pagination::paginate(db, select, &newest_first(), page).await
}

/// Deletes operational events older than `operational`, and audit events older than `audit`
/// when that is set (audit events are kept forever by default). Returns how many went.
pub async fn purge(
    db: &impl ConnectionTrait,
    operational: std::time::Duration,
    audit: Option<std::time::Duration>,
    now: DateTime<Utc>,
) -> AppResult<u64> {
    let before = |d: std::time::Duration| {
        chrono::Duration::from_std(d).ok().and_then(|d| now.checked_sub_signed(d)).unwrap_or(DateTime::<Utc>::MIN_UTC)
    };
    let mut purged = domain_event::Entity::delete_many()
        .filter(domain_event::Column::KeepForever.eq(false))
        .filter(domain_event::Column::OccurredAt.lt(before(operational)))
        .exec(db)
        .await?
        .rows_affected;
    if let Some(audit) = audit {
        purged += domain_event::Entity::delete_many()
            .filter(domain_event::Column::KeepForever.eq(true))
            .filter(domain_event::Column::OccurredAt.lt(before(audit)))
            .exec(db)
            .await?
            .rows_affected;
    }
    Ok(purged)
}
