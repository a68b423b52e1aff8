//! Organizations of the base: the directory, their focus areas and their stage history.
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
    Slug,
    Name,
    NameTraditional,
    NameEn,
    Kind,
    CreditCode,
    FoundedOn,
    ContactName,
    ContactPhone,
    ContactEmail,
    Website,
    Description,
    LogoUrl,
    Stage,
    StageChangedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum OrganizationFocusAreas {
    Table,
    OrganizationId,
    FocusArea,
}

#[derive(DeriveIden)]
enum OrganizationStageTransitions {
    Table,
    Id,
    OrganizationId,
    FromStage,
    ToStage,
    Note,
    OccurredAt,
    RecordedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Names sort by code point on both backends: PostgreSQL's default collation depends on
        // the server locale, SQLite's BINARY does not, and keyset cursors need one order.
        let mut name = string_len(Organizations::Name, 200);
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            name.extra("COLLATE \"C\"");
        }
        manager
            .create_table(
                Table::create()
                    .table(Organizations::Table)
                    .col(big_pk_auto(Organizations::Id))
                    .col(string_len_uniq(Organizations::Slug, 64))
                    .col(name)
                    .col(string_len_null(Organizations::NameTraditional, 200))
                    .col(string_len_null(Organizations::NameEn, 300))
                    .col(string_len(Organizations::Kind, 32))
                    .col(string_len_null(Organizations::CreditCode, 18).unique_key())
                    .col(date_null(Organizations::FoundedOn))
                    .col(string_len_null(Organizations::ContactName, 100))
                    .col(string_len_null(Organizations::ContactPhone, 40))
                    .col(string_len_null(Organizations::ContactEmail, 254))
                    .col(string_len_null(Organizations::Website, 500))
                    .col(text(Organizations::Description).default(""))
                    .col(string_len_null(Organizations::LogoUrl, 500))
                    .col(string_len(Organizations::Stage, 16))
                    .col(timestamp_with_time_zone(Organizations::StageChangedAt))
                    .col(timestamp_with_time_zone(Organizations::CreatedAt))
                    .col(timestamp_with_time_zone(Organizations::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        for (index, cols) in [
            ("idx_organizations_name", vec![Organizations::Name, Organizations::Id]),
            ("idx_organizations_created", vec![Organizations::CreatedAt, Organizations::Id]),
            ("idx_organizations_stage", vec![Organizations::Stage, Organizations::Id]),
        ] {
            let mut stmt = Index::create();
            stmt.name(index).table(Organizations::Table);
            for col in cols {
                stmt.col(col);
            }
            manager.create_index(stmt.to_owned()).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(OrganizationFocusAreas::Table)
                    .col(big_integer(OrganizationFocusAreas::OrganizationId))
                    .col(string_len(OrganizationFocusAreas::FocusArea, 32))
                    .primary_key(
                        Index::create()
                            .col(OrganizationFocusAreas::OrganizationId)
                            .col(OrganizationFocusAreas::FocusArea),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(OrganizationFocusAreas::Table, OrganizationFocusAreas::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_focus_areas_area")
                    .table(OrganizationFocusAreas::Table)
                    .col(OrganizationFocusAreas::FocusArea)
                    .col(OrganizationFocusAreas::OrganizationId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(OrganizationStageTransitions::Table)
                    .col(big_pk_auto(OrganizationStageTransitions::Id))
                    .col(big_integer(OrganizationStageTransitions::OrganizationId))
                    .col(string_len_null(OrganizationStageTransitions::FromStage, 16))
                    .col(string_len(OrganizationStageTransitions::ToStage, 16))
                    .col(text(OrganizationStageTransitions::Note).default(""))
                    .col(timestamp_with_time_zone(OrganizationStageTransitions::OccurredAt))
                    .col(timestamp_with_time_zone(OrganizationStageTransitions::RecordedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(OrganizationStageTransitions::Table, OrganizationStageTransitions::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_stage_transitions_org")
                    .table(OrganizationStageTransitions::Table)
                    .col(OrganizationStageTransitions::OrganizationId)
                    .col(OrganizationStageTransitions::OccurredAt)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            OrganizationStageTransitions::Table.into_iden(),
            OrganizationFocusAreas::Table.into_iden(),
            Organizations::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
