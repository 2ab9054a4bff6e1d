//! The generic webhook: an HTTPS `POST` of the message's JSON payload,
//! signed so the receiver can tell it came from Riser and was not altered
//! or replayed.
//!
//! # Request
//!
//! ```text
//! POST <url>
//! Content-Type: application/json
//! X-Riser-Delivery: <delivery id>          (same on every retry of one notification)
//! X-Riser-Timestamp: <unix time, seconds>  (of this attempt)
//! X-Riser-Signature: sha256=<hex>
//!
//! <Outgoing::json, serialized>
//! ```
//!
//! `<hex>` is the lowercase hex HMAC-SHA256 (RFC 2104) keyed with the
//! shared secret (its UTF-8 bytes) over `"{timestamp}.{body}"`: the
//! `X-Riser-Timestamp` value, a full stop, and the raw body bytes exactly
//! as received. This is the scheme of Stripe's and GitHub's webhooks, so
//! their verification snippets carry over.
//!
//! # Verifying (receiver side)
//!
//! 1. Recompute the HMAC over `"{X-Riser-Timestamp}.{raw body}"` with the
//!    secret and compare it with the hex after `sha256=` in constant time
//!    (Python `hmac.compare_digest`, Rust [`verify_webhook`]).
//! 2. Refuse a timestamp more than [`MAX_AGE_SECS`] away from your clock
//!    (replays of an old request).
//! 3. Process each `X-Riser-Delivery` once: a notification whose answer was
//!    lost is sent again with the same id (and a new timestamp and
//!    signature).
//!
//! Answer 2xx when accepted. 5xx, 408 and 429 make Riser try again later;
//! any other status is taken as a final refusal.
//!
//! ```python
//! import hashlib, hmac, time
//! def verify(secret: bytes, timestamp: str, body: bytes, signature: str) -> bool:
//!     expected = "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
//!     return hmac.compare_digest(expected, signature) and abs(time.time() - int(timestamp)) <= 300
//! ```

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::{Outgoing, SendError, http};

/// Header with the delivery id (idempotency key).
pub const DELIVERY_HEADER: &str = "X-Riser-Delivery";
/// Header with the Unix time (seconds) the request was signed at.
pub const TIMESTAMP_HEADER: &str = "X-Riser-Timestamp";
/// Header with `sha256=<hex HMAC>`.
pub const SIGNATURE_HEADER: &str = "X-Riser-Signature";
/// Oldest (and furthest in the future) timestamp [`verify_webhook`]
/// accepts, in seconds from now.
pub const MAX_AGE_SECS: i64 = 300;

/// `sha256=<hex HMAC-SHA256(secret, "{timestamp}.{body}")>`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let code = mac(secret, &timestamp.to_string(), body)
        .finalize()
        .into_bytes();
    format!("sha256={}", hex::encode(code))
}

fn mac(secret: &str, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Whether `signature` (the `X-Riser-Signature` value) is the signature of
/// `body` at `timestamp` (the `X-Riser-Timestamp` value) with `secret`, and
/// `timestamp` is within [`MAX_AGE_SECS`] of this machine's clock. The
/// comparison takes the same time wherever the signatures differ.
pub fn verify_webhook(secret: &str, timestamp: &str, body: &[u8], signature: &str) -> bool {
    verify_webhook_at(secret, timestamp, body, signature, unix_now())
}

/// [`verify_webhook`] with the clock given: `now` in Unix seconds.
pub fn verify_webhook_at(
    secret: &str,
    timestamp: &str,
    body: &[u8],
    signature: &str,
    now: i64,
) -> bool {
    let Some(at) = parse_timestamp(timestamp) else {
        return false;
    };
    if now.abs_diff(at) > MAX_AGE_SECS.unsigned_abs() {
        return false;
    }
    let Some(code) = signature
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok())
    else {
        return false;
    };
    mac(secret, timestamp, body).verify_slice(&code).is_ok()
}

/// Decimal digits only (no sign, no spaces), as Riser sends them.
fn parse_timestamp(timestamp: &str) -> Option<i64> {
    if timestamp.is_empty()
        || timestamp.len() > 18
        || !timestamp.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    timestamp.parse().ok()
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

pub(crate) async fn send(
    client: &reqwest::Client,
    url: &str,
    secret: &str,
    message: &Outgoing<'_>,
) -> Result<(), SendError> {
    let body = serde_json::to_vec(message.json)
        .map_err(|e| SendError::Permanent(format!("payload is not JSON: {e}")))?;
    let timestamp = unix_now();
    let signature = sign(secret, timestamp, &body);
    let response = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(DELIVERY_HEADER, message.delivery_id)
        .header(TIMESTAMP_HEADER, timestamp.to_string())
        .header(SIGNATURE_HEADER, signature)
        .body(body)
        .send()
        .await
        .map_err(http::failed)?;
    let (status, body) = http::answer(response).await?;
    http::status(status, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_000_000;

    #[test]
    fn a_signature_matches_an_independent_hmac() {
        // HMAC-SHA256("key", "1795000000.{}") computed with Python's hmac.
        assert_eq!(
            sign("key", NOW, b"{}"),
            "sha256=71f6cd81e7ac967a6bfd8d621347e9ee7792b1fde3a9a64c3161a631437c7fb6"
        );
    }

    #[test]
    fn a_webhook_signature_verifies_only_with_its_secret_body_and_fresh_time() {
        let body = br#"{"building":"B2","status":"failing"}"#;
        let ts = NOW.to_string();
        let signature = sign("s3cret", NOW, body);
        assert!(verify_webhook_at("s3cret", &ts, body, &signature, NOW));
        assert!(verify_webhook_at(
            "s3cret",
            &ts,
            body,
            &signature,
            NOW + MAX_AGE_SECS
        ));
        assert!(verify_webhook_at(
            "s3cret",
            &ts,
            body,
            &signature,
            NOW - MAX_AGE_SECS
        ));

        assert!(!verify_webhook_at("other", &ts, body, &signature, NOW));
        assert!(!verify_webhook_at("s3cret", &ts, b"{}", &signature, NOW));
        assert!(!verify_webhook_at(
            "s3cret",
            &(NOW + 1).to_string(),
            body,
            &signature,
            NOW
        ));
        assert!(!verify_webhook_at(
            "s3cret",
            &ts,
            body,
            &signature,
            NOW + MAX_AGE_SECS + 1
        ));
        assert!(!verify_webhook_at(
            "s3cret",
            &ts,
            body,
            &signature,
            NOW - MAX_AGE_SECS - 1
        ));
        let hex_only = signature.trim_start_matches("sha256=");
        assert!(!verify_webhook_at("s3cret", &ts, body, hex_only, NOW));
        assert!(!verify_webhook_at(
            "s3cret",
            &ts,
            body,
            &signature[..20],
            NOW
        ));
        assert!(!verify_webhook_at(
            "s3cret",
            &format!("+{ts}"),
            body,
            &signature,
            NOW
        ));
        assert!(!verify_webhook_at("s3cret", "", body, &signature, NOW));
    }

    #[test]
    fn verify_webhook_uses_the_clock() {
        let body = b"{}";
        let now = unix_now();
        let signature = sign("k", now, body);
        assert!(verify_webhook("k", &now.to_string(), body, &signature));
        let old = now - MAX_AGE_SECS - 60;
        let signature = sign("k", old, body);
        assert!(!verify_webhook("k", &old.to_string(), body, &signature));
    }
}
