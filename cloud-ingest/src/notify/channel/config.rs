//! Configuration of the delivery channels: HTTP timeout, the SMTP relay for
//! e-mail and the SMS provider. Secrets (SMTP password, Aliyun AccessKey
//! secret) are best given in the environment through the `config` crate's
//! layering rather than written in the file.

use serde::{Deserialize, Serialize};

/// How the channels reach the outside world. Every part is optional: a
/// channel without its part refuses its targets (permanently).
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelsConfig {
    /// A webhook, robot or SMS API request that has not completed after
    /// this many milliseconds fails (transiently) and can be retried.
    #[serde(default = "default_http_timeout_ms")]
    pub http_timeout_ms: u64,
    /// The mail relay for e-mail targets. Absent: no e-mail.
    #[serde(default)]
    pub smtp: Option<SmtpConfig>,
    /// The SMS provider for SMS targets. Absent: no SMS.
    #[serde(default)]
    pub sms: Option<SmsConfig>,
}

impl Default for ChannelsConfig {
    fn default() -> Self {
        Self {
            http_timeout_ms: default_http_timeout_ms(),
            smtp: None,
            sms: None,
        }
    }
}

/// The SMTP relay (submission server) mail is handed to.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// Host name of the relay; with `starttls` its certificate must be
    /// valid for this name.
    pub host: String,
    /// Port of the relay: 587 (submission) by default.
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    /// Require STARTTLS before credentials or mail are sent (default). A
    /// relay that does not offer it fails every send. `false` sends
    /// everything in clear text: only for a relay on the same machine, such
    /// as the tests' local server.
    #[serde(default = "default_true")]
    pub starttls: bool,
    /// SMTP AUTH user name; with `password`, or neither.
    #[serde(default)]
    pub username: Option<String>,
    /// SMTP AUTH password; with `username`, or neither.
    #[serde(default)]
    pub password: Option<String>,
    /// Sender of every mail, e.g. `Riser 告警 <alerts@example.cn>`.
    pub from: String,
    /// An SMTP command that has not been answered after this many
    /// milliseconds fails the send (transiently).
    #[serde(default = "default_smtp_timeout_ms")]
    pub timeout_ms: u64,
}

/// Which SMS service sends the messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmsProviderKind {
    /// Alibaba Cloud Short Message Service (阿里云短信服务), `SendSms`.
    #[default]
    Aliyun,
}

/// The SMS provider and the account, signature and template it sends with.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsConfig {
    /// The provider: `"aliyun"` (the only one so far, and the default).
    #[serde(default)]
    pub provider: SmsProviderKind,
    /// AccessKey ID of a RAM user allowed to call `dysms:SendSms`.
    pub access_key_id: String,
    /// AccessKey secret of that user.
    pub access_key_secret: String,
    /// The approved SMS signature (短信签名) shown as 【…】 in the message.
    pub sign_name: String,
    /// The approved template (模板 code, `SMS_…`); its `${name}` variables
    /// are filled from the message's `sms_params`.
    pub template_code: String,
    /// API endpoint (`https://dysmsapi.aliyuncs.com/` by default).
    #[serde(default = "default_aliyun_endpoint")]
    pub endpoint: String,
}

fn default_http_timeout_ms() -> u64 {
    10_000
}
fn default_smtp_port() -> u16 {
    587
}
fn default_smtp_timeout_ms() -> u64 {
    30_000
}
fn default_true() -> bool {
    true
}
fn default_aliyun_endpoint() -> String {
    "https://dysmsapi.aliyuncs.com/".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_takes_its_defaults() {
        let config: ChannelsConfig = toml::from_str(
            r#"
            [smtp]
            host = "smtp.example.cn"
            from = "Riser <alerts@example.cn>"

            [sms]
            access_key_id = "id"
            access_key_secret = "secret"
            sign_name = "签名"
            template_code = "SMS_1"
            "#,
        )
        .unwrap();
        assert_eq!(config.http_timeout_ms, 10_000);
        let smtp = config.smtp.unwrap();
        assert_eq!(
            (smtp.port, smtp.starttls, smtp.timeout_ms),
            (587, true, 30_000)
        );
        assert_eq!(smtp.username, None);
        let sms = config.sms.unwrap();
        assert_eq!(sms.provider, SmsProviderKind::Aliyun);
        assert_eq!(sms.endpoint, "https://dysmsapi.aliyuncs.com/");
        let empty: ChannelsConfig = toml::from_str("").unwrap();
        assert!(empty.smtp.is_none() && empty.sms.is_none());
    }

    #[test]
    fn an_unknown_key_or_provider_is_refused() {
        for bad in [
            "http_timeout = 5",
            "[smtp]\nhost = \"h\"\nfrom = \"a@b.cn\"\ntls = true",
            "[sms]\nprovider = \"tencent\"\naccess_key_id = \"i\"\naccess_key_secret = \"s\"\nsign_name = \"n\"\ntemplate_code = \"t\"",
            "[sms]\naccess_key_id = \"i\"\naccess_key_secret = \"s\"\nsign_name = \"n\"\ntemplate_code = \"t\"\nregion = \"x\"",
        ] {
            assert!(toml::from_str::<ChannelsConfig>(bad).is_err(), "{bad}");
        }
    }
}
