//! Group commit: one task owns the writes. Requests that arrive while a
//! commit is on disk wait in the channel and go together in the next one,
//! so one fsync serves every poll cycle and event that came in meanwhile.
//! After each commit the writer keeps the database within its byte limit.

use std::sync::Arc;

use riser_contract::{Event, Events, Reading, Stream, Telemetry, VERSION};
use sqlx::{SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use super::{OutboxError, PRIORITY_EVENTS, Shared, first_ms, next_seq};

pub(super) enum Request {
    Readings {
        readings: Vec<Reading>,
        held: Option<String>,
        reply: oneshot::Sender<Result<u64, OutboxError>>,
    },
    Events {
        events: Vec<Event>,
        reply: oneshot::Sender<Result<u64, OutboxError>>,
    },
}

/// Most requests in one commit.
const MAX_GROUP: usize = 1024;

/// Check the size after this many bytes written since the last check.
const SIZE_CHECK_EVERY: usize = 256 * 1024;

pub(super) async fn run(pool: SqlitePool, shared: Arc<Shared>, mut rx: mpsc::Receiver<Request>) {
    let mut written_since_check = usize::MAX;
    let mut full_logged = false;
    while let Some(first) = rx.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(request) => group.push(request),
                Err(_) => break,
            }
        }
        let mut conn = match pool.acquire().await {
            Ok(conn) => conn,
            Err(error) => {
                fail(group, &error.to_string());
                continue;
            }
        };
        match commit(&mut conn, &shared, &group).await {
            Ok((seqs, bytes)) => {
                for (request, seq) in group.into_iter().zip(seqs) {
                    let reply = match request {
                        Request::Readings { reply, .. } | Request::Events { reply, .. } => reply,
                    };
                    let _ = reply.send(Ok(seq));
                }
                shared.appended.notify_one();
                written_since_check = written_since_check.saturating_add(bytes);
            }
            Err(error) => {
                tracing::error!(error = %error, "outbox commit failed");
                fail(group, &error.to_string());
                // A full disk is one reason: make room before the next try.
                written_since_check = usize::MAX;
            }
        }
        if written_since_check >= SIZE_CHECK_EVERY.min(shared.options.max_bytes as usize / 16) {
            written_since_check = 0;
            match super::thin::keep_within_limit(&mut conn, &shared).await {
                Ok(super::thin::Kept::EventsOnly(bytes)) if !full_logged => {
                    full_logged = true;
                    tracing::error!(
                        bytes,
                        limit = shared.options.max_bytes,
                        "outbox over its limit with nothing left to thin but events; events are kept"
                    );
                }
                Ok(super::thin::Kept::Within) => full_logged = false,
                Ok(_) => {}
                Err(error) => tracing::error!(error = %error, "cannot thin the outbox"),
            }
        }
    }
}

fn fail(group: Vec<Request>, error: &str) {
    for request in group {
        let reply = match request {
            Request::Readings { reply, .. } | Request::Events { reply, .. } => reply,
        };
        let _ = reply.send(Err(OutboxError::Write(error.to_owned())));
    }
}

/// Writes the group in one transaction; per request its sequence number
/// (0 for readings) and the bytes written.
async fn commit(
    conn: &mut SqliteConnection,
    shared: &Shared,
    group: &[Request],
) -> Result<(Vec<u64>, usize), OutboxError> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let mut seqs = Vec::with_capacity(group.len());
    let mut bytes = 0;
    // All readings on the wall clock go into one row; held ones by boot.
    let mut live: Vec<&Reading> = Vec::new();
    let mut held: Vec<(&str, Vec<&Reading>)> = Vec::new();
    for request in group {
        match request {
            Request::Readings {
                readings,
                held: None,
                ..
            } => {
                live.extend(readings);
                seqs.push(0);
            }
            Request::Readings {
                readings,
                held: Some(boot),
                ..
            } => {
                match held.iter_mut().find(|(b, _)| b == boot) {
                    Some((_, rows)) => rows.extend(readings),
                    None => held.push((boot, readings.iter().collect())),
                }
                seqs.push(0);
            }
            Request::Events { events, .. } => {
                let seq = next_seq(&mut tx, Stream::Events).await?;
                let payload = riser_contract::encode(&Events {
                    v: VERSION,
                    gateway: shared.options.gateway.clone(),
                    epoch: shared.epoch,
                    seq,
                    replay: false,
                    events: events.clone(),
                });
                bytes += payload.len();
                let first_ms = first_ms(events.iter().map(|e| e.ts));
                sqlx::query(
                    "INSERT INTO outbox (priority, stream, seq, payload, readings, first_ms)
                     VALUES (?1, 'events', ?2, ?3, 0, ?4)",
                )
                .bind(PRIORITY_EVENTS)
                .bind(seq as i64)
                .bind(payload)
                .bind(first_ms)
                .execute(&mut *tx)
                .await?;
                seqs.push(seq);
            }
        }
    }
    if !live.is_empty() {
        bytes += insert_staged(&mut tx, shared, &live, None).await?;
    }
    for (boot, readings) in &held {
        bytes += insert_staged(&mut tx, shared, readings, Some(boot)).await?;
    }
    tx.commit().await?;
    Ok((seqs, bytes))
}

async fn insert_staged(
    conn: &mut SqliteConnection,
    shared: &Shared,
    readings: &[&Reading],
    boot: Option<&str>,
) -> Result<usize, OutboxError> {
    let body = staged_body(shared, readings.iter().map(|r| (*r).clone()).collect());
    let first_ms = first_ms(readings.iter().map(|r| r.ts)).unwrap_or(0);
    let bytes = body.len();
    sqlx::query(
        "INSERT INTO staged (first_ms, readings, held, boot_id, body) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .bind(first_ms)
    .bind(readings.len() as i64)
    .bind(boot.is_some())
    .bind(boot)
    .bind(body)
    .execute(&mut *conn)
    .await?;
    Ok(bytes)
}

/// A staged row's body: the compact telemetry form, not yet numbered.
pub(super) fn staged_body(shared: &Shared, readings: Vec<Reading>) -> Vec<u8> {
    riser_contract::encode(&Telemetry {
        v: VERSION,
        gateway: String::new(),
        epoch: shared.epoch,
        seq: 0,
        replay: false,
        readings,
    })
}
