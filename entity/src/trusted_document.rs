use sea_orm::entity::prelude::*;

/// A registered operation, named by the SHA-256 of its text.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "trusted_documents")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Lower-case hex SHA-256 of `body`.
    #[sea_orm(unique)]
    pub document_id: String,
    pub body: String,
    pub operation_name: Option<String>,
    /// Which frontend registered it (the manifest's client), for admins reading the list.
    pub client_name: Option<String>,
    pub registered_by_account_id: Option<i64>,
    pub registered_by_key_id: Option<i64>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
