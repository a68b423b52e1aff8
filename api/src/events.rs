//! Change events for live subscriptions: "the progress of campaign N changed".
//!
//! Subscribers listen on an in-process broadcast channel. Without Redis, publishing sends on
//! that channel directly. With Redis, publishing is a `PUBLISH` on a channel under the cache
//! prefix, and a background task (one per instance) forwards every message from that Redis
//! channel to the local broadcast: an event published by one instance reaches subscribers on
//! all of them. When Redis cannot be reached the event goes to local subscribers only.
//! Events carry only the campaign id; subscribers read the new totals from the database.
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{broadcast, watch};

const CHANNEL_CAPACITY: usize = 1024;

#[derive(Clone)]
pub struct ProgressEvents {
    inner: Arc<Inner>,
}

struct Inner {
    local: broadcast::Sender<i64>,
    redis: Option<RedisBus>,
}

struct RedisBus {
    conn: redis::aio::ConnectionManager,
    channel: String,
    timeout: Duration,
    listener: tokio::task::JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(redis) = &self.redis {
            redis.listener.abort();
        }
    }
}

impl ProgressEvents {
    pub fn in_process() -> Self {
        let (local, _) = broadcast::channel(CHANNEL_CAPACITY);
        Self { inner: Arc::new(Inner { local, redis: None }) }
    }

    /// Publishes through Redis under `prefix`. Waits up to `timeout` for the listener to be
    /// subscribed, but starts without Redis (the listener keeps retrying).
    pub async fn redis(url: &str, prefix: &str, timeout: Duration) -> Result<Self, redis::RedisError> {
        let (local, _) = broadcast::channel(CHANNEL_CAPACITY);
        let client = redis::Client::open(url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1);
        let conn = redis::aio::ConnectionManager::new_lazy_with_config(client.clone(), config)?;
        let channel = format!("{prefix}:events:campaign-progress");
        let (ready_tx, mut ready_rx) = watch::channel(false);
        let listener = tokio::spawn(listen(client, channel.clone(), local.clone(), ready_tx));
        let _ = tokio::time::timeout(timeout, ready_rx.wait_for(|ready| *ready)).await;
        Ok(Self { inner: Arc::new(Inner { local, redis: Some(RedisBus { conn, channel, timeout, listener }) }) })
    }

    pub fn subscribe(&self) -> broadcast::Receiver<i64> {
        self.inner.local.subscribe()
    }

    /// Announces that `campaign_id`'s progress changed. Call after the write committed.
    pub async fn campaign_progress_changed(&self, campaign_id: i64) {
        if let Some(bus) = &self.inner.redis {
            let mut conn = bus.conn.clone();
            let cmd = redis::cmd("PUBLISH").arg(&bus.channel).arg(campaign_id).to_owned();
            match tokio::time::timeout(bus.timeout, cmd.query_async::<i64>(&mut conn)).await {
                Ok(Ok(_)) => return,
                Ok(Err(e)) => tracing::warn!(error = %e, "could not publish a progress event; local subscribers only"),
                Err(_) => tracing::warn!("publishing a progress event timed out; local subscribers only"),
            }
        }
        // No receivers is not an error.
        let _ = self.inner.local.send(campaign_id);
    }
}

/// Forwards the Redis channel to the local broadcast, reconnecting after failures.
async fn listen(client: redis::Client, channel: String, local: broadcast::Sender<i64>, ready: watch::Sender<bool>) {
    let mut backoff = Duration::from_millis(200);
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(&channel).await {
                Ok(()) => {
                    backoff = Duration::from_millis(200);
                    let _ = ready.send(true);
                    let mut messages = pubsub.on_message();
                    while let Some(msg) = messages.next().await {
                        if let Ok(id) = msg.get_payload::<i64>() {
                            let _ = local.send(id);
                        }
                    }
                    tracing::warn!("redis event subscription closed; reconnecting");
                }
                Err(e) => tracing::warn!(error = %e, "cannot subscribe to redis events"),
            },
            Err(e) => tracing::debug!(error = %e, "redis unreachable for events"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}
