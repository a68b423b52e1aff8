//! Counts and impact: seats, check-ins and person-times per event and per period.
#[allow(unused_imports)]
use super::*;

/// Live counts of one event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventCounts {
    pub confirmed_registrations: i64,
    pub confirmed_persons: i64,
    pub pending_registrations: i64,
    pub waitlisted_registrations: i64,
    pub waitlisted_persons: i64,
    pub checked_in_registrations: i64,
    pub checked_in_persons: i64,
}

/// event, status, registrations, persons, checked in, attended
pub(super) type CountRow = (i64, String, i64, Option<i64>, i64, Option<i64>);
/// event, total, women, children, family members, professionals
pub(super) type ImpactRow = (i64, Option<i64>, Option<i64>, Option<i64>, Option<i64>, Option<i64>);

pub async fn counts_of(db: &impl ConnectionTrait, ids: &[i64]) -> AppResult<HashMap<i64, EventCounts>> {
    use registration::Column as C;
    let mut map: HashMap<i64, EventCounts> = ids.iter().map(|id| (*id, EventCounts::default())).collect();
    if ids.is_empty() {
        return Ok(map);
    }
    let rows: Vec<CountRow> = registration::Entity::find()
        .select_only()
        .column(C::EventId)
        .column(C::Status)
        .column_as(Expr::col(C::Id).count(), "n")
        .column_as(Expr::col(C::PartySize).sum().cast_as(bigint()), "persons")
        .column_as(Expr::col(C::CheckedInAt).count(), "checked")
        .column_as(Expr::col(C::Attended).sum().cast_as(bigint()), "attended")
        .filter(C::EventId.is_in(ids.iter().copied()))
        .group_by(C::EventId)
        .group_by(C::Status)
        .into_tuple()
        .all(db)
        .await?;
    for (event_id, status, n, persons, checked, attended) in rows {
        let c = map.entry(event_id).or_default();
        match status.as_str() {
            "CONFIRMED" => {
                c.confirmed_registrations += n;
                c.confirmed_persons += persons.unwrap_or(0);
            }
            "PENDING" => c.pending_registrations += n,
            "WAITLISTED" => {
                c.waitlisted_registrations += n;
                c.waitlisted_persons += persons.unwrap_or(0);
            }
            _ => {}
        }
        c.checked_in_registrations += checked;
        c.checked_in_persons += attended.unwrap_or(0);
    }
    Ok(map)
}

pub(super) fn bigint() -> sea_orm::sea_query::Alias {
    sea_orm::sea_query::Alias::new("bigint")
}

/// Person-times served, split by who was served (the groups overlap: a woman professional
/// counts in both).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonTimes {
    pub total: i64,
    pub women: i64,
    pub children: i64,
    pub family_members: i64,
    pub professionals: i64,
    pub events: i64,
}

/// The sum of a registration column counted once per session attended (once for events
/// without sessions).
pub(super) fn per_session(column: &str) -> Expr {
    Expr::cust(format!(
        "CAST(SUM({column} * CASE WHEN sessions_attended > 1 THEN sessions_attended ELSE 1 END) AS BIGINT)"
    ))
}

/// Person-times of checked-in registrations of events in `ids`, by event: each session of a
/// training attended counts.
pub async fn impact_of(db: &impl ConnectionTrait, ids: &[i64]) -> AppResult<HashMap<i64, PersonTimes>> {
    use registration::Column as C;
    let rows: Vec<ImpactRow> = registration::Entity::find()
        .select_only()
        .column(C::EventId)
        .column_as(per_session("attended"), "total")
        .column_as(per_session("women"), "women")
        .column_as(per_session("children"), "children")
        .column_as(per_session("family_members"), "family")
        .column_as(per_session("professionals"), "professionals")
        .filter(C::EventId.is_in(ids.iter().copied()))
        .filter(C::CheckedInAt.is_not_null())
        .group_by(C::EventId)
        .into_tuple()
        .all(db)
        .await?;
    let mut map: HashMap<i64, PersonTimes> = ids.iter().map(|id| (*id, PersonTimes::default())).collect();
    for (event_id, total, women, children, family, professionals) in rows {
        map.insert(
            event_id,
            PersonTimes {
                total: total.unwrap_or(0),
                women: women.unwrap_or(0),
                children: children.unwrap_or(0),
                family_members: family.unwrap_or(0),
                professionals: professionals.unwrap_or(0),
                events: 1,
            },
        );
    }
    Ok(map)
}

/// Delegations and the persons in them (leader and members) per event and origin, for the
/// events in `ids`: counted by the database (`json_array_length` on both backends).
pub async fn delegations_by_origin(db: &impl ConnectionTrait, ids: &[i64]) -> AppResult<Vec<(i64, Origin, i64, i64)>> {
    use delegation::Column as C;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let members = match db.get_database_backend() {
        sea_orm::DatabaseBackend::Postgres => "json_array_length(members::json)",
        _ => "json_array_length(members)",
    };
    let rows: Vec<(i64, Origin, i64, Option<i64>)> = delegation::Entity::find()
        .select_only()
        .column(C::EventId)
        .column(C::Origin)
        .column_as(Expr::col(C::Id).count(), "delegations")
        .column_as(Expr::cust(format!("CAST(SUM({members} + 1) AS BIGINT)")), "persons")
        .filter(C::EventId.is_in(ids.iter().copied()))
        .group_by(C::EventId)
        .group_by(C::Origin)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|(event, origin, n, persons)| (event, origin, n, persons.unwrap_or(0))).collect())
}

/// Person-times served by events that started in `[from, to)`, cancelled events excluded.
/// The base dashboard aggregates this.
pub async fn person_times(db: &impl ConnectionTrait, from: DateTime<Utc>, to: DateTime<Utc>) -> AppResult<PersonTimes> {
    if to <= from {
        return Err(AppError::bad_input("to", "`to` must be after `from`"));
    }
    let ids: Vec<i64> = event::Entity::find()
        .select_only()
        .column(event::Column::Id)
        .filter(event::Column::StartsAt.gte(from))
        .filter(event::Column::StartsAt.lt(to))
        .filter(event::Column::Status.is_in([EventStatus::Published, EventStatus::Completed]))
        .into_tuple()
        .all(db)
        .await?;
    let mut totals = PersonTimes::default();
    for chunk in ids.chunks(500) {
        for (_, p) in impact_of(db, chunk).await? {
            totals.total += p.total;
            totals.women += p.women;
            totals.children += p.children;
            totals.family_members += p.family_members;
            totals.professionals += p.professionals;
            totals.events += p.events;
        }
    }
    Ok(totals)
}
