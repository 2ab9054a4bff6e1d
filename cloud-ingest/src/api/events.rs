//! `GET /api/events`: server-sent events for the dashboard's live view.
//! Each committed verdict change of a building the caller sees is an
//! event `building` with `{"id", "status", "updated_at"}`. A listener too
//! slow to keep up gets `resync` (reload the list) instead of the changes
//! it missed. A comment every 15 s keeps proxies from closing the stream.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use tokio::sync::broadcast::error::RecvError;

use crate::App;
use crate::auth::Principal;

/// Live verdict changes of the buildings the caller sees.
///
/// Server-sent events: `event: building` with `data:` a `BuildingEvent`
/// (`{"id", "status", "updated_at"}`) for each committed verdict change;
/// `event: resync` (`data: {}`) when the listener fell behind: reload the
/// list. A comment line every 15 s keeps proxies from closing the stream.
#[utoipa::path(
    get,
    path = "/api/events",
    operation_id = "events",
    tag = "events",
    responses((
        status = 200,
        description = "An endless stream of `building` and `resync` events; each `building` event's data is a `BuildingEvent`.",
        content_type = "text/event-stream",
        body = String,
    )),
)]
pub async fn stream(
    State(app): State<Arc<App>>,
    principal: Principal,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let receiver = app.events.subscribe();
    let events = futures::stream::unfold(
        (receiver, app, principal),
        |(mut receiver, app, principal)| async move {
            loop {
                let event = match receiver.recv().await {
                    Ok(change) => {
                        let seen = app
                            .registry
                            .get(&change.id)
                            .is_some_and(|b| principal.sees(b));
                        if !seen {
                            continue;
                        }
                        Event::default()
                            .event("building")
                            .json_data(&change)
                            .unwrap_or_else(|_| Event::default().event("resync").data("{}"))
                    }
                    Err(RecvError::Lagged(_)) => Event::default().event("resync").data("{}"),
                    Err(RecvError::Closed) => return None,
                };
                return Some((Ok(event), (receiver, app, principal)));
            }
        },
    );
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use futures::StreamExt as _;
    use time::OffsetDateTime;
    use tower::ServiceExt as _;

    #[tokio::test]
    async fn a_verdict_change_reaches_a_listener_as_it_commits() {
        let (_dir, app) = crate::test_app().await;
        let response = crate::api::router(app.clone())
            .oneshot(Request::get("/api/events").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let mut body = response.into_body().into_data_stream();

        let now = OffsetDateTime::now_utc();
        let m = crate::telemetry(
            "gw-B2",
            1,
            now,
            &[("tank.level", 0.5), ("riser.pressure", 0.3)],
        );
        app.store.ingest(&m, now).await.unwrap();
        crate::judge(&app, Some(&["gw-B2"]), now).await.unwrap();

        let frame = body.next().await.unwrap().unwrap();
        let text = String::from_utf8(frame.to_vec()).unwrap();
        assert!(text.starts_with("event: building\n"), "{text}");
        let data: serde_json::Value =
            serde_json::from_str(text.lines().nth(1).unwrap().strip_prefix("data: ").unwrap())
                .unwrap();
        assert_eq!(data["id"], "B2");
        assert_eq!(data["status"], "failing");
    }
}
