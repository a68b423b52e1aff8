//! Confirmations counted together (PostgreSQL). Each confirmation holds its campaign's row and
//! the year's gapless receipt counter from the moment it counts until it commits, so under load
//! confirmations wait one behind another for those two rows. `incubase_confirm_donations`
//! confirms several in one transaction, taking those rows once for all of them.
//!
//! `p_jobs` is a JSON (jsonb) array of `{"id": …, "ref": …}` (a donation and the external reference to
//! record, or null to keep its own). The donations still PLEDGED, within their time to be paid
//! (created after `p_paid_from`, when given) and of a campaign that is not cancelled are locked
//! in id order; then their campaigns, in id order; each campaign's totals and donor count are
//! added once (an account counts when it has no other confirmed, unrefunded donation to that
//! campaign, read after the campaign is locked so that confirmations committed before are seen);
//! the receipt counter advances by their number once, and the donations, in id order, become
//! CONFIRMED with consecutive receipt numbers. The rows are taken in the same order as
//! `incubase_confirm_donation` takes them (donations, campaigns, the counter), so a batch and a
//! single confirmation cannot deadlock. Returns each confirmed donation with its receipt
//! sequence; a donation left out was no longer to count, and its caller decides what it is.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const CREATE: &str = "CREATE OR REPLACE FUNCTION incubase_confirm_donations(\
    p_jobs jsonb, p_pledged text, p_confirmed text, p_cancelled text, p_paid_from timestamptz, \
    p_now timestamptz, p_year integer) \
  RETURNS TABLE (confirmed_id bigint, receipt_seq bigint) LANGUAGE plpgsql VOLATILE AS $$ \
  DECLARE v_ids bigint[]; v_campaign bigint; v_last bigint; v_count bigint; \
  BEGIN \
    SELECT array_agg(s.id ORDER BY s.id) INTO v_ids FROM ( \
      SELECT d.id FROM donations d JOIN campaigns c ON c.id = d.campaign_id \
       WHERE d.id IN (SELECT j.id FROM jsonb_to_recordset(p_jobs) AS j(id bigint, ref text)) \
         AND d.status = p_pledged AND (p_paid_from IS NULL OR d.created_at > p_paid_from) \
         AND c.status <> p_cancelled \
       ORDER BY d.id FOR UPDATE OF d) s; \
    IF v_ids IS NULL THEN RETURN; END IF; \
    FOR v_campaign IN SELECT DISTINCT d.campaign_id FROM donations d WHERE d.id = ANY(v_ids) \
        ORDER BY d.campaign_id LOOP \
      PERFORM 1 FROM campaigns c WHERE c.id = v_campaign FOR NO KEY UPDATE; \
    END LOOP; \
    UPDATE campaigns c SET raised_fen = c.raised_fen + t.fen, donation_count = c.donation_count + t.n, \
        donor_count = c.donor_count + t.donors \
      FROM (SELECT g.campaign_id, sum(g.amount_fen) AS fen, count(*) AS n, \
              count(*) FILTER (WHERE g.donor_account_id IS NULL) \
                + count(DISTINCT g.donor_account_id) FILTER (WHERE g.first_gift) AS donors \
            FROM (SELECT d.campaign_id, d.amount_fen, d.donor_account_id, \
                    d.donor_account_id IS NOT NULL AND NOT EXISTS ( \
                      SELECT 1 FROM donations o WHERE o.donor_account_id = d.donor_account_id \
                        AND o.campaign_id = d.campaign_id AND o.status = p_confirmed \
                        AND o.refunded_at IS NULL AND o.id <> ALL(v_ids)) AS first_gift \
                  FROM donations d WHERE d.id = ANY(v_ids)) g \
            GROUP BY g.campaign_id) t \
     WHERE c.id = t.campaign_id; \
    v_count := array_length(v_ids, 1); \
    INSERT INTO receipt_counters AS r (year, last_number) VALUES (p_year, v_count) \
      ON CONFLICT (year) DO UPDATE SET last_number = r.last_number + EXCLUDED.last_number \
      RETURNING r.last_number INTO v_last; \
    RETURN QUERY WITH u AS ( \
      UPDATE donations d SET status = p_confirmed, confirmed_at = p_now, \
          received_at = COALESCE(d.received_at, p_now), hold_reason = NULL, \
          external_reference = COALESCE(j.ref, d.external_reference), \
          receipt_number = p_year::text || '-' || CASE WHEN v_last - v_count + k.ord < 1000000 \
            THEN lpad((v_last - v_count + k.ord)::text, 6, '0') ELSE (v_last - v_count + k.ord)::text END \
        FROM unnest(v_ids) WITH ORDINALITY AS k(id, ord) \
        JOIN jsonb_to_recordset(p_jobs) AS j(id bigint, ref text) ON j.id = k.id \
       WHERE d.id = k.id \
       RETURNING d.id, v_last - v_count + k.ord) \
    SELECT * FROM u; \
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
                    "DROP FUNCTION IF EXISTS incubase_confirm_donations(jsonb, text, text, text, timestamptz, timestamptz, integer)",
                )
                .await?;
        }
        Ok(())
    }
}
