//! Statement imports: a payment platform's or bank's statement (CSV as WeChat Pay's merchant
//! platform, Alipay or a bank exports it, columns mapped by a named import profile, or a JSON
//! list) matched to pledges and applied.
//!
//! A dry run answers the plan: each line matched to a pledge (by external reference, else by
//! client key, the amount equal) or a mismatch with a stable reason. Applying confirms the
//! matches in batched transactions (each donation its own receipt number, gapless per year),
//! records money for pledges that must not count as held (see `crowdfunding::receive`), and,
//! when staff choose so, records unmatched payments that name a campaign as new confirmed
//! donations. An import is kept with its report and is idempotent by the statement's identity.
mod apply;
mod parse;
mod plan;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use entity::donation::DonationChannel;
use entity::statement_import;
use entity::statement_import_report_piece as piece;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, QueryFilter, QueryOrder, Set,
    Statement, TransactionTrait,
};
use serde_json::json;

pub use parse::{CsvProfile, ProfileName, StatementLine, csv_profile, decode, parse, parse_yuan};
pub use plan::{LineAction, Mismatch, PlannedLine, Totals, plan};

use super::pagination::{self, Page, PageRequest, SortDirection, SortKey};
use super::{Ctx, retry_transient};
use crate::auth::Viewer;
use crate::error::{AppError, AppResult};
use crate::events::{Actor, EventKind, NewEvent};

/// Lines applied per transaction.
pub const BATCH: usize = 500;
/// Lines in one statement.
pub const MAX_LINES: usize = 20_000;

/// The outcome of an import (or its dry run).
#[derive(Clone, Debug)]
pub struct ImportReport {
    pub dry_run: bool,
    /// The statement was imported before: nothing changed, this is that import.
    pub already_imported: bool,
    pub import: Option<statement_import::Model>,
    pub lines: Vec<PlannedLine>,
    pub totals: Totals,
}

#[derive(Clone, Debug)]
pub struct ImportRequest {
    pub profile: ProfileName,
    pub content: String,
    /// The platform's or bank's ID of the statement (its bill date and account, its file
    /// name…); without it the statement is known by its content's SHA-256.
    pub statement_id: Option<String>,
    pub dry_run: bool,
    /// Record unmatched payments that name an active campaign as new confirmed donations.
    pub create_unmatched: bool,
}

fn identity(req: &ImportRequest) -> AppResult<String> {
    match req.statement_id.as_deref().map(str::trim) {
        Some(id) if !id.is_empty() => {
            if id.chars().count() > 150 || id.chars().any(char::is_control) {
                return Err(AppError::bad_input("statementId", "statementId is 1 to 150 printable characters"));
            }
            Ok(format!("{}:{id}", req.profile.as_str()))
        }
        _ => Ok(format!("sha256:{}", super::identity::sha256_hex(&req.content))),
    }
}

/// Command: imports a statement (staff or a RECONCILE key); see the module.
pub async fn import_statement(ctx: Ctx<'_>, viewer: &Viewer, req: ImportRequest) -> AppResult<ImportReport> {
    viewer.require_reconcile_donations()?;
    let actor = Actor::of(viewer);
    let (account, partner) = (viewer.account.as_ref().map(|a| a.id), viewer.partner.as_ref().map(|p| p.key_id));
    import(ctx, &actor, account, partner, req).await
}

async fn find_import(db: &impl ConnectionTrait, identity: &str) -> AppResult<Option<statement_import::Model>> {
    Ok(statement_import::Entity::find().filter(statement_import::Column::Identity.eq(identity)).one(db).await?)
}

async fn report_of(db: &impl ConnectionTrait, import: statement_import::Model) -> AppResult<ImportReport> {
    // Imports applied before report pieces keep their report in the row.
    let pieces =
        if import.report.is_empty() { stored_reports(db, &[import.id]).await?.remove(&import.id) } else { None };
    let lines = lines_of(&import, pieces.as_deref())?;
    let totals = Totals::of(&lines);
    Ok(ImportReport { dry_run: false, already_imported: true, import: Some(import), lines, totals })
}

pub async fn import(
    ctx: Ctx<'_>,
    actor: &Actor,
    account: Option<i64>,
    partner: Option<i64>,
    mut req: ImportRequest,
) -> AppResult<ImportReport> {
    let identity = identity(&req)?;
    if let Some(done) = find_import(ctx.db, &identity).await?.filter(|i| i.status == "APPLIED") {
        return report_of(ctx.db, done).await;
    }
    let now = super::now();
    // The text is not needed once read, nor its lines once matched: each is as large as the
    // plan (2 MiB for a day of 10,000 lines) and would otherwise be held beside it.
    let mut planned = {
        let lines = parse(req.profile, &req.content)?;
        req.content = String::new();
        plan(ctx.db, lines, partner, req.create_unmatched, ctx.settings.pledge_ttl, now).await?
    };
    let (profile, dry_run) = (req.profile, req.dry_run);
    drop(req);
    if dry_run {
        let totals = Totals::of(&planned);
        return Ok(ImportReport { dry_run: true, already_imported: false, import: None, lines: planned, totals });
    }
    // The import row first: its unique identity makes a concurrent import of the same
    // statement fail here, before any line is applied.
    let started = match find_import(ctx.db, &identity).await? {
        Some(resumed) => resumed,
        None => {
            let inserted = statement_import::ActiveModel {
                identity: Set(identity.clone()),
                profile: Set(profile.as_str().to_owned()),
                status: Set("APPLYING".into()),
                line_count: Set(planned.len() as i64),
                report: Set("[]".into()),
                created_by_account_id: Set(account),
                partner_key_id: Set(partner),
                created_at: Set(now),
                ..Default::default()
            }
            .insert(ctx.db)
            .await;
            match inserted {
                Ok(model) => model,
                Err(e) if matches!(e.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_))) => {
                    return Err(AppError::conflict(
                        "STATEMENT_BEING_IMPORTED",
                        "this statement is being imported right now; ask again for its report",
                    ));
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    let channel = csv_profile(profile).map(|p| p.channel).unwrap_or(DonationChannel::OnlinePlatform);
    for batch in planned.chunks_mut(BATCH) {
        if batch.iter().all(|l| l.action == LineAction::Skip) {
            continue;
        }
        let snapshot = batch.to_vec();
        let applied = retry_transient(|| apply::apply_batch(ctx, actor, started.id, channel, snapshot.clone())).await?;
        batch.clone_from_slice(&applied);
    }
    let totals = Totals::of(&planned);
    retry_transient(|| record_applied(ctx, actor, started.id, profile, &totals, &planned, now)).await?;
    // The row as the updates left it (its report in pieces), not read back.
    let import = statement_import::Model {
        status: "APPLIED".into(),
        line_count: totals.lines,
        confirmed_count: totals.confirmed,
        held_count: totals.held,
        created_count: totals.created,
        mismatch_count: totals.mismatches,
        confirmed_fen: totals.confirmed_fen,
        report: String::new(),
        applied_at: Some(now),
        ..started
    };
    Ok(ImportReport { dry_run: false, already_imported: false, import: Some(import), lines: planned, totals })
}

/// The final transaction of an import: its totals, its report and its event.
async fn record_applied(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: i64,
    profile: ProfileName,
    totals: &Totals,
    lines: &[PlannedLine],
    now: DateTime<Utc>,
) -> AppResult<()> {
    let txn = ctx.db.begin().await?;
    // Raw statements: the report (about 160 bytes a line) is bound as it is, not copied again
    // by a query builder, and in pieces of its own rows, each serialized when it is written:
    // each statement's arguments and its message to the database hold a copy of what they
    // bind, one value grown piece by piece was rewritten whole per piece (and held twice by
    // SQLite), and the whole report as one text would be held beside them.
    let backend = txn.get_database_backend();
    let raw = |sql: &str, values: Vec<sea_orm::Value>| {
        let sql = if backend == DatabaseBackend::Postgres { sql.to_owned() } else { sql.replace('$', "?") };
        Statement::from_sql_and_values(backend, sql, values)
    };
    let sql = "UPDATE statement_imports SET status = 'APPLIED', line_count = $1, confirmed_count = $2, \
        held_count = $3, created_count = $4, mismatch_count = $5, confirmed_fen = $6, report = '', applied_at = $7 \
        WHERE id = $8";
    let values = vec![
        totals.lines.into(),
        totals.confirmed.into(),
        totals.held.into(),
        totals.created.into(),
        totals.mismatches.into(),
        totals.confirmed_fen.into(),
        Some(now).into(),
        id.into(),
    ];
    txn.execute_raw(raw(sql, values)).await?;
    for (seq, piece) in report_pieces(lines).enumerate() {
        let sql = "INSERT INTO statement_import_report_pieces (import_id, seq, piece) VALUES ($1, $2, $3)";
        txn.execute_raw(raw(sql, vec![id.into(), (seq as i32).into(), piece?.into()])).await?;
    }
    let event = NewEvent::new(EventKind::StatementImported, id).payload(json!({
        "profile": profile.as_str(),
        "lines": totals.lines,
        "confirmed": totals.confirmed,
        "held": totals.held,
        "created": totals.created,
        "mismatches": totals.mismatches,
        "confirmedFen": totals.confirmed_fen,
    }));
    ctx.commit(txn, actor, vec![event]).await?;
    Ok(())
}

/// Bytes of a report bound per statement, at least: a piece ends after the line that
/// reaches it.
const REPORT_PIECE_BYTES: usize = 128 * 1024;

/// The report (a JSON array of the lines) in pieces of about [`REPORT_PIECE_BYTES`], each
/// cut after a line and serialized only when asked for; read back, they are joined in order.
fn report_pieces(lines: &[PlannedLine]) -> impl Iterator<Item = AppResult<String>> + '_ {
    let mut next = 0;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let mut piece = Vec::with_capacity(REPORT_PIECE_BYTES + 1024);
        if next == 0 {
            piece.push(b'[');
        }
        while next < lines.len() && piece.len() < REPORT_PIECE_BYTES {
            if next > 0 {
                piece.push(b',');
            }
            if let Err(e) = serde_json::to_writer(&mut piece, &lines[next]) {
                done = true;
                return Some(Err(AppError::Internal(e.to_string())));
            }
            next += 1;
        }
        if next == lines.len() {
            piece.push(b']');
            done = true;
        }
        Some(String::from_utf8(piece).map_err(|e| AppError::Internal(e.to_string())))
    })
}

/// Imports kept, newest first.
pub async fn imports(db: &impl ConnectionTrait, page: PageRequest<'_>) -> AppResult<Page<statement_import::Model>> {
    let key = SortKey::<statement_import::Entity>::time(
        statement_import::Column::CreatedAt,
        statement_import::Column::Id,
        SortDirection::Desc,
    );
    pagination::paginate(db, statement_import::Entity::find(), &key, page).await
}

/// An import's report lines: its `report` column for imports applied before report pieces,
/// else `pieces`, the report joined from its pieces ([`stored_reports`]; `None`: no lines).
pub fn lines_of(import: &statement_import::Model, pieces: Option<&str>) -> AppResult<Vec<PlannedLine>> {
    let text = if import.report.is_empty() { pieces.unwrap_or("[]") } else { import.report.as_str() };
    serde_json::from_str(text).map_err(|e| AppError::Internal(format!("stored report: {e}")))
}

/// The reports of these imports kept in pieces, each joined, in one statement.
pub async fn stored_reports(db: &impl ConnectionTrait, ids: &[i64]) -> AppResult<HashMap<i64, Arc<str>>> {
    let pieces = piece::Entity::find()
        .filter(piece::Column::ImportId.is_in(ids.iter().copied()))
        .order_by_asc(piece::Column::ImportId)
        .order_by_asc(piece::Column::Seq)
        .all(db)
        .await?;
    let mut joined: HashMap<i64, String> = HashMap::new();
    for p in pieces {
        joined.entry(p.import_id).or_default().push_str(&p.piece);
    }
    Ok(joined.into_iter().map(|(id, text)| (id, Arc::from(text))).collect())
}
