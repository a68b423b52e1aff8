//! An applied statement's report is kept in pieces of about 128 KiB, one row each, instead of
//! one text grown piece by piece: growing one value rewrote all of it per piece (PostgreSQL
//! wrote a new TOAST copy each time, SQLite held the old and the new text at once), and a list
//! of imports read every report whole. Imports applied before keep their report where it was.
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum StatementImports {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum StatementImportReportPieces {
    Table,
    ImportId,
    Seq,
    Piece,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(StatementImportReportPieces::Table)
                    .col(big_integer(StatementImportReportPieces::ImportId))
                    .col(integer(StatementImportReportPieces::Seq))
                    .col(text(StatementImportReportPieces::Piece))
                    .primary_key(
                        Index::create()
                            .col(StatementImportReportPieces::ImportId)
                            .col(StatementImportReportPieces::Seq),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(StatementImportReportPieces::Table, StatementImportReportPieces::ImportId)
                            .to(StatementImports::Table, StatementImports::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(StatementImportReportPieces::Table).to_owned()).await
    }
}
