//! Failed sign-ins counted per user name and per client address over a
//! sliding window: past the limit, sign-in is refused without checking the
//! password until the oldest failure leaves the window. Kept in memory,
//! per node: several nodes each allow the limit.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most keys remembered; the oldest are dropped past it (an address
/// spraying names cannot grow memory without bound).
const MAX_KEYS: usize = 100_000;

#[derive(Debug, Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl LoginLimiter {
    /// How long to wait before `keys` may try again, if any is over `limit`
    /// failures in `window`.
    pub fn blocked(
        &self,
        keys: &[(&str, u32)],
        window: Duration,
        now: Instant,
    ) -> Option<Duration> {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        keys.iter()
            .filter_map(|(key, limit)| {
                let times = failures.get_mut(*key)?;
                while times
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= window)
                {
                    times.pop_front();
                }
                let oldest = *times.front()?;
                (times.len() >= *limit as usize)
                    .then(|| window.saturating_sub(now.duration_since(oldest)))
            })
            .max()
    }

    pub fn failed(&self, keys: &[&str], now: Instant) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.len() >= MAX_KEYS {
            failures.clear();
        }
        for key in keys {
            failures
                .entry((*key).to_owned())
                .or_default()
                .push_back(now);
        }
    }

    /// A successful sign-in clears the user name's count (not the
    /// address's).
    pub fn succeeded(&self, user_key: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.remove(user_key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sixth_failure_in_the_window_is_refused_until_the_first_leaves_it() {
        let limiter = LoginLimiter::default();
        let window = Duration::from_secs(900);
        let t0 = Instant::now();
        for k in 0..5 {
            let t = t0 + Duration::from_secs(k);
            assert_eq!(limiter.blocked(&[("user:zhang", 5)], window, t), None);
            limiter.failed(&["user:zhang"], t);
        }
        let t = t0 + Duration::from_secs(10);
        assert_eq!(
            limiter.blocked(&[("user:zhang", 5)], window, t),
            Some(Duration::from_secs(890))
        );
        assert_eq!(limiter.blocked(&[("user:li", 5)], window, t), None);
        assert_eq!(
            limiter.blocked(&[("user:zhang", 5)], window, t0 + window),
            None,
            "the first failure left the window"
        );
        limiter.succeeded("user:zhang");
        assert_eq!(limiter.blocked(&[("user:zhang", 1)], window, t), None);
    }
}
