//! Wall-clock helpers shared by production, gossip validation and consensus.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

/// The local instant at which wall-clock second `unix_secs` begins.
pub(crate) fn instant_at_unix(unix_secs: u64) -> Instant {
    let target_ms = unix_secs.saturating_mul(1000);
    let now_ms = unix_now_ms();
    Instant::now()
        .checked_add(Duration::from_millis(target_ms.saturating_sub(now_ms)))
        .unwrap_or_else(Instant::now)
}
