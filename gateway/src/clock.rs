//! Whether the wall clock can be trusted. A board without a real-time clock
//! boots in 1970 and gets the time later (NTP, the cellular network): until
//! the clock passes the build-time floor (and, if required, time sync is
//! seen), readings are stamped with the boot clock and held; once it is
//! trusted they are restamped. A jump of the wall clock against the boot
//! clock is logged and flagged on the readings of that cycle.

/// Seconds since the Unix epoch when this binary was built.
pub const FLOOR_UNIX_SECS: i64 = parse_floor(env!("RISER_CLOCK_FLOOR"));

const fn parse_floor(s: &str) -> i64 {
    let bytes = s.as_bytes();
    let mut n = 0i64;
    let mut i = 0;
    while i < bytes.len() {
        n = n * 10 + (bytes[i] - b'0') as i64;
        i += 1;
    }
    n
}

/// Milliseconds since boot, counting suspend (CLOCK_BOOTTIME): the same
/// clock for every process of one boot.
// time_t and c_long are 32 bits on some ARM targets: the conversions are
// not useless there.
#[allow(clippy::useless_conversion)]
pub fn boot_ms() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into valid memory.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    if rc != 0 {
        return 0;
    }
    i64::from(ts.tv_sec) * 1000 + i64::from(ts.tv_nsec) / 1_000_000
}

/// This boot's id, so held times are never applied to another boot.
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// Whether the kernel says the clock is synchronised (NTP, chrony,
/// systemd-timesyncd all clear its "unsynchronised" state).
pub fn kernel_synced() -> bool {
    // SAFETY: a zeroed timex with modes = 0 only reads the kernel state.
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    let state = unsafe { libc::adjtimex(&mut tx) };
    state >= 0 && state != libc::TIME_ERROR
}

/// What one look at the clocks found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    pub trusted: bool,
    /// The clock became trusted at this look: restamp what was held.
    pub became_trusted: bool,
    /// The wall clock moved this much more (or less) than the boot clock
    /// since the last look, beyond the tolerance.
    pub jump_ms: Option<i64>,
}

/// Watches the wall clock against the boot clock. Pure: the caller reads
/// the clocks.
#[derive(Debug, Clone)]
pub struct ClockWatch {
    floor_ms: i64,
    require_sync: bool,
    tolerance_ms: i64,
    trusted: bool,
    last: Option<(i64, i64)>,
    pub jumps: u64,
}

impl ClockWatch {
    pub fn new(floor_ms: i64, require_sync: bool, tolerance_ms: i64) -> Self {
        Self {
            floor_ms,
            require_sync,
            tolerance_ms,
            trusted: false,
            last: None,
            jumps: 0,
        }
    }

    /// A watch with the build-time floor and the configured sync and jump
    /// settings.
    pub fn from_config(config: &crate::config::ClockConfig) -> Self {
        Self::new(
            FLOOR_UNIX_SECS * 1000,
            config.require_sync,
            config.jump_tolerance_ms as i64,
        )
    }

    /// One look: wall-clock and boot-clock ms, and whether sync was seen.
    pub fn observe(&mut self, wall_ms: i64, boot_ms: i64, synced: bool) -> Observation {
        let trusted = wall_ms >= self.floor_ms && (synced || !self.require_sync);
        let became_trusted = trusted && !self.trusted;
        let mut jump_ms = None;
        if let Some((last_wall, last_boot)) = self.last
            && trusted
            && self.trusted
        {
            let drift = (wall_ms - last_wall) - (boot_ms - last_boot);
            if drift.abs() > self.tolerance_ms {
                self.jumps += 1;
                jump_ms = Some(drift);
            }
        }
        self.trusted = trusted;
        self.last = Some((wall_ms, boot_ms));
        Observation {
            trusted,
            became_trusted,
            jump_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLOOR: i64 = 1_795_000_000_000;

    #[test]
    fn a_board_booting_in_1970_is_untrusted_until_the_clock_is_set() {
        let mut watch = ClockWatch::new(FLOOR, false, 2_000);
        let first = watch.observe(12_000, 12_000, false);
        assert!(!first.trusted && !first.became_trusted);
        assert!(!watch.observe(13_000, 13_000, false).trusted);
        let set = watch.observe(FLOOR + 86_400_000, 14_000, false);
        assert!(set.trusted && set.became_trusted);
        assert_eq!(set.jump_ms, None, "setting the clock is not a jump");
        assert!(
            !watch
                .observe(FLOOR + 86_401_000, 15_000, false)
                .became_trusted
        );
    }

    #[test]
    fn when_sync_is_required_a_plausible_clock_waits_for_it() {
        let mut watch = ClockWatch::new(FLOOR, true, 2_000);
        assert!(!watch.observe(FLOOR + 1, 1_000, false).trusted);
        assert!(watch.observe(FLOOR + 1_001, 2_000, true).became_trusted);
    }

    #[test]
    fn a_jump_against_the_boot_clock_is_counted_and_small_drift_is_not() {
        let mut watch = ClockWatch::new(FLOOR, false, 2_000);
        let day = 86_400_000;
        watch.observe(FLOOR + day, 0, true);
        assert_eq!(
            watch.observe(FLOOR + day + 1_500, 1_000, true).jump_ms,
            None
        );
        let jump = watch.observe(FLOOR + day + 1_500 - 3_600_000, 2_000, true);
        assert_eq!(jump.jump_ms, Some(-3_601_000));
        assert_eq!(watch.jumps, 1);
    }

    #[test]
    fn with_the_built_in_floor_1970_is_untrusted_and_now_is_trusted() {
        let mut watch = ClockWatch::new(FLOOR_UNIX_SECS * 1000, false, 2_000);
        let boot = boot_ms();
        assert!(
            !watch.observe(boot, boot, false).trusted,
            "a board fresh from 1970"
        );
        let now = riser_contract::unix_ms(time::OffsetDateTime::now_utc());
        assert!(watch.observe(now, boot + 1, false).became_trusted);
    }
}
