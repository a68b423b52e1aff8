//! Operation rate limits: per client (API key, else account, else address) on GraphQL
//! operations — a batch of five costs five — plus a tighter limit on anonymous mutations, and
//! for publishable keys (shared by every visitor of a site) a limit per key and address.
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::auth::Viewer;
use crate::config::Limits;

pub struct OperationLimiter {
    per_client: DefaultKeyedRateLimiter<String>,
    anonymous_mutations: DefaultKeyedRateLimiter<String>,
    publishable_per_address: DefaultKeyedRateLimiter<String>,
}

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN))
}

impl OperationLimiter {
    pub fn new(limits: &Limits) -> Self {
        Self {
            per_client: RateLimiter::keyed(per_minute(limits.operations_per_minute)),
            anonymous_mutations: RateLimiter::keyed(per_minute(limits.anonymous_mutations_per_minute)),
            publishable_per_address: RateLimiter::keyed(per_minute(limits.publishable_key_per_address_per_minute)),
        }
    }

    /// The key a client's operations count under.
    pub fn client_key(viewer: &Viewer, address: &str) -> String {
        match (&viewer.partner, &viewer.account) {
            (Some(key), _) => format!("key:{}", key.key_id),
            (None, Some(account)) => format!("account:{}", account.id),
            (None, None) => format!("address:{address}"),
        }
    }

    /// Counts `operations` for `client`; over the limit, how long to wait.
    pub fn check_operations(&self, client: &str, operations: usize) -> Result<(), Duration> {
        let outcome = Self::check_n(&self.per_client, client.to_owned(), operations);
        self.forget_old();
        outcome
    }

    /// Counts `operations` of one address under a publishable key.
    pub fn check_publishable_address(&self, key_id: i64, address: &str, operations: usize) -> Result<(), Duration> {
        Self::check_n(&self.publishable_per_address, format!("{key_id}:{address}"), operations)
    }

    fn check_n(limiter: &DefaultKeyedRateLimiter<String>, key: String, operations: usize) -> Result<(), Duration> {
        let n = NonZeroU32::new(u32::try_from(operations).unwrap_or(u32::MAX).max(1)).unwrap_or(NonZeroU32::MIN);
        match limiter.check_key_n(&key, n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(not_until.wait_time_from(DefaultClock::default().now())),
            // More operations than the burst can ever hold: wait a whole minute.
            Err(_) => Err(Duration::from_secs(60)),
        }
    }

    pub fn check_anonymous_mutation(&self, address: &str) -> Result<(), Duration> {
        self.anonymous_mutations
            .check_key(&address.to_owned())
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Keeps memory bounded under many distinct clients.
    fn forget_old(&self) {
        if self.per_client.len() > 50_000 {
            self.per_client.retain_recent();
            self.anonymous_mutations.retain_recent();
            self.publishable_per_address.retain_recent();
        }
    }
}
