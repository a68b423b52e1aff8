//! Relay cursor connections built from service pages.
use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, ErrorExtensions, OutputType, SelectionField, SimpleObject, Value};
use sea_orm::DatabaseConnection;

use crate::config::Limits;
use crate::service::pagination::{Page, PageArgs, PageRequest};

/// Fields every connection has besides edges and pageInfo.
#[derive(SimpleObject)]
pub struct ConnectionTotals {
    /// Number of items matching the filter, over all pages.
    pub total_count: u64,
}

pub type PagedConnection<T> = Connection<String, T, ConnectionTotals>;

pub fn args(first: Option<i32>, after: Option<String>, last: Option<i32>, before: Option<String>) -> PageArgs {
    PageArgs { first, after, last, before }
}

/// The page the client asked for on this connection field: `args`, within the server's
/// limits, counting all pages' rows when `totalCount` was selected.
pub fn page_request<'a>(ctx: &Context<'a>, args: &'a PageArgs) -> async_graphql::Result<PageRequest<'a>> {
    Ok(PageRequest { args, limits: &super::state(ctx)?.settings.limits, with_total: wants_total(ctx) })
}

/// Whether the query selected `totalCount` on this connection (counting costs a statement).
pub fn wants_total(ctx: &Context<'_>) -> bool {
    ctx.look_ahead().field("totalCount").exists()
}

/// The selections of `field` on this connection's nodes, through `edges { node }` and
/// `nodes` (fragments included): what a list resolver looks at to load a relation ahead.
pub fn node_selections<'a>(ctx: &'a Context<'_>, field: &str) -> Vec<SelectionField<'a>> {
    let look = ctx.look_ahead();
    let mut fields = look.field("edges").field("node").field(field).selection_fields();
    fields.extend(look.field("nodes").field(field).selection_fields());
    fields
}

/// The page size a selected connection field asks for when it asks for its first page only
/// (no cursor, no `last`, no `totalCount`); `None` when it asks for more or for nothing valid.
pub fn first_page_size(field: &SelectionField<'_>, limits: &Limits) -> Option<u64> {
    let mut args = PageArgs::default();
    for (name, value) in field.arguments().ok()? {
        match (name.as_str(), value) {
            (_, Value::Null) => {}
            ("first", Value::Number(n)) => args.first = Some(i32::try_from(n.as_i64()?).ok()?),
            _ => return None,
        }
    }
    if async_graphql::Lookahead::from(*field).field("totalCount").exists() {
        return None;
    }
    crate::service::pagination::validate(&args, limits).ok().map(|(size, _)| size)
}

/// Whether a connection field's arguments ask for the first page only, without a total (so
/// a page loaded ahead by `first_page_size` answers it).
pub fn is_first_page(ctx: &Context<'_>, after: &Option<String>, last: Option<i32>, before: &Option<String>) -> bool {
    after.is_none() && last.is_none() && before.is_none() && !wants_total(ctx)
}

pub fn from_page<R, T: OutputType>(page: Page<R>, to_node: impl Fn(R) -> T) -> PagedConnection<T> {
    let mut connection = Connection::with_additional_fields(
        page.has_previous_page,
        page.has_next_page,
        ConnectionTotals { total_count: page.total_count.unwrap_or_default() },
    );
    connection.edges = page.items.into_iter().map(|(cursor, row)| Edge::new(cursor, to_node(row))).collect();
    connection
}

/// A connection over one page of a list service: `load` is handed the database and the page
/// the client asked for (with the limits, and whether `totalCount` was selected); its rows
/// become nodes through `to_node`.
pub async fn list<R, T: OutputType, E: ErrorExtensions>(
    ctx: &Context<'_>,
    args: PageArgs,
    to_node: impl Fn(R) -> T,
    load: impl AsyncFnOnce(&DatabaseConnection, PageRequest<'_>) -> Result<Page<R>, E>,
) -> async_graphql::Result<PagedConnection<T>> {
    let request = page_request(ctx, &args)?;
    let page = load(&super::state(ctx)?.db, request).await.map_err(|e| e.extend())?;
    Ok(from_page(page, to_node))
}

/// Complexity of a connection field: its children weighted by the page size asked for
/// (default 20; sizes beyond the maximum are refused by the resolver anyway).
pub fn cost(first: Option<i32>, last: Option<i32>, child_complexity: usize) -> usize {
    let size = first.or(last).unwrap_or(20).clamp(1, 100) as usize;
    1 + size.saturating_mul(child_complexity)
}
