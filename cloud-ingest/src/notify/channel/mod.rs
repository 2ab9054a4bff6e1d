//! Delivery channels: one rendered message ([`Outgoing`]) to one address
//! ([`Target`]) over one channel, and an answer the caller can act on.
//!
//! | target | protocol | authenticity | idempotency key ([`Outgoing::delivery_id`]) |
//! |---|---|---|---|
//! | [`Target::Webhook`] | `POST` of [`Outgoing::json`] | HMAC-SHA256 headers ([`webhook`]) | header `X-Riser-Delivery` |
//! | [`Target::WeCom`] | 企业微信群机器人, markdown ([`wecom`]) | the `key` in the robot URL | not possible |
//! | [`Target::DingTalk`] | 钉钉自定义机器人, markdown ([`dingtalk`]) | access token in the URL, optional 加签 | not possible |
//! | [`Target::Email`] | SMTP, STARTTLS required ([`email`]) | SMTP AUTH | `Message-ID: <{delivery_id}@riser>` |
//! | [`Target::Sms`] | Aliyun `SendSms` ([`aliyun`], behind [`SmsProvider`]) | HMAC-SHA1 request signature | `OutId` |
//!
//! # Outcomes
//!
//! [`Channels::send`] returns `Ok(())` once the far end accepted the
//! message (HTTP 2xx and, for the robots and Aliyun, a success code in the
//! answer; the SMTP server's `250` after `DATA`). Otherwise:
//!
//! - [`SendError::Transient`]: trying again later can succeed: no answer
//!   (connection refused, DNS, timeout), HTTP 5xx, 408 or 429, a robot's
//!   rate limit (WeCom errcode 45009, DingTalk 130101, either's −1 "system
//!   busy"), Aliyun throttling (`isv.BUSINESS_LIMIT_CONTROL`,
//!   `Throttling.*`) or system errors, an SMTP 4xx or a broken SMTP
//!   session, and an answer that cannot be read.
//! - [`SendError::Permanent`]: the same message to the same address will
//!   fail again: HTTP 4xx (other than 408 and 429) and 3xx (redirects are
//!   not followed: a signed `POST` must not turn into a `GET` elsewhere),
//!   any other robot errcode or Aliyun code, an SMTP 5xx, a malformed
//!   address, a channel that is not configured.
//!
//! Delivery is at least once: when an answer is lost the caller sends
//! again. Webhook receivers, mail clients and Aliyun's delivery reports can
//! recognise the repeat by its key; the robots cannot, so a group may see a
//! robot message twice.
//!
//! Error texts never contain a robot URL (its query is the credential) nor
//! a secret, so they can be logged and stored.
//!
//! # Configuration
//!
//! [`ChannelsConfig`], e.g. in TOML:
//!
//! ```toml
//! http_timeout_ms = 10000
//!
//! [smtp]
//! host = "smtp.example.cn"
//! port = 587                 # STARTTLS is required (starttls = true)
//! username = "alerts@example.cn"
//! password = "…"
//! from = "Riser 告警 <alerts@example.cn>"
//!
//! [sms]
//! provider = "aliyun"
//! access_key_id = "…"
//! access_key_secret = "…"
//! sign_name = "…"            # 短信签名, approved in the Aliyun console
//! template_code = "SMS_…"    # 模板, its ${variables} filled from Outgoing::sms_params
//! ```
//!
//! Targets are data ([`Target`] is serde, tagged by `kind`), e.g.
//! `{"kind": "dingtalk", "url": "https://oapi.dingtalk.com/robot/send?access_token=…", "secret": "SEC…"}`.

pub mod aliyun;
mod config;
pub mod dingtalk;
pub mod email;
mod http;
pub mod sms;
pub mod webhook;
pub mod wecom;

use std::borrow::Cow;
use std::fmt;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use config::{ChannelsConfig, SmsConfig, SmsProviderKind, SmtpConfig};
pub use sms::SmsProvider;
pub use webhook::verify_webhook;

/// One message to one address, already rendered (Simplified Chinese by
/// default). Each channel takes the parts it can carry.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// Idempotency key, unique per (hazard transition, recipient, channel).
    /// Sent where the channel allows: webhook header `X-Riser-Delivery`,
    /// e-mail `Message-ID: <{delivery_id}@riser>`, Aliyun `OutId`; the
    /// robots have no place for it.
    pub delivery_id: &'a str,
    /// One line: the mail subject and the robots' markdown title.
    pub subject: &'a str,
    /// Plain text body (e-mail).
    pub text: &'a str,
    /// Markdown body for the robots (WeCom, DingTalk).
    pub markdown: &'a str,
    /// Acknowledge link, appended to the mail text and the robots'
    /// markdown unless they already contain it.
    pub link: Option<&'a str>,
    /// Structured payload for the generic webhook (its whole body).
    pub json: &'a serde_json::Value,
    /// Template parameters for SMS (Aliyun `TemplateParam`); the SMS text
    /// itself is the template configured with the provider.
    pub sms_params: &'a [(&'a str, String)],
}

impl Outgoing<'_> {
    /// The plain text with the link on a line of its own at the end.
    pub(crate) fn text_with_link(&self) -> Cow<'_, str> {
        match self.link {
            Some(link) if !self.text.contains(link) => {
                Cow::Owned(format!("{}\n\n{link}\n", self.text.trim_end()))
            }
            _ => Cow::Borrowed(self.text),
        }
    }

    /// The markdown with the link as a markdown link at the end.
    pub(crate) fn markdown_with_link(&self) -> Cow<'_, str> {
        match self.link {
            Some(link) if !self.markdown.contains(link) => {
                Cow::Owned(format!("{}\n\n[{link}]({link})", self.markdown.trim_end()))
            }
            _ => Cow::Borrowed(self.markdown),
        }
    }
}

/// Where one message goes. Stored and configured as data: serde, tagged
/// by `kind` (`webhook`, `wecom`, `dingtalk`, `email`, `sms`).
///
/// `Debug` hides the secrets and the robot URLs' queries (their
/// credentials).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Target {
    /// A generic HTTPS endpoint: `POST` of [`Outgoing::json`], signed with
    /// `secret` (see [`webhook`] for the scheme receivers verify).
    Webhook { url: String, secret: String },
    /// A 企业微信 group robot: its webhook URL, with `key=` in the query.
    #[serde(rename = "wecom")]
    WeCom { url: String },
    /// A 钉钉 group robot: its webhook URL (with `access_token=`) and, if
    /// the robot's security setting is 加签, its `SEC…` secret.
    #[serde(rename = "dingtalk")]
    DingTalk {
        url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret: Option<String>,
    },
    /// An e-mail address, e.g. `张三 <zhangsan@example.cn>` or a bare address.
    Email { to: String },
    /// A mobile number for SMS, e.g. `13800138000`.
    Sms { phone: String },
}

impl Target {
    /// The channel this target is reached by.
    pub fn channel(&self) -> Channel {
        match self {
            Target::Webhook { .. } => Channel::Webhook,
            Target::WeCom { .. } => Channel::WeCom,
            Target::DingTalk { .. } => Channel::DingTalk,
            Target::Email { .. } => Channel::Email,
            Target::Sms { .. } => Channel::Sms,
        }
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Webhook { url, .. } => f
                .debug_struct("Webhook")
                .field("url", &without_query(url))
                .field("secret", &"***")
                .finish(),
            Target::WeCom { url } => f
                .debug_struct("WeCom")
                .field("url", &without_query(url))
                .finish(),
            Target::DingTalk { url, secret } => f
                .debug_struct("DingTalk")
                .field("url", &without_query(url))
                .field("secret", &secret.as_ref().map(|_| "***"))
                .finish(),
            Target::Email { to } => f.debug_struct("Email").field("to", to).finish(),
            Target::Sms { phone } => f.debug_struct("Sms").field("phone", phone).finish(),
        }
    }
}

/// `url` up to its query, which may carry a credential.
fn without_query(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?…"),
        None => url.to_owned(),
    }
}

/// The kinds of channel, for logs and counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Webhook,
    WeCom,
    DingTalk,
    Email,
    Sms,
}

impl Channel {
    pub const ALL: [Channel; 5] = [
        Channel::Webhook,
        Channel::WeCom,
        Channel::DingTalk,
        Channel::Email,
        Channel::Sms,
    ];

    /// The name in targets, logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Webhook => "webhook",
            Channel::WeCom => "wecom",
            Channel::DingTalk => "dingtalk",
            Channel::Email => "email",
            Channel::Sms => "sms",
        }
    }
}

/// Why a message was not delivered, and whether trying again can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Trying again later can succeed (no answer, 5xx, 429, rate limits).
    #[error("temporary failure: {0}")]
    Transient(String),
    /// The same message to the same address will fail again (4xx, bad
    /// address, refused by the provider, channel not configured).
    #[error("permanent failure: {0}")]
    Permanent(String),
}

impl SendError {
    pub fn is_transient(&self) -> bool {
        matches!(self, SendError::Transient(_))
    }
}

/// A [`ChannelsConfig`] that cannot work; found at start-up.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// `key` is the config key, e.g. `smtp.from`.
    #[error("invalid notify channel config: {key}: {reason}")]
    Config { key: &'static str, reason: String },
    #[error("cannot create the HTTP client: {0}")]
    Http(String),
}

impl ChannelError {
    pub(crate) fn config(key: &'static str, reason: impl fmt::Display) -> Self {
        ChannelError::Config {
            key,
            reason: reason.to_string(),
        }
    }
}

/// Counters of the channels, for `/metrics` ([`ChannelStats::render`]).
#[derive(Debug, Default)]
pub struct ChannelStats {
    /// Per [`Channel::ALL`] index: accepted, transient, permanent.
    counts: [[AtomicU64; 3]; 5],
}

impl ChannelStats {
    fn count(&self, channel: Channel, result: &Result<(), SendError>) {
        let outcome = match result {
            Ok(()) => 0,
            Err(SendError::Transient(_)) => 1,
            Err(SendError::Permanent(_)) => 2,
        };
        self.counts[channel as usize][outcome].fetch_add(1, Ordering::Relaxed);
    }

    /// Messages the far end accepted over `channel`.
    pub fn sent(&self, channel: Channel) -> u64 {
        self.counts[channel as usize][0].load(Ordering::Relaxed)
    }

    /// Attempts over `channel` that failed, transiently or for good.
    pub fn failed(&self, channel: Channel, transient: bool) -> u64 {
        let i = if transient { 1 } else { 2 };
        self.counts[channel as usize][i].load(Ordering::Relaxed)
    }

    /// Appends the counters in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP riser_ingest_notify_sent_total Messages a channel's far end accepted.\n\
             # TYPE riser_ingest_notify_sent_total counter"
        );
        for channel in Channel::ALL {
            let _ = writeln!(
                out,
                "riser_ingest_notify_sent_total{{channel=\"{}\"}} {}",
                channel.as_str(),
                self.sent(channel)
            );
        }
        let _ = writeln!(
            out,
            "# HELP riser_ingest_notify_failed_total Send attempts that failed, by whether a retry can help.\n\
             # TYPE riser_ingest_notify_failed_total counter"
        );
        for channel in Channel::ALL {
            for (kind, transient) in [("transient", true), ("permanent", false)] {
                let _ = writeln!(
                    out,
                    "riser_ingest_notify_failed_total{{channel=\"{}\",kind=\"{kind}\"}} {}",
                    channel.as_str(),
                    self.failed(channel, transient)
                );
            }
        }
    }
}

/// The delivery channels, built once from [`ChannelsConfig`]; cheap to
/// share (`Arc`), safe to call from many tasks at once.
pub struct Channels {
    http: reqwest::Client,
    mail: Option<email::Mailer>,
    sms: Option<Arc<dyn SmsProvider>>,
    stats: Arc<ChannelStats>,
}

impl Channels {
    /// Checks `config` and builds the HTTP client, the SMTP transport and
    /// the SMS provider. Connects to nothing yet.
    pub fn new(config: &ChannelsConfig) -> Result<Self, ChannelError> {
        if config.http_timeout_ms == 0 {
            return Err(ChannelError::config(
                "http_timeout_ms",
                "must be more than 0",
            ));
        }
        let http = http::client(Duration::from_millis(config.http_timeout_ms))
            .map_err(|e| ChannelError::Http(e.to_string()))?;
        let mail = config.smtp.as_ref().map(email::Mailer::new).transpose()?;
        let sms = match &config.sms {
            Some(sms) => match sms.provider {
                SmsProviderKind::Aliyun => {
                    Some(Arc::new(aliyun::AliyunSms::new(http.clone(), sms)?)
                        as Arc<dyn SmsProvider>)
                }
            },
            None => None,
        };
        Ok(Self {
            http,
            mail,
            sms,
            stats: Arc::default(),
        })
    }

    /// Sends SMS through `provider` instead of the configured one.
    pub fn with_sms_provider(mut self, provider: Arc<dyn SmsProvider>) -> Self {
        self.sms = Some(provider);
        self
    }

    /// The counters of every send so far.
    pub fn stats(&self) -> &Arc<ChannelStats> {
        &self.stats
    }

    /// Sends `message` to `target` once (no retry here: the caller decides
    /// by the [`SendError`] kind).
    pub async fn send(&self, target: &Target, message: &Outgoing<'_>) -> Result<(), SendError> {
        let channel = target.channel();
        let result = match target {
            Target::Webhook { url, secret } => {
                webhook::send(&self.http, url, secret, message).await
            }
            Target::WeCom { url } => wecom::send(&self.http, url, message).await,
            Target::DingTalk { url, secret } => {
                dingtalk::send(&self.http, url, secret.as_deref(), message).await
            }
            Target::Email { to } => match &self.mail {
                Some(mail) => mail.send(to, message).await,
                None => Err(SendError::Permanent(
                    "e-mail is not configured (no [smtp])".into(),
                )),
            },
            Target::Sms { phone } => match &self.sms {
                Some(sms) => sms.send(phone, message).await,
                None => Err(SendError::Permanent(
                    "SMS is not configured (no [sms])".into(),
                )),
            },
        };
        self.stats.count(channel, &result);
        match &result {
            Ok(()) => tracing::debug!(
                channel = channel.as_str(),
                delivery_id = message.delivery_id,
                "notification delivered"
            ),
            Err(error @ SendError::Transient(_)) => tracing::warn!(
                channel = channel.as_str(),
                delivery_id = message.delivery_id,
                error = %error,
                "notification not delivered, will be retried"
            ),
            Err(error @ SendError::Permanent(_)) => tracing::error!(
                channel = channel.as_str(),
                delivery_id = message.delivery_id,
                error = %error,
                "notification refused"
            ),
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message<'a>(json: &'a serde_json::Value, link: Option<&'a str>) -> Outgoing<'a> {
        Outgoing {
            delivery_id: "d1",
            subject: "消防水箱液位低",
            text: "二号楼消防水箱液位低于 1.0 m。",
            markdown: "**二号楼** 消防水箱液位低",
            link,
            json,
            sms_params: &[],
        }
    }

    #[test]
    fn targets_are_stored_tagged_by_kind() {
        let targets = [
            (
                r#"{"kind":"webhook","url":"https://x.example/hook","secret":"s"}"#,
                Target::Webhook {
                    url: "https://x.example/hook".into(),
                    secret: "s".into(),
                },
            ),
            (
                r#"{"kind":"wecom","url":"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"}"#,
                Target::WeCom {
                    url: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k".into(),
                },
            ),
            (
                r#"{"kind":"dingtalk","url":"https://oapi.dingtalk.com/robot/send?access_token=t"}"#,
                Target::DingTalk {
                    url: "https://oapi.dingtalk.com/robot/send?access_token=t".into(),
                    secret: None,
                },
            ),
            (
                r#"{"kind":"email","to":"zhangsan@example.cn"}"#,
                Target::Email {
                    to: "zhangsan@example.cn".into(),
                },
            ),
            (
                r#"{"kind":"sms","phone":"13800138000"}"#,
                Target::Sms {
                    phone: "13800138000".into(),
                },
            ),
        ];
        for (json, target) in targets {
            assert_eq!(serde_json::from_str::<Target>(json).unwrap(), target);
            assert_eq!(serde_json::to_string(&target).unwrap(), json);
        }
        assert!(serde_json::from_str::<Target>(r#"{"kind":"sms","phone":"1","x":1}"#).is_err());
    }

    #[test]
    fn a_target_shows_no_secret_in_debug() {
        let target = Target::DingTalk {
            url: "https://oapi.dingtalk.com/robot/send?access_token=tok".into(),
            secret: Some("SECabc".into()),
        };
        let shown = format!("{target:?}");
        assert!(
            !shown.contains("tok") && !shown.contains("SECabc"),
            "{shown}"
        );
        let target = Target::Webhook {
            url: "https://x.example/hook".into(),
            secret: "hunter2".into(),
        };
        assert!(!format!("{target:?}").contains("hunter2"));
    }

    #[test]
    fn the_link_is_appended_once() {
        let json = serde_json::json!({});
        let m = message(&json, Some("https://riser.example/ack/1"));
        assert_eq!(
            m.text_with_link(),
            "二号楼消防水箱液位低于 1.0 m。\n\nhttps://riser.example/ack/1\n"
        );
        assert_eq!(
            m.markdown_with_link(),
            "**二号楼** 消防水箱液位低\n\n[https://riser.example/ack/1](https://riser.example/ack/1)"
        );
        let text = "请处理: https://riser.example/ack/1";
        let m = Outgoing { text, ..m };
        assert_eq!(m.text_with_link(), text);
        let m = message(&json, None);
        assert_eq!(m.text_with_link(), m.text);
    }

    #[tokio::test]
    async fn an_unconfigured_channel_is_a_permanent_failure() {
        let channels = Channels::new(&ChannelsConfig::default()).unwrap();
        let json = serde_json::json!({});
        let m = message(&json, None);
        for target in [
            Target::Email {
                to: "a@example.cn".into(),
            },
            Target::Sms {
                phone: "13800138000".into(),
            },
        ] {
            let error = channels.send(&target, &m).await.unwrap_err();
            assert!(!error.is_transient(), "{error}");
        }
        assert_eq!(channels.stats().failed(Channel::Email, false), 1);
        let mut out = String::new();
        channels.stats().render(&mut out);
        assert!(
            out.contains("riser_ingest_notify_failed_total{channel=\"sms\",kind=\"permanent\"} 1")
        );
    }
}
