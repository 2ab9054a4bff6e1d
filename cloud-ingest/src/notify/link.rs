//! Acknowledge links: a signed, expiring capability in each alert, so the
//! person who receives it acknowledges the item without logging in.
//!
//! Token: `{notification id}.{expiry, unix seconds}.{signature}`, the
//! signature base64url (no padding) of HMAC-SHA256 over
//! `"ack.{id}.{expiry}"` with `notify.link_secret`. The notification names
//! the hazard item and the party it was sent to, who is recorded as the
//! one who acknowledged. The link is `{notify.public_url}/ack/{token}`;
//! opening it shows the item and a button, and only the button's POST
//! acknowledges (chat apps fetch links to preview them).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use sha2::Sha256;
use time::OffsetDateTime;

type HmacSha256 = hmac::Hmac<Sha256>;

/// Why a token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the link is not a Riser acknowledge link")]
    Malformed,
    #[error("the link's signature does not match")]
    Forged,
    #[error("the link has expired")]
    Expired,
}

/// Makes and checks acknowledge links.
#[derive(Clone)]
pub struct Links {
    secret: Vec<u8>,
    public_url: String,
    valid: time::Duration,
}

impl Links {
    /// `public_url`: where people reach this service (e.g.
    /// `https://riser.example.cn`); links stay valid for `valid`.
    pub fn new(secret: &str, public_url: &str, valid: time::Duration) -> Self {
        Self {
            secret: secret.as_bytes().to_vec(),
            public_url: public_url.trim_end_matches('/').to_owned(),
            valid,
        }
    }

    fn signature(&self, id: i64, expiry: i64) -> Vec<u8> {
        let mut mac =
            HmacSha256::new_from_slice(&self.secret).expect("HMAC takes a key of any length");
        mac.update(format!("ack.{id}.{expiry}").as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    /// The token for notification `id`, valid from `now` for the
    /// configured time.
    pub fn token(&self, id: i64, now: OffsetDateTime) -> String {
        let expiry = (now + self.valid).unix_timestamp();
        let sig = URL_SAFE_NO_PAD.encode(self.signature(id, expiry));
        format!("{id}.{expiry}.{sig}")
    }

    /// The link for notification `id`.
    pub fn url(&self, id: i64, now: OffsetDateTime) -> String {
        format!("{}/ack/{}", self.public_url, self.token(id, now))
    }

    /// The notification id a token names, if it is genuine and current.
    pub fn verify(&self, token: &str, now: OffsetDateTime) -> Result<i64, LinkError> {
        let mut parts = token.split('.');
        let (Some(id), Some(expiry), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(LinkError::Malformed);
        };
        let id: i64 = id.parse().map_err(|_| LinkError::Malformed)?;
        let expiry: i64 = expiry.parse().map_err(|_| LinkError::Malformed)?;
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| LinkError::Malformed)?;
        let mut mac =
            HmacSha256::new_from_slice(&self.secret).expect("HMAC takes a key of any length");
        mac.update(format!("ack.{id}.{expiry}").as_bytes());
        // Constant time.
        mac.verify_slice(&sig).map_err(|_| LinkError::Forged)?;
        if now.unix_timestamp() > expiry {
            return Err(LinkError::Expired);
        }
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-23 08:00 UTC);

    fn links() -> Links {
        Links::new(
            "a-secret-of-at-least-32-characters!!",
            "https://riser.example.cn/",
            time::Duration::days(7),
        )
    }

    #[test]
    fn a_link_names_its_notification_until_it_expires() {
        let links = links();
        let url = links.url(42, NOW);
        let token = url
            .strip_prefix("https://riser.example.cn/ack/")
            .expect("under the public URL");
        assert_eq!(links.verify(token, NOW + time::Duration::days(6)), Ok(42));
        assert_eq!(
            links.verify(token, NOW + time::Duration::days(8)),
            Err(LinkError::Expired)
        );
    }

    #[test]
    fn a_changed_id_expiry_or_secret_is_refused() {
        let links = links();
        let token = links.token(42, NOW);
        let parts: Vec<&str> = token.split('.').collect();
        let other_id = format!("43.{}.{}", parts[1], parts[2]);
        let longer = format!(
            "42.{}.{}",
            parts[1].parse::<i64>().unwrap() + 3600,
            parts[2]
        );
        assert_eq!(links.verify(&other_id, NOW), Err(LinkError::Forged));
        assert_eq!(links.verify(&longer, NOW), Err(LinkError::Forged));
        let other = Links::new("another-secret", "https://x", time::Duration::days(7));
        assert_eq!(other.verify(&token, NOW), Err(LinkError::Forged));
        for bad in ["", "42", "42.1.2.3", "x.1.AAAA", "42.1.!!"] {
            assert_eq!(links.verify(bad, NOW), Err(LinkError::Malformed), "{bad}");
        }
    }
}
