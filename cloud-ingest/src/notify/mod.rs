//! Alerts to people (issue 6): hazard transitions become messages to the
//! building's responsible parties.
//!
//! [`outbox`] plans each transition into one row per recipient
//! ([`route`] decides who), [`deliver`] sends due rows through
//! [`channel`] (webhook, 企业微信 and 钉钉 robots, e-mail, SMS) with the
//! words of [`message`], retrying with back-off; [`run`] drives both.

pub mod channel;
pub mod deliver;
pub mod link;
pub mod message;
pub mod outbox;
pub mod route;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::App;
use channel::{Channels, ChannelsConfig};
use route::{Contacts, FireRescue, Party, RoutingConfig};

/// `[notify]`: who hears of what, their contacts, and the channels.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    #[serde(default)]
    pub routing: RoutingConfig,
    /// `[[notify.party]]`: contacts of management units, contractors and
    /// building managers, by the name the registry gives them.
    #[serde(default)]
    pub party: Vec<Party>,
    /// `[[notify.fire_rescue]]`: each district's fire-rescue supervisor.
    #[serde(default)]
    pub fire_rescue: Vec<FireRescue>,
    #[serde(default)]
    pub channels: ChannelsConfig,
    /// An item back within this many minutes of clearing pages no one
    /// again, and a clearing is told only once it held this long.
    #[serde(default = "default_reopen_quiet_minutes")]
    pub reopen_quiet_minutes: u64,
    /// How often the outbox is planned and due messages sent, ms.
    #[serde(default = "default_poll_ms")]
    pub poll_ms: u64,
    /// Attempts before a message that keeps failing transiently is
    /// given up (`failed`).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// How long a message being sent is left to the node that claimed
    /// it, seconds: a node that dies between sending a message and marking
    /// it sent leaves it to be sent again (with the same delivery id) this
    /// long after its claim. Longer than `channels.http_timeout_ms`, so a
    /// live sender is never overtaken.
    #[serde(default = "default_lease_secs")]
    pub lease_secs: u64,
    /// Where people reach this service (`https://riser.example.cn`): the
    /// base of the acknowledge links. With `link_secret`; without both,
    /// messages carry no link.
    #[serde(default)]
    pub public_url: Option<String>,
    /// The key acknowledge links are signed with (at least 32
    /// characters; best given as `RISER_NOTIFY__LINK_SECRET`).
    #[serde(default)]
    pub link_secret: Option<String>,
    /// How long an acknowledge link works.
    #[serde(default = "default_link_valid_hours")]
    pub link_valid_hours: u64,
    #[serde(default)]
    pub rate_limit: RateLimit,
}

/// `[notify.rate_limit]`: past `messages` to one recipient in
/// `window_minutes`, further items are gathered into a digest, sent
/// `digest_after_secs` after its first item and at most one a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimit {
    pub messages: u32,
    pub window_minutes: u64,
    pub digest_after_secs: u64,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            messages: 5,
            window_minutes: 10,
            digest_after_secs: 60,
        }
    }
}

impl RateLimit {
    pub fn window_ms(&self) -> i64 {
        self.window_minutes as i64 * 60_000
    }

    pub fn digest_after_ms(&self) -> i64 {
        self.digest_after_secs as i64 * 1000
    }
}

fn default_link_valid_hours() -> u64 {
    7 * 24
}

fn default_reopen_quiet_minutes() -> u64 {
    30
}
fn default_poll_ms() -> u64 {
    200
}
fn default_max_attempts() -> u32 {
    12
}
fn default_lease_secs() -> u64 {
    deliver::LEASE.as_secs()
}

impl fmt::Debug for NotifyConfig {
    /// Without the contacts' addresses and the channels' secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotifyConfig")
            .field("routing", &self.routing)
            .field("parties", &self.party.len())
            .field("fire_rescue", &self.fire_rescue.len())
            .field("reopen_quiet_minutes", &self.reopen_quiet_minutes)
            .field("poll_ms", &self.poll_ms)
            .field("max_attempts", &self.max_attempts)
            .field("lease_secs", &self.lease_secs)
            .field("public_url", &self.public_url)
            .field("link_valid_hours", &self.link_valid_hours)
            .field("rate_limit", &self.rate_limit)
            .finish_non_exhaustive()
    }
}

impl NotifyConfig {
    /// The checks [`crate::Config::load`] makes on `[notify]`.
    pub fn validate(&self) -> Result<(), String> {
        if !(10..=60_000).contains(&self.poll_ms) {
            return Err("key `notify.poll_ms`: must be 10 to 60000".into());
        }
        if self.max_attempts == 0 {
            return Err("key `notify.max_attempts`: must be at least 1".into());
        }
        if !(1..=3600).contains(&self.lease_secs)
            || self.lease_secs.saturating_mul(1000) <= self.channels.http_timeout_ms
        {
            return Err(
                "key `notify.lease_secs`: 1 to 3600, and longer than `notify.channels.http_timeout_ms`"
                    .into(),
            );
        }
        if self.reopen_quiet_minutes > 24 * 60 {
            return Err("key `notify.reopen_quiet_minutes`: at most 1440 (a day)".into());
        }
        match (&self.public_url, &self.link_secret) {
            (None, None) => {}
            (Some(url), Some(secret)) => {
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    return Err("key `notify.public_url`: must start with https://".into());
                }
                if secret.chars().count() < 32 {
                    return Err("key `notify.link_secret`: at least 32 characters".into());
                }
            }
            _ => {
                return Err(
                    "keys `notify.public_url` and `notify.link_secret`: give both or neither"
                        .into(),
                );
            }
        }
        if !(1..=24 * 90).contains(&self.link_valid_hours) {
            return Err("key `notify.link_valid_hours`: 1 to 2160 (90 days)".into());
        }
        let limit = &self.rate_limit;
        if limit.messages == 0 {
            return Err("key `notify.rate_limit.messages`: must be at least 1".into());
        }
        if !(1..=24 * 60).contains(&limit.window_minutes) {
            return Err("key `notify.rate_limit.window_minutes`: 1 to 1440 (a day)".into());
        }
        if limit.digest_after_secs > 3600 {
            return Err("key `notify.rate_limit.digest_after_secs`: at most 3600".into());
        }
        Ok(())
    }

    /// The acknowledge links, when configured.
    pub fn links(&self) -> Option<link::Links> {
        Some(link::Links::new(
            self.link_secret.as_deref()?,
            self.public_url.as_deref()?,
            time::Duration::hours(self.link_valid_hours as i64),
        ))
    }

    pub fn contacts(&self) -> Contacts {
        Contacts {
            party: self.party.clone(),
            fire_rescue: self.fire_rescue.clone(),
        }
    }
}

/// Plans and sends every `poll_ms`, and at once when judging commits
/// hazard transitions, until `shutdown`.
pub async fn run(
    app: Arc<App>,
    config: NotifyConfig,
    channels: Channels,
    shutdown: CancellationToken,
) {
    let contacts = config.contacts();
    let routing = outbox::Routing {
        registry: &app.registry,
        routing: &config.routing,
        contacts: &contacts,
        reopen_quiet: time::Duration::minutes(config.reopen_quiet_minutes as i64),
        rate_limit: config.rate_limit,
    };
    let mut ticker = tokio::time::interval(Duration::from_millis(config.poll_ms));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut more = false;
    loop {
        if !more {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = app.alerts_due.notified() => {}
                _ = ticker.tick() => {}
            }
        } else if shutdown.is_cancelled() {
            return;
        }
        let now = OffsetDateTime::now_utc();
        match outbox::plan(&app.store, &routing, now).await {
            Ok(planned) => {
                for (transition, building, role) in &planned.unreachable {
                    tracing::warn!(transition, building = %building, role = role.as_str(), "no contact for this role: nobody hears of this transition there");
                }
            }
            Err(error) => {
                tracing::error!(error = %error, "planning alerts failed; retried next round")
            }
        }
        more = match deliver::deliver_due(
            &app,
            &channels,
            i64::from(config.max_attempts),
            Duration::from_secs(config.lease_secs),
            now,
        )
        .await
        {
            // A full claim: more may be due at once.
            Ok(done) => done.claimed() >= deliver::CLAIM as u64,
            Err(error) => {
                tracing::error!(error = %error, "sending alerts failed; retried next round");
                false
            }
        };
    }
}
