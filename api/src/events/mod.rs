//! The domain event log: every change is an event, appended by the transaction that makes it
//! (`log::append`), read back in commit order by this instance's follower, and handed to the
//! consumers: cache coherence (`coherence`), live subscriptions (`live`) and, through the
//! database, the audit trail (`audit`).
//!
//! Delivery bounds: the writing instance's caches change before its mutation answers; other
//! instances and CLI writes reach every instance within one poll interval (200 ms by default;
//! PostgreSQL's `NOTIFY` usually wakes followers at once); a change made with direct SQL and
//! no event is seen only when cached entries expire (`INCUBASE_CACHE_TTL_SECS`).
pub mod audit;
pub mod coherence;
pub mod consumer;
pub mod follower;
pub mod kinds;
pub mod live;
pub mod log;

pub use follower::{EventLog, FollowerSettings};
pub use kinds::{Aggregate, EventKind, Retention};
pub use log::{Actor, ActorKind, Appended, NewEvent, Position};
