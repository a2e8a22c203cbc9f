//! Wall-clock time as the wire formats want it, and how long a claim may be held.
//!
//! Signatures, idempotency records and callback events all speak unix seconds or milliseconds;
//! one place reads the clock so they can never disagree about the format.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// How long a claim is held when the invocation has no deadline (local runs): Lambda's limit.
const CLAIM_WITHOUT_DEADLINE_MS: i64 = 15 * 60 * 1000;

/// Unix seconds now (signature timestamps, token expiries).
pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Unix milliseconds now (idempotency records, event times).
pub fn unix_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// RFC 3339 in UTC, millisecond precision.
pub fn rfc3339_ms(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    t.format(&format).unwrap_or_default()
}

/// Tencent's `YYYY-MM-DD HH:MM:SS` (no zone; Beijing wall-clock time, UTC+8) in unix seconds.
pub fn beijing_unix(text: &str) -> Option<i64> {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    Some(time::PrimitiveDateTime::parse(text, &format).ok()?.assume_offset(time::macros::offset!(+8)).unix_timestamp())
}

/// `(now_ms, until_ms)` for an idempotency claim: held until this invocation's deadline, so a
/// holder that dies frees its key when Lambda would have stopped it anyway.
pub fn claim_window(deadline: Option<Instant>) -> (i64, i64) {
    let now_ms = unix_ms();
    let until_ms = deadline.map_or(now_ms + CLAIM_WITHOUT_DEADLINE_MS, |d| {
        now_ms + i64::try_from(d.saturating_duration_since(Instant::now()).as_millis()).unwrap_or(0)
    });
    (now_ms, until_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn tencent_times_are_read_as_beijing_time() {
        assert_eq!(beijing_unix("1970-01-01 08:00:00"), Some(0));
        assert_eq!(beijing_unix("2026-11-26 14:30:00"), Some(1_795_674_600));
        assert_eq!(beijing_unix("yesterday"), None);
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_milliseconds() {
        assert_eq!(rfc3339_ms(1_795_674_600_123), "2026-11-26T06:30:00.123Z");
    }

    #[test]
    fn a_claim_lasts_until_the_deadline_or_fifteen_minutes_without_one() {
        let (now, until) = claim_window(None);
        assert_eq!(until - now, CLAIM_WITHOUT_DEADLINE_MS);
        let (now, until) = claim_window(Some(Instant::now() + Duration::from_secs(60)));
        assert!((59_000..=60_000).contains(&(until - now)), "{}", until - now);
        let (now, until) = claim_window(Some(Instant::now()));
        assert!(until - now <= 5, "a passed deadline holds nothing");
    }
}
