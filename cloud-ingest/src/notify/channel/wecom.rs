//! 企业微信 (WeCom) group robots (群机器人).
//!
//! Protocol, per 群机器人配置说明
//! (<https://developer.work.weixin.qq.com/document/path/91770>):
//! `POST` to the robot's webhook URL
//! (`https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…`) with
//!
//! ```json
//! {"msgtype": "markdown", "markdown": {"content": "<markdown, UTF-8, at most 4096 bytes>"}}
//! ```
//!
//! and the answer `{"errcode": 0, "errmsg": "ok"}` on success. There is no
//! signature: the `key` in the URL is the credential, so the URL is kept
//! out of logs and errors. A robot takes at most 20 messages a minute;
//! beyond that it answers errcode 45009 (接口调用超过限制, 全局错误码
//! <https://developer.work.weixin.qq.com/document/path/90313>), which is
//! transient here, like −1 (系统繁忙). Any other errcode (e.g. 93000, an
//! invalid or deleted robot) is permanent.
//!
//! Content longer than 4096 bytes is cut at a character boundary with `…`
//! so the alert still arrives. The robot API has no field for the delivery
//! id.

use super::{Outgoing, SendError, http};

/// Longest markdown content WeCom accepts, in bytes.
pub const MAX_CONTENT_BYTES: usize = 4096;
/// errcodes worth retrying: 45009 (rate limit), −1 (system busy).
pub const RETRY_ERRCODES: [i64; 2] = [45009, -1];

/// The request body for `message`.
pub fn body(message: &Outgoing<'_>) -> serde_json::Value {
    let content = message.markdown_with_link();
    serde_json::json!({
        "msgtype": "markdown",
        "markdown": { "content": cut(&content, MAX_CONTENT_BYTES) },
    })
}

/// `text` if it fits in `max` bytes, else its longest start that fits
/// together with a trailing `…`.
fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let ellipsis = '…';
    let mut end = max - ellipsis.len_utf8();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ellipsis}", &text[..end])
}

pub(crate) async fn send(
    client: &reqwest::Client,
    url: &str,
    message: &Outgoing<'_>,
) -> Result<(), SendError> {
    http::post_robot(client, url, &body(message), &RETRY_ERRCODES).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_content_is_cut_to_what_wecom_accepts() {
        let long = "液位低".repeat(1000);
        let cut_text = cut(&long, MAX_CONTENT_BYTES);
        assert!(cut_text.len() <= MAX_CONTENT_BYTES);
        assert!(cut_text.ends_with('…'));
        assert!(cut_text.len() > MAX_CONTENT_BYTES - 6);
        assert_eq!(cut("短", MAX_CONTENT_BYTES), "短");
    }
}
