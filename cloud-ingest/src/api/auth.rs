//! Signing in, and who a request is ([`crate::auth`]).
//!
//! - `POST /api/login` `{"username", "password"}`: a session cookie
//!   (`riser_session`, HttpOnly, SameSite=Strict, `Secure` with
//!   `auth.secure_cookie`) and `{"user", "csrf"}`; 401 on a wrong name or
//!   password, 429 (with `Retry-After`) past the failed sign-in limit.
//! - `POST /api/logout`: ends the session.
//! - `GET /api/me`: the user, its CSRF token and what it may do (`can`).
//! - `POST /api/tokens` `{"name", "valid_days"?}`: an API token for the
//!   caller, shown once (`Authorization: Bearer rsr_…`);
//!   `DELETE /api/tokens/{id}` revokes one.
//! - Admin only: `GET /api/users`, `POST /api/users` `{"username",
//!   "display_name"?, "password", "role", "scope"?}`,
//!   `POST /api/users/{username}/disable` and `…/enable`.
//!
//! Every other `/api` route takes a [`Principal`]: from the session cookie
//! (an unsafe method must also carry `X-CSRF-Token`, else 403), from a
//! bearer token, or `auth.anonymous`; otherwise 401.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{ApiError, json_body};
use crate::App;
use crate::auth::{self, AuthError, Can, NewUser, Principal, Role, User};

/// The session cookie's name.
pub const COOKIE: &str = "riser_session";
/// The header an unsafe request of a session echoes its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Invalid(m) => ApiError::BadRequest(m),
            AuthError::Exists(_) => ApiError::Conflict(e.to_string()),
            AuthError::NoUser(_) => ApiError::NotFound("user"),
            AuthError::Hash(m) => ApiError::Store(crate::store::StoreError::Corrupt(m)),
            AuthError::Store(s) => ApiError::Store(s),
        }
    }
}

pub fn routes() -> Router<Arc<App>> {
    use axum::routing::{delete, get, post};
    Router::new()
        .route("/api/login", post(login))
        .route("/api/logout", post(logout))
        .route("/api/me", get(me))
        .route("/api/tokens", post(new_token))
        .route("/api/tokens/{id}", delete(revoke_token))
        .route("/api/users", get(list_users).post(add_user))
        .route("/api/users/{username}/disable", post(disable))
        .route("/api/users/{username}/enable", post(enable))
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

fn unsafe_method(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Constant-time comparison of two tokens.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

impl FromRequestParts<Arc<App>> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        let now = OffsetDateTime::now_utc();
        if let Some(token) = bearer(&parts.headers) {
            return auth::token_principal(&app.store, token, now)
                .await?
                .ok_or(ApiError::Unauthorized);
        }
        if let Some(token) = cookie(&parts.headers, COOKIE) {
            let principal = auth::session(&app.store, token, now)
                .await?
                .ok_or(ApiError::Unauthorized)?;
            if unsafe_method(&parts.method) {
                let sent = parts
                    .headers
                    .get(CSRF_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                let want = principal.csrf.as_deref().unwrap_or("");
                if want.is_empty() || !same(sent, want) {
                    return Err(ApiError::Forbidden(
                        "missing or wrong X-CSRF-Token (see GET /api/me)".into(),
                    ));
                }
            }
            return Ok(principal);
        }
        app.auth.anonymous().ok_or(ApiError::Unauthorized)
    }
}

/// The client's address, when the server knows it.
pub struct ClientAddr(pub Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

/// A user as the API shows it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserOut {
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub scope: Option<String>,
}

impl From<&Principal> for UserOut {
    fn from(p: &Principal) -> Self {
        Self {
            username: p.username.clone(),
            display_name: p.display_name.clone(),
            role: p.role,
            scope: p.scope.clone(),
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LoggedIn {
    pub user: UserOut,
    /// Echo it as `X-CSRF-Token` on unsafe requests of this session.
    pub csrf: String,
}

fn session_cookie(app: &App, value: &str, max_age: i64) -> HeaderValue {
    let secure = if app.auth.secure_cookie {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}"
    ))
    .expect("a token is header-safe")
}

/// Signs in: sets the session cookie and answers the user and its CSRF token.
#[utoipa::path(
    post,
    path = "/api/login",
    operation_id = "login",
    tag = "auth",
    security(()),
    request_body = Login,
    responses(
        (status = 200, description = "Signed in.", body = LoggedIn,
            headers(("Set-Cookie" = String, description = "`riser_session=…; HttpOnly; SameSite=Strict; Path=/; Max-Age=…` (`Secure` with `auth.secure_cookie`)."))),
        (status = 400, description = "Malformed body.", body = super::ErrorBody),
        (status = 401, description = "Wrong user name or password, or the user is disabled.", body = super::ErrorBody),
        (status = 429, description = "Too many failed sign-ins for this name or address.", body = super::ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until sign-in is allowed again."))),
    ),
)]
pub async fn login(
    State(app): State<Arc<App>>,
    ClientAddr(addr): ClientAddr,
    body: Result<Json<Login>, JsonRejection>,
) -> Result<Response, ApiError> {
    let body = json_body(body)?;
    let user_key = format!("user:{}", body.username);
    let addr_key = addr.map(|a| format!("addr:{}", a.ip()));
    let window = Duration::from_secs(app.auth.login_window_minutes * 60);
    let mut keys = vec![(user_key.as_str(), app.auth.login_failures_per_user)];
    if let Some(a) = &addr_key {
        keys.push((a.as_str(), app.auth.login_failures_per_address));
    }
    if let Some(wait) = app.logins.blocked(&keys, window, Instant::now()) {
        tracing::warn!(username = %body.username, addr = ?addr, "sign-in refused: too many failures");
        return Err(ApiError::TooManyAttempts(wait));
    }
    let Some(user) = auth::check_password(&app.store, &body.username, &body.password).await? else {
        let failed: Vec<&str> = keys.iter().map(|(k, _)| *k).collect();
        app.logins.failed(&failed, Instant::now());
        tracing::warn!(username = %body.username, addr = ?addr, "sign-in failed");
        return Err(ApiError::Unauthorized);
    };
    app.logins.succeeded(&user_key);
    let valid = time::Duration::hours(app.auth.session_hours as i64);
    let (token, principal) =
        auth::start_session(&app.store, &user, valid, OffsetDateTime::now_utc()).await?;
    tracing::info!(username = %principal.username, role = principal.role.as_str(), addr = ?addr, "signed in");
    let mut response = Json(LoggedIn {
        user: UserOut::from(&principal),
        csrf: principal.csrf.clone().unwrap_or_default(),
    })
    .into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(&app, &token, valid.whole_seconds()),
    );
    Ok(response)
}

/// Signs out: ends the session and clears the cookie.
#[utoipa::path(
    post,
    path = "/api/logout",
    operation_id = "logout",
    tag = "auth",
    responses((status = 204, description = "Signed out.",
        headers(("Set-Cookie" = String, description = "Clears `riser_session`.")))),
)]
pub async fn logout(
    State(app): State<Arc<App>>,
    principal: Principal,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(token) = cookie(&headers, COOKIE) {
        auth::end_session(&app.store, token).await?;
    }
    tracing::info!(username = %principal.username, "signed out");
    let mut response = axum::http::StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session_cookie(&app, "", 0));
    Ok(response)
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Me {
    #[serde(flatten)]
    pub user: UserOut,
    /// Echo it as `X-CSRF-Token` on unsafe requests (sessions only).
    pub csrf: Option<String>,
    pub can: Can,
}

/// Who the caller is, its CSRF token (sessions) and what it may do.
#[utoipa::path(
    get,
    path = "/api/me",
    operation_id = "me",
    tag = "auth",
    responses((status = 200, description = "The caller.", body = Me)),
)]
pub async fn me(principal: Principal) -> Json<Me> {
    Json(Me {
        user: UserOut::from(&principal),
        csrf: principal.csrf.clone(),
        can: principal.can(),
    })
}

fn admin(principal: &Principal) -> Result<(), ApiError> {
    if principal.role == Role::Admin {
        Ok(())
    } else {
        Err(ApiError::Forbidden("admins only".into()))
    }
}

/// Every user (admins only).
#[utoipa::path(
    get,
    path = "/api/users",
    operation_id = "list_users",
    tag = "auth",
    responses(
        (status = 200, description = "The users.", body = [User]),
        (status = 403, description = "Not an admin.", body = super::ErrorBody),
    ),
)]
pub async fn list_users(
    State(app): State<Arc<App>>,
    principal: Principal,
) -> Result<Json<Vec<User>>, ApiError> {
    admin(&principal)?;
    Ok(Json(auth::users(&app.store).await?))
}

/// Adds a user (admins only).
#[utoipa::path(
    post,
    path = "/api/users",
    operation_id = "add_user",
    tag = "auth",
    request_body = NewUser,
    responses(
        (status = 201, description = "The user.", body = User),
        (status = 400, description = "Malformed body, a bad user name, a password under 10 characters, or a scope the role does not take.", body = super::ErrorBody),
        (status = 403, description = "Not an admin.", body = super::ErrorBody),
        (status = 409, description = "The user name is taken.", body = super::ErrorBody),
    ),
)]
pub async fn add_user(
    State(app): State<Arc<App>>,
    principal: Principal,
    body: Result<Json<NewUser>, JsonRejection>,
) -> Result<(axum::http::StatusCode, Json<User>), ApiError> {
    admin(&principal)?;
    let new = json_body(body)?;
    let user = auth::add_user(&app.store, &new, OffsetDateTime::now_utc()).await?;
    tracing::info!(by = %principal.username, username = %user.username, role = user.role.as_str(), "user added");
    Ok((axum::http::StatusCode::CREATED, Json(user)))
}

async fn set_disabled(
    app: &App,
    principal: &Principal,
    username: &str,
    disabled: bool,
) -> Result<axum::http::StatusCode, ApiError> {
    admin(principal)?;
    if disabled && username == principal.username {
        return Err(ApiError::Conflict("an admin cannot disable itself".into()));
    }
    auth::set_disabled(&app.store, username, disabled, OffsetDateTime::now_utc()).await?;
    tracing::info!(by = %principal.username, username, disabled, "user access changed");
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// Disables a user: its sessions and tokens stop working (admins only).
#[utoipa::path(
    post,
    path = "/api/users/{username}/disable",
    operation_id = "disable_user",
    tag = "auth",
    params(("username" = String, Path, description = "User name.")),
    responses(
        (status = 204, description = "Disabled."),
        (status = 403, description = "Not an admin.", body = super::ErrorBody),
        (status = 404, description = "Unknown user.", body = super::ErrorBody),
        (status = 409, description = "An admin cannot disable itself.", body = super::ErrorBody),
    ),
)]
pub async fn disable(
    State(app): State<Arc<App>>,
    principal: Principal,
    Path(username): Path<String>,
) -> Result<axum::http::StatusCode, ApiError> {
    set_disabled(&app, &principal, &username, true).await
}

/// Enables a disabled user again (admins only).
#[utoipa::path(
    post,
    path = "/api/users/{username}/enable",
    operation_id = "enable_user",
    tag = "auth",
    params(("username" = String, Path, description = "User name.")),
    responses(
        (status = 204, description = "Enabled."),
        (status = 403, description = "Not an admin.", body = super::ErrorBody),
        (status = 404, description = "Unknown user.", body = super::ErrorBody),
    ),
)]
pub async fn enable(
    State(app): State<Arc<App>>,
    principal: Principal,
    Path(username): Path<String>,
) -> Result<axum::http::StatusCode, ApiError> {
    set_disabled(&app, &principal, &username, false).await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    pub name: String,
    /// Days it works; absent: until revoked.
    #[serde(default)]
    pub valid_days: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenOut {
    pub id: i64,
    /// Shown this once.
    pub token: String,
}

/// Makes an API token for the caller (signed-in users only), shown once.
#[utoipa::path(
    post,
    path = "/api/tokens",
    operation_id = "new_token",
    tag = "auth",
    request_body = NewToken,
    responses(
        (status = 201, description = "The token: send it as `Authorization: Bearer rsr_…`.", body = TokenOut),
        (status = 400, description = "Malformed body, a name not 1 to 100 characters, or `valid_days` 0.", body = super::ErrorBody),
        (status = 403, description = "An anonymous caller (`auth.anonymous`) cannot make tokens.", body = super::ErrorBody),
    ),
)]
pub async fn new_token(
    State(app): State<Arc<App>>,
    principal: Principal,
    body: Result<Json<NewToken>, JsonRejection>,
) -> Result<(axum::http::StatusCode, Json<TokenOut>), ApiError> {
    let body = json_body(body)?;
    if principal.user_id == 0 {
        return Err(ApiError::Forbidden("sign in to make a token".into()));
    }
    if body.valid_days == Some(0) {
        return Err(ApiError::BadRequest(
            "`valid_days` must be at least 1".into(),
        ));
    }
    let valid = body.valid_days.map(|d| time::Duration::days(i64::from(d)));
    let (id, token) = auth::new_token(
        &app.store,
        principal.user_id,
        &body.name,
        valid,
        OffsetDateTime::now_utc(),
    )
    .await?;
    tracing::info!(username = %principal.username, token_id = id, "API token made");
    Ok((
        axum::http::StatusCode::CREATED,
        Json(TokenOut { id, token }),
    ))
}

/// Revokes one of the caller's tokens (an admin: anyone's).
#[utoipa::path(
    delete,
    path = "/api/tokens/{id}",
    operation_id = "revoke_token",
    tag = "auth",
    params(("id" = i64, Path, description = "Token id (from `POST /api/tokens`).")),
    responses(
        (status = 204, description = "Revoked."),
        (status = 404, description = "No such token of the caller's.", body = super::ErrorBody),
    ),
)]
pub async fn revoke_token(
    State(app): State<Arc<App>>,
    principal: Principal,
    Path(id): Path<i64>,
) -> Result<axum::http::StatusCode, ApiError> {
    if auth::revoke_token(&app.store, id, &principal, OffsetDateTime::now_utc()).await? {
        Ok(axum::http::StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("token"))
    }
}
