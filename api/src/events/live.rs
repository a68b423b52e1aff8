//! Live streams of events for subscriptions: from a client's cursor (what it missed, read from
//! the log) and then live (the follower's broadcast), in log order, each event once.
//!
//! Why nothing is lost or repeated: the receiver is taken before anything is read. An event
//! the follower handed out before that is already readable in the database, so the catch-up
//! read (which starts after the receiver exists) returns it; anything later arrives on the
//! receiver. Events at or before the last one delivered are skipped, whichever path brings
//! them. A receiver that falls behind the broadcast switches back to reading the log.
use std::collections::VecDeque;
use std::sync::Arc;

use entity::domain_event;
use futures::Stream;
use sea_orm::DatabaseConnection;
use tokio::sync::broadcast;

use super::follower::EventLog;
use super::log::{self, Position};

const CATCH_UP_BATCH: u64 = 200;

struct State<F> {
    receiver: broadcast::Receiver<Arc<domain_event::Model>>,
    db: DatabaseConnection,
    last: Position,
    catching_up: bool,
    backlog: VecDeque<domain_event::Model>,
    wanted: F,
}

/// What a subscriber is shown for each event of `changes`, read by `read` as the event
/// arrives. An event whose subject is gone (`Ok(None)`) is skipped; so is one whose read
/// fails, which is logged (`what` names what could not be read).
pub fn messages<T, Fut>(
    changes: impl Stream<Item = Arc<domain_event::Model>>,
    what: &'static str,
    read: impl Fn(Arc<domain_event::Model>) -> Fut,
) -> impl Stream<Item = T>
where
    Fut: Future<Output = crate::error::AppResult<Option<T>>>,
{
    futures::StreamExt::filter_map(changes, move |event| {
        let message = read(event);
        async move {
            match message.await {
                Ok(message) => message,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read {what} for a subscriber");
                    None
                }
            }
        }
    })
}

/// Every event `wanted` accepts after `after` (or after now, when `None`), first what is in
/// the log, then live. The position a stream starts after is returned with it, so the first
/// message of a subscription (a snapshot read after this call) can carry a cursor too.
///
/// "Now" is the log's settled tail, read after the receiver exists: every event at or before it
/// is committed and final (so a snapshot read next reflects it, and none can appear below it
/// later), and every event after it reaches the receiver, handed out by the follower or not.
pub async fn events<F>(
    log: &EventLog,
    db: DatabaseConnection,
    after: Option<Position>,
    wanted: F,
) -> crate::error::AppResult<(Position, impl Stream<Item = Arc<domain_event::Model>> + Send + 'static + use<F>)>
where
    F: Fn(&domain_event::Model) -> bool + Send + Sync + 'static,
{
    let (receiver, _) = log.subscribe();
    let start = match after {
        Some(position) => position,
        None => log::settled_tail(&db).await?,
    };
    let state = State { receiver, db, last: start, catching_up: after.is_some(), backlog: VecDeque::new(), wanted };
    let stream = futures::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(event) = s.backlog.pop_front() {
                s.last = Position::of(&event);
                if (s.wanted)(&event) {
                    return Some((Arc::new(event), s));
                }
                continue;
            }
            if s.catching_up {
                match log::read_after(&s.db, s.last, CATCH_UP_BATCH).await {
                    Ok(batch) if batch.is_empty() => s.catching_up = false,
                    Ok(batch) => s.backlog.extend(batch),
                    Err(e) => {
                        tracing::warn!(error = %e, "a subscription cannot read the event log");
                        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    }
                }
                continue;
            }
            match s.receiver.recv().await {
                Ok(event) => {
                    let at = Position::of(&event);
                    if at <= s.last {
                        continue;
                    }
                    s.last = at;
                    if (s.wanted)(&event) {
                        return Some((event, s));
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => s.catching_up = true,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Ok((start, stream))
}
