//! Reads that many services (and the background deliverers) share.
use std::collections::HashMap;

use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DeleteMany, EntityTrait, PrimaryKeyTrait, QueryFilter, Select,
    UpdateMany,
};

use crate::error::{AppError, AppResult};

/// The rows of `id`'s table whose `id` is one of `ids`, by their id (`key`); no statement for
/// no ids.
pub async fn by_id<C>(
    db: &impl ConnectionTrait,
    id: C,
    ids: impl IntoIterator<Item = i64>,
    key: impl Fn(&<C::EntityName as EntityTrait>::Model) -> i64,
) -> AppResult<HashMap<i64, <C::EntityName as EntityTrait>::Model>>
where
    C: ColumnTrait,
    C::EntityName: EntityTrait<Column = C>,
{
    let ids: Vec<i64> = ids.into_iter().collect();
    let rows = rows_by_ids(db, id, &ids).await?;
    Ok(rows.into_iter().map(|m| (key(&m), m)).collect())
}

/// The rows of `query` whose `parent` column is one of `ids`, grouped by their parent
/// (`key`; rows without one are left out) in the query's order. No statement for no ids.
pub async fn grouped<E, K>(
    db: &impl ConnectionTrait,
    query: Select<E>,
    parent: E::Column,
    ids: &[i64],
    key: impl Fn(&E::Model) -> K,
) -> AppResult<HashMap<i64, Vec<E::Model>>>
where
    E: EntityTrait,
    K: Into<Option<i64>>,
{
    let mut map: HashMap<i64, Vec<E::Model>> = HashMap::new();
    if ids.is_empty() {
        return Ok(map);
    }
    for row in query.filter(parent.is_in(ids.iter().copied())).all(db).await? {
        if let Some(k) = key(&row).into() {
            map.entry(k).or_default().push(row);
        }
    }
    Ok(map)
}

/// The row of `E` with the primary key `id`, or `NotFound(what)`.
pub async fn found<E>(db: &impl ConnectionTrait, id: i64, what: &str) -> AppResult<E::Model>
where
    E: EntityTrait,
    i64: Into<<E::PrimaryKey as PrimaryKeyTrait>::ValueType>,
{
    E::find_by_id(id).one(db).await?.ok_or_else(|| AppError::NotFound(what.into()))
}

/// The rows of `id`'s table whose `id` is one of `ids`; no statement for no ids.
pub async fn rows_by_ids<C>(
    db: &impl ConnectionTrait,
    id: C,
    ids: &[i64],
) -> AppResult<Vec<<C::EntityName as EntityTrait>::Model>>
where
    C: ColumnTrait,
    C::EntityName: EntityTrait<Column = C>,
{
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(<C::EntityName as EntityTrait>::find().filter(id.is_in(ids.iter().copied())).all(db).await?)
}

/// The names whose flag is set, in order: a patch's changed fields for the audit trail.
pub fn names_set<const N: usize>(fields: [(&'static str, bool); N]) -> Vec<&'static str> {
    fields.into_iter().filter_map(|(name, set)| set.then_some(name)).collect()
}

/// The answer when a row changed between the read and the write conditional on it.
pub fn changed_meanwhile(what: &str) -> AppError {
    AppError::Conflict(format!("the {what} changed meanwhile; reload and retry").into())
}

/// A write conditional on what was read: it must touch exactly one row, or what it was
/// conditional on no longer holds and `refused()` is the answer.
pub(crate) trait ExecOne {
    async fn exec_one(self, db: &impl ConnectionTrait, refused: impl FnOnce() -> AppError) -> AppResult<()>;
}

impl<E: EntityTrait> ExecOne for UpdateMany<E> {
    async fn exec_one(self, db: &impl ConnectionTrait, refused: impl FnOnce() -> AppError) -> AppResult<()> {
        only_one(self.exec(db).await?.rows_affected, refused)
    }
}

impl<E: EntityTrait> ExecOne for DeleteMany<E> {
    async fn exec_one(self, db: &impl ConnectionTrait, refused: impl FnOnce() -> AppError) -> AppResult<()> {
        only_one(self.exec(db).await?.rows_affected, refused)
    }
}

fn only_one(rows: u64, refused: impl FnOnce() -> AppError) -> AppResult<()> {
    if rows == 1 { Ok(()) } else { Err(refused()) }
}

/// Inserts `row`, or where a row with the same `keys` exists, overwrites its `columns` with
/// `row`'s.
pub async fn upsert<A>(
    db: &impl ConnectionTrait,
    row: A,
    keys: &[<A::Entity as EntityTrait>::Column],
    columns: &[<A::Entity as EntityTrait>::Column],
) -> AppResult<()>
where
    A: ActiveModelTrait,
{
    <A::Entity as EntityTrait>::insert(row)
        .on_conflict(OnConflict::columns(keys.iter().copied()).update_columns(columns.iter().copied()).to_owned())
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Inserts `rows`, `chunk` at a time, leaving alone each row whose `unique` columns match a
/// row already there; how many were written.
pub async fn insert_new<A>(
    db: &impl ConnectionTrait,
    mut rows: Vec<A>,
    chunk: usize,
    unique: &[<A::Entity as EntityTrait>::Column],
) -> AppResult<u64>
where
    A: ActiveModelTrait,
{
    let mut written = 0;
    while !rows.is_empty() {
        let part: Vec<A> = rows.drain(..rows.len().min(chunk)).collect();
        let result = <A::Entity as EntityTrait>::insert_many(part)
            .on_conflict(OnConflict::columns(unique.iter().copied()).do_nothing().to_owned())
            .exec_without_returning(db)
            .await;
        match result {
            Ok(n) => written += n,
            Err(sea_orm::DbErr::RecordNotInserted) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(written)
}
