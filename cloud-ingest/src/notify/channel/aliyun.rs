//! Alibaba Cloud Short Message Service (阿里云短信服务): `SendSms`, API
//! version 2017-05-25, over the RPC-style API with signature version 1.0.
//!
//! # Request
//!
//! `GET {endpoint}?{canonicalized query}&Signature={signature}` with the
//! common parameters `AccessKeyId`, `Action=SendSms`, `Format=JSON`,
//! `RegionId=cn-hangzhou`, `SignatureMethod=HMAC-SHA1`,
//! `SignatureNonce` (a UUID, new per request), `SignatureVersion=1.0`,
//! `Timestamp` (ISO 8601 UTC, `yyyy-MM-ddTHH:mm:ssZ`; Aliyun refuses one
//! more than 15 minutes off) and `Version=2017-05-25`, and the `SendSms`
//! parameters `PhoneNumbers`, `SignName`, `TemplateCode`, `TemplateParam`
//! (a JSON object of the template's variables, from
//! [`Outgoing::sms_params`]) and `OutId` (the delivery id; Aliyun returns
//! it in delivery reports).
//!
//! # Signature
//!
//! As documented in 短信服务 签名机制
//! (<https://help.aliyun.com/document_detail/101343.html>, English:
//! <https://www.alibabacloud.com/help/en/sms/signature-method>; the general
//! RPC form: <https://help.aliyun.com/document_detail/157269.html>):
//!
//! 1. Percent-encode every parameter name and value ([`percent_encode`]):
//!    UTF-8 bytes; `A–Z a–z 0–9 - _ . ~` as they are, every other byte as
//!    `%XY` with upper-case hex, so a space is `%20` (not `+`), `*` is
//!    `%2A` and `~` stays `~`.
//! 2. Sort the parameters by name (all but `Signature`) and join them as
//!    `name=value` with `&`: the canonicalized query
//!    ([`canonicalized_query`]).
//! 3. String to sign: `GET&%2F&` + percent-encode(canonicalized query)
//!    ([`string_to_sign`]).
//! 4. Signature: Base64(HMAC-SHA1(key = AccessKey secret + `&`, string to
//!    sign)) ([`signature`]), sent percent-encoded as the `Signature`
//!    parameter.
//!
//! The unit tests check this against the worked example of that page
//! (AccessKey `testId`/`testSecret`, signature
//! `zJDF+Lrzhj/ThnlvIToysFRq6t4=`).
//!
//! # Answer
//!
//! JSON `{"Code": "OK", "Message": "OK", "BizId": "…", "RequestId": "…"}`
//! when accepted. Error codes (API错误码,
//! <https://help.aliyun.com/document_detail/101346.html>) are transient when
//! waiting can help: `isv.BUSINESS_LIMIT_CONTROL` (per-number frequency
//! limit), `Throttling.*` (API throttling), `isp.SYSTEM_ERROR`,
//! `ServiceUnavailable`, `InternalError`; every other code (bad signature,
//! template, signature name, number, balance…) is permanent. An answer
//! without a `Code` is judged by its HTTP status.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures::future::BoxFuture;
use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use sha1::Sha1;
use time::OffsetDateTime;
use time::macros::format_description;

use super::sms::{SmsProvider, valid_phone};
use super::{ChannelError, Outgoing, SendError, SmsConfig, http};

/// `SendSms` API version.
pub const VERSION: &str = "2017-05-25";
/// Region of the SMS API (the service is served from cn-hangzhou).
pub const REGION_ID: &str = "cn-hangzhou";

/// Bytes Aliyun leaves unescaped: RFC 3986's unreserved characters.
const ENCODED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Aliyun's percent-encoding of a name or value (step 1 above).
pub fn percent_encode(text: &str) -> String {
    utf8_percent_encode(text, ENCODED).to_string()
}

/// The parameters sorted by name, encoded and joined (step 2); a
/// `Signature` among them is left out.
pub fn canonicalized_query(params: &[(&str, &str)]) -> String {
    let sorted: BTreeMap<&str, &str> = params
        .iter()
        .filter(|(name, _)| *name != "Signature")
        .copied()
        .collect();
    sorted
        .iter()
        .map(|(name, value)| format!("{}={}", percent_encode(name), percent_encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// `GET&%2F&` + the encoded canonicalized query (step 3).
pub fn string_to_sign(canonicalized_query: &str) -> String {
    format!(
        "GET&{}&{}",
        percent_encode("/"),
        percent_encode(canonicalized_query)
    )
}

/// Base64(HMAC-SHA1(secret + "&", string to sign)) of `params` (step 4),
/// before its own percent-encoding.
pub fn signature(access_key_secret: &str, params: &[(&str, &str)]) -> String {
    let to_sign = string_to_sign(&canonicalized_query(params));
    let key = format!("{access_key_secret}&");
    let mut mac = Hmac::<Sha1>::new_from_slice(key.as_bytes()).expect("HMAC takes any key");
    mac.update(to_sign.as_bytes());
    BASE64.encode(mac.finalize().into_bytes())
}

/// The whole query string of a signed `GET`: the canonicalized query and
/// `&Signature=…`.
pub fn signed_query(access_key_secret: &str, params: &[(&str, &str)]) -> String {
    format!(
        "{}&Signature={}",
        canonicalized_query(params),
        percent_encode(&signature(access_key_secret, params))
    )
}

/// Codes worth retrying later.
fn transient_code(code: &str) -> bool {
    matches!(
        code,
        "isv.BUSINESS_LIMIT_CONTROL" | "isp.SYSTEM_ERROR" | "ServiceUnavailable" | "InternalError"
    ) || code.starts_with("Throttling")
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Reply {
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    request_id: String,
}

/// `SendSms` with one account, signature name and template.
pub struct AliyunSms {
    http: reqwest::Client,
    endpoint: url::Url,
    access_key_id: String,
    access_key_secret: String,
    sign_name: String,
    template_code: String,
}

impl AliyunSms {
    /// Checks `config`; connects to nothing yet.
    pub fn new(http: reqwest::Client, config: &SmsConfig) -> Result<Self, ChannelError> {
        let endpoint = url::Url::parse(&config.endpoint)
            .map_err(|e| ChannelError::config("sms.endpoint", e))?;
        if !matches!(endpoint.scheme(), "https" | "http") || endpoint.query().is_some() {
            return Err(ChannelError::config(
                "sms.endpoint",
                "expected an http(s) URL without a query",
            ));
        }
        for (key, value) in [
            ("sms.access_key_id", &config.access_key_id),
            ("sms.access_key_secret", &config.access_key_secret),
            ("sms.sign_name", &config.sign_name),
            ("sms.template_code", &config.template_code),
        ] {
            if value.trim().is_empty() {
                return Err(ChannelError::config(key, "is empty"));
            }
        }
        Ok(Self {
            http,
            endpoint,
            access_key_id: config.access_key_id.clone(),
            access_key_secret: config.access_key_secret.clone(),
            sign_name: config.sign_name.clone(),
            template_code: config.template_code.clone(),
        })
    }

    /// The request URL for `message` to `phone`, signed with `nonce` at `now`.
    fn url(&self, phone: &str, message: &Outgoing<'_>, nonce: &str, now: OffsetDateTime) -> String {
        let timestamp = now
            .format(format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
            ))
            .expect("a UTC time formats");
        let template_param = (!message.sms_params.is_empty()).then(|| {
            let object: serde_json::Map<String, serde_json::Value> = message
                .sms_params
                .iter()
                .map(|(name, value)| ((*name).to_owned(), value.clone().into()))
                .collect();
            serde_json::Value::Object(object).to_string()
        });
        let mut params = vec![
            ("AccessKeyId", self.access_key_id.as_str()),
            ("Action", "SendSms"),
            ("Format", "JSON"),
            ("PhoneNumbers", phone),
            ("RegionId", REGION_ID),
            ("SignName", self.sign_name.as_str()),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", nonce),
            ("SignatureVersion", "1.0"),
            ("TemplateCode", self.template_code.as_str()),
            ("Timestamp", timestamp.as_str()),
            ("Version", VERSION),
        ];
        if let Some(template_param) = &template_param {
            params.push(("TemplateParam", template_param.as_str()));
        }
        if !message.delivery_id.is_empty() {
            params.push(("OutId", message.delivery_id));
        }
        format!(
            "{}?{}",
            self.endpoint,
            signed_query(&self.access_key_secret, &params)
        )
    }

    async fn send_one(&self, phone: &str, message: &Outgoing<'_>) -> Result<(), SendError> {
        if !valid_phone(phone) {
            return Err(SendError::Permanent(format!(
                "not one phone number: {phone:?}"
            )));
        }
        let nonce = uuid::Uuid::new_v4().to_string();
        let url = self.url(phone, message, &nonce, OffsetDateTime::now_utc());
        let response = self.http.get(url).send().await.map_err(http::failed)?;
        let (status, body) = http::answer(response).await?;
        let Ok(reply) = serde_json::from_str::<Reply>(&body) else {
            http::status(status, &body)?;
            return Err(SendError::Transient(format!(
                "unreadable SendSms answer: {}",
                http::quote(&body)
            )));
        };
        if reply.code == "OK" {
            return Ok(());
        }
        let text = format!(
            "{}: {} (RequestId {})",
            reply.code, reply.message, reply.request_id
        );
        if transient_code(&reply.code) || status.is_server_error() {
            Err(SendError::Transient(text))
        } else {
            Err(SendError::Permanent(text))
        }
    }
}

impl SmsProvider for AliyunSms {
    fn send<'a>(
        &'a self,
        phone: &'a str,
        message: &'a Outgoing<'a>,
    ) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(self.send_one(phone, message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of 短信服务 签名机制
    /// (<https://help.aliyun.com/document_detail/101343.html>).
    const DOC_PARAMS: [(&str, &str); 14] = [
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureNonce", "45e25e9b-0a6f-4070-8c85-2956eda1b466"),
        ("AccessKeyId", "testId"),
        ("SignatureVersion", "1.0"),
        ("Timestamp", "2017-07-12T02:42:19Z"),
        ("Format", "XML"),
        ("Action", "SendSms"),
        ("Version", "2017-05-25"),
        ("RegionId", "cn-hangzhou"),
        ("PhoneNumbers", "15300000001"),
        ("SignName", "阿里云短信测试专用"),
        ("TemplateParam", "{\"customer\":\"test\"}"),
        ("TemplateCode", "SMS_71390007"),
        ("OutId", "123"),
    ];

    #[test]
    fn the_signature_of_aliyuns_worked_example_matches_the_documented_one() {
        assert_eq!(
            canonicalized_query(&DOC_PARAMS),
            "AccessKeyId=testId&Action=SendSms&Format=XML&OutId=123&PhoneNumbers=15300000001\
             &RegionId=cn-hangzhou&SignName=%E9%98%BF%E9%87%8C%E4%BA%91%E7%9F%AD%E4%BF%A1%E6%B5%8B%E8%AF%95%E4%B8%93%E7%94%A8\
             &SignatureMethod=HMAC-SHA1&SignatureNonce=45e25e9b-0a6f-4070-8c85-2956eda1b466\
             &SignatureVersion=1.0&TemplateCode=SMS_71390007\
             &TemplateParam=%7B%22customer%22%3A%22test%22%7D&Timestamp=2017-07-12T02%3A42%3A19Z\
             &Version=2017-05-25"
        );
        assert!(
            string_to_sign(&canonicalized_query(&DOC_PARAMS)).starts_with(
                "GET&%2F&AccessKeyId%3DtestId%26Action%3DSendSms%26Format%3DXML%26OutId%3D123"
            )
        );
        assert_eq!(
            signature("testSecret", &DOC_PARAMS),
            "zJDF+Lrzhj/ThnlvIToysFRq6t4="
        );
        assert!(
            signed_query("testSecret", &DOC_PARAMS)
                .ends_with("&Signature=zJDF%2BLrzhj%2FThnlvIToysFRq6t4%3D")
        );
    }

    #[test]
    fn percent_encoding_follows_aliyuns_rules() {
        assert_eq!(percent_encode("a b*c~d-e_f.g"), "a%20b%2Ac~d-e_f.g");
        assert_eq!(percent_encode("+/=:&"), "%2B%2F%3D%3A%26");
        assert_eq!(percent_encode("水"), "%E6%B0%B4");
    }

    #[test]
    fn a_request_carries_every_parameter_sendsms_needs() {
        let config = SmsConfig {
            provider: Default::default(),
            access_key_id: "id".into(),
            access_key_secret: "secret".into(),
            sign_name: "梁平消防".into(),
            template_code: "SMS_1".into(),
            endpoint: "https://dysmsapi.aliyuncs.com/".into(),
        };
        let sms = AliyunSms::new(reqwest::Client::new(), &config).unwrap();
        let json = serde_json::json!({});
        let params = [
            ("building", "二号楼".to_owned()),
            ("level", "0.5".to_owned()),
        ];
        let message = Outgoing {
            delivery_id: "hz-1-open-u1-sms",
            subject: "",
            text: "",
            markdown: "",
            link: None,
            json: &json,
            sms_params: &params,
        };
        let at = time::macros::datetime!(2026-11-23 08:00:05 UTC);
        let url = sms.url("13800138000", &message, "n-1", at);
        let url = url::Url::parse(&url).unwrap();
        let query: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(query["Action"], "SendSms");
        assert_eq!(query["Format"], "JSON");
        assert_eq!(query["Version"], "2017-05-25");
        assert_eq!(query["Timestamp"], "2026-11-23T08:00:05Z");
        assert_eq!(query["OutId"], "hz-1-open-u1-sms");
        assert_eq!(
            query["TemplateParam"],
            r#"{"building":"二号楼","level":"0.5"}"#
        );
        let pairs: Vec<(&str, &str)> = query
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(query["Signature"], signature("secret", &pairs));
    }

    #[test]
    fn throttling_codes_are_transient_and_others_are_not() {
        for code in [
            "isv.BUSINESS_LIMIT_CONTROL",
            "Throttling.User",
            "Throttling",
            "isp.SYSTEM_ERROR",
        ] {
            assert!(transient_code(code), "{code}");
        }
        for code in [
            "SignatureDoesNotMatch",
            "isv.MOBILE_NUMBER_ILLEGAL",
            "isv.OUT_OF_SERVICE",
            "isv.DAY_LIMIT_CONTROL",
        ] {
            assert!(!transient_code(code), "{code}");
        }
    }
}
