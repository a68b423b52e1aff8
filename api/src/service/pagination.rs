//! Keyset pagination for cursor connections: `first/after` walks forward, `last/before`
//! backward, both over an order that ends in the primary key so every row has one place.
//! Cost is independent of how deep the page is.
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr, SimpleExpr};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, ModelTrait, Order, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Select, Value,
};
use serde::{Deserialize, Serialize};

use crate::config::Limits;
use crate::error::{AppError, AppResult};

/// The four Relay arguments, as the client sent them.
#[derive(Clone, Debug, Default, Serialize, Deserialize, Hash, PartialEq, Eq)]
pub struct PageArgs {
    pub first: Option<i32>,
    pub after: Option<String>,
    pub last: Option<i32>,
    pub before: Option<String>,
}

/// What a list takes besides its own filters: which page the client asked for, within which
/// limits, and whether to count the rows of all pages (counting costs a statement).
#[derive(Clone, Copy, Debug)]
pub struct PageRequest<'a> {
    /// The client's `first/after/last/before`.
    pub args: &'a PageArgs,
    pub limits: &'a Limits,
    /// Whether `totalCount` was selected.
    pub with_total: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Page<T> {
    /// Rows in display order, each with its cursor.
    pub items: Vec<(String, T)>,
    pub has_next_page: bool,
    pub has_previous_page: bool,
    /// Present when the caller asked for it.
    pub total_count: Option<u64>,
}

impl<T> Page<T> {
    pub fn map<U>(self, mut f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(|(c, t)| (c, f(t))).collect(),
            has_next_page: self.has_next_page,
            has_previous_page: self.has_previous_page,
            total_count: self.total_count,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SortDirection {
    Asc,
    Desc,
}

/// The value a row sorts by, as it travels inside a cursor.
#[derive(Clone, Debug, PartialEq)]
enum SortValue {
    Text(String),
    Time(DateTime<Utc>),
}

impl SortValue {
    fn encode(&self) -> String {
        match self {
            Self::Text(s) => s.clone(),
            Self::Time(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        }
    }

    fn decode_like(&self, raw: &str) -> Option<Self> {
        match self {
            Self::Text(_) => Some(Self::Text(raw.to_owned())),
            Self::Time(_) => DateTime::parse_from_rfc3339(raw).ok().map(|t| Self::Time(t.with_timezone(&Utc))),
        }
    }

    fn into_value(self) -> Value {
        match self {
            Self::Text(s) => s.into(),
            Self::Time(t) => t.into(),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct CursorBody {
    v: String,
    id: i64,
}

fn encode_cursor(value: &SortValue, id: i64) -> String {
    let body = serde_json::to_vec(&CursorBody { v: value.encode(), id }).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(body)
}

fn decode_cursor(raw: &str, like: &SortValue, arg: &str) -> AppResult<(SortValue, i64)> {
    let invalid = || AppError::bad_input(arg, format!("`{arg}` is not a cursor of this list"));
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
    let body: CursorBody = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    let value = like.decode_like(&body.v).ok_or_else(invalid)?;
    Ok((value, body.id))
}

/// Checks the arguments against the limits; returns (page size, walking backward?).
pub fn validate(args: &PageArgs, limits: &Limits) -> AppResult<(u64, bool)> {
    if args.first.is_some() && args.last.is_some() {
        return Err(AppError::bad_input("first", "pass either `first` or `last`, not both"));
    }
    if args.after.is_some() && args.before.is_some() {
        return Err(AppError::bad_input("after", "pass either `after` or `before`, not both"));
    }
    let backward = args.last.is_some() || args.before.is_some();
    if backward && (args.first.is_some() || args.after.is_some()) {
        return Err(AppError::bad_input("last", "use `first` with `after`, and `last` with `before`"));
    }
    let (arg, requested) = if backward { ("last", args.last) } else { ("first", args.first) };
    let size = match requested {
        None => limits.default_page_size as u64,
        Some(n) if n < 0 => {
            return Err(AppError::bad_input(arg, format!("`{arg}` must not be negative")));
        }
        Some(n) if n as usize > limits.max_page_size => {
            return Err(AppError::bad_input(arg, format!("`{arg}` must be at most {}", limits.max_page_size)));
        }
        Some(n) => n as u64,
    };
    Ok((size, backward))
}

/// How one list sorts: a column, its direction, ties broken by the `id` column. A row's
/// cursor holds its values of both, read from the row.
pub struct SortKey<E: EntityTrait> {
    pub column: E::Column,
    pub id: E::Column,
    pub direction: SortDirection,
    /// A value of the column's kind, to decode cursors into.
    sample: SortValue,
}

impl<E: EntityTrait> SortKey<E> {
    /// Sorted by a time column, ties broken by `id`.
    pub fn time(column: E::Column, id: E::Column, direction: SortDirection) -> Self {
        Self { column, id, direction, sample: SortValue::Time(DateTime::UNIX_EPOCH) }
    }

    /// Sorted by a text column, ties broken by `id`.
    pub fn text(column: E::Column, id: E::Column, direction: SortDirection) -> Self {
        Self { column, id, direction, sample: SortValue::Text(String::new()) }
    }

    /// The row's sort value and id, as its cursor holds them.
    fn value_of(&self, row: &E::Model) -> AppResult<(SortValue, i64)> {
        let value = match (&self.sample, row.get(self.column)) {
            (SortValue::Time(_), Value::ChronoDateTimeUtc(Some(t))) => SortValue::Time(t),
            (SortValue::Text(_), Value::String(Some(s))) => SortValue::Text(s),
            (_, other) => return Err(AppError::Internal(format!("sort column holds {other:?}"))),
        };
        match row.get(self.id) {
            Value::BigInt(Some(id)) => Ok((value, id)),
            other => Err(AppError::Internal(format!("id column holds {other:?}"))),
        }
    }
}

pub async fn paginate<E, C>(
    db: &C,
    select: Select<E>,
    key: &SortKey<E>,
    page: PageRequest<'_>,
) -> AppResult<Page<E::Model>>
where
    E: EntityTrait,
    E::Model: Sync,
    C: ConnectionTrait,
{
    let PageRequest { args, limits, with_total } = page;
    let (limit, backward) = validate(args, limits)?;
    let total_count = if with_total { Some(select.clone().count(db).await?) } else { None };

    // Walking backward reverses the order; rows are flipped back before returning.
    let ascending = (key.direction == SortDirection::Asc) != backward;
    let order = if ascending { Order::Asc } else { Order::Desc };
    let mut query = select.order_by(key.column, order.clone()).order_by(key.id, order);
    let cursor = if backward {
        args.before.as_deref().map(|c| (c, "before"))
    } else {
        args.after.as_deref().map(|c| (c, "after"))
    };
    if let Some((raw, arg)) = cursor {
        let (value, id) = decode_cursor(raw, &key.sample, arg)?;
        let v: SimpleExpr = Expr::val(value.into_value());
        let past = |col: E::Column, val: SimpleExpr| -> SimpleExpr {
            if ascending { Expr::col(col).gt(val) } else { Expr::col(col).lt(val) }
        };
        query = query.filter(
            Condition::any()
                .add(past(key.column, v.clone()))
                .add(Condition::all().add(Expr::col(key.column).eq(v)).add(past(key.id, Expr::val(id)))),
        );
    }
    let mut rows = if limit == 0 { Vec::new() } else { query.limit(limit + 1).all(db).await? };
    let more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    if backward {
        rows.reverse();
    }
    let items = with_cursors(rows, key)?;
    let (has_next_page, has_previous_page) =
        if backward { (args.before.is_some(), more) } else { (more, args.after.is_some()) };
    Ok(Page { items, has_next_page, has_previous_page, total_count })
}

/// A page of a list read through `cache` under `tag`: the page asked for is checked first
/// (a refused one is neither loaded nor cached), and the entry is keyed by `shape` (the
/// list's filters) and the page, `totalCount` included.
pub async fn through_cache<T>(
    cache: &crate::cache::Cache,
    tag: &str,
    prefix: &str,
    shape: impl Serialize,
    page: PageRequest<'_>,
    load: impl Future<Output = AppResult<Page<T>>>,
) -> AppResult<Page<T>>
where
    T: Serialize + serde::de::DeserializeOwned,
{
    validate(page.args, page.limits)?;
    cache.get_or_load_shaped(tag, prefix, &(shape, page.args, page.with_total), load).await
}

fn with_cursors<E: EntityTrait>(rows: Vec<E::Model>, key: &SortKey<E>) -> AppResult<Vec<(String, E::Model)>> {
    rows.into_iter()
        .map(|row| {
            let (value, id) = key.value_of(&row)?;
            Ok((encode_cursor(&value, id), row))
        })
        .collect()
}

/// The first page of `limit` rows from `rows`, which hold up to `limit + 1` rows in `key`'s
/// order: what `paginate` answers for `first: limit` with no cursor, for rows fetched by a
/// query of its own (e.g. the first pages of many parents in one statement).
pub fn first_page<E: EntityTrait>(mut rows: Vec<E::Model>, key: &SortKey<E>, limit: u64) -> AppResult<Page<E::Model>> {
    let more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    Ok(Page { items: with_cursors(rows, key)?, has_next_page: more, has_previous_page: false, total_count: None })
}

/// What a search box filters by: any of `columns` contains the trimmed `search`, ignoring case;
/// `None` for no search or a blank one. A search longer than `max_chars` is bad input.
pub fn search_in<C: ColumnTrait>(
    search: Option<&str>,
    max_chars: usize,
    columns: &[C],
) -> AppResult<Option<Condition>> {
    let Some(search) = search.map(str::trim).filter(|s| !s.is_empty()) else { return Ok(None) };
    if search.chars().count() > max_chars {
        return Err(AppError::bad_input("search", format!("search is at most {max_chars} characters")));
    }
    let pattern = like_contains(&search.to_lowercase());
    let matches = |col: C| Expr::expr(Func::lower(Expr::col(col))).like(LikeExpr::new(pattern.clone()).escape('\\'));
    Ok(Some(columns.iter().fold(Condition::any(), |any, col| any.add(matches(*col)))))
}

/// Escapes `%`, `_` and `\` so user text matches literally inside a LIKE pattern.
pub fn like_contains(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}
