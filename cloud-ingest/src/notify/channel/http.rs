//! What the HTTP channels (webhook, robots, Aliyun) share: one client, and
//! how an HTTP answer or the lack of one becomes a [`SendError`].
//!
//! The client follows no redirect (a `POST` signed for one URL must not
//! become a `GET` to another; a moved endpoint shows as a permanent 3xx)
//! and checks certificates against the system's roots (rustls).

use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;

use super::SendError;

/// Longest part of an answer quoted in an error.
const QUOTE_CHARS: usize = 200;

pub(crate) fn client(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("riser-ingest/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// A request that got no (complete) answer: transient, except a request
/// that could not even be built (a malformed URL). The URL is left out of
/// the text: robot URLs carry their credential.
pub(crate) fn failed(error: reqwest::Error) -> SendError {
    let error = error.without_url();
    let text = chain(&error);
    if error.is_builder() {
        SendError::Permanent(format!("invalid request: {text}"))
    } else if error.is_timeout() {
        SendError::Transient(format!("timed out: {text}"))
    } else {
        SendError::Transient(text)
    }
}

/// `error` and its sources, `: `-separated.
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The status and the body of `response`.
pub(crate) async fn answer(response: reqwest::Response) -> Result<(StatusCode, String), SendError> {
    let status = response.status();
    let body = response.text().await.map_err(failed)?;
    Ok((status, body))
}

/// 2xx is accepted; 5xx, 408 and 429 are worth retrying; any other status
/// (4xx, and 3xx since redirects are not followed) is not.
pub(crate) fn status(status: StatusCode, body: &str) -> Result<(), SendError> {
    if status.is_success() {
        return Ok(());
    }
    let text = format!("HTTP {status}: {}", quote(body));
    if status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
    {
        Err(SendError::Transient(text))
    } else {
        Err(SendError::Permanent(text))
    }
}

/// The answer of a WeCom or DingTalk robot: `{"errcode":0,"errmsg":"ok"}`.
#[derive(Deserialize)]
struct RobotReply {
    errcode: i64,
    #[serde(default)]
    errmsg: String,
}

/// A robot's answer: HTTP status first, then `errcode` 0 is accepted, a
/// code in `retry` is transient and any other is permanent. An answer
/// that is not the robot's JSON (a proxy's error page) is transient.
/// POSTs a group robot's JSON `body` to `url` and judges the reply by its
/// `errcode` (`retry`: the codes worth trying again).
pub(crate) async fn post_robot(
    client: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
    retry: &[i64],
) -> Result<(), SendError> {
    let response = client.post(url).json(body).send().await.map_err(failed)?;
    let (status, text) = answer(response).await?;
    robot_reply(status, &text, retry)
}

pub(crate) fn robot_reply(status: StatusCode, body: &str, retry: &[i64]) -> Result<(), SendError> {
    self::status(status, body)?;
    let reply: RobotReply = serde_json::from_str(body).map_err(|e| {
        SendError::Transient(format!("unreadable robot answer ({e}): {}", quote(body)))
    })?;
    match reply.errcode {
        0 => Ok(()),
        code if retry.contains(&code) => Err(SendError::Transient(format!(
            "errcode {code}: {}",
            reply.errmsg
        ))),
        code => Err(SendError::Permanent(format!(
            "errcode {code}: {}",
            reply.errmsg
        ))),
    }
}

/// The start of `body`, for an error text.
pub(crate) fn quote(body: &str) -> String {
    let mut chars = body.chars();
    let mut quoted: String = chars.by_ref().take(QUOTE_CHARS).collect();
    if chars.next().is_some() {
        quoted.push('…');
    }
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_sorted_into_retry_or_not() {
        let transient = [500, 502, 503, 504, 408, 429];
        let permanent = [301, 302, 400, 401, 403, 404, 410, 413, 422];
        for code in transient {
            let error = status(StatusCode::from_u16(code).unwrap(), "").unwrap_err();
            assert!(error.is_transient(), "{code}");
        }
        for code in permanent {
            let error = status(StatusCode::from_u16(code).unwrap(), "").unwrap_err();
            assert!(!error.is_transient(), "{code}");
        }
        assert!(status(StatusCode::NO_CONTENT, "").is_ok());
    }

    #[test]
    fn a_robot_answer_is_judged_by_its_errcode() {
        let ok = StatusCode::OK;
        assert!(robot_reply(ok, r#"{"errcode":0,"errmsg":"ok"}"#, &[45009]).is_ok());
        let limited = robot_reply(
            ok,
            r#"{"errcode":45009,"errmsg":"api freq out of limit"}"#,
            &[45009],
        );
        assert!(limited.unwrap_err().is_transient());
        let invalid = robot_reply(
            ok,
            r#"{"errcode":93000,"errmsg":"invalid webhook url"}"#,
            &[45009],
        );
        assert!(!invalid.unwrap_err().is_transient());
        assert!(
            robot_reply(ok, "<html>bad gateway</html>", &[])
                .unwrap_err()
                .is_transient()
        );
        assert!(robot_reply(StatusCode::NOT_FOUND, "", &[]).is_err_and(|e| !e.is_transient()));
    }

    #[test]
    fn a_long_answer_is_cut_in_errors() {
        let long = "错".repeat(500);
        assert_eq!(quote(&long).chars().count(), QUOTE_CHARS + 1);
        assert_eq!(quote("short"), "short");
    }
}
