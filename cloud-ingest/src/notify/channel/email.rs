//! E-mail over SMTP (RFC 5321) to a configured relay, with lettre.
//!
//! - **Transport security**: with `starttls = true` (the default) the
//!   session must be upgraded with STARTTLS (RFC 3207) and the relay's
//!   certificate must be valid for `host` before credentials or mail are
//!   sent; a relay that does not offer STARTTLS fails the send, so a
//!   downgrade cannot expose the password or the message
//!   (lettre's `starttls_relay`). `starttls = false` is plain text, for a
//!   relay on the same machine only (the tests' local server).
//! - **Message**: `From` the configured sender, `To` the target,
//!   `Subject` (RFC 2047 encoded-word when not ASCII), `Date`,
//!   `Message-ID: <{delivery_id}@riser>`, one `text/plain; charset=utf-8`
//!   part (quoted-printable or base64 as lettre finds shorter) holding the
//!   text and, unless it already contains it, the acknowledge link on its
//!   own line. Chinese arrives intact in any client that reads MIME; the
//!   relay need not support SMTPUTF8 or 8BITMIME.
//! - **Idempotency**: the `Message-ID` is the same on every attempt of one
//!   notification, so a mail sent twice (answer lost after `DATA`) can be
//!   recognised as one. A delivery id with characters other than ASCII
//!   letters, digits, `-`, `_` and `.` is percent-encoded into the
//!   Message-ID (still unique, and valid per RFC 5322).
//! - **Outcome**: the relay's `250` after `DATA` is success. A 5xx reply
//!   (RFC 5321 §4.2.1: permanent negative completion, e.g. 550 mailbox
//!   unavailable, 535 authentication failed) is permanent; a 4xx reply, a
//!   timeout, a refused connection, a failed TLS upgrade or a dropped
//!   session is transient.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::{ChannelError, Outgoing, SendError, SmtpConfig, http};

/// Characters of a delivery id that are percent-encoded in the Message-ID.
const NOT_IN_ID: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

/// The `Message-ID` of the mail for `delivery_id`: `<{delivery_id}@riser>`.
pub fn message_id(delivery_id: &str) -> String {
    format!("<{}@riser>", utf8_percent_encode(delivery_id, NOT_IN_ID))
}

/// The SMTP transport and the sender; one connection per send.
pub(crate) struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    pub(crate) fn new(config: &SmtpConfig) -> Result<Self, ChannelError> {
        if config.host.trim().is_empty() {
            return Err(ChannelError::config("smtp.host", "is empty"));
        }
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|e| ChannelError::config("smtp.from", format!("not a mail address: {e}")))?;
        if config.timeout_ms == 0 {
            return Err(ChannelError::config(
                "smtp.timeout_ms",
                "must be more than 0",
            ));
        }
        let builder = if config.starttls {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&config.host)
                .map_err(|e| ChannelError::config("smtp.host", http::chain(&e)))?
        } else {
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
        };
        let mut builder = builder
            .port(config.port)
            .timeout(Some(Duration::from_millis(config.timeout_ms)));
        match (&config.username, &config.password) {
            (Some(user), Some(password)) => {
                builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
            }
            (None, None) => {}
            (Some(_), None) => {
                return Err(ChannelError::config(
                    "smtp.password",
                    "missing (smtp.username is set)",
                ));
            }
            (None, Some(_)) => {
                return Err(ChannelError::config(
                    "smtp.username",
                    "missing (smtp.password is set)",
                ));
            }
        }
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }

    /// Builds the mail for `to` and hands it to the relay.
    pub(crate) async fn send(&self, to: &str, message: &Outgoing<'_>) -> Result<(), SendError> {
        let to: Mailbox = to
            .parse()
            .map_err(|e| SendError::Permanent(format!("not a mail address: {to:?}: {e}")))?;
        let mail = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(message.subject)
            .message_id(Some(message_id(message.delivery_id)))
            .header(ContentType::TEXT_PLAIN)
            .body(message.text_with_link().into_owned())
            .map_err(|e| SendError::Permanent(format!("cannot build the mail: {e}")))?;
        match self.transport.send(mail).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(SendError::Permanent(http::chain(&e))),
            Err(e) => Err(SendError::Transient(http::chain(&e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SmtpConfig {
        SmtpConfig {
            host: "smtp.example.cn".into(),
            port: 587,
            starttls: true,
            username: None,
            password: None,
            from: "Riser 告警 <alerts@example.cn>".into(),
            timeout_ms: 30_000,
        }
    }

    #[test]
    fn a_delivery_id_becomes_a_valid_message_id() {
        assert_eq!(message_id("hz-42.open_u7"), "<hz-42.open_u7@riser>");
        assert_eq!(
            message_id("hz 42:u7/邮件"),
            "<hz%2042%3Au7%2F%E9%82%AE%E4%BB%B6@riser>"
        );
        assert_ne!(message_id("a%20b"), message_id("a b"));
    }

    #[test]
    fn a_bad_sender_or_half_credentials_fail_at_start_up() {
        assert!(Mailer::new(&config()).is_ok());
        let bad_from = SmtpConfig {
            from: "not an address".into(),
            ..config()
        };
        let error = Mailer::new(&bad_from).err().unwrap();
        assert!(error.to_string().contains("smtp.from"), "{error}");
        let half = SmtpConfig {
            username: Some("u".into()),
            ..config()
        };
        let error = Mailer::new(&half).err().unwrap();
        assert!(error.to_string().contains("smtp.password"), "{error}");
    }
}
