use sea_orm::entity::prelude::*;

/// A partner frontend's key, stored hashed; the secret is shown once.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_keys")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    /// The first characters of the key, to recognise it in lists.
    pub prefix: String,
    #[sea_orm(unique)]
    pub key_hash: String,
    /// Comma-separated scopes.
    pub scopes: String,
    pub created_by: i64,
    pub created_at: DateTimeUtc,
    pub expires_at: Option<DateTimeUtc>,
    pub revoked_at: Option<DateTimeUtc>,
    pub last_used_at: Option<DateTimeUtc>,
    /// Browser-safe: bound to `allowed_origins`, limited to scopes safe to expose.
    pub publishable: bool,
    /// Newline-separated canonical origins of a publishable key.
    pub allowed_origins: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
