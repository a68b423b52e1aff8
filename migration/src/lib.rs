//! Database migrations. Each file is one timestamped step; the crate does not import `entity`
//! so that old migrations never change when entities do.
pub use sea_orm_migration::prelude::*;

mod m20261129_000001_organizations;
mod m20261129_000002_identity;
mod m20261129_000003_spaces;
mod m20261129_000004_crowdfunding;
mod m20261129_000005_events;
mod m20261129_000006_grants;
mod m20261201_000001_campaign_donor_count;
mod m20261201_000002_event_log;
mod m20261202_000001_publishable_keys;
mod m20261202_000002_trusted_documents;
mod m20261203_000010_webhooks;
mod m20261203_000011_notifications;
mod m20261204_000012_account_recovery;
mod m20261204_001601_donation_expiry_and_holds;
mod m20261204_001602_partial_refunds;
mod m20261204_001603_statement_imports;
mod m20261204_001606_payment_notifications;
mod m20261204_001607_donation_reference_indexes;
mod m20261204_001701_event_venue_reservations;
mod m20261204_001702_training_sessions;
mod m20261205_001621_guest_receipt_contacts;
mod m20261205_001622_message_channels;
mod m20261206_000001_event_doorbell_after_commit;
mod m20261207_000001_confirmation_in_one_call;
mod m20261208_000001_confirm_in_one_statement;
mod m20261209_000001_confirm_with_one_donation_update;
mod m20261210_000001_confirm_in_batches;
mod m20261211_000001_statement_report_pieces;
mod m20261212_000001_sealed_webhook_secrets;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261129_000001_organizations::Migration),
            Box::new(m20261129_000002_identity::Migration),
            Box::new(m20261129_000003_spaces::Migration),
            Box::new(m20261129_000004_crowdfunding::Migration),
            Box::new(m20261129_000005_events::Migration),
            Box::new(m20261129_000006_grants::Migration),
            Box::new(m20261201_000001_campaign_donor_count::Migration),
            Box::new(m20261201_000002_event_log::Migration),
            Box::new(m20261202_000001_publishable_keys::Migration),
            Box::new(m20261202_000002_trusted_documents::Migration),
            Box::new(m20261203_000010_webhooks::Migration),
            Box::new(m20261203_000011_notifications::Migration),
            Box::new(m20261204_000012_account_recovery::Migration),
            Box::new(m20261204_001601_donation_expiry_and_holds::Migration),
            Box::new(m20261204_001602_partial_refunds::Migration),
            Box::new(m20261204_001603_statement_imports::Migration),
            Box::new(m20261204_001606_payment_notifications::Migration),
            Box::new(m20261204_001607_donation_reference_indexes::Migration),
            Box::new(m20261204_001701_event_venue_reservations::Migration),
            Box::new(m20261204_001702_training_sessions::Migration),
            Box::new(m20261205_001621_guest_receipt_contacts::Migration),
            Box::new(m20261205_001622_message_channels::Migration),
            Box::new(m20261206_000001_event_doorbell_after_commit::Migration),
            Box::new(m20261207_000001_confirmation_in_one_call::Migration),
            Box::new(m20261208_000001_confirm_in_one_statement::Migration),
            Box::new(m20261209_000001_confirm_with_one_donation_update::Migration),
            Box::new(m20261210_000001_confirm_in_batches::Migration),
            Box::new(m20261211_000001_statement_report_pieces::Migration),
            Box::new(m20261212_000001_sealed_webhook_secrets::Migration),
        ]
    }
}
