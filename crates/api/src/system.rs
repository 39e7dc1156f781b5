//! `/_ping`, `/version`, `/info`: what a client asks first (the docker CLI negotiates its
//! API version from `/_ping`'s headers); `/commit`; `/build` (crate::build).

use crate::error::chain;
use crate::{blocking, ApiError, State};
use axum::extract::{RawQuery, State as S};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/_ping", get(ping).head(ping))
        .route("/version", get(version))
        .route("/info", get(info))
        .route("/commit", post(commit))
        .route("/build", post(crate::build::build))
}

/// `docker commit`: the container's changes as a new image, the engine's commit.
async fn commit(
    S(s): S<State>,
    RawQuery(q): RawQuery,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let mut o = berth_engine::commit::CommitOptions {
        pause: true,
        ..Default::default()
    };
    let (mut container, mut repo, mut tag) = (String::new(), String::new(), String::new());
    for (k, v) in form_urlencoded::parse(q.unwrap_or_default().as_bytes()) {
        let v = v.into_owned();
        match k.as_ref() {
            "container" => container = v,
            "repo" => repo = v,
            "tag" => tag = v,
            "comment" => o.message = Some(v).filter(|m| !m.is_empty()),
            "author" => o.author = Some(v).filter(|a| !a.is_empty()),
            "pause" => o.pause = !matches!(v.as_str(), "0" | "false" | "False"),
            // One instruction per value; the docker CLI repeats the key.
            "changes" => o.changes.extend(
                v.lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(str::to_string),
            ),
            k => return Err(ApiError::bad(format!("unknown commit parameter {k:?}"))),
        }
    }
    // The body is a container config to merge; only an empty one is taken.
    let cfg: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::bad(format!("commit body: {e}")))?
    };
    if cfg
        .as_object()
        .is_some_and(|m| m.values().any(|v| !v.is_null()))
    {
        return Err(ApiError::unsupported(
            "a container config in the commit body (give Dockerfile lines in `changes`)",
        ));
    }
    if container.is_empty() {
        return Err(ApiError::bad("container is required"));
    }
    o.reference = match (repo.is_empty(), tag.is_empty()) {
        (true, true) => None,
        (true, false) => return Err(ApiError::bad("a tag needs a repo")),
        (false, true) => Some(repo),
        (false, false) => Some(format!("{repo}:{tag}")),
    };
    blocking(move || {
        let id = crate::params::resolve(&s, &container)?;
        let image =
            berth_engine::commit::commit(&s.layout, &s.store, &id, &o).map_err(|e| match e {
                e @ berth_engine::Error::Invalid(_) => ApiError::bad(chain(&e)),
                e => ApiError::engine(&s.layout, e),
            })?;
        Ok((StatusCode::CREATED, Json(json!({"Id": image}))))
    })
    .await
}

async fn ping() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache, no-store, must-revalidate"),
            (header::PRAGMA, "no-cache"),
            (
                header::HeaderName::from_static("docker-experimental"),
                "false",
            ),
            (header::HeaderName::from_static("ostype"), "linux"),
        ],
        "OK",
    )
}

async fn version() -> Json<Value> {
    Json(berth_engine::info::version())
}

async fn info(S(s): S<State>) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        berth_engine::info::info(&s.layout, &s.store)
            .map(Json)
            .map_err(|e| ApiError::engine(&s.layout, e))
    })
    .await
}
