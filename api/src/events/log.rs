//! Appending to the log inside the writer's transaction, and reading it in commit order.
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use entity::domain_event;
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseTransaction, EntityTrait, FromQueryResult, Statement, TransactionTrait,
};
use serde_json::Value;

use super::kinds::{Aggregate, EventKind, Retention};
use crate::auth::Viewer;
use crate::error::{AppError, AppResult};

/// Who caused an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub kind: ActorKind,
    /// The account's or partner key's id.
    pub id: Option<i64>,
    /// The command of a CLI actor, the job of the system, a partner key's name.
    pub label: Option<String>,
    /// The client's address, for requests.
    pub address: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActorKind {
    Account,
    PartnerKey,
    Anonymous,
    Cli,
    System,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::Account => "ACCOUNT",
            ActorKind::PartnerKey => "PARTNER_KEY",
            ActorKind::Anonymous => "ANONYMOUS",
            ActorKind::Cli => "CLI",
            ActorKind::System => "SYSTEM",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [ActorKind::Account, ActorKind::PartnerKey, ActorKind::Anonymous, ActorKind::Cli, ActorKind::System]
            .into_iter()
            .find(|k| k.as_str() == raw)
    }
}

impl Actor {
    /// The person (or partner) behind a request: the account when one signed in, else the
    /// partner key, else anonymous.
    pub fn of(viewer: &Viewer) -> Self {
        let address = viewer.address.clone();
        match (&viewer.account, &viewer.partner) {
            (Some(account), _) => Actor { kind: ActorKind::Account, id: Some(account.id), label: None, address },
            (None, Some(partner)) => Actor {
                kind: ActorKind::PartnerKey,
                id: Some(partner.key_id),
                label: Some(partner.name.clone()),
                address,
            },
            (None, None) => Actor { kind: ActorKind::Anonymous, id: None, label: None, address },
        }
    }

    /// A command-line invocation (`seed-demo`, `create-admin`, …).
    pub fn cli(command: &str) -> Self {
        Actor { kind: ActorKind::Cli, id: None, label: Some(command.to_owned()), address: None }
    }

    /// The server itself (scheduled jobs).
    pub fn system(job: &str) -> Self {
        Actor { kind: ActorKind::System, id: None, label: Some(job.to_owned()), address: None }
    }

    /// The same actor, now known to be `account_id` (signing up or in).
    pub fn as_account(&self, account_id: i64) -> Self {
        Actor { kind: ActorKind::Account, id: Some(account_id), label: None, address: self.address.clone() }
    }
}

/// An event to append: built by the command, written by [`append`].
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub kind: EventKind,
    pub aggregate_id: i64,
    pub account_id: Option<i64>,
    pub organization_id: Option<i64>,
    pub payload: Value,
}

impl NewEvent {
    pub fn new(kind: EventKind, aggregate_id: i64) -> Self {
        Self { kind, aggregate_id, account_id: None, organization_id: None, payload: Value::Object(Default::default()) }
    }

    /// The account the event concerns (shown in its `myActivity`).
    pub fn account(mut self, account_id: Option<i64>) -> Self {
        self.account_id = account_id;
        self
    }

    /// The organization the event concerns.
    pub fn organization(mut self, organization_id: Option<i64>) -> Self {
        self.organization_id = organization_id;
        self
    }

    /// What changed. Never personal data that is purged later (identity document numbers,
    /// guests' phones): the log is not rewritten by purges.
    pub fn payload(mut self, payload: Value) -> Self {
        self.payload = payload;
        self
    }
}

/// Where an event sits in commit order: `(tx, id)`, compared in that order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub tx: i64,
    pub id: i64,
}

impl Position {
    pub const START: Position = Position { tx: i64::MIN, id: 0 };

    pub fn of(event: &domain_event::Model) -> Self {
        Position { tx: event.tx, id: event.id }
    }

    /// The opaque cursor clients resume from (`after:`).
    pub fn cursor(self) -> String {
        URL_SAFE_NO_PAD.encode(format!("ev1:{}:{}", self.tx, self.id))
    }

    pub fn from_cursor(raw: &str) -> Option<Self> {
        let text = String::from_utf8(URL_SAFE_NO_PAD.decode(raw.trim()).ok()?).ok()?;
        let mut parts = text.split(':');
        if parts.next()? != "ev1" {
            return None;
        }
        let tx = parts.next()?.parse().ok()?;
        let id = parts.next()?.parse().ok()?;
        parts.next().is_none().then_some(Position { tx, id })
    }
}

/// The ids of the events one transaction appended, to hand to `EventLog::published`.
#[derive(Clone, Debug, Default)]
pub struct Appended {
    pub events: Vec<(i64, EventKind, i64, Value)>,
}

/// The columns of an event row, in the order of [`row`]'s expressions.
pub const COLUMNS: &str = "event_type, aggregate_type, aggregate_id, actor_kind, actor_id, actor_label, \
    actor_address, account_id, organization_id, payload, keep_forever, occurred_at";

/// Where one of an event's values comes from in a statement that creates its aggregate (or
/// decides whether it happens) in the same statement: SQL expressions over that statement's
/// other parts, in place of the bound values.
#[derive(Clone, Copy, Debug, Default)]
pub struct FromStatement<'a> {
    pub aggregate_id: Option<&'a str>,
    pub account_id: Option<&'a str>,
    pub organization_id: Option<&'a str>,
    /// A JSON expression in place of the event's payload.
    pub payload: Option<&'a str>,
}

/// `event`'s row as SQL expressions for [`COLUMNS`] (`$first`… on PostgreSQL, `?` on SQLite),
/// with the values they bind appended to `values` (so a statement's own values come first).
pub fn row(
    backend: DatabaseBackend,
    actor: &Actor,
    event: &NewEvent,
    now: chrono::DateTime<chrono::Utc>,
    from: FromStatement<'_>,
    values: &mut Vec<sea_orm::Value>,
) -> String {
    let bound: [(Option<&str>, sea_orm::Value); 12] = [
        (None, event.kind.name().into()),
        (None, event.kind.aggregate().type_name().into()),
        (from.aggregate_id, event.aggregate_id.into()),
        (None, actor.kind.as_str().into()),
        (None, actor.id.into()),
        (None, actor.label.clone().into()),
        (None, actor.address.clone().into()),
        (from.account_id, event.account_id.into()),
        (from.organization_id, event.organization_id.into()),
        (from.payload, sea_orm::Value::Json(Some(Box::new(event.payload.clone())))),
        (None, (event.kind.retention() == Retention::Audit).into()),
        (None, now.into()),
    ];
    let mut exprs = Vec::with_capacity(bound.len());
    for (expression, value) in bound {
        match expression {
            Some(e) => exprs.push(e.to_owned()),
            None => {
                values.push(value);
                exprs.push(match backend {
                    DatabaseBackend::Postgres => format!("${}", values.len()),
                    _ => "?".to_owned(),
                });
            }
        }
    }
    exprs.join(", ")
}

/// Appends `events` in `txn` (one statement for all of them). A transaction that rolls back
/// takes its events with it.
pub async fn append(txn: &DatabaseTransaction, actor: &Actor, events: Vec<NewEvent>) -> AppResult<Appended> {
    append_each(txn, events.into_iter().map(|e| (actor, e)).collect()).await
}

/// Appends events each caused by its own actor (confirmations counted together), in one statement.
pub async fn append_each(txn: &DatabaseTransaction, events: Vec<(&Actor, NewEvent)>) -> AppResult<Appended> {
    if events.is_empty() {
        return Ok(Appended::default());
    }
    let now = crate::service::now();
    let backend = txn.get_database_backend();
    let mut values: Vec<sea_orm::Value> = Vec::with_capacity(events.len() * 12);
    let rows: Vec<String> = events
        .iter()
        .map(|(actor, e)| format!("({})", row(backend, actor, e, now, FromStatement::default(), &mut values)))
        .collect();
    let sql = format!("INSERT INTO domain_events ({COLUMNS}) VALUES {} RETURNING id", rows.join(", "));
    let rows = txn.query_all_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
    let mut appended = Appended::default();
    for (row, (_, event)) in rows.iter().zip(events) {
        let id: i64 = row.try_get("", "id")?;
        appended.events.push((id, event.kind, event.aggregate_id, event.payload));
    }
    Ok(appended)
}

/// Appends `events` in a transaction of their own (writes that have no other statement).
pub async fn append_alone(
    db: &sea_orm::DatabaseConnection,
    actor: &Actor,
    events: Vec<NewEvent>,
) -> AppResult<Appended> {
    let txn = db.begin().await?;
    let appended = append(&txn, actor, events).await?;
    txn.commit().await?;
    Ok(appended)
}

/// The horizon clause: on PostgreSQL only rows of transactions older than every running one,
/// so nothing can commit behind a reader's position later.
fn horizon(backend: DatabaseBackend) -> &'static str {
    match backend {
        DatabaseBackend::Postgres => " AND tx < pg_snapshot_xmin(pg_current_snapshot())::text::bigint",
        _ => "",
    }
}

/// Numbered placeholders (`$1` on PostgreSQL, `?1` on SQLite), so one may be used twice.
fn placeholders(backend: DatabaseBackend, from: usize, n: usize) -> Vec<String> {
    (from..from + n)
        .map(|i| match backend {
            DatabaseBackend::Postgres => format!("${i}"),
            _ => format!("?{i}"),
        })
        .collect()
}

/// Up to `limit` events after `after`, in commit order, that no later commit can precede.
pub async fn read_after(db: &impl ConnectionTrait, after: Position, limit: u64) -> AppResult<Vec<domain_event::Model>> {
    let backend = db.get_database_backend();
    let p = placeholders(backend, 1, 3);
    let sql = format!(
        "SELECT * FROM domain_events WHERE (tx > {0} OR (tx = {0} AND id > {1})){2} ORDER BY tx, id LIMIT {3}",
        p[0],
        p[1],
        horizon(backend),
        p[2]
    );
    let stmt = Statement::from_sql_and_values(backend, sql, [after.tx.into(), after.id.into(), (limit as i64).into()]);
    Ok(domain_event::Entity::find().from_raw_sql(stmt).all(db).await?)
}

#[derive(FromQueryResult, Debug, Clone, Copy)]
struct PositionRow {
    tx: i64,
    id: i64,
}

/// The position of the newest event no later commit can precede: a follower that starts now
/// starts after it.
pub async fn tail(db: &impl ConnectionTrait) -> AppResult<Position> {
    let backend = db.get_database_backend();
    let sql =
        format!("SELECT tx, id FROM domain_events WHERE 1 = 1{} ORDER BY tx DESC, id DESC LIMIT 1", horizon(backend));
    let row = PositionRow::find_by_statement(Statement::from_string(backend, sql)).one(db).await?;
    Ok(row.map(|r| Position { tx: r.tx, id: r.id }).unwrap_or(Position::START))
}

/// The newest committed event, once no earlier one can still commit: on PostgreSQL it waits
/// (briefly, polling) until every transaction older than that event's has finished, so a
/// reader starting after it misses nothing and is handed nothing it already saw. Falls back to
/// [`tail`] when a long transaction holds the horizon back for more than two seconds.
pub async fn settled_tail(db: &impl ConnectionTrait) -> AppResult<Position> {
    let backend = db.get_database_backend();
    if backend != DatabaseBackend::Postgres {
        return tail(db).await;
    }
    let newest = "SELECT tx, id FROM domain_events ORDER BY tx DESC, id DESC LIMIT 1";
    let Some(latest) = PositionRow::find_by_statement(Statement::from_string(backend, newest)).one(db).await? else {
        return Ok(Position::START);
    };
    let horizon = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS tx, 0::bigint AS id";
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let h = PositionRow::find_by_statement(Statement::from_string(backend, horizon)).one(db).await?;
        if h.is_some_and(|h| h.tx > latest.tx) {
            return Ok(Position { tx: latest.tx, id: latest.id });
        }
        if tokio::time::Instant::now() > deadline {
            tracing::warn!(
                latest = latest.tx,
                horizon = h.map(|h| h.tx),
                "a long-running transaction holds the event log's horizon back"
            );
            return tail(db).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// The event at `position`, if it is still kept.
pub async fn at(db: &impl ConnectionTrait, position: Position) -> AppResult<Option<domain_event::Model>> {
    let found = domain_event::Entity::find_by_id(position.id).one(db).await?;
    Ok(found.filter(|e| e.tx == position.tx))
}

/// Reads a client's `after:` cursor: the event it names must still be kept and no older than
/// `window` (subscriptions replay at most that far back).
pub async fn resume_from(db: &impl ConnectionTrait, cursor: &str, window: std::time::Duration) -> AppResult<Position> {
    let position = Position::from_cursor(cursor)
        .ok_or_else(|| AppError::refused("INVALID_CURSOR", "`after` is not a cursor of this subscription"))?;
    let expired = || {
        AppError::refused(
            "CURSOR_EXPIRED",
            format!(
                "the cursor is older than the replay window ({} hours) or no longer kept; subscribe without `after` and reload",
                window.as_secs() / 3600
            ),
        )
    };
    let event = at(db, position).await?.ok_or_else(expired)?;
    let age = crate::service::now() - event.occurred_at;
    if age.to_std().is_ok_and(|age| age > window) {
        return Err(expired());
    }
    Ok(position)
}

/// The aggregate an event row is about.
pub fn aggregate_of(event: &domain_event::Model) -> Option<Aggregate> {
    Aggregate::parse(&event.aggregate_type)
}

/// Parses the kind of an event row (`None` for a kind this build does not know).
pub fn kind_of(event: &domain_event::Model) -> Option<EventKind> {
    EventKind::parse(&event.event_type)
}
