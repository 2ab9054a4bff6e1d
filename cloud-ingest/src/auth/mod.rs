//! Who may use the dashboard and the API, and what each may see and do.
//!
//! Roles ([`Role`]): `admin` (everything, users), `fire_rescue` (消防救援:
//! every building of its region, read, remarks), `contractor` (维保单位:
//! the buildings it maintains, acknowledges, remarks, closes its items and
//! sets maintenance mode), `installer` (buildings and gateways of its
//! region, or all; read). A region scope is `district[/town[/community]]`;
//! a contractor's scope is its name as the registry gives it.
//!
//! Passwords are kept as argon2id PHC strings. A browser signs in for a
//! session (an HttpOnly cookie, SameSite=Strict, with a CSRF token every
//! unsafe request must echo); programs use API tokens (`Authorization:
//! Bearer rsr_…`). Only SHA-256 hashes of session and API tokens are
//! stored. Failed sign-ins are limited per user name and per address
//! ([`LoginLimiter`]). The first admin is made with `riser-ingest user add`.

pub mod limit;

use std::fmt;

use argon2::Argon2;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;
use time::OffsetDateTime;

use crate::registry::Building;
use crate::store::{Store, StoreError, to_ms};

pub use limit::LoginLimiter;

/// What a user is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    FireRescue,
    Contractor,
    Installer,
}

impl Role {
    pub const ALL: [Role; 4] = [
        Role::Admin,
        Role::FireRescue,
        Role::Contractor,
        Role::Installer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::FireRescue => "fire_rescue",
            Role::Contractor => "contractor",
            Role::Installer => "installer",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a role may do, as the dashboard shows its buttons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Can {
    pub acknowledge: bool,
    pub remark: bool,
    pub close: bool,
    pub maintenance: bool,
    pub users: bool,
}

/// A signed-in user (or a token's owner), as requests see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: i64,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub scope: Option<String>,
    /// The session's CSRF token; `None` for an API token (no cookie, no
    /// cross-site request to forge).
    pub csrf: Option<String>,
}

impl Principal {
    /// Whether `building` is among those this user may see.
    pub fn sees(&self, building: &Building) -> bool {
        match (self.role, self.scope.as_deref()) {
            (Role::Admin, _) | (Role::Installer, None) => true,
            (Role::FireRescue | Role::Installer, Some(region)) => in_region(building, region),
            (Role::Contractor, Some(name)) => building.parties.contractor.as_deref() == Some(name),
            // A fire-rescue or contractor account without a scope sees
            // nothing rather than everything.
            (Role::FireRescue | Role::Contractor, None) => false,
        }
    }

    pub fn can(&self) -> Can {
        let r = self.role;
        Can {
            acknowledge: matches!(r, Role::Admin | Role::Contractor),
            remark: matches!(r, Role::Admin | Role::Contractor | Role::FireRescue),
            close: matches!(r, Role::Admin | Role::Contractor),
            maintenance: matches!(r, Role::Admin | Role::Contractor),
            users: r == Role::Admin,
        }
    }

    /// How the user is named in an item's trail.
    pub fn actor(&self) -> String {
        if self.display_name == self.username {
            self.username.clone()
        } else {
            format!("{}（{}）", self.display_name, self.username)
        }
    }
}

/// `district[/town[/community]]` holds `building`.
fn in_region(building: &Building, region: &str) -> bool {
    let parts = [&building.district, &building.town, &building.community];
    let wanted: Vec<&str> = region.split('/').map(str::trim).collect();
    !wanted.is_empty()
        && wanted.len() <= parts.len()
        && wanted.iter().zip(parts).all(|(w, p)| *w == p.as_str())
}

/// Checks a scope against the role it is for.
pub fn check_scope(role: Role, scope: Option<&str>) -> Result<(), String> {
    match (role, scope.map(str::trim)) {
        (Role::Admin, Some(s)) if !s.is_empty() => Err("an admin has no scope".into()),
        (Role::FireRescue | Role::Contractor, None | Some("")) => Err(format!(
            "a {role} account needs a scope (a region for fire_rescue, the company name for contractor)"
        )),
        (_, Some(s)) if s.split('/').count() > 3 || s.split('/').any(|p| p.trim().is_empty()) => {
            Err(format!(
                "scope `{s}`: a region is district[/town[/community]]"
            ))
        }
        _ => Ok(()),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{0}")]
    Invalid(String),
    #[error("user `{0}` exists already")]
    Exists(String),
    #[error("no user `{0}`")]
    NoUser(String),
    #[error("password hashing: {0}")]
    Hash(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for AuthError {
    fn from(e: sqlx::Error) -> Self {
        AuthError::Store(e.into())
    }
}

/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 10;

pub fn hash_password(password: &str) -> Result<String, AuthError> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(AuthError::Invalid(format!(
            "a password has at least {MIN_PASSWORD} characters"
        )));
    }
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A PHC string for a password nobody has: checked when the user name is
/// unknown, so a wrong name takes as long as a wrong password.
fn decoy() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        hash_password("decoy password nobody has").expect("argon2 hashes a constant")
    })
}

/// A random password of 20 letters and digits (for `user add --generate`).
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 20];
    OsRng.fill_bytes(&mut bytes);
    bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

/// 32 random bytes, base64url.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A user as listed (never the hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub scope: Option<String>,
    pub disabled: bool,
}

/// A new user.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub username: String,
    #[serde(default)]
    pub display_name: Option<String>,
    pub password: String,
    pub role: Role,
    #[serde(default)]
    pub scope: Option<String>,
}

fn check_username(name: &str) -> Result<(), AuthError> {
    let ok = (2..=64).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(AuthError::Invalid(format!(
            "user name `{name}`: 2 to 64 letters, digits, `.`, `_`, `-` or `@`"
        )))
    }
}

pub async fn add_user(
    store: &Store,
    new: &NewUser,
    now: OffsetDateTime,
) -> Result<User, AuthError> {
    check_username(&new.username)?;
    check_scope(new.role, new.scope.as_deref()).map_err(AuthError::Invalid)?;
    let display_name = new
        .display_name
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .unwrap_or(&new.username)
        .to_owned();
    let scope = new
        .scope
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let hash = hash_password(&new.password)?;
    let _turn = store.turn().await;
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO users (username, display_name, password_hash, role, scope, created_ms)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (username) DO NOTHING RETURNING id",
    )
    .bind(&new.username)
    .bind(&display_name)
    .bind(&hash)
    .bind(new.role.as_str())
    .bind(scope)
    .bind(to_ms(now))
    .fetch_optional(store.pool())
    .await?;
    let id = id.ok_or_else(|| AuthError::Exists(new.username.clone()))?;
    Ok(User {
        id,
        username: new.username.clone(),
        display_name,
        role: new.role,
        scope: scope.map(str::to_owned),
        disabled: false,
    })
}

pub async fn users(store: &Store) -> Result<Vec<User>, AuthError> {
    let rows = sqlx::query(
        "SELECT id, username, display_name, role, scope, disabled_ms FROM users ORDER BY username",
    )
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|r| {
            let role: String = r.try_get("role")?;
            Ok(User {
                id: r.try_get("id")?,
                username: r.try_get("username")?,
                display_name: r.try_get("display_name")?,
                role: Role::parse(&role)
                    .ok_or_else(|| StoreError::Corrupt(format!("user role `{role}`")))?,
                scope: r.try_get("scope")?,
                disabled: r.try_get::<Option<i64>, _>("disabled_ms")?.is_some(),
            })
        })
        .collect()
}

/// Sets a new password; every session of the user ends.
pub async fn set_password(store: &Store, username: &str, password: &str) -> Result<(), AuthError> {
    let hash = hash_password(password)?;
    let _turn = store.turn().await;
    let mut tx = store.pool().begin().await?;
    let id: Option<i64> =
        sqlx::query_scalar("UPDATE users SET password_hash = $1 WHERE username = $2 RETURNING id")
            .bind(&hash)
            .bind(username)
            .fetch_optional(&mut *tx)
            .await?;
    let id = id.ok_or_else(|| AuthError::NoUser(username.to_owned()))?;
    sqlx::query("DELETE FROM sessions WHERE user_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Disables (or enables again) a user; a disabled user's sessions end and
/// its tokens stop working.
pub async fn set_disabled(
    store: &Store,
    username: &str,
    disabled: bool,
    now: OffsetDateTime,
) -> Result<(), AuthError> {
    let _turn = store.turn().await;
    let mut tx = store.pool().begin().await?;
    let id: Option<i64> = sqlx::query_scalar(
        "UPDATE users SET disabled_ms = CASE WHEN $1 THEN $2 ELSE NULL END
         WHERE username = $3 RETURNING id",
    )
    .bind(disabled)
    .bind(to_ms(now))
    .bind(username)
    .fetch_optional(&mut *tx)
    .await?;
    let id = id.ok_or_else(|| AuthError::NoUser(username.to_owned()))?;
    if disabled {
        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

const PRINCIPAL_COLUMNS: &str = "u.id, u.username, u.display_name, u.role, u.scope";

fn principal(r: &sqlx::any::AnyRow, csrf: Option<String>) -> Result<Principal, AuthError> {
    let role: String = r.try_get("role")?;
    Ok(Principal {
        user_id: r.try_get("id")?,
        username: r.try_get("username")?,
        display_name: r.try_get("display_name")?,
        role: Role::parse(&role)
            .ok_or_else(|| StoreError::Corrupt(format!("user role `{role}`")))?,
        scope: r.try_get("scope")?,
        csrf,
    })
}

/// The user if `password` is theirs and they are not disabled.
pub async fn check_password(
    store: &Store,
    username: &str,
    password: &str,
) -> Result<Option<Principal>, AuthError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {PRINCIPAL_COLUMNS}, u.password_hash FROM users u
         WHERE u.username = $1 AND u.disabled_ms IS NULL"
    )))
    .bind(username)
    .fetch_optional(store.pool())
    .await?;
    let phc = match &row {
        Some(r) => r.try_get::<String, _>("password_hash")?,
        None => decoy().to_owned(),
    };
    // Hashing is CPU work of ~20-50 ms: off the async workers.
    let password = password.to_owned();
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &phc))
        .await
        .unwrap_or(false);
    match (row, ok) {
        (Some(r), true) => Ok(Some(principal(&r, None)?)),
        _ => Ok(None),
    }
}

/// A new session: the cookie's token (given once, stored hashed) and the
/// principal with its CSRF token.
pub async fn start_session(
    store: &Store,
    user: &Principal,
    valid: time::Duration,
    now: OffsetDateTime,
) -> Result<(String, Principal), AuthError> {
    let token = random_token();
    let csrf = random_token();
    let _turn = store.turn().await;
    sqlx::query(
        "INSERT INTO sessions (token_hash, user_id, csrf, created_ms, expires_ms)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token_hash(&token))
    .bind(user.user_id)
    .bind(&csrf)
    .bind(to_ms(now))
    .bind(to_ms(now + valid))
    .execute(store.pool())
    .await?;
    // Expired sessions go as new ones come.
    sqlx::query("DELETE FROM sessions WHERE expires_ms <= $1")
        .bind(to_ms(now))
        .execute(store.pool())
        .await?;
    Ok((
        token,
        Principal {
            csrf: Some(csrf),
            ..user.clone()
        },
    ))
}

/// The principal of a live session.
pub async fn session(
    store: &Store,
    token: &str,
    now: OffsetDateTime,
) -> Result<Option<Principal>, AuthError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {PRINCIPAL_COLUMNS}, s.csrf FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.token_hash = $1 AND s.expires_ms > $2 AND u.disabled_ms IS NULL"
    )))
    .bind(token_hash(token))
    .bind(to_ms(now))
    .fetch_optional(store.pool())
    .await?;
    row.map(|r| {
        let csrf: String = r.try_get("csrf")?;
        principal(&r, Some(csrf))
    })
    .transpose()
}

pub async fn end_session(store: &Store, token: &str) -> Result<(), AuthError> {
    let _turn = store.turn().await;
    sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
        .bind(token_hash(token))
        .execute(store.pool())
        .await?;
    Ok(())
}

/// Prefix of API tokens (so a leaked one is recognisable in a scanner).
pub const TOKEN_PREFIX: &str = "rsr_";

/// A new API token for `user`, shown once.
pub async fn new_token(
    store: &Store,
    user_id: i64,
    name: &str,
    valid: Option<time::Duration>,
    now: OffsetDateTime,
) -> Result<(i64, String), AuthError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AuthError::Invalid(
            "a token's name is 1 to 100 characters".into(),
        ));
    }
    let token = format!("{TOKEN_PREFIX}{}", random_token());
    let _turn = store.turn().await;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO api_tokens (token_hash, user_id, name, created_ms, expires_ms)
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(token_hash(&token))
    .bind(user_id)
    .bind(name)
    .bind(to_ms(now))
    .bind(valid.map(|v| to_ms(now + v)))
    .fetch_one(store.pool())
    .await?;
    Ok((id, token))
}

/// The principal of a live API token.
pub async fn token_principal(
    store: &Store,
    token: &str,
    now: OffsetDateTime,
) -> Result<Option<Principal>, AuthError> {
    if !token.starts_with(TOKEN_PREFIX) {
        return Ok(None);
    }
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {PRINCIPAL_COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.user_id
         WHERE t.token_hash = $1 AND t.revoked_ms IS NULL
           AND (t.expires_ms IS NULL OR t.expires_ms > $2) AND u.disabled_ms IS NULL"
    )))
    .bind(token_hash(token))
    .bind(to_ms(now))
    .fetch_optional(store.pool())
    .await?;
    row.map(|r| principal(&r, None)).transpose()
}

/// Revokes one of `user_id`'s tokens (any user's for an admin).
pub async fn revoke_token(
    store: &Store,
    token_id: i64,
    by: &Principal,
    now: OffsetDateTime,
) -> Result<bool, AuthError> {
    let _turn = store.turn().await;
    let done = sqlx::query(
        "UPDATE api_tokens SET revoked_ms = $1
         WHERE id = $2 AND revoked_ms IS NULL AND (user_id = $3 OR $4)",
    )
    .bind(to_ms(now))
    .bind(token_id)
    .bind(by.user_id)
    .bind(by.role == Role::Admin)
    .execute(store.pool())
    .await?
    .rows_affected();
    Ok(done == 1)
}

/// `[auth]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// How long a browser session lasts, hours.
    pub session_hours: u64,
    /// Mark the session cookie `Secure` (served over HTTPS, directly or
    /// behind a TLS proxy). Off for plain HTTP on a local network.
    pub secure_cookie: bool,
    /// Requests without credentials act as this role, unscoped: `installer`
    /// reads everything (a wall screen in a control room), `admin` may do
    /// anything (local development only). None (the default): every API
    /// call needs a login.
    pub anonymous: Option<Role>,
    /// Failed sign-ins allowed per user name, and per client address, in
    /// `login_window_minutes`, before sign-in is refused (429) until the
    /// window has passed.
    pub login_failures_per_user: u32,
    pub login_failures_per_address: u32,
    pub login_window_minutes: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            session_hours: 12,
            secure_cookie: false,
            anonymous: None,
            login_failures_per_user: 5,
            login_failures_per_address: 20,
            login_window_minutes: 15,
        }
    }
}

impl AuthConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=24 * 30).contains(&self.session_hours) {
            return Err("key `auth.session_hours`: 1 to 720 (30 days)".into());
        }
        if self.login_failures_per_user == 0 || self.login_failures_per_address == 0 {
            return Err("keys `auth.login_failures_per_*`: at least 1".into());
        }
        if !(1..=24 * 60).contains(&self.login_window_minutes) {
            return Err("key `auth.login_window_minutes`: 1 to 1440".into());
        }
        if matches!(self.anonymous, Some(Role::FireRescue | Role::Contractor)) {
            return Err(
                "key `auth.anonymous`: `installer` (read everything) or `admin`; scoped roles need a login"
                    .into(),
            );
        }
        Ok(())
    }

    /// The principal of a request without credentials, if any.
    pub fn anonymous(&self) -> Option<Principal> {
        self.anonymous.map(|role| Principal {
            user_id: 0,
            username: "anonymous".into(),
            display_name: "anonymous".into(),
            role,
            scope: None,
            csrf: None,
        })
    }
}

#[cfg(test)]
mod tests;
