//! Statement imports in the schema: `importStatement` (dry run and apply), the kept imports
//! and their reports.
use async_graphql::{Context, Enum, ID, InputObject, Object, Result, ResultExt, SimpleObject};
use chrono::{DateTime, Utc};
use entity::statement_import;

use super::common::Fen;
use super::connection::{self, PagedConnection};
use super::identity::viewer;
use super::ids;
use super::loaders::Loaders;
use super::state;
use crate::service::pagination::{self, Page};
use crate::service::statements::{self as service, ImportReport, PlannedLine, ProfileName, Totals};

pub use super::ids::STATEMENT_IMPORT;

/// How a statement's columns are read.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "crate::service::statements::ProfileName")]
pub enum StatementProfile {
    /// The WeChat Pay merchant platform's transaction bill (CSV; values prefixed with `` ` ``):
    /// `商户订单号` is the reference, `微信订单号` the line, `订单金额` the amount in yuan, only
    /// `交易状态` SUCCESS lines are payments.
    WechatPay,
    /// Alipay's business detail export (CSV, `#` lines are comments): `商户订单号`,
    /// `支付宝交易号`, `订单金额（元）`, only `业务类型` 交易 lines.
    Alipay,
    /// A bank account statement (CSV): `流水号` the line, `附言` (else `摘要`) the reference,
    /// `收入金额` the amount in yuan (outgoing lines are left out), `对方户名` the payer,
    /// `捐赠项目` a campaign's ID for unmatched transfers.
    BankCsv,
    /// A JSON list of `{ lineId, reference, clientKey, amountFen, campaignId, payerName }`.
    Json,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "crate::service::statements::LineAction")]
pub enum StatementLineAction {
    /// The matched pledge is confirmed (receipt number, totals).
    Confirm,
    /// The money is recorded for a pledge that must not count and held for staff (see
    /// `refundQueue`).
    Hold,
    /// A new confirmed donation to the campaign the line names (`createUnmatched`).
    Create,
    Skip,
}

/// Why a line is not a plain match.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "crate::service::statements::Mismatch")]
pub enum StatementMismatch {
    /// The amount is not the pledge's.
    AmountDiffers,
    /// No pledge has this reference or client key (a new donation when it names an active
    /// campaign and `createUnmatched` is set).
    UnknownReference,
    /// The donation's money was recorded before.
    AlreadyConfirmed,
    /// The campaign is cancelled (the money is held for a refund), or not active for a new
    /// donation.
    CampaignNotActive,
    /// The same line (or pledge) appears earlier in the statement.
    DuplicateLine,
    /// The pledge expired: the money is held as a late payment.
    PledgeExpired,
    /// The pledge was cancelled: the money is held.
    PledgeCancelled,
}

#[derive(InputObject)]
pub struct ImportStatementInput {
    pub profile: StatementProfile,
    /// The statement as exported (CSV text, or the JSON list).
    pub content: String,
    /// The platform's or bank's ID of the statement (bill date and account, file name…); an
    /// import is idempotent by it (or, without it, by the content's SHA-256).
    pub statement_id: Option<String>,
    /// Only answer the plan; nothing is written.
    #[graphql(default)]
    pub dry_run: bool,
    /// Record unmatched payments that name an active campaign as new confirmed donations.
    #[graphql(default)]
    pub create_unmatched: bool,
}

/// One line of a statement's plan or report.
#[derive(SimpleObject)]
pub struct StatementLineReport {
    /// Its position among the statement's payment lines, from 1.
    pub line: i64,
    pub line_id: Option<String>,
    pub reference: Option<String>,
    pub amount_fen: Fen,
    pub action: StatementLineAction,
    pub reason: Option<StatementMismatch>,
    pub donation_id: Option<ID>,
    pub campaign_id: Option<ID>,
    pub receipt_number: Option<String>,
}

impl StatementLineReport {
    fn of(l: PlannedLine) -> Self {
        Self {
            line: l.line as i64,
            line_id: l.line_id,
            reference: l.reference,
            amount_fen: Fen(l.amount_fen),
            action: l.action.into(),
            reason: l.reason.map(Into::into),
            donation_id: l.donation_id.map(|id| ids::encode(super::crowdfunding::DONATION, id)),
            campaign_id: l.campaign_id.map(|id| ids::encode(super::crowdfunding::CAMPAIGN, id)),
            receipt_number: l.receipt_number,
        }
    }
}

/// A statement's plan (dry run) or what applying it did.
pub struct StatementReport {
    lines: Vec<PlannedLine>,
    totals: Totals,
}

#[Object]
impl StatementReport {
    async fn line_count(&self) -> i64 {
        self.totals.lines
    }

    /// Pledges confirmed (or to confirm).
    async fn confirmed_count(&self) -> i64 {
        self.totals.confirmed
    }

    /// Payments held for staff.
    async fn held_count(&self) -> i64 {
        self.totals.held
    }

    /// New donations for unmatched payments.
    async fn created_count(&self) -> i64 {
        self.totals.created
    }

    /// Lines with a mismatch reason.
    async fn mismatch_count(&self) -> i64 {
        self.totals.mismatches
    }

    /// Money that counts from this statement (confirmed and created).
    async fn confirmed_fen(&self) -> Fen {
        Fen(self.totals.confirmed_fen)
    }

    /// The lines in statement order, optionally only those with a mismatch.
    async fn lines(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size from the start (default 20, at most 100).")] first: Option<i32>,
        after: Option<String>,
        #[graphql(default)] mismatches_only: bool,
    ) -> Result<PagedConnection<StatementLineReport>> {
        let limits = &state(ctx)?.settings.limits;
        let (size, _) = pagination::validate(&connection::args(first, after.clone(), None, None), limits).extend()?;
        let start = match after {
            None => 0,
            Some(cursor) => cursor
                .strip_prefix("line:")
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| crate::error::AppError::bad_input("after", "not a cursor of this list"))
                .extend()?,
        };
        let mut chosen = self.lines.iter().filter(|l| l.line > start && (!mismatches_only || l.reason.is_some()));
        let items: Vec<(String, PlannedLine)> =
            chosen.by_ref().take(size as usize).map(|l| (format!("line:{}", l.line), l.clone())).collect();
        let has_next_page = chosen.next().is_some();
        let total = self.lines.iter().filter(|l| !mismatches_only || l.reason.is_some()).count() as u64;
        let page = Page { items, has_next_page, has_previous_page: start > 0, total_count: Some(total) };
        Ok(connection::from_page(page, StatementLineReport::of))
    }
}

/// A statement applied to the donations, kept with its report.
pub struct StatementImport(pub statement_import::Model);

#[Object]
impl StatementImport {
    pub async fn id(&self) -> ID {
        ids::encode(STATEMENT_IMPORT, self.0.id)
    }

    async fn profile(&self) -> &str {
        &self.0.profile
    }

    /// What it is known by: `<PROFILE>:<statementId>`, or `sha256:<hex>` of the content.
    async fn identity(&self) -> &str {
        &self.0.identity
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn applied_at(&self) -> Option<DateTime<Utc>> {
        self.0.applied_at
    }

    async fn report(&self, ctx: &Context<'_>) -> Result<StatementReport> {
        // Imports applied before report pieces keep their report in the row.
        let pieces =
            if self.0.report.is_empty() { Loaders::of(ctx)?.statement_report.get(self.0.id).await? } else { None };
        let lines = service::lines_of(&self.0, pieces.as_deref()).extend()?;
        let totals = Totals::of(&lines);
        Ok(StatementReport { lines, totals })
    }
}

#[derive(SimpleObject)]
pub struct ImportStatementPayload {
    pub dry_run: bool,
    /// The statement was imported before: nothing changed; `import` is that import.
    pub already_imported: bool,
    /// `null` on a dry run.
    pub import: Option<StatementImport>,
    pub report: StatementReport,
}

impl ImportStatementPayload {
    fn of(r: ImportReport) -> Self {
        Self {
            dry_run: r.dry_run,
            already_imported: r.already_imported,
            import: r.import.map(StatementImport),
            report: StatementReport { lines: r.lines, totals: r.totals },
        }
    }
}

#[derive(Default)]
pub struct StatementQuery;

#[Object]
impl StatementQuery {
    /// Staff and RECONCILE keys: statements imported, newest first.
    async fn statement_imports(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size from the start (default 20, at most 100).")] first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<PagedConnection<StatementImport>> {
        viewer(ctx).require_reconcile_donations().extend()?;
        connection::list(ctx, connection::args(first, after, last, before), StatementImport, async |db, page| {
            service::imports(db, page).await
        })
        .await
    }
}

#[derive(Default)]
pub struct StatementMutation;

#[Object]
impl StatementMutation {
    /// Staff or a RECONCILE key: matches a platform's or bank's statement to pledges (by
    /// external reference, else client key; the amount equal). `dryRun` answers the plan;
    /// otherwise matches are confirmed in batched transactions (each its own receipt number),
    /// money for pledges that must not count is held, and the import is kept with its report.
    /// Importing the same statement again changes nothing (`alreadyImported`).
    async fn import_statement(&self, ctx: &Context<'_>, input: ImportStatementInput) -> Result<ImportStatementPayload> {
        let state = state(ctx)?;
        let req = service::ImportRequest {
            profile: ProfileName::from(input.profile),
            content: input.content,
            statement_id: input.statement_id,
            dry_run: input.dry_run,
            create_unmatched: input.create_unmatched,
        };
        let report = service::import_statement(state.ctx(), viewer(ctx), req).await.extend()?;
        Ok(ImportStatementPayload::of(report))
    }
}
