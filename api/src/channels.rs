//! Delivering SMS and WeChat template messages through the partner relay: a background task
//! of every serving instance claims due messages (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so
//! several instances never send one attempt twice; SQLite runs one instance), POSTs each to
//! its relay endpoint as a signed Standard Webhooks delivery (`crate::webhooks::send`: the
//! same address checks, no redirects, 10 s limit) and records the outcome, retrying on the
//! webhooks' schedule. What goes out and to whom is decided by the `notifications` consumer
//! (`service::notifications::rows_for`, `service::channels`).
use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use entity::{channel_message, webhook_endpoint};
use futures::StreamExt;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

use crate::config::WebhookSettings;
use crate::error::AppResult;
use crate::service::channels::{self as rules, Delivered, Transport};
use crate::service::common::by_id;
use crate::webhooks::{Connections, claim_due, drain};

/// The first transport of SMS and WeChat template messages: the partner's webhook endpoint,
/// which relays each message through its own provider account.
pub struct PartnerRelay<'a> {
    pub endpoints: &'a HashMap<i64, webhook_endpoint::Model>,
    pub settings: &'a WebhookSettings,
}

impl Transport for PartnerRelay<'_> {
    async fn deliver(&self, message: &channel_message::Model) -> Delivered {
        let Some(endpoint) = self.endpoints.get(&message.endpoint_id) else {
            return Err((None, "the relay endpoint no longer exists".to_owned()));
        };
        let body = serde_json::to_vec(&rules::body(message)).unwrap_or_default();
        let outcome = crate::webhooks::send(endpoint, &rules::message_id(message), body, self.settings).await;
        if outcome.succeeded() {
            Ok(outcome.status)
        } else {
            let why = outcome.error.clone().unwrap_or_else(|| format!("answered {}", outcome.status.unwrap_or(0)));
            Err((outcome.status, why))
        }
    }
}

/// Starts the deliverer; it ends when the handle is aborted.
pub fn spawn(connections: Connections, settings: WebhookSettings) -> tokio::task::JoinHandle<()> {
    let settings = Arc::new(settings);
    tokio::spawn(async move {
        let wait = || tokio::time::sleep(settings.poll_interval);
        drain(|| deliver_due(&connections, &settings), wait, "relaying messages failed; retrying").await
    })
}

/// Claims due messages (up to the webhooks' claim size) and sends them; how many were sent.
pub async fn deliver_due(connections: &Connections, settings: &WebhookSettings) -> AppResult<usize> {
    use channel_message::Column::{NextAttemptAt, Status};
    let claimed = claim_due(connections, "channel_messages", Status, NextAttemptAt).await?;
    if claimed.is_empty() {
        return Ok(0);
    }
    let ids: Vec<i64> = claimed.iter().map(|m| m.endpoint_id).collect();
    let endpoints = by_id(&connections.reads, webhook_endpoint::Column::Id, ids, |e| e.id).await?;
    let relay = PartnerRelay { endpoints: &endpoints, settings };
    let sent = claimed.len();
    futures::stream::iter(claimed)
        .for_each_concurrent(None, |message| {
            let relay = &relay;
            async move {
                let outcome = relay.deliver(&message).await;
                if let Err(e) = record(&connections.writes, &message, outcome, settings).await {
                    tracing::warn!(error = %e, message = message.id, "cannot record a relayed message");
                }
            }
        })
        .await;
    Ok(sent)
}

async fn record(
    db: &DatabaseConnection,
    message: &channel_message::Model,
    outcome: Delivered,
    settings: &WebhookSettings,
) -> AppResult<()> {
    let now = crate::service::now();
    let retry_in = settings.retry_schedule.get(message.attempts as usize).copied();
    let (status, code, error) = match &outcome {
        Ok(code) => ("SUCCEEDED", *code, None),
        Err((code, why)) => (if retry_in.is_some() { "PENDING" } else { "FAILED" }, *code, Some(why.clone())),
    };
    if let Some(why) = &error {
        tracing::warn!(error = %why, message = message.id, "a relayed message was not taken");
    }
    let next = retry_in.and_then(|d| chrono::Duration::from_std(d).ok()).map(|d| now + d).unwrap_or(now);
    channel_message::Entity::update_many()
        .col_expr(channel_message::Column::Status, Expr::value(status))
        .col_expr(channel_message::Column::Attempts, Expr::value(message.attempts + 1))
        .col_expr(channel_message::Column::NextAttemptAt, Expr::value(next))
        .col_expr(channel_message::Column::ClaimedUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(channel_message::Column::LastStatusCode, Expr::value(code.map(i32::from)))
        .col_expr(
            channel_message::Column::LastError,
            Expr::value(error.map(|e| e.chars().take(500).collect::<String>())),
        )
        .col_expr(channel_message::Column::DeliveredAt, Expr::value(outcome.is_ok().then_some(now)))
        .filter(channel_message::Column::Id.eq(message.id))
        .exec(db)
        .await?;
    Ok(())
}
