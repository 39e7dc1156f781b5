//! `/_ping`, `/version`, `/info`: what a client asks first (the docker CLI negotiates its
//! API version from `/_ping`'s headers).

use crate::{blocking, ApiError, State};
use axum::extract::State as S;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;

pub fn routes() -> Router<State> {
    Router::new()
        .route("/_ping", get(ping).head(ping))
        .route("/version", get(version))
        .route("/info", get(info))
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
