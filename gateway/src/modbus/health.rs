//! Pure timing and health decisions of a line: the RTU silent interval, the
//! back-off of a dead slave, frozen values.

use std::time::Duration;

use tokio::time::Instant;

/// The silence an RTU line needs between frames: 3.5 character times of 11
/// bits, fixed at 1.75 ms above 19200 baud (Modbus over Serial Line V1.02).
pub fn silent_interval(baud: u32) -> Duration {
    if baud > 19_200 {
        Duration::from_micros(1_750)
    } else {
        Duration::from_secs_f64(3.5 * 11.0 / f64::from(baud.max(1)))
    }
}

/// Whether a device is polled this cycle: after `fail_cycles` unreachable
/// cycles in a row it is skipped for `backoff`, then probed once; a success
/// brings it back at once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    failures: u32,
    skip_until: Option<Instant>,
}

impl Health {
    /// `true` if the device should be polled at `now`.
    pub fn due(&self, now: Instant) -> bool {
        self.skip_until.is_none_or(|until| now >= until)
    }

    /// `true` while the device is being skipped.
    pub fn backing_off(&self) -> bool {
        self.skip_until.is_some()
    }

    /// Records a poll at `now`: `reachable` is false when the device did not
    /// answer at all (an exception is an answer). Returns `true` when this
    /// poll started a back-off.
    pub fn record(
        &mut self,
        reachable: bool,
        now: Instant,
        fail_cycles: u32,
        backoff: Duration,
    ) -> bool {
        if reachable {
            *self = Self::default();
            return false;
        }
        self.failures = self.failures.saturating_add(1);
        if self.failures >= fail_cycles.max(1) {
            let started = self.skip_until.is_none();
            self.skip_until = Some(now + backoff);
            return started;
        }
        false
    }
}

/// Notices a value that stopped changing: a frozen transmitter or a stuck
/// converter looks live otherwise.
#[derive(Debug, Default, Clone)]
pub struct FreezeWatch {
    last: Option<(f64, Instant)>,
}

impl FreezeWatch {
    /// Records `value` seen at `now`; `true` if it has not changed for longer than `limit`.
    pub fn is_frozen(&mut self, value: f64, now: Instant, limit: Duration) -> bool {
        match self.last {
            Some((v, since)) if v == value => now.duration_since(since) > limit,
            _ => {
                self.last = Some((value, now));
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_silent_interval_is_3_5_characters_and_fixed_above_19200_baud() {
        let at_9600 = silent_interval(9600).as_secs_f64();
        assert!((at_9600 - 0.004_010_4).abs() < 1e-6, "{at_9600}");
        assert_eq!(silent_interval(38_400), Duration::from_micros(1_750));
        assert_eq!(silent_interval(115_200), Duration::from_micros(1_750));
    }

    #[test]
    fn a_dead_slave_is_skipped_after_n_cycles_and_probed_after_the_back_off() {
        let t0 = Instant::now();
        let backoff = Duration::from_secs(60);
        let mut health = Health::default();
        assert!(!health.record(false, t0, 3, backoff));
        assert!(!health.record(false, t0, 3, backoff));
        assert!(health.due(t0));
        assert!(
            health.record(false, t0, 3, backoff),
            "third failure starts the back-off"
        );
        assert!(!health.due(t0 + Duration::from_secs(59)));
        assert!(health.due(t0 + backoff), "probed again");
        // The probe fails: skipped for another back-off, not a new one logged.
        assert!(!health.record(false, t0 + backoff, 3, backoff));
        assert!(!health.due(t0 + backoff + Duration::from_secs(1)));
        // A probe that answers brings it back at once.
        health.record(true, t0 + backoff * 2, 3, backoff);
        assert!(health.due(t0 + backoff * 2) && !health.backing_off());
    }

    #[test]
    fn a_value_unchanged_for_too_long_is_frozen_and_a_change_thaws_it() {
        let limit = Duration::from_secs(600);
        let t0 = Instant::now();
        let mut watch = FreezeWatch::default();
        assert!(!watch.is_frozen(2.4, t0, limit));
        assert!(!watch.is_frozen(2.4, t0 + Duration::from_secs(600), limit));
        assert!(watch.is_frozen(2.4, t0 + Duration::from_secs(601), limit));
        assert!(!watch.is_frozen(2.3, t0 + Duration::from_secs(602), limit));
        assert!(!watch.is_frozen(2.3, t0 + Duration::from_secs(1000), limit));
    }
}
