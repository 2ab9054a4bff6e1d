//! The delivery channels against real local servers.
//!
//! - One axum server on a free port stands in for a webhook receiver, the
//!   WeCom and DingTalk robot APIs and Aliyun's SMS API. It re-computes
//!   every signature here, in the test, with its own encoding code (not the
//!   crate's), answers as the vendor documents, and records each request
//!   for the assertions.
//! - Mail goes to aiosmtpd, a real SMTP server (Python), one process per
//!   test on a free port, storing what it receives in a maildir in the
//!   test's temp dir; Python's `email` package reads it back. scripts/test
//!   installs aiosmtpd in a venv of its own (see `aiosmtpd_python`).

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use riser_ingest::notify::channel::{
    Channels, ChannelsConfig, Outgoing, SendError, SmsConfig, SmsProviderKind, SmtpConfig, Target,
    verify_webhook,
};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const WEBHOOK_SECRET: &str = "webhook-secret-东";
const DINGTALK_SECRET: &str = "SECd1c7a0b2e5f64b0f8e1b9a3c7d2e4f6a";
const DINGTALK_TOKEN: &str = "robot-token";
const ALIYUN_KEY_ID: &str = "LTAI-test-id";
const ALIYUN_SECRET: &str = "aliyun-test-secret";
/// A number the Aliyun stand-in answers with its per-number rate limit.
const THROTTLED_PHONE: &str = "13800000429";

// ---------------------------------------------------------------------------
// The HTTP stand-in

/// One request the stand-in received.
#[derive(Debug, Clone)]
struct Recorded {
    path: String,
    query: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Recorded {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    fn query_params(&self) -> BTreeMap<String, String> {
        parse_query(&self.query)
    }
}

#[derive(Clone, Default)]
struct Stub {
    seen: Arc<Mutex<Vec<Recorded>>>,
}

impl Stub {
    /// The requests received so far whose path starts with `prefix`.
    fn seen(&self, prefix: &str) -> Vec<Recorded> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path.starts_with(prefix))
            .cloned()
            .collect()
    }
}

/// Starts the stand-in on a free port.
async fn stand_in() -> (SocketAddr, Stub) {
    let stub = Stub::default();
    let app = Router::new().fallback(handle).with_state(stub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, stub)
}

/// Records the request, then answers as the service its path names:
/// `/webhook/{answer}`, `/wecom/{answer}`, `/dingtalk/{answer}`, `/aliyun/`.
async fn handle(State(stub): State<Stub>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let recorded = Recorded {
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or("").to_owned(),
        headers,
        body: body.to_vec(),
    };
    stub.seen.lock().unwrap().push(recorded.clone());
    let path = recorded.path.trim_start_matches('/');
    let (service, answer) = path.split_once('/').unwrap_or((path, ""));
    match service {
        "webhook" => webhook_answer(answer, &recorded).await,
        "wecom" => wecom_answer(answer),
        "dingtalk" => dingtalk_answer(answer, &recorded),
        "aliyun" => aliyun_answer(&recorded),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn hmac_sha1(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// A receiver that checks the signature (401 if wrong), then answers
/// `ok` 200, `reject` 400, `down` 503, `busy` 429, `slow` never.
async fn webhook_answer(answer: &str, request: &Recorded) -> Response {
    let timestamp = request.header("x-riser-timestamp");
    let signed = [timestamp.as_bytes(), b".", &request.body].concat();
    let expected = format!(
        "sha256={}",
        hex::encode(hmac_sha256(WEBHOOK_SECRET.as_bytes(), &signed))
    );
    if request.header("x-riser-signature") != expected {
        return (StatusCode::UNAUTHORIZED, "bad signature").into_response();
    }
    match answer {
        "ok" => (StatusCode::OK, "accepted").into_response(),
        "reject" => (StatusCode::BAD_REQUEST, "unknown building").into_response(),
        "down" => (StatusCode::SERVICE_UNAVAILABLE, "maintenance").into_response(),
        "busy" => (StatusCode::TOO_MANY_REQUESTS, "slow down").into_response(),
        "slow" => std::future::pending().await,
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// WeCom answers HTTP 200 with an errcode: `ok` 0, `limited` 45009,
/// `invalid` 93000.
fn wecom_answer(answer: &str) -> Response {
    let reply = match answer {
        "ok" => json!({"errcode": 0, "errmsg": "ok"}),
        "limited" => json!({"errcode": 45009, "errmsg": "api freq out of limit"}),
        _ => json!({"errcode": 93000, "errmsg": "invalid webhook url"}),
    };
    axum::Json(reply).into_response()
}

/// DingTalk: checks the access token, and for `signed` the 加签 (errcode
/// 310000 if wrong or more than an hour off); `limited` answers 130101.
fn dingtalk_answer(answer: &str, request: &Recorded) -> Response {
    let query = request.query_params();
    let reply = if query.get("access_token").map(String::as_str) != Some(DINGTALK_TOKEN) {
        json!({"errcode": 300001, "errmsg": "token is not exist"})
    } else if answer == "limited" {
        json!({"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"})
    } else if answer == "signed" && !dingtalk_sign_ok(&query) {
        json!({"errcode": 310000, "errmsg": "sign not match"})
    } else {
        json!({"errcode": 0, "errmsg": "ok"})
    };
    axum::Json(reply).into_response()
}

fn dingtalk_sign_ok(query: &BTreeMap<String, String>) -> bool {
    let (Some(timestamp), Some(sign)) = (query.get("timestamp"), query.get("sign")) else {
        return false;
    };
    let Ok(ms) = timestamp.parse::<i64>() else {
        return false;
    };
    let now_ms = (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
    if (now_ms - ms).abs() > 3_600_000 {
        return false;
    }
    let string_to_sign = format!("{timestamp}\n{DINGTALK_SECRET}");
    let expected = BASE64.encode(hmac_sha256(
        DINGTALK_SECRET.as_bytes(),
        string_to_sign.as_bytes(),
    ));
    *sign == expected
}

/// Aliyun's percent-encoding, written out byte by byte.
fn aliyun_encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn parse_query(query: &str) -> BTreeMap<String, String> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .expect("UTF-8 in the query")
            .into_owned()
    };
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
        .collect()
}

/// Aliyun `SendSms`: re-computes the signature (HTTP 400
/// `SignatureDoesNotMatch`), checks the time (15 minutes) and answers
/// `isv.BUSINESS_LIMIT_CONTROL` for [`THROTTLED_PHONE`], else `OK`.
fn aliyun_answer(request: &Recorded) -> Response {
    let mut params = request.query_params();
    let signature = params.remove("Signature").unwrap_or_default();
    let canonical = params
        .iter()
        .map(|(name, value)| format!("{}={}", aliyun_encode(name), aliyun_encode(value)))
        .collect::<Vec<_>>()
        .join("&");
    let string_to_sign = format!("GET&{}&{}", aliyun_encode("/"), aliyun_encode(&canonical));
    let expected = BASE64.encode(hmac_sha1(
        format!("{ALIYUN_SECRET}&").as_bytes(),
        string_to_sign.as_bytes(),
    ));
    let error = |code: &str, message: &str| {
        let body = json!({"Code": code, "Message": message, "RequestId": "STUB-1"});
        (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
    };
    if signature != expected {
        return error(
            "SignatureDoesNotMatch",
            "Specified signature is not matched with our calculation.",
        );
    }
    let fresh = params
        .get("Timestamp")
        .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
        .is_some_and(|t| (OffsetDateTime::now_utc() - t).abs() < time::Duration::minutes(15));
    if !fresh {
        return error(
            "InvalidTimeStamp.Expired",
            "Specified time stamp or date value is expired.",
        );
    }
    let reply = if params.get("PhoneNumbers").map(String::as_str) == Some(THROTTLED_PHONE) {
        json!({"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "触发分钟级流控Permits:1", "RequestId": "STUB-2"})
    } else {
        json!({"Code": "OK", "Message": "OK", "BizId": "900619746936498440^0", "RequestId": "STUB-3"})
    };
    axum::Json(reply).into_response()
}

// ---------------------------------------------------------------------------
// The code under test

fn config(addr: SocketAddr) -> ChannelsConfig {
    ChannelsConfig {
        http_timeout_ms: 5_000,
        smtp: None,
        sms: Some(sms_config(addr, ALIYUN_SECRET)),
    }
}

fn sms_config(addr: SocketAddr, secret: &str) -> SmsConfig {
    SmsConfig {
        provider: SmsProviderKind::Aliyun,
        access_key_id: ALIYUN_KEY_ID.into(),
        access_key_secret: secret.into(),
        sign_name: "梁平消防".into(),
        template_code: "SMS_465000001".into(),
        endpoint: format!("http://{addr}/aliyun/"),
    }
}

const SUBJECT: &str = "【紧急】二号楼消防水箱液位低";
const TEXT: &str = "梁山街道西平社区二号楼：消防水箱液位 0.50 m，低于最低有效水位 1.00 m，已持续 30 秒。\n请维保单位尽快处理。";
const MARKDOWN: &str = "### 【紧急】二号楼消防水箱液位低\n> 液位 **0.50 m**，最低有效水位 1.00 m";
const LINK: &str = "https://riser.example.cn/h/42/ack?t=abc";

fn message<'a>(
    delivery_id: &'a str,
    json: &'a Value,
    params: &'a [(&'a str, String)],
) -> Outgoing<'a> {
    Outgoing {
        delivery_id,
        subject: SUBJECT,
        text: TEXT,
        markdown: MARKDOWN,
        link: Some(LINK),
        json,
        sms_params: params,
    }
}

fn payload() -> Value {
    json!({
        "hazard": 42,
        "building": {"id": "B2", "name": "二号楼"},
        "transition": "opened",
        "severity": "urgent",
        "reasons": [{"code": "tank_low", "point": "tank.level", "value": 0.5}],
    })
}

fn webhook(addr: SocketAddr, answer: &str) -> Target {
    Target::Webhook {
        url: format!("http://{addr}/webhook/{answer}"),
        secret: WEBHOOK_SECRET.into(),
    }
}

fn assert_transient(result: Result<(), SendError>) {
    match result {
        Err(SendError::Transient(_)) => {}
        other => panic!("expected a transient failure, got {other:?}"),
    }
}

fn assert_permanent(result: Result<(), SendError>) {
    match result {
        Err(SendError::Permanent(_)) => {}
        other => panic!("expected a permanent failure, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Webhook

#[tokio::test]
async fn a_webhook_arrives_signed_and_the_signature_verifies() {
    let (addr, stub) = stand_in().await;
    let channels = Channels::new(&config(addr)).unwrap();
    let json = payload();
    channels
        .send(
            &webhook(addr, "ok"),
            &message("hz42-opened-u7-webhook", &json, &[]),
        )
        .await
        .unwrap();

    let seen = stub.seen("/webhook/");
    assert_eq!(seen.len(), 1);
    let request = &seen[0];
    assert_eq!(request.header("content-type"), "application/json");
    assert_eq!(request.header("x-riser-delivery"), "hz42-opened-u7-webhook");
    assert_eq!(request.json(), json, "the payload arrives as it was given");
    let timestamp = request.header("x-riser-timestamp");
    let signature = request.header("x-riser-signature");
    assert!(verify_webhook(
        WEBHOOK_SECRET,
        timestamp,
        &request.body,
        signature
    ));
    assert!(!verify_webhook(
        "another secret",
        timestamp,
        &request.body,
        signature
    ));
    let mut altered = request.body.clone();
    altered.push(b' ');
    assert!(!verify_webhook(
        WEBHOOK_SECRET,
        timestamp,
        &altered,
        signature
    ));
    assert_eq!(
        channels
            .stats()
            .sent(riser_ingest::notify::channel::Channel::Webhook),
        1
    );
}

#[tokio::test]
async fn a_4xx_from_a_webhook_is_permanent() {
    let (addr, _stub) = stand_in().await;
    let channels = Channels::new(&config(addr)).unwrap();
    let json = payload();
    let result = channels
        .send(&webhook(addr, "reject"), &message("d1", &json, &[]))
        .await;
    let Err(SendError::Permanent(text)) = result else {
        panic!("expected a permanent failure, got {result:?}");
    };
    assert!(
        text.contains("400") && text.contains("unknown building"),
        "{text}"
    );
}

#[tokio::test]
async fn a_5xx_or_429_from_a_webhook_is_transient() {
    let (addr, stub) = stand_in().await;
    let channels = Channels::new(&config(addr)).unwrap();
    let json = payload();
    for answer in ["down", "busy"] {
        assert_transient(
            channels
                .send(&webhook(addr, answer), &message("d1", &json, &[]))
                .await,
        );
    }
    assert_eq!(stub.seen("/webhook/").len(), 2);
}

#[tokio::test]
async fn an_unreachable_webhook_is_transient() {
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let channels = Channels::new(&ChannelsConfig::default()).unwrap();
    let json = payload();
    assert_transient(
        channels
            .send(&webhook(closed, "ok"), &message("d1", &json, &[]))
            .await,
    );
}

#[tokio::test]
async fn a_webhook_that_does_not_answer_in_time_is_transient() {
    let (addr, stub) = stand_in().await;
    let channels = Channels::new(&ChannelsConfig {
        http_timeout_ms: 300,
        ..config(addr)
    })
    .unwrap();
    let json = payload();
    let result = channels
        .send(&webhook(addr, "slow"), &message("d1", &json, &[]))
        .await;
    let Err(SendError::Transient(text)) = result else {
        panic!("expected a transient failure, got {result:?}");
    };
    assert!(text.contains("timed out"), "{text}");
    assert_eq!(
        stub.seen("/webhook/slow").len(),
        1,
        "the request did arrive"
    );
}

// ---------------------------------------------------------------------------
// WeCom

#[tokio::test]
async fn a_wecom_robot_gets_markdown_with_the_acknowledge_link() {
    let (addr, stub) = stand_in().await;
    let channels = Channels::new(&config(addr)).unwrap();
    let json = payload();
    let target = Target::WeCom {
        url: format!("http://{addr}/wecom/ok?key=693a91f6-7xxx"),
    };
    channels
        .send(&target, &message("d1", &json, &[]))
        .await
        .unwrap();

    let seen = stub.seen("/wecom/");
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].query_params()["key"], "693a91f6-7xxx");
    let body = seen[0].json();
    assert_eq!(body["msgtype"], "markdown");
    let content = body["markdown"]["content"].as_str().unwrap();
    assert!(content.starts_with(MARKDOWN), "{content}");
    assert!(content.contains(&format!("]({LINK})")), "{content}");
}

#[tokio::test]
async fn a_wecom_rate_limit_is_transient() {
    let (addr, _stub) = stand_in().await;
    let channels = Channels::new(&config(addr)).unwrap();
    let json = payload();
    let target = Target::WeCom {
        url: format!("http://{addr}/wecom/limited?key=k"),
    };
    assert_transient(channels.send(&target, &message("d1", &json, &[])).await);
}

#[tokio::test]
async fn an_invalid_wecom_robot_is_permanent_and_its_key_stays_out_of_the_error() {
    let (addr, _stub) = stand_in().await;
    let channels = Channels::new(&config(addr)).unwrap();
    let json = payload();
    let target = Target::WeCom {
        url: format!("http://{addr}/wecom/invalid?key=secret-robot-key"),
    };
    let result = channels.send(&target, &message("d1", &json, &[])).await;
    let Err(SendError::Permanent(text)) = result else {
        panic!("expected a permanent failure, got {result:?}");
    };
    assert!(text.contains("93000"), "{text}");

    // Nor does a connection error show the URL.
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let target = Target::WeCom {
        url: format!("http://{closed}/wecom/ok?key=secret-robot-key"),
    };
    let error = channels
        .send(&target, &message("d1", &json, &[]))
        .await
        .unwrap_err();
    assert!(error.is_transient());
    assert!(!error.to_string().contains("secret-robot-key"), "{error}");
}

// ---------------------------------------------------------------------------
// DingTalk

#[tokio::test]
async fn a_dingtalk_robot_request_carries_a_valid_signature() {
    let (addr, stub) = stand_in().await;
    let channels = Channels::new(&config(addr)).unwrap();
    let json = payload();
    let target = Target::DingTalk {
        url: format!("http://{addr}/dingtalk/signed?access_token={DINGTALK_TOKEN}"),
        secret: Some(DINGTALK_SECRET.into()),
    };
    channels
        .send(&target, &message("d1", &json, &[]))
        .await
        .unwrap();

    let seen = stub.seen("/dingtalk/");
    assert_eq!(seen.len(), 1);
    let query = seen[0].query_params();
    assert!(dingtalk_sign_ok(&query), "{query:?}");
    assert_eq!(query["timestamp"].len(), 13, "milliseconds");
    let body = seen[0].json();
    assert_eq!(body["msgtype"], "markdown");
    assert_eq!(body["markdown"]["title"], SUBJECT);
    let text = body["markdown"]["text"].as_str().unwrap();
    assert!(text.starts_with(MARKDOWN) && text.contains(LINK), "{text}");
}

#[tokio::test]
async fn a_dingtalk_robot_with_another_secret_refuses_for_good() {
    let (addr, _stub) = stand_in().await;
    let channels = Channels::new(&config(addr)).unwrap();
    let json = payload();
    let target = Target::DingTalk {
        url: format!("http://{addr}/dingtalk/signed?access_token={DINGTALK_TOKEN}"),
        secret: Some("SECsomething-else".into()),
    };
    assert_permanent(channels.send(&target, &message("d1", &json, &[])).await);
    let unsigned = Target::DingTalk {
        url: format!("http://{addr}/dingtalk/signed?access_token={DINGTALK_TOKEN}"),
        secret: None,
    };
    assert_permanent(channels.send(&unsigned, &message("d1", &json, &[])).await);
}

#[tokio::test]
async fn a_dingtalk_robot_without_a_secret_gets_the_plain_url() {
    let (addr, stub) = stand_in().await;
    let channels = Channels::new(&config(addr)).unwrap();
    let json = payload();
    let target = Target::DingTalk {
        url: format!("http://{addr}/dingtalk/plain?access_token={DINGTALK_TOKEN}"),
        secret: None,
    };
    channels
        .send(&target, &message("d1", &json, &[]))
        .await
        .unwrap();
    assert_eq!(
        stub.seen("/dingtalk/")[0].query,
        format!("access_token={DINGTALK_TOKEN}")
    );
}

#[tokio::test]
async fn a_dingtalk_rate_limit_is_transient() {
    let (addr, _stub) = stand_in().await;
    let channels = Channels::new(&config(addr)).unwrap();
    let json = payload();
    let target = Target::DingTalk {
        url: format!("http://{addr}/dingtalk/limited?access_token={DINGTALK_TOKEN}"),
        secret: Some(DINGTALK_SECRET.into()),
    };
    assert_transient(channels.send(&target, &message("d1", &json, &[])).await);
}

// ---------------------------------------------------------------------------
// Aliyun SMS

fn sms_params() -> Vec<(&'static str, String)> {
    vec![
        ("building", "二号楼".to_owned()),
        ("reason", "消防水箱液位低 (0.50 m)".to_owned()),
    ]
}

#[tokio::test]
async fn an_aliyun_sms_request_is_signed_as_aliyun_documents() {
    let (addr, stub) = stand_in().await;
    let channels = Channels::new(&config(addr)).unwrap();
    let json = payload();
    let params = sms_params();
    let target = Target::Sms {
        phone: "13800138000".into(),
    };
    channels
        .send(&target, &message("hz42-opened-u7-sms", &json, &params))
        .await
        .unwrap();
    channels
        .send(&target, &message("hz42-opened-u8-sms", &json, &params))
        .await
        .unwrap();

    let seen = stub.seen("/aliyun/");
    assert_eq!(seen.len(), 2);
    let query = seen[0].query_params();
    for (name, value) in [
        ("Action", "SendSms"),
        ("Version", "2017-05-25"),
        ("Format", "JSON"),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("AccessKeyId", ALIYUN_KEY_ID),
        ("PhoneNumbers", "13800138000"),
        ("SignName", "梁平消防"),
        ("TemplateCode", "SMS_465000001"),
        ("OutId", "hz42-opened-u7-sms"),
    ] {
        assert_eq!(query.get(name).map(String::as_str), Some(value), "{name}");
    }
    let template: Value = serde_json::from_str(&query["TemplateParam"]).unwrap();
    assert_eq!(
        template,
        json!({"building": "二号楼", "reason": "消防水箱液位低 (0.50 m)"})
    );
    assert!(
        seen[0].query.contains("%20") && !seen[0].query.contains('+'),
        "a space is %20: {}",
        seen[0].query
    );
    let nonces: Vec<String> = seen
        .iter()
        .map(|r| r.query_params()["SignatureNonce"].clone())
        .collect();
    assert_ne!(nonces[0], nonces[1], "a new nonce per request");
}

#[tokio::test]
async fn an_aliyun_rate_limit_is_transient_and_a_bad_signature_is_permanent() {
    let (addr, _stub) = stand_in().await;
    let json = payload();
    let params = sms_params();
    let channels = Channels::new(&config(addr)).unwrap();
    let throttled = Target::Sms {
        phone: THROTTLED_PHONE.into(),
    };
    assert_transient(
        channels
            .send(&throttled, &message("d1", &json, &params))
            .await,
    );

    let wrong_key = Channels::new(&ChannelsConfig {
        sms: Some(sms_config(addr, "not-the-secret")),
        ..config(addr)
    })
    .unwrap();
    let target = Target::Sms {
        phone: "13800138000".into(),
    };
    let result = wrong_key
        .send(&target, &message("d1", &json, &params))
        .await;
    let Err(SendError::Permanent(text)) = result else {
        panic!("expected a permanent failure, got {result:?}");
    };
    assert!(text.contains("SignatureDoesNotMatch"), "{text}");

    let two_numbers = Target::Sms {
        phone: "13800138000,13900139000".into(),
    };
    assert_permanent(
        channels
            .send(&two_numbers, &message("d1", &json, &params))
            .await,
    );
}

// ---------------------------------------------------------------------------
// E-mail

/// Python of the venv scripts/test installs aiosmtpd into:
/// `$RISER_AIOSMTPD_VENV`, else `${XDG_CACHE_HOME:-~/.cache}/riser/aiosmtpd-venv`.
fn aiosmtpd_python() -> PathBuf {
    let venv = match std::env::var_os("RISER_AIOSMTPD_VENV") {
        Some(venv) => PathBuf::from(venv),
        None => {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
                .expect("HOME or XDG_CACHE_HOME is set");
            cache.join("riser").join("aiosmtpd-venv")
        }
    };
    let python = venv.join("bin").join("python");
    let works = Command::new(&python)
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        works,
        "aiosmtpd is not installed in {}: run scripts/test (it creates that venv), \
         or set RISER_AIOSMTPD_VENV to a venv with aiosmtpd",
        venv.display()
    );
    python
}

/// An aiosmtpd process on a free port storing mail in a maildir in its own
/// temp dir; killed on drop.
struct SmtpServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl SmtpServer {
    async fn start() -> Self {
        let python = aiosmtpd_python();
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let log = std::fs::File::create(dir.path().join("aiosmtpd.log")).unwrap();
        let child = Command::new(python)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(dir.path().join("maildir"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting aiosmtpd");
        let mut server = Self { child, port, dir };
        server.wait_until_listening().await;
        server
    }

    /// Polls a connection every 20 ms; fails after 20 s or if the process
    /// exits, with its log.
    async fn wait_until_listening(&mut self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            let exited = self.child.try_wait().unwrap();
            if exited.is_some() || tokio::time::Instant::now() > deadline {
                let log = std::fs::read_to_string(self.dir.path().join("aiosmtpd.log"))
                    .unwrap_or_default();
                panic!(
                    "aiosmtpd did not listen on {} ({exited:?}):\n{log}",
                    self.port
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn config(&self, starttls: bool) -> SmtpConfig {
        SmtpConfig {
            host: "127.0.0.1".into(),
            port: self.port,
            starttls,
            username: None,
            password: None,
            from: "Riser 告警 <alerts@riser.example.cn>".into(),
            timeout_ms: 10_000,
        }
    }

    /// The raw mail files stored so far.
    fn raw_mails(&self) -> Vec<PathBuf> {
        match std::fs::read_dir(self.dir.path().join("maildir").join("new")) {
            Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
            Err(_) => Vec::new(),
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Headers and body of the mail at `path` as Python's `email` package
/// decodes them (RFC 2047 words, transfer encoding, charset).
fn read_mail(path: &Path) -> Value {
    const READ: &str = r#"
import email, email.policy, json, sys
with open(sys.argv[1], "rb") as f:
    m = email.message_from_binary_file(f, policy=email.policy.default)
print(json.dumps({
    "subject": str(m["subject"]),
    "from": str(m["from"]),
    "to": str(m["to"]),
    "message_id": str(m["message-id"]),
    "content_type": m.get_content_type(),
    "charset": m.get_content_charset(),
    "body": m.get_content(),
}))
"#;
    let output = Command::new(aiosmtpd_python())
        .args(["-c", READ])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test]
async fn mail_in_chinese_reaches_a_local_smtp_server_intact() {
    let server = SmtpServer::start().await;
    let channels = Channels::new(&ChannelsConfig {
        smtp: Some(server.config(false)),
        ..ChannelsConfig::default()
    })
    .unwrap();
    let json = payload();
    let target = Target::Email {
        to: "维保值班 <duty@weibao.example.cn>".into(),
    };
    channels
        .send(&target, &message("hz42-opened-u7-email", &json, &[]))
        .await
        .unwrap();

    let mails = server.raw_mails();
    assert_eq!(mails.len(), 1, "one mail stored");
    let raw = std::fs::read(&mails[0]).unwrap();
    assert!(
        raw.is_ascii(),
        "7-bit clean: no 8BITMIME or SMTPUTF8 needed"
    );
    let mail = read_mail(&mails[0]);
    assert_eq!(mail["subject"], SUBJECT);
    assert_eq!(mail["message_id"], "<hz42-opened-u7-email@riser>");
    assert_eq!(mail["from"], "Riser 告警 <alerts@riser.example.cn>");
    assert_eq!(mail["to"], "维保值班 <duty@weibao.example.cn>");
    assert_eq!(mail["content_type"], "text/plain");
    assert_eq!(mail["charset"], "utf-8");
    let body = mail["body"].as_str().unwrap().replace("\r\n", "\n");
    assert_eq!(body, format!("{TEXT}\n\n{LINK}\n"));
}

#[tokio::test]
async fn mail_is_not_sent_to_a_server_that_offers_no_starttls() {
    let server = SmtpServer::start().await;
    let channels = Channels::new(&ChannelsConfig {
        smtp: Some(server.config(true)),
        ..ChannelsConfig::default()
    })
    .unwrap();
    let json = payload();
    let target = Target::Email {
        to: "duty@weibao.example.cn".into(),
    };
    let result = channels.send(&target, &message("d1", &json, &[])).await;
    let Err(SendError::Transient(text)) = result else {
        panic!("expected a transient failure, got {result:?}");
    };
    assert!(text.contains("STARTTLS"), "{text}");
    assert!(server.raw_mails().is_empty(), "nothing sent in clear text");
}

#[tokio::test]
async fn a_malformed_mail_address_is_permanent() {
    // Refused before any connection: nothing listens on the port.
    let unused = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let channels = Channels::new(&ChannelsConfig {
        smtp: Some(SmtpConfig {
            host: "127.0.0.1".into(),
            port: unused.port(),
            starttls: false,
            username: None,
            password: None,
            from: "alerts@riser.example.cn".into(),
            timeout_ms: 10_000,
        }),
        ..ChannelsConfig::default()
    })
    .unwrap();
    let json = payload();
    let target = Target::Email {
        to: "duty at weibao".into(),
    };
    assert_permanent(channels.send(&target, &message("d1", &json, &[])).await);
}
