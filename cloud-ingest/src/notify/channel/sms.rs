//! SMS goes through a provider's API; [`SmsProvider`] is what
//! [`Channels`](super::Channels) needs of one. The one implementation is
//! Alibaba Cloud's `SendSms` ([`aliyun`](super::aliyun)).
//!
//! SMS in mainland China is template-based: the provider sends an approved
//! template under an approved signature, filled with the message's
//! [`sms_params`](super::Outgoing::sms_params); the rendered text and
//! markdown are not used.

use futures::future::BoxFuture;

use super::{Outgoing, SendError};

/// Sends one SMS to one number.
pub trait SmsProvider: Send + Sync {
    /// Sends `message` (its template parameters and delivery id) to
    /// `phone`. Errors follow the same rule as every channel: transient if
    /// trying again later can succeed.
    fn send<'a>(
        &'a self,
        phone: &'a str,
        message: &'a Outgoing<'a>,
    ) -> BoxFuture<'a, Result<(), SendError>>;
}

/// Whether `phone` looks like one mobile number the providers take: digits,
/// optionally after `+` or `00` for international numbers; no list.
pub(crate) fn valid_phone(phone: &str) -> bool {
    let digits = phone.strip_prefix('+').unwrap_or(phone);
    (5..=20).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phone_number_is_one_number() {
        assert!(valid_phone("13800138000"));
        assert!(valid_phone("+8613800138000"));
        assert!(!valid_phone("13800138000,13900139000"));
        assert!(!valid_phone("138 0013 8000"));
        assert!(!valid_phone(""));
    }
}
