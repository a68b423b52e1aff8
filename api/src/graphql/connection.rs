//! Relay cursor connections built from service pages.
use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, OutputType, SimpleObject};

use crate::service::pagination::{Page, PageArgs};

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

/// Whether the query selected `totalCount` on this connection (counting costs a statement).
pub fn wants_total(ctx: &Context<'_>) -> bool {
    ctx.look_ahead().field("totalCount").exists()
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

/// Complexity of a connection field: its children weighted by the page size asked for
/// (default 20; sizes beyond the maximum are refused by the resolver anyway).
pub fn cost(first: Option<i32>, last: Option<i32>, child_complexity: usize) -> usize {
    let size = first.or(last).unwrap_or(20).clamp(1, 100) as usize;
    1 + size.saturating_mul(child_complexity)
}
