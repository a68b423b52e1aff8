//! Campaign progress as it changes.
#[allow(unused_imports)]
use super::*;

#[derive(Default)]
pub struct CrowdfundingSubscription;

/// A campaign's progress after something changed it.
#[derive(SimpleObject)]
pub struct CampaignProgressChange {
    /// Pass as `after` when reconnecting to receive what came after this message.
    pub cursor: String,
    /// The event that changed the progress (`donation.confirmed`, `donation.refunded`, …);
    /// `null` on the first message, which shows the progress as it is.
    pub event_type: Option<String>,
    pub event_id: Option<ID>,
    /// The progress now (also when replaying missed changes: totals are read at delivery).
    pub progress: CampaignProgress,
}

#[async_graphql::Subscription]
impl CrowdfundingSubscription {
    /// The campaign's progress now, then again each time a donation to it is confirmed or
    /// refunded or the campaign changes (written by any server instance or the CLI).
    /// Published campaigns only. With `after` (a cursor of an earlier message), the changes
    /// since that message come first, in order, then live ones; a cursor older than the
    /// replay window answers `BAD_USER_INPUT` with reason `CURSOR_EXPIRED`.
    async fn campaign_progress(
        &self,
        ctx: &Context<'_>,
        id: ID,
        after: Option<String>,
    ) -> Result<impl futures::Stream<Item = CampaignProgressChange> + use<>> {
        let row = ids::decode(&id, CAMPAIGN, "id")?;
        let state = state(ctx)?.clone();
        let wanted = move |e: &entity::domain_event::Model| changes_progress(e, row);
        let (start, changes) = crate::graphql::audit::live_events(&state, after.as_deref(), wanted).await?;
        let record = service::find_by_id(&state.db, row).await.extend()?;
        let Some(record) = record.filter(|r| visible(viewer(ctx), r)) else {
            return Err(AppError::NotFound("campaign".into()).extend());
        };
        let state_for_changes = state.clone();
        let first = CampaignProgressChange {
            cursor: start.cursor(),
            event_type: None,
            event_id: None,
            progress: CampaignProgress::of(&record),
        };
        let first = if after.is_some() { None } else { Some(first) };
        let changes = crate::events::live::messages(changes, "campaign progress", move |event| {
            let state = state_for_changes.clone();
            async move {
                // Through the cache: a thousand subscribers cost one load, not a thousand.
                let record = state.crowdfunding().campaign(row).await?;
                Ok(record.map(|record| CampaignProgressChange {
                    cursor: crate::events::Position::of(&event).cursor(),
                    event_type: Some(event.event_type.clone()),
                    event_id: Some(ids::encode(crate::graphql::audit::AUDIT_ENTRY, event.id)),
                    progress: CampaignProgress::of(&record),
                }))
            }
        });
        Ok(futures::StreamExt::chain(futures::stream::iter(first), changes))
    }
}

/// Whether `event` changes campaign `id`'s progress.
pub(super) fn changes_progress(event: &entity::domain_event::Model, id: i64) -> bool {
    use crate::events::EventKind::*;
    match crate::events::log::kind_of(event) {
        Some(DonationConfirmed | DonationRefunded) => {
            event.payload.get("campaignId").and_then(serde_json::Value::as_i64) == Some(id)
        }
        Some(CampaignUpdated | CampaignApproved | CampaignEnded | CampaignCancelled) => event.aggregate_id == id,
        _ => false,
    }
}
