//! Venture philanthropy and funded service projects: grant rounds, proposals, reviews and
//! awards; service projects (from an award, a government purchase or a campaign) with their
//! disbursement ledger, impact goals and service records.
//!
//! Money is integer fen. The awarded total of a round and the disbursed total of a project are
//! kept as columns and only ever changed by conditional `UPDATE … SET x = x + n WHERE x + n <=
//! limit`; CHECK constraints hold the same limits as a last line of defence.
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum GrantRounds {
    Table,
    Id,
    Title,
    Description,
    BudgetFen,
    PerProposalCapFen,
    AwardedTotalFen,
    OpensAt,
    ClosesAt,
    ReviewEndsAt,
    ResultsAt,
    EligibleStages,
    Rubric,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum GrantProposals {
    Table,
    Id,
    RoundId,
    OrganizationId,
    Title,
    Summary,
    Problem,
    Plan,
    Beneficiaries,
    RequestedFen,
    BudgetLines,
    Attachments,
    Status,
    AwardedFen,
    DecisionNote,
    SubmittedAt,
    DecidedAt,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum GrantReviews {
    Table,
    Id,
    ProposalId,
    ReviewerId,
    Status,
    Scores,
    Comment,
    ConflictReason,
    AssignedAt,
    SubmittedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ServiceProjects {
    Table,
    Id,
    OrganizationId,
    Title,
    Description,
    Source,
    ProposalId,
    CampaignId,
    Purchaser,
    PurchaserKind,
    ContractNumber,
    FundedFen,
    DisbursedFen,
    StartsOn,
    EndsOn,
    BudgetLines,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ProjectDisbursements {
    Table,
    Id,
    ProjectId,
    AmountFen,
    PaidOn,
    Note,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ProjectGoals {
    Table,
    Id,
    ProjectId,
    GoalType,
    Unit,
    Target,
    Achieved,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ProjectGoalUpdates {
    Table,
    Id,
    GoalId,
    Achieved,
    Note,
    ReportedOn,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ServiceRecords {
    Table,
    Id,
    ProjectId,
    ServedOn,
    Activity,
    Women,
    Children,
    Families,
    Elderly,
    Others,
    Location,
    CreatedAt,
}

fn fk(from: (impl IntoIden, impl IntoIden), to: (impl IntoIden, impl IntoIden)) -> ForeignKeyCreateStatement {
    ForeignKey::create().from(from.0, from.1).to(to.0, to.1).on_delete(ForeignKeyAction::Cascade).to_owned()
}

async fn index(manager: &SchemaManager<'_>, name: &str, table: impl IntoIden, cols: Vec<DynIden>) -> Result<(), DbErr> {
    let mut stmt = Index::create();
    stmt.name(name).table(table);
    for col in cols {
        stmt.col(col);
    }
    manager.create_index(stmt.to_owned()).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(GrantRounds::Table)
                    .col(big_pk_auto(GrantRounds::Id))
                    .col(string_len(GrantRounds::Title, 200))
                    .col(text(GrantRounds::Description).default(""))
                    .col(big_integer(GrantRounds::BudgetFen))
                    .col(big_integer(GrantRounds::PerProposalCapFen))
                    .col(big_integer(GrantRounds::AwardedTotalFen).default(0))
                    .col(timestamp_with_time_zone(GrantRounds::OpensAt))
                    .col(timestamp_with_time_zone(GrantRounds::ClosesAt))
                    .col(timestamp_with_time_zone(GrantRounds::ReviewEndsAt))
                    .col(timestamp_with_time_zone(GrantRounds::ResultsAt))
                    .col(string_len(GrantRounds::EligibleStages, 200).default(""))
                    .col(text(GrantRounds::Rubric))
                    .col(timestamp_with_time_zone(GrantRounds::CreatedAt))
                    .col(timestamp_with_time_zone(GrantRounds::UpdatedAt))
                    .check((
                        Alias::new("ck_grant_rounds_awarded_within_budget"),
                        Expr::col(GrantRounds::AwardedTotalFen)
                            .gte(0)
                            .and(Expr::col(GrantRounds::AwardedTotalFen).lte(Expr::col(GrantRounds::BudgetFen))),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_grant_rounds_opens",
            GrantRounds::Table,
            vec![GrantRounds::OpensAt.into_iden(), GrantRounds::Id.into_iden()],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(GrantProposals::Table)
                    .col(big_pk_auto(GrantProposals::Id))
                    .col(big_integer(GrantProposals::RoundId))
                    .col(big_integer(GrantProposals::OrganizationId))
                    .col(string_len(GrantProposals::Title, 200))
                    .col(text(GrantProposals::Summary).default(""))
                    .col(text(GrantProposals::Problem).default(""))
                    .col(text(GrantProposals::Plan).default(""))
                    .col(text(GrantProposals::Beneficiaries))
                    .col(big_integer(GrantProposals::RequestedFen))
                    .col(text(GrantProposals::BudgetLines))
                    .col(text(GrantProposals::Attachments))
                    .col(string_len(GrantProposals::Status, 16))
                    .col(big_integer_null(GrantProposals::AwardedFen))
                    .col(text(GrantProposals::DecisionNote).default(""))
                    .col(timestamp_with_time_zone_null(GrantProposals::SubmittedAt))
                    .col(timestamp_with_time_zone_null(GrantProposals::DecidedAt))
                    .col(big_integer_null(GrantProposals::CreatedBy))
                    .col(timestamp_with_time_zone(GrantProposals::CreatedAt))
                    .col(timestamp_with_time_zone(GrantProposals::UpdatedAt))
                    .foreign_key(&mut fk(
                        (GrantProposals::Table, GrantProposals::RoundId),
                        (GrantRounds::Table, GrantRounds::Id),
                    ))
                    .foreign_key(&mut fk(
                        (GrantProposals::Table, GrantProposals::OrganizationId),
                        (Organizations::Table, Organizations::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_grant_proposals_round",
            GrantProposals::Table,
            vec![GrantProposals::RoundId.into_iden(), GrantProposals::Id.into_iden()],
        )
        .await?;
        index(
            manager,
            "idx_grant_proposals_org",
            GrantProposals::Table,
            vec![GrantProposals::OrganizationId.into_iden()],
        )
        .await?;
        index(
            manager,
            "idx_grant_proposals_decided",
            GrantProposals::Table,
            vec![GrantProposals::DecidedAt.into_iden()],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(GrantReviews::Table)
                    .col(big_pk_auto(GrantReviews::Id))
                    .col(big_integer(GrantReviews::ProposalId))
                    .col(big_integer(GrantReviews::ReviewerId))
                    .col(string_len(GrantReviews::Status, 16))
                    .col(text(GrantReviews::Scores))
                    .col(text(GrantReviews::Comment).default(""))
                    .col(text_null(GrantReviews::ConflictReason))
                    .col(timestamp_with_time_zone(GrantReviews::AssignedAt))
                    .col(timestamp_with_time_zone_null(GrantReviews::SubmittedAt))
                    .col(timestamp_with_time_zone(GrantReviews::UpdatedAt))
                    .foreign_key(&mut fk(
                        (GrantReviews::Table, GrantReviews::ProposalId),
                        (GrantProposals::Table, GrantProposals::Id),
                    ))
                    .foreign_key(&mut fk(
                        (GrantReviews::Table, GrantReviews::ReviewerId),
                        (Accounts::Table, Accounts::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_grant_reviews_proposal_reviewer")
                    .table(GrantReviews::Table)
                    .col(GrantReviews::ProposalId)
                    .col(GrantReviews::ReviewerId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_grant_reviews_reviewer",
            GrantReviews::Table,
            vec![GrantReviews::ReviewerId.into_iden(), GrantReviews::Id.into_iden()],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(ServiceProjects::Table)
                    .col(big_pk_auto(ServiceProjects::Id))
                    .col(big_integer(ServiceProjects::OrganizationId))
                    .col(string_len(ServiceProjects::Title, 200))
                    .col(text(ServiceProjects::Description).default(""))
                    .col(string_len(ServiceProjects::Source, 24))
                    .col(big_integer_null(ServiceProjects::ProposalId).unique_key())
                    // Campaigns are another domain's table; no foreign key so the two can land
                    // in either order.
                    .col(big_integer_null(ServiceProjects::CampaignId))
                    .col(string_len_null(ServiceProjects::Purchaser, 200))
                    .col(string_len_null(ServiceProjects::PurchaserKind, 24))
                    .col(string_len_null(ServiceProjects::ContractNumber, 64))
                    .col(big_integer(ServiceProjects::FundedFen))
                    .col(big_integer(ServiceProjects::DisbursedFen).default(0))
                    .col(date(ServiceProjects::StartsOn))
                    .col(date(ServiceProjects::EndsOn))
                    .col(text(ServiceProjects::BudgetLines))
                    .col(timestamp_with_time_zone(ServiceProjects::CreatedAt))
                    .col(timestamp_with_time_zone(ServiceProjects::UpdatedAt))
                    .check((
                        Alias::new("ck_service_projects_disbursed_within_funding"),
                        Expr::col(ServiceProjects::DisbursedFen)
                            .gte(0)
                            .and(Expr::col(ServiceProjects::DisbursedFen).lte(Expr::col(ServiceProjects::FundedFen))),
                    ))
                    .foreign_key(&mut fk(
                        (ServiceProjects::Table, ServiceProjects::OrganizationId),
                        (Organizations::Table, Organizations::Id),
                    ))
                    .foreign_key(&mut fk(
                        (ServiceProjects::Table, ServiceProjects::ProposalId),
                        (GrantProposals::Table, GrantProposals::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_service_projects_org",
            ServiceProjects::Table,
            vec![ServiceProjects::OrganizationId.into_iden()],
        )
        .await?;
        index(
            manager,
            "idx_service_projects_period",
            ServiceProjects::Table,
            vec![ServiceProjects::StartsOn.into_iden(), ServiceProjects::EndsOn.into_iden()],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(ProjectDisbursements::Table)
                    .col(big_pk_auto(ProjectDisbursements::Id))
                    .col(big_integer(ProjectDisbursements::ProjectId))
                    .col(big_integer(ProjectDisbursements::AmountFen))
                    .col(date(ProjectDisbursements::PaidOn))
                    .col(text(ProjectDisbursements::Note).default(""))
                    .col(timestamp_with_time_zone(ProjectDisbursements::CreatedAt))
                    .foreign_key(&mut fk(
                        (ProjectDisbursements::Table, ProjectDisbursements::ProjectId),
                        (ServiceProjects::Table, ServiceProjects::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_disbursements_project",
            ProjectDisbursements::Table,
            vec![ProjectDisbursements::ProjectId.into_iden(), ProjectDisbursements::PaidOn.into_iden()],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(ProjectGoals::Table)
                    .col(big_pk_auto(ProjectGoals::Id))
                    .col(big_integer(ProjectGoals::ProjectId))
                    .col(string_len(ProjectGoals::GoalType, 100))
                    .col(string_len(ProjectGoals::Unit, 32))
                    .col(big_integer(ProjectGoals::Target))
                    .col(big_integer(ProjectGoals::Achieved).default(0))
                    .col(timestamp_with_time_zone(ProjectGoals::CreatedAt))
                    .col(timestamp_with_time_zone(ProjectGoals::UpdatedAt))
                    .foreign_key(&mut fk(
                        (ProjectGoals::Table, ProjectGoals::ProjectId),
                        (ServiceProjects::Table, ServiceProjects::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(manager, "idx_project_goals_project", ProjectGoals::Table, vec![ProjectGoals::ProjectId.into_iden()])
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ProjectGoalUpdates::Table)
                    .col(big_pk_auto(ProjectGoalUpdates::Id))
                    .col(big_integer(ProjectGoalUpdates::GoalId))
                    .col(big_integer(ProjectGoalUpdates::Achieved))
                    .col(text(ProjectGoalUpdates::Note).default(""))
                    .col(date(ProjectGoalUpdates::ReportedOn))
                    .col(timestamp_with_time_zone(ProjectGoalUpdates::CreatedAt))
                    .foreign_key(&mut fk(
                        (ProjectGoalUpdates::Table, ProjectGoalUpdates::GoalId),
                        (ProjectGoals::Table, ProjectGoals::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_goal_updates_goal",
            ProjectGoalUpdates::Table,
            vec![ProjectGoalUpdates::GoalId.into_iden(), ProjectGoalUpdates::Id.into_iden()],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(ServiceRecords::Table)
                    .col(big_pk_auto(ServiceRecords::Id))
                    .col(big_integer(ServiceRecords::ProjectId))
                    .col(date(ServiceRecords::ServedOn))
                    .col(string_len(ServiceRecords::Activity, 200))
                    .col(integer(ServiceRecords::Women).default(0))
                    .col(integer(ServiceRecords::Children).default(0))
                    .col(integer(ServiceRecords::Families).default(0))
                    .col(integer(ServiceRecords::Elderly).default(0))
                    .col(integer(ServiceRecords::Others).default(0))
                    .col(string_len(ServiceRecords::Location, 200).default(""))
                    .col(timestamp_with_time_zone(ServiceRecords::CreatedAt))
                    .foreign_key(&mut fk(
                        (ServiceRecords::Table, ServiceRecords::ProjectId),
                        (ServiceProjects::Table, ServiceProjects::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(manager, "idx_service_records_served", ServiceRecords::Table, vec![ServiceRecords::ServedOn.into_iden()])
            .await?;
        index(
            manager,
            "idx_service_records_project",
            ServiceRecords::Table,
            vec![
                ServiceRecords::ProjectId.into_iden(),
                ServiceRecords::ServedOn.into_iden(),
                ServiceRecords::Id.into_iden(),
            ],
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ServiceRecords::Table.into_iden(),
            ProjectGoalUpdates::Table.into_iden(),
            ProjectGoals::Table.into_iden(),
            ProjectDisbursements::Table.into_iden(),
            ServiceProjects::Table.into_iden(),
            GrantReviews::Table.into_iden(),
            GrantProposals::Table.into_iden(),
            GrantRounds::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
