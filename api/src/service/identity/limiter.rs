//! Sign-in attempt limits.
#[allow(unused_imports)]
use super::*;

/// Sign-in attempt limits, per account and per client address.
pub struct SignInLimiter {
    per_account: governor::DefaultKeyedRateLimiter<String>,
    per_address: governor::DefaultKeyedRateLimiter<String>,
}

impl SignInLimiter {
    pub fn new(per_account_per_minute: u32, per_address_per_minute: u32) -> Arc<Self> {
        use std::num::NonZeroU32;
        let quota = |n: u32| governor::Quota::per_minute(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN));
        Self::with_quotas(quota(per_account_per_minute), quota(per_address_per_minute))
    }

    /// Limits with quotas of any period (account mails are counted per hour).
    pub fn with_quotas(per_account: governor::Quota, per_address: governor::Quota) -> Arc<Self> {
        Arc::new(Self {
            per_account: governor::RateLimiter::keyed(per_account),
            per_address: governor::RateLimiter::keyed(per_address),
        })
    }

    /// Counts one attempt for an account only (a signed-in person giving their password again:
    /// the address limit is for guessing across accounts).
    pub fn check_account(&self, email: &str) -> AppResult<()> {
        use governor::clock::{Clock, DefaultClock};
        if let Err(not_until) = self.per_account.check_key(&email.trim().to_lowercase()) {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            return Err(AppError::RateLimited { retry_after_secs: wait.as_secs().max(1) });
        }
        Ok(())
    }

    /// Counts one attempt; over the limit, the error says when to retry.
    pub fn check(&self, email: &str, address: &str) -> AppResult<()> {
        use governor::clock::{Clock, DefaultClock};
        let clock = DefaultClock::default();
        for (limiter, key) in
            [(&self.per_account, email.trim().to_lowercase()), (&self.per_address, address.to_owned())]
        {
            if let Err(not_until) = limiter.check_key(&key) {
                let wait = not_until.wait_time_from(clock.now());
                return Err(AppError::RateLimited { retry_after_secs: wait.as_secs().max(1) });
            }
        }
        // Keep memory bounded: forget keys whose limits have fully recovered.
        if self.per_address.len() > 10_000 {
            self.per_address.retain_recent();
            self.per_account.retain_recent();
        }
        Ok(())
    }
}
