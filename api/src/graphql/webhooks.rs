//! Partner webhooks in the schema (admins): endpoints, their delivery logs, and the commands.
use crate::graphql::common::payload;
use std::collections::HashMap;

use async_graphql::{Context, Enum, ID, InputObject, Object, Result, ResultExt, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{webhook_attempt, webhook_delivery, webhook_endpoint};

use super::connection::{self, PagedConnection};
use super::identity::{API_KEY, viewer};
use super::ids;
use super::state;
use crate::service::webhooks::{self as service, EndpointPatch, NewEndpoint};

pub use super::ids::{DELIVERY, ENDPOINT};
/// Attempts shown per delivery.
pub const ATTEMPTS_SHOWN: u64 = 20;

/// A receiver of webhooks (Standard Webhooks: `webhook-id`, `webhook-timestamp`,
/// `webhook-signature` headers, a JSON body `{type, timestamp, data}` naming what changed by
/// global IDs).
pub struct WebhookEndpoint(pub webhook_endpoint::Model);

#[Object]
impl WebhookEndpoint {
    pub async fn id(&self) -> ID {
        ids::encode(ENDPOINT, self.0.id)
    }

    async fn url(&self) -> &str {
        &self.0.url
    }

    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }

    /// The event types delivered (`campaign.approved`, `donation.confirmed`, …).
    async fn event_types(&self) -> Vec<String> {
        service::event_types_of(&self.0)
    }

    /// The partner key it belongs to: it then receives public changes only.
    async fn api_key_id(&self) -> Option<ID> {
        self.0.api_key_id.map(|id| ids::encode(API_KEY, id))
    }

    async fn enabled(&self) -> bool {
        self.0.enabled
    }

    /// Why it is disabled (by an admin, or by the server after failing for too long).
    async fn disabled_reason(&self) -> Option<&str> {
        self.0.disabled_reason.as_deref()
    }

    /// Since when every attempt has failed; `null` while it answers.
    async fn failing_since(&self) -> Option<DateTime<Utc>> {
        self.0.failing_since
    }

    /// Until when the secret before the last rotation still signs.
    async fn previous_secret_expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.previous_secret_expires_at.filter(|t| *t > crate::service::now())
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    /// Its deliveries, newest first (attempts of a page are loaded in one statement).
    #[graphql(complexity = "connection::cost(first, last, child_complexity)")]
    #[allow(clippy::too_many_arguments)]
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        status: Option<WebhookDeliveryStatus>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<PagedConnection<WebhookDelivery>> {
        let wants_attempts = !connection::node_selections(ctx, "attempts").is_empty();
        let to_node = |(attempts, row)| WebhookDelivery { row, attempts };
        connection::list(ctx, connection::args(first, after, last, before), to_node, async |db, page| {
            let status = status.map(WebhookDeliveryStatus::as_str);
            let page = service::deliveries(db, viewer(ctx), self.0.id, status, page).await?;
            let mut attempts = if wants_attempts {
                let ids: Vec<i64> = page.items.iter().map(|(_, d)| d.id).collect();
                service::attempts_of(db, &ids, ATTEMPTS_SHOWN).await?
            } else {
                HashMap::new()
            };
            crate::error::AppResult::Ok(page.map(|d| (attempts.remove(&d.id).unwrap_or_default(), d)))
        })
        .await
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum WebhookDeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// The receiver answered 2xx.
    Succeeded,
    /// Every attempt of the retry schedule failed.
    Failed,
}

impl WebhookDeliveryStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => service::PENDING,
            Self::Succeeded => service::SUCCEEDED,
            Self::Failed => service::FAILED,
        }
    }

    fn parse(raw: &str) -> Self {
        match raw {
            service::SUCCEEDED => Self::Succeeded,
            service::FAILED => Self::Failed,
            _ => Self::Pending,
        }
    }
}

/// One event delivered to one endpoint.
pub struct WebhookDelivery {
    pub row: webhook_delivery::Model,
    pub attempts: Vec<webhook_attempt::Model>,
}

#[Object]
impl WebhookDelivery {
    async fn id(&self) -> ID {
        ids::encode(DELIVERY, self.row.id)
    }

    /// The `webhook-id` header of every attempt: receivers deduplicate by it.
    async fn message_id(&self) -> String {
        service::message_id(self.row.event_id)
    }

    async fn event_type(&self) -> &str {
        &self.row.event_type
    }

    async fn status(&self) -> WebhookDeliveryStatus {
        WebhookDeliveryStatus::parse(&self.row.status)
    }

    /// Attempts since it was last queued.
    async fn attempt_count(&self) -> i32 {
        self.row.attempts
    }

    /// When the next attempt is due, while pending.
    async fn next_attempt_at(&self) -> Option<DateTime<Utc>> {
        (self.row.status == service::PENDING).then_some(self.row.next_attempt_at)
    }

    async fn last_status_code(&self) -> Option<i32> {
        self.row.last_status_code
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.row.created_at
    }

    async fn delivered_at(&self) -> Option<DateTime<Utc>> {
        self.row.delivered_at
    }

    /// Its newest attempts (up to 20), newest first.
    async fn attempts(&self) -> Vec<WebhookAttempt> {
        self.attempts.iter().cloned().map(WebhookAttempt).collect()
    }
}

/// One HTTP request of a delivery.
pub struct WebhookAttempt(pub webhook_attempt::Model);

#[Object]
impl WebhookAttempt {
    async fn attempted_at(&self) -> DateTime<Utc> {
        self.0.attempted_at
    }

    /// The receiver's status; `null` when it did not answer (see `error`).
    async fn status_code(&self) -> Option<i32> {
        self.0.status_code
    }

    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }

    async fn duration_ms(&self) -> i32 {
        self.0.duration_ms
    }

    /// The first 2 KiB of the answer.
    async fn response_excerpt(&self) -> Option<&str> {
        self.0.response_excerpt.as_deref()
    }
}

#[derive(Default)]
pub struct WebhookQuery;

#[Object]
impl WebhookQuery {
    /// Webhook endpoints, newest first (admins).
    #[graphql(complexity = "connection::cost(first, last, child_complexity)")]
    async fn webhook_endpoints(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<PagedConnection<WebhookEndpoint>> {
        connection::list(ctx, connection::args(first, after, last, before), WebhookEndpoint, async |db, page| {
            service::endpoints(db, viewer(ctx), page).await
        })
        .await
    }

    /// One endpoint (admins); `null` when there is none.
    async fn webhook_endpoint(&self, ctx: &Context<'_>, id: ID) -> Result<Option<WebhookEndpoint>> {
        let id = ids::decode(&id, ENDPOINT, "id")?;
        let state = state(ctx)?;
        let found = service::endpoint_by_id(&state.db, viewer(ctx), id).await.extend()?;
        Ok(found.map(WebhookEndpoint))
    }

    /// Every event type webhooks deliver (the domain's events, then the per-person message
    /// types), whether endpoints of partner keys may take it, and whether it is personal.
    async fn webhook_event_types(&self) -> Vec<WebhookEventType> {
        crate::events::EventKind::ALL
            .iter()
            .filter(|k| service::deliverable(**k))
            .map(|k| WebhookEventType {
                name: k.name().to_owned(),
                public: service::partner_visible(*k),
                personal: false,
            })
            .chain(crate::service::channels::MESSAGE_TYPES.iter().map(|t| WebhookEventType {
                name: (*t).to_owned(),
                public: true,
                personal: true,
            }))
            .collect()
    }
}

#[derive(SimpleObject)]
pub struct WebhookEventType {
    pub name: String,
    /// Endpoints of partner keys may receive it.
    pub public: bool,
    /// It carries a person's phone number or WeChat openid and the text meant for them: the
    /// per-person messages (`message.sms`, `message.wechat_template`) a relaying partner sends
    /// on. Only endpoints subscribed to it explicitly receive it.
    pub personal: bool,
}

#[derive(InputObject)]
pub struct CreateWebhookEndpointInput {
    /// `https://…` (or `http://`); it must not resolve to a loopback, private or link-local
    /// address.
    pub url: String,
    pub event_types: Vec<String>,
    pub description: Option<String>,
    /// The partner key the endpoint belongs to; without one it is the federation's own.
    pub api_key_id: Option<ID>,
}

#[derive(InputObject)]
pub struct UpdateWebhookEndpointInput {
    pub id: ID,
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
}

#[derive(InputObject)]
pub struct RotateWebhookSecretInput {
    pub id: ID,
    /// How long the previous secret keeps signing too (hours, 0–168; default 24).
    pub grace_hours: Option<i32>,
}

#[derive(InputObject)]
pub struct DeleteWebhookEndpointInput {
    pub id: ID,
}

#[derive(InputObject)]
pub struct RedeliverWebhookInput {
    pub delivery_id: ID,
}

#[derive(InputObject)]
pub struct ReplayWebhookEventsInput {
    pub endpoint_id: ID,
    /// Every event the endpoint receives that happened at or after this instant.
    pub since: DateTime<Utc>,
}

/// An endpoint and its signing secret, shown this once.
#[derive(SimpleObject)]
pub struct WebhookEndpointWithSecretPayload {
    pub endpoint: WebhookEndpoint,
    /// `whsec_…`: keep it on the receiver; it is never shown again.
    pub secret: String,
}

payload!(WebhookEndpointPayload { endpoint: WebhookEndpoint });
payload!(DeleteWebhookEndpointPayload { deleted_id: ID });
payload!(RedeliverWebhookPayload { delivery: WebhookDelivery });

#[derive(SimpleObject)]
pub struct ReplayWebhookEventsPayload {
    /// Deliveries queued (again).
    pub queued: i32,
}

#[derive(Default)]
pub struct WebhookMutation;

#[Object]
impl WebhookMutation {
    /// Registers a webhook endpoint (admins). The secret is returned once.
    async fn create_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        input: CreateWebhookEndpointInput,
    ) -> Result<WebhookEndpointWithSecretPayload> {
        let api_key_id = ids::decode_optional(input.api_key_id.as_ref(), API_KEY, "apiKeyId")?;
        let state = state(ctx)?;
        let new =
            NewEndpoint { url: input.url, event_types: input.event_types, description: input.description, api_key_id };
        let created = service::create_endpoint(state.ctx(), viewer(ctx), new).await.extend()?;
        Ok(WebhookEndpointWithSecretPayload { endpoint: WebhookEndpoint(created.endpoint), secret: created.secret })
    }

    /// Changes an endpoint's URL, types or description, or enables or disables it (admins).
    async fn update_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        input: UpdateWebhookEndpointInput,
    ) -> Result<WebhookEndpointPayload> {
        let id = ids::decode(&input.id, ENDPOINT, "id")?;
        let state = state(ctx)?;
        let patch = EndpointPatch {
            url: input.url,
            event_types: input.event_types,
            description: input.description.map(Some),
            enabled: input.enabled,
        };
        let updated = service::update_endpoint(state.ctx(), viewer(ctx), id, patch).await.extend()?;
        Ok(WebhookEndpointPayload { endpoint: WebhookEndpoint(updated) })
    }

    /// A new signing secret (admins), returned once; the previous one keeps signing during
    /// the grace period, so deliveries carry both signatures meanwhile.
    async fn rotate_webhook_secret(
        &self,
        ctx: &Context<'_>,
        input: RotateWebhookSecretInput,
    ) -> Result<WebhookEndpointWithSecretPayload> {
        let id = ids::decode(&input.id, ENDPOINT, "id")?;
        let state = state(ctx)?;
        let rotated =
            service::rotate_secret(state.ctx(), viewer(ctx), id, input.grace_hours.map(i64::from)).await.extend()?;
        Ok(WebhookEndpointWithSecretPayload { endpoint: WebhookEndpoint(rotated.endpoint), secret: rotated.secret })
    }

    /// Removes an endpoint and its delivery log (admins).
    async fn delete_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        input: DeleteWebhookEndpointInput,
    ) -> Result<DeleteWebhookEndpointPayload> {
        let id = ids::decode(&input.id, ENDPOINT, "id")?;
        let state = state(ctx)?;
        service::delete_endpoint(state.ctx(), viewer(ctx), id).await.extend()?;
        Ok(DeleteWebhookEndpointPayload { deleted_id: input.id })
    }

    /// Sends one delivery again, under the same `webhook-id` (admins).
    async fn redeliver_webhook(
        &self,
        ctx: &Context<'_>,
        input: RedeliverWebhookInput,
    ) -> Result<RedeliverWebhookPayload> {
        let id = ids::decode(&input.delivery_id, DELIVERY, "deliveryId")?;
        let state = state(ctx)?;
        let queued = service::redeliver(state.ctx(), viewer(ctx), id).await.extend()?;
        Ok(RedeliverWebhookPayload { delivery: WebhookDelivery { row: queued, attempts: Vec::new() } })
    }

    /// Queues again every event since a time that the endpoint receives (admins): after an
    /// outage of the receiver, or for an endpoint registered late.
    async fn replay_webhook_events(
        &self,
        ctx: &Context<'_>,
        input: ReplayWebhookEventsInput,
    ) -> Result<ReplayWebhookEventsPayload> {
        let id = ids::decode(&input.endpoint_id, ENDPOINT, "endpointId")?;
        let state = state(ctx)?;
        let queued = service::replay_since(state.ctx(), viewer(ctx), id, input.since).await.extend()?;
        Ok(ReplayWebhookEventsPayload { queued: i32::try_from(queued).unwrap_or(i32::MAX) })
    }
}
