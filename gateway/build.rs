//! Embeds the clock floor: a wall clock earlier than the build cannot be
//! right (a board without a real-time clock boots in 1970).

use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    // Reproducible builds set SOURCE_DATE_EPOCH; otherwise the build time.
    let floor = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        });
    println!("cargo:rustc-env=RISER_CLOCK_FLOOR={floor}");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    println!("cargo:rerun-if-changed=build.rs");
}
