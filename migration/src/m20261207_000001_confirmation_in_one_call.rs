//! A confirmation's shared rows in one round trip (PostgreSQL): `incubase_count_confirmation`
//! adds a donation to its campaign's totals, counts its account as a donor unless another of
//! its donations already counts, takes the year's next receipt number and writes it on the
//! donation. The campaign row and the year's receipt counter, which every confirmation of a
//! campaign (and of the year) waits for, are then held for one call and the commit instead of
//! two statements with a round trip to the server between them. Each statement of a
//! PL/pgSQL function takes a fresh snapshot at READ COMMITTED, so the donor check, which runs
//! after the campaign row is locked, sees every earlier holder's commit, as it did before.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const CREATE: &str = "CREATE OR REPLACE FUNCTION incubase_count_confirmation(\
    p_campaign bigint, p_account bigint, p_donation bigint, p_amount bigint, p_year integer, p_confirmed text) \
  RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$ \
  DECLARE n bigint; \
  BEGIN \
    UPDATE campaigns SET raised_fen = raised_fen + p_amount, donation_count = donation_count + 1, \
        donor_count = donor_count + CASE WHEN p_account IS NULL THEN 1 ELSE 0 END \
      WHERE id = p_campaign; \
    IF p_account IS NOT NULL THEN \
      UPDATE campaigns SET donor_count = donor_count + 1 WHERE id = p_campaign AND NOT EXISTS ( \
        SELECT 1 FROM donations o WHERE o.donor_account_id = p_account AND o.campaign_id = p_campaign \
          AND o.status = p_confirmed AND o.refunded_at IS NULL AND o.id <> p_donation); \
    END IF; \
    INSERT INTO receipt_counters (year, last_number) VALUES (p_year, 1) \
      ON CONFLICT (year) DO UPDATE SET last_number = receipt_counters.last_number + 1 \
      RETURNING last_number INTO n; \
    UPDATE donations SET receipt_number = p_year::text || '-' || \
        CASE WHEN n < 1000000 THEN lpad(n::text, 6, '0') ELSE n::text END \
      WHERE id = p_donation; \
    RETURN n; \
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
                    "DROP FUNCTION IF EXISTS incubase_count_confirmation(bigint, bigint, bigint, bigint, integer, text)",
                )
                .await?;
        }
        Ok(())
    }
}
