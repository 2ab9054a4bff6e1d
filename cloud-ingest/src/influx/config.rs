//! Configuration of the InfluxDB sink: the `[influx]` table of the ingest
//! config (`RISER_INGEST_INFLUX__URL`, … in the environment).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::InfluxError;

/// Where and how telemetry goes to InfluxDB 2. Absent: no InfluxDB.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfluxConfig {
    /// Base URL of the InfluxDB 2 server, e.g. `http://influx.example:8086`
    /// (`https://` works too; certificates are checked against the
    /// built-in web PKI roots).
    pub url: String,
    /// InfluxDB organization (name or id) that owns the bucket.
    pub org: String,
    /// Bucket the readings are written to.
    pub bucket: String,
    /// API token with write permission on the bucket. Empty: send none.
    #[serde(default)]
    pub token: String,
    /// Most points in one write request.
    #[serde(default = "default_batch_max_points")]
    pub batch_max_points: usize,
    /// The backlog is sent at least this often (milliseconds); sooner once
    /// `batch_max_points` are waiting.
    #[serde(default = "default_flush_interval_ms")]
    pub flush_interval_ms: u64,
    /// Longest wait between two attempts while InfluxDB is unreachable or
    /// failing (milliseconds); the wait doubles from 250 ms up to this.
    #[serde(default = "default_retry_max_ms")]
    pub retry_max_ms: u64,
    /// A write request that has not completed after this many milliseconds
    /// counts as failed and is retried.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// The durable backlog (SQLite). Default: `influx-backlog.db` in the
    /// ingest's `data_dir`.
    #[serde(default)]
    pub backlog_path: Option<PathBuf>,
}

/// The backlog's file name in the data directory.
pub const BACKLOG_FILE: &str = "influx-backlog.db";

fn default_batch_max_points() -> usize {
    5000
}
fn default_flush_interval_ms() -> u64 {
    1000
}
fn default_retry_max_ms() -> u64 {
    30_000
}
fn default_request_timeout_ms() -> u64 {
    10_000
}

impl InfluxConfig {
    /// A config for `url`, `org` and `bucket` with the default batching.
    pub fn new(url: &str, org: &str, bucket: &str, token: &str) -> Self {
        Self {
            url: url.to_owned(),
            org: org.to_owned(),
            bucket: bucket.to_owned(),
            token: token.to_owned(),
            batch_max_points: default_batch_max_points(),
            flush_interval_ms: default_flush_interval_ms(),
            retry_max_ms: default_retry_max_ms(),
            request_timeout_ms: default_request_timeout_ms(),
            backlog_path: None,
        }
    }

    /// Checks what can be checked before start-up; errors name the key
    /// (`influx.url`, ...).
    pub fn validate(&self) -> Result<(), InfluxError> {
        let invalid = |key: &str, what: String| {
            Err(InfluxError::Config(format!("key `influx.{key}`: {what}")))
        };
        match url::Url::parse(&self.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            Ok(_) => {
                return invalid(
                    "url",
                    format!("`{}` is not an http(s) URL with a host", self.url),
                );
            }
            Err(e) => return invalid("url", format!("`{}` is not a URL: {e}", self.url)),
        }
        if self.org.is_empty() {
            return invalid("org", "must not be empty".into());
        }
        if self.bucket.is_empty() {
            return invalid("bucket", "must not be empty".into());
        }
        if self.batch_max_points == 0 {
            return invalid("batch_max_points", "must be positive".into());
        }
        if self.flush_interval_ms == 0 {
            return invalid("flush_interval_ms", "must be positive".into());
        }
        if self.retry_max_ms == 0 {
            return invalid("retry_max_ms", "must be positive".into());
        }
        if self.request_timeout_ms == 0 {
            return invalid("request_timeout_ms", "must be positive".into());
        }
        Ok(())
    }

    /// The backlog file: `backlog_path`, or `influx-backlog.db` in `data_dir`.
    pub fn backlog_file(&self, data_dir: &Path) -> PathBuf {
        self.backlog_path
            .clone()
            .unwrap_or_else(|| data_dir.join(BACKLOG_FILE))
    }
}

/// Like the derived one, but never prints the token.
impl std::fmt::Debug for InfluxConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InfluxConfig")
            .field("url", &self.url)
            .field("org", &self.org)
            .field("bucket", &self.bucket)
            .field(
                "token",
                &if self.token.is_empty() {
                    ""
                } else {
                    "<redacted>"
                },
            )
            .field("batch_max_points", &self.batch_max_points)
            .field("flush_interval_ms", &self.flush_interval_ms)
            .field("retry_max_ms", &self.retry_max_ms)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .field("backlog_path", &self.backlog_path)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_with_url_org_and_bucket_gets_the_default_batching() {
        let config: InfluxConfig = toml::from_str(
            "url = \"http://influx:8086\"\norg = \"riser\"\nbucket = \"telemetry\"\ntoken = \"s3cret\"\n",
        )
        .unwrap();
        config.validate().unwrap();
        assert_eq!(config.batch_max_points, 5000);
        assert_eq!(config.flush_interval_ms, 1000);
        assert_eq!(
            config.backlog_file(Path::new("/var/lib/riser")),
            Path::new("/var/lib/riser/influx-backlog.db")
        );
        assert!(
            !format!("{config:?}").contains("s3cret"),
            "the token stays out of logs"
        );
    }

    #[test]
    fn unknown_keys_and_bad_urls_are_refused_naming_the_key() {
        let unknown = toml::from_str::<InfluxConfig>(
            "url = \"http://influx:8086\"\norg = \"o\"\nbucket = \"b\"\nbatch = 1\n",
        );
        assert!(unknown.unwrap_err().to_string().contains("batch"));
        for url in ["influx:8086", "ftp://influx", "http://"] {
            let err = InfluxConfig::new(url, "o", "b", "")
                .validate()
                .unwrap_err()
                .to_string();
            assert!(err.contains("influx.url"), "{url}: {err}");
        }
        let err = InfluxConfig::new("http://influx:8086", "o", "", "")
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("influx.bucket"), "{err}");
    }
}
