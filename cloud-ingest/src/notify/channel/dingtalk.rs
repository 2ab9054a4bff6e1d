//! 钉钉 (DingTalk) custom group robots (自定义机器人).
//!
//! Protocol, per 自定义机器人发送群消息
//! (<https://open.dingtalk.com/document/orgapp/custom-robots-send-group-messages>):
//! `POST` to the robot's webhook URL
//! (`https://oapi.dingtalk.com/robot/send?access_token=…`) with
//!
//! ```json
//! {"msgtype": "markdown", "markdown": {"title": "<subject>", "text": "<markdown>"}}
//! ```
//!
//! and the answer `{"errcode": 0, "errmsg": "ok"}` on success.
//!
//! # 加签 (signing)
//!
//! When the robot's security setting is 加签, per 自定义机器人安全设置
//! (<https://open.dingtalk.com/document/robots/customize-robot-security-settings>):
//! `timestamp` is the current time in milliseconds (DingTalk refuses one
//! more than an hour off), the string to sign is `"{timestamp}\n{secret}"`,
//! the signature is HMAC-SHA256 keyed with the secret (UTF-8), Base64
//! encoded, then URL-encoded; both are appended to the webhook URL as
//! `&timestamp=<ms>&sign=<signature>`. [`sign`] and [`signed_url`] do this.
//!
//! A robot takes at most 20 messages a minute; beyond that it answers
//! errcode 130101 (send too fast), transient here like −1 (系统繁忙). Any
//! other errcode (310000: bad signature, keyword or IP not allowed;
//! 300001: bad token) is permanent. The robot API has no field for the
//! delivery id.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::Sha256;

use super::{Outgoing, SendError, http};

/// errcodes worth retrying: 130101 (rate limit), −1 (system busy).
pub const RETRY_ERRCODES: [i64; 2] = [130_101, -1];

/// Base64(HMAC-SHA256(secret, "{timestamp_ms}\n{secret}")), before URL
/// encoding.
pub fn sign(secret: &str, timestamp_ms: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(format!("{timestamp_ms}\n{secret}").as_bytes());
    BASE64.encode(mac.finalize().into_bytes())
}

/// `url` with `timestamp` and the URL-encoded `sign` appended.
pub fn signed_url(url: &str, secret: &str, timestamp_ms: i64) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    let sign = utf8_percent_encode(&sign(secret, timestamp_ms), NON_ALPHANUMERIC).to_string();
    format!("{url}{separator}timestamp={timestamp_ms}&sign={sign}")
}

/// The request body for `message`.
pub fn body(message: &Outgoing<'_>) -> serde_json::Value {
    serde_json::json!({
        "msgtype": "markdown",
        "markdown": { "title": message.subject, "text": message.markdown_with_link() },
    })
}

pub(crate) async fn send(
    client: &reqwest::Client,
    url: &str,
    secret: Option<&str>,
    message: &Outgoing<'_>,
) -> Result<(), SendError> {
    let url = match secret {
        Some(secret) => {
            let now_ms = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
            signed_url(url, secret, now_ms as i64)
        }
        None => url.to_owned(),
    };
    http::post_robot(client, &url, &body(message), &RETRY_ERRCODES).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_matches_dingtalks_python_sample() {
        // DingTalk's documented Python sample (hmac, hashlib.sha256,
        // base64.b64encode, urllib.parse.quote_plus) run with this secret
        // and timestamp.
        let secret = "this is secret";
        let ts = 1_700_000_000_001;
        assert_eq!(
            sign(secret, ts),
            "aOZ0Y/R7BCg4xs87AcG5MYf26YmwfVRTLD0z3X+p/mM="
        );
        assert_eq!(
            signed_url(
                "https://oapi.dingtalk.com/robot/send?access_token=t",
                secret,
                ts
            ),
            "https://oapi.dingtalk.com/robot/send?access_token=t&timestamp=1700000000001&sign=aOZ0Y%2FR7BCg4xs87AcG5MYf26YmwfVRTLD0z3X%2Bp%2FmM%3D"
        );
        assert!(
            signed_url("http://127.0.0.1/robot", secret, ts)
                .starts_with("http://127.0.0.1/robot?timestamp=")
        );
    }
}
