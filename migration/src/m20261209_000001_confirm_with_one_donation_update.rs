//! A confirmation writes its donation row once (PostgreSQL). `incubase_confirm_donation`
//! updated the donation twice: its status first, then, after counting, its receipt number.
//! Both are indexed columns, so each update was a new row version with an entry in every one
//! of the donation table's indexes. Now the donation is locked while it is still in the
//! status its caller read (`SELECT … FOR UPDATE`, which writes no new version), the campaign's
//! totals, donor count and the year's receipt counter are counted as
//! `incubase_count_confirmation` does, and one update makes it CONFIRMED with its receipt
//! number. The rows are taken in the same order as before: the donation, the campaign, the
//! counter. Same signature, same result (the receipt sequence, or NULL when the donation is no
//! longer in that status).
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const CREATE: &str = "CREATE OR REPLACE FUNCTION incubase_confirm_donation(\
    p_donation bigint, p_from text, p_confirmed text, p_now timestamptz, p_reference text, p_year integer) \
  RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$ \
  DECLARE v_campaign bigint; v_account bigint; v_amount bigint; n bigint; \
  BEGIN \
    SELECT campaign_id, donor_account_id, amount_fen INTO v_campaign, v_account, v_amount \
      FROM donations WHERE id = p_donation AND status = p_from FOR UPDATE; \
    IF NOT FOUND THEN RETURN NULL; END IF; \
    UPDATE campaigns SET raised_fen = raised_fen + v_amount, donation_count = donation_count + 1, \
        donor_count = donor_count + CASE WHEN v_account IS NULL THEN 1 ELSE 0 END \
      WHERE id = v_campaign; \
    IF v_account IS NOT NULL THEN \
      UPDATE campaigns SET donor_count = donor_count + 1 WHERE id = v_campaign AND NOT EXISTS ( \
        SELECT 1 FROM donations o WHERE o.donor_account_id = v_account AND o.campaign_id = v_campaign \
          AND o.status = p_confirmed AND o.refunded_at IS NULL AND o.id <> p_donation); \
    END IF; \
    INSERT INTO receipt_counters (year, last_number) VALUES (p_year, 1) \
      ON CONFLICT (year) DO UPDATE SET last_number = receipt_counters.last_number + 1 \
      RETURNING last_number INTO n; \
    UPDATE donations SET status = p_confirmed, confirmed_at = p_now, received_at = COALESCE(received_at, p_now), \
        hold_reason = NULL, external_reference = p_reference, \
        receipt_number = p_year::text || '-' || CASE WHEN n < 1000000 THEN lpad(n::text, 6, '0') ELSE n::text END \
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
                .execute_unprepared(super::m20261208_000001_confirm_in_one_statement::CREATE)
                .await?;
        }
        Ok(())
    }
}
