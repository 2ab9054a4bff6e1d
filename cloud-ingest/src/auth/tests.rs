use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use time::OffsetDateTime;
use tower::ServiceExt as _;

use super::*;
use crate::App;

/// Three buildings: B1 and B2 in 梁山街道 maintained by 安泰维保, B3 in
/// 双桂街道 by 城东维保; auth required (no anonymous access).
async fn app() -> (tempfile::TempDir, Arc<App>) {
    const CSV: &str = "id,name,district,town,community,use,commercial_floor_over_1000m2,height_m,storeys,tank_area_m2,tank_height_m,tank_dead_level_m,contractor
B1,一号楼,梁平区,梁山街道,西平社区,residential,no,60,20,10,2.5,0.2,安泰维保
B2,二号楼,梁平区,梁山街道,东林社区,residential,no,60,20,10,2.5,0.2,安泰维保
B3,三号楼,梁平区,双桂街道,双桂社区,residential,no,60,20,10,2.5,0.2,城东维保
";
    let dir = tempfile::tempdir().unwrap();
    let store = crate::store::test_store(dir.path()).await;
    let registry =
        crate::registry::Registry::new(crate::registry::parse_csv(CSV).unwrap()).unwrap();
    let app = Arc::new(App {
        rules: crate::rules::Settings {
            tuning: crate::rules::Tuning::immediate(),
            ..crate::rules::Settings::default()
        },
        ..App::new(registry, store)
    });
    let now = OffsetDateTime::now_utc();
    for (username, role, scope) in [
        ("admin", Role::Admin, None),
        ("liangshan", Role::FireRescue, Some("梁平区/梁山街道")),
        ("antai", Role::Contractor, Some("安泰维保")),
        ("installer", Role::Installer, None),
    ] {
        add_user(
            &app.store,
            &NewUser {
                username: username.into(),
                display_name: Some(format!("{username} 用户")),
                password: format!("{username}-password"),
                role,
                scope: scope.map(str::to_owned),
            },
            now,
        )
        .await
        .unwrap();
    }
    (dir, app)
}

async fn send(app: &Arc<App>, request: Request<Body>) -> (StatusCode, header::HeaderMap, Value) {
    let response = crate::api::router(app.clone())
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn post(uri: &str) -> axum::http::request::Builder {
    Request::post(uri).header("content-type", "application/json")
}

/// Signs in: (the session cookie, the CSRF token).
async fn login(app: &Arc<App>, username: &str) -> (String, String) {
    let body = json!({ "username": username, "password": format!("{username}-password") });
    let (status, headers, json) = send(
        app,
        post("/api/login")
            .body(Body::from(body.to_string()))
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let cookie = headers[header::SET_COOKIE].to_str().unwrap().to_owned();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(cookie.contains(part), "{cookie}");
    }
    let pair = cookie.split(';').next().unwrap().to_owned();
    (pair, json["csrf"].as_str().unwrap().to_owned())
}

async fn get_as(app: &Arc<App>, cookie: &str, uri: &str) -> (StatusCode, Value) {
    let (status, _, json) = send(
        app,
        Request::get(uri)
            .header(header::COOKIE, cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    (status, json)
}

fn ids(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn each_role_sees_only_the_buildings_of_its_scope() {
    let (_dir, app) = app().await;
    for (user, want) in [
        ("admin", vec!["B1", "B2", "B3"]),
        ("liangshan", vec!["B1", "B2"]),
        ("antai", vec!["B1", "B2"]),
        ("installer", vec!["B1", "B2", "B3"]),
    ] {
        let (cookie, _) = login(&app, user).await;
        let (status, list) = get_as(&app, &cookie, "/api/buildings").await;
        assert_eq!(status, StatusCode::OK);
        let mut got = ids(&list);
        got.sort_unstable();
        assert_eq!(got, want, "{user}");
    }
    let (cookie, _) = login(&app, "antai").await;
    assert_eq!(
        get_as(&app, &cookie, "/api/buildings/B3").await.0,
        StatusCode::NOT_FOUND,
        "another contractor's building is as unknown as a missing one"
    );
    assert_eq!(
        get_as(&app, &cookie, "/api/buildings/B1").await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn without_a_login_the_api_answers_401_and_public_pages_still_serve() {
    let (_dir, app) = app().await;
    for uri in ["/api/buildings", "/api/hazards", "/api/gateways", "/api/me"] {
        let (status, _, json) = send(&app, Request::get(uri).body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri}");
        assert_eq!(json["error"], "sign in first");
    }
    let (status, _, _) = send(&app, Request::get("/healthz").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let forged = "riser_session=not-a-session";
    assert_eq!(
        get_as(&app, forged, "/api/buildings").await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_session_must_echo_its_csrf_token_on_every_change() {
    let (_dir, app) = app().await;
    let (cookie, csrf) = login(&app, "antai").await;
    let (_, me) = get_as(&app, &cookie, "/api/me").await;
    assert_eq!(me["csrf"], csrf.as_str());
    assert_eq!(me["role"], "contractor");
    assert_eq!(me["can"]["close"], true);
    let until = OffsetDateTime::now_utc() + time::Duration::days(1);
    let until = until
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let body = json!({ "until": until, "by": "冒名者" }).to_string();
    let attempt = |token: Option<&str>| {
        let mut request = post("/api/buildings/B1/maintenance").header(header::COOKIE, &cookie);
        if let Some(token) = token {
            request = request.header("x-csrf-token", token);
        }
        request.body(Body::from(body.clone())).unwrap()
    };
    assert_eq!(send(&app, attempt(None)).await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        send(&app, attempt(Some("forged"))).await.0,
        StatusCode::FORBIDDEN
    );
    let (status, _, window) = send(&app, attempt(Some(&csrf))).await;
    assert_eq!(status, StatusCode::CREATED, "{window}");
    assert_eq!(
        window["by"], "antai 用户（antai）",
        "the user acts, whatever the body says"
    );
}

#[tokio::test]
async fn fire_rescue_staff_remark_but_may_not_set_maintenance_or_manage_users() {
    let (_dir, app) = app().await;
    let (cookie, csrf) = login(&app, "liangshan").await;
    let body = json!({ "until": "2099-01-01T00:00:00Z" }).to_string();
    let request = post("/api/buildings/B1/maintenance")
        .header(header::COOKIE, &cookie)
        .header("x-csrf-token", &csrf)
        .body(Body::from(body))
        .unwrap();
    let (status, _, json) = send(&app, request).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{json}");
    assert_eq!(
        get_as(&app, &cookie, "/api/users").await.0,
        StatusCode::FORBIDDEN
    );
    let (_, admin_users) = {
        let (cookie, _) = login(&app, "admin").await;
        get_as(&app, &cookie, "/api/users").await
    };
    assert_eq!(admin_users.as_array().unwrap().len(), 4);
    assert!(
        !admin_users.to_string().contains("argon2"),
        "no hash is served: {admin_users}"
    );
}

#[tokio::test]
async fn repeated_wrong_passwords_lock_the_name_out_for_the_window() {
    let (_dir, app) = app().await;
    let wrong = json!({ "username": "antai", "password": "not-the-password" }).to_string();
    for _ in 0..5 {
        let (status, _, _) = send(
            &app,
            post("/api/login").body(Body::from(wrong.clone())).unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let right = json!({ "username": "antai", "password": "antai-password" }).to_string();
    let (status, headers, json) =
        send(&app, post("/api/login").body(Body::from(right)).unwrap()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{json}");
    let wait: u64 = headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&wait), "{wait}");
    // Another name is not held up by it.
    login(&app, "admin").await;
}

#[tokio::test]
async fn an_api_token_works_until_revoked_and_a_disabled_user_is_shut_out() {
    let (_dir, app) = app().await;
    let (cookie, csrf) = login(&app, "antai").await;
    let (status, _, made) = send(
        &app,
        post("/api/tokens")
            .header(header::COOKIE, &cookie)
            .header("x-csrf-token", &csrf)
            .body(Body::from(json!({ "name": "工单系统" }).to_string()))
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let token = made["token"].as_str().unwrap();
    assert!(token.starts_with(TOKEN_PREFIX));
    let with_token = || {
        Request::get("/api/buildings")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap()
    };
    let (status, _, list) = send(&app, with_token()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&list).len(), 2, "the token carries the user's scope");

    let (admin, admin_csrf) = login(&app, "admin").await;
    let (status, _, _) = send(
        &app,
        post("/api/users/antai/disable")
            .header(header::COOKIE, &admin)
            .header("x-csrf-token", &admin_csrf)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(send(&app, with_token()).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        get_as(&app, &cookie, "/api/buildings").await.0,
        StatusCode::UNAUTHORIZED,
        "the session ended too"
    );
}

#[test]
fn a_scope_fits_its_role() {
    assert!(check_scope(Role::Admin, None).is_ok());
    assert!(check_scope(Role::Admin, Some("梁平区")).is_err());
    assert!(check_scope(Role::FireRescue, None).is_err());
    assert!(check_scope(Role::FireRescue, Some("梁平区/梁山街道/西平社区")).is_ok());
    assert!(check_scope(Role::FireRescue, Some("a/b/c/d")).is_err());
    assert!(check_scope(Role::Contractor, Some("安泰维保")).is_ok());
    assert!(check_scope(Role::Installer, None).is_ok());
}

#[tokio::test]
async fn a_password_is_stored_as_an_argon2id_hash_and_short_ones_are_refused() {
    let (_dir, app) = app().await;
    let stored: String =
        sqlx::query_scalar("SELECT password_hash FROM users WHERE username = 'admin'")
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    assert!(!stored.contains("admin-password"));
    let short = add_user(
        &app.store,
        &NewUser {
            username: "li".into(),
            display_name: None,
            password: "short".into(),
            role: Role::Installer,
            scope: None,
        },
        OffsetDateTime::now_utc(),
    )
    .await;
    assert!(matches!(short, Err(AuthError::Invalid(_))), "{short:?}");
    assert!(
        check_password(&app.store, "admin", "admin-password")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        check_password(&app.store, "nobody", "admin-password")
            .await
            .unwrap()
            .is_none()
    );
}
