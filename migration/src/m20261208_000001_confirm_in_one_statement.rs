//! A confirmation in one statement (PostgreSQL): `incubase_confirm_donation` makes a donation
//! CONFIRMED when it is still in the status its caller read, then counts it through
//! `incubase_count_confirmation` (totals, donor count, the year's receipt number). It returns
//! that receipt number's sequence, or NULL when the donation is no longer in that status, so
//! the statement that calls it appends the `donation.confirmed` event only for a confirmation
//! that happened (`api/src/service/crowdfunding/counting.rs`). A confirmation then needs no
//! transaction of its own around several statements: one statement is atomic, and it takes
//! the donation row, the campaign row and the receipt counter in that order, as before.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

pub(crate) const CREATE: &str = "CREATE OR REPLACE FUNCTION incubase_confirm_donation(\
    p_donation bigint, p_from text, p_confirmed text, p_now timestamptz, p_reference text, p_year integer) \
  RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$ \
  DECLARE v_campaign bigint; v_account bigint; v_amount bigint; \
  BEGIN \
    UPDATE donations SET status = p_confirmed, confirmed_at = p_now, received_at = COALESCE(received_at, p_now), \
        hold_reason = NULL, external_reference = p_reference \
      WHERE id = p_donation AND status = p_from \
      RETURNING campaign_id, donor_account_id, amount_fen INTO v_campaign, v_account, v_amount; \
    IF NOT FOUND THEN RETURN NULL; END IF; \
    RETURN incubase_count_confirmation(v_campaign, v_account, p_donation, v_amount, p_year, p_confirmed); \
  END $$";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            manager.get_connection().execute_unprepared(CREATE).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared(
                    "DROP FUNCTION IF EXISTS incubase_confirm_donation(bigint, text, text, timestamptz, text, integer)",
                )
                .await?;
        }
        Ok(())
    }
}
