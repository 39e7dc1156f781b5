//! `/images/...`: list, inspect, pull (`POST /images/create`, docker's streamed JSON
//! progress), tag, remove, prune. Image names carry `/` and `:`, so the routes under
//! `/images/{name}` take the rest of the path and split off the action.

use crate::error::chain;
use crate::{blocking, ApiError, State};
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State as S};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use berth_engine::images::Removed;
use berth_image::distribution::Progress;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/images/json", get(list))
        .route("/images/create", post(pull))
        .route("/images/prune", post(prune))
        .route("/images/{*rest}", any(by_name))
}

#[derive(Deserialize)]
struct ListQ {
    all: Option<String>,
    filters: Option<String>,
    digests: Option<String>,
}

async fn list(S(s): S<State>, Query(q): Query<ListQ>) -> Result<Json<Value>, ApiError> {
    let _ = (&q.all, &q.digests);
    let mut filters = Vec::new();
    if let Some(f) = q.filters.as_deref().filter(|f| !f.is_empty()) {
        let v: Value = serde_json::from_str(f)
            .map_err(|e| ApiError::bad(format!("invalid filters {f:?}: {e}")))?;
        for (k, vals) in v.as_object().into_iter().flatten() {
            let vals: Vec<String> = match vals {
                Value::Array(a) => a
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect(),
                Value::Object(m) => m.keys().cloned().collect(),
                _ => return Err(ApiError::bad(format!("invalid filter {k:?}"))),
            };
            filters.extend(vals.into_iter().map(|x| format!("{k}={x}")));
        }
    }
    blocking(move || {
        let rows = berth_engine::images::list(&s.store, &filters, None)
            .map_err(|e| ApiError::engine(&s.layout, e))?;
        // One entry per image, its tags gathered (the CLI lists one row per tag).
        let mut by_id: Vec<(String, Value)> = Vec::new();
        for r in rows {
            let tag = (r.repository != "<none>").then(|| format!("{}:{}", r.repository, r.tag));
            let digest = (r.digest != "<none>").then(|| format!("{}@{}", r.repository, r.digest));
            match by_id.iter_mut().find(|(id, _)| *id == r.id) {
                Some((_, v)) => {
                    if let Some(t) = tag {
                        v["RepoTags"].as_array_mut().expect("array").push(json!(t));
                    }
                    if let Some(d) = digest {
                        let ds = v["RepoDigests"].as_array_mut().expect("array");
                        if !ds.contains(&json!(d)) {
                            ds.push(json!(d));
                        }
                    }
                }
                None => by_id.push((
                    r.id.clone(),
                    json!({
                        "Id": r.id, "ParentId": "",
                        "RepoTags": tag.into_iter().collect::<Vec<_>>(),
                        "RepoDigests": digest.into_iter().collect::<Vec<_>>(),
                        "Created": r.created.unwrap_or(0), "Size": r.size, "VirtualSize": r.size,
                        "SharedSize": -1, "Labels": {}, "Containers": -1,
                    }),
                )),
            }
        }
        Ok(Json(Value::Array(
            by_id.into_iter().map(|(_, v)| v).collect(),
        )))
    })
    .await
}

/// `/images/NAME/json`, `/images/NAME/tag`, `DELETE /images/NAME`.
async fn by_name(
    S(s): S<State>,
    method: Method,
    headers: HeaderMap,
    Path(rest): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (name, action) = match rest.rsplit_once('/') {
        Some((n, a @ ("json" | "tag" | "history" | "push" | "get"))) => (n.to_string(), a),
        _ => (rest.clone(), ""),
    };
    match (method.as_str(), action) {
        ("GET", "json") => {
            blocking(move || {
                berth_engine::images::inspect(&s.store, &name)
                    .map(|v| Json(v).into_response())
                    .map_err(|e| ApiError::engine(&s.layout, e))
            })
            .await
        }
        ("POST", "tag") => {
            let repo = q.get("repo").cloned().unwrap_or_default();
            if repo.is_empty() {
                return Err(ApiError::bad("repo is required"));
            }
            let target = match q.get("tag").filter(|t| !t.is_empty()) {
                Some(t) => format!("{repo}:{t}"),
                None => repo,
            };
            blocking(move || {
                berth_engine::images::tag(&s.store, &name, &target)
                    .map_err(|e| ApiError::engine(&s.layout, e))?;
                Ok(StatusCode::CREATED.into_response())
            })
            .await
        }
        ("DELETE", "") => {
            let force = matches!(q.get("force").map(String::as_str), Some("1" | "true"));
            blocking(move || {
                let done =
                    berth_engine::images::remove(&s.store, &name, force).map_err(|e| match e {
                        berth_engine::Error::Image(
                            x @ (berth_image::Error::InUse { .. }
                            | berth_image::Error::MultipleTags(_)),
                        ) => ApiError::conflict(chain(&x)),
                        e => ApiError::engine(&s.layout, e),
                    })?;
                berth_engine::images::gc(&s.store).map_err(|e| ApiError::engine(&s.layout, e))?;
                let v: Vec<Value> = done
                    .into_iter()
                    .map(|d| match d {
                        Removed::Untagged(t) => json!({"Untagged": t}),
                        Removed::Deleted(id) => json!({"Deleted": id}),
                    })
                    .collect();
                Ok(Json(v).into_response())
            })
            .await
        }
        // Names hold `/`, so these share this route; their handlers are transfer.rs's.
        ("GET", "history") => crate::transfer::history(s, name).await,
        ("POST", "push") => crate::transfer::push(s, name, q, headers).await,
        ("GET", "get") => crate::transfer::save_one(s, name).await,
        // No such route (a method or an action the API does not have): the fallback's 404,
        // as dockerd answers.
        (m, a) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "page not found: {m} /images/{name}{}",
                if a.is_empty() {
                    String::new()
                } else {
                    format!("/{a}")
                }
            ),
        )),
    }
}

#[derive(Deserialize)]
struct PruneQ {
    filters: Option<String>,
}

async fn prune(S(s): S<State>, Query(q): Query<PruneQ>) -> Result<Json<Value>, ApiError> {
    let mut all = false;
    if let Some(f) = q.filters.as_deref().filter(|f| !f.is_empty()) {
        let v: Value = serde_json::from_str(f)
            .map_err(|e| ApiError::bad(format!("invalid filters {f:?}: {e}")))?;
        for (k, vals) in v.as_object().into_iter().flatten() {
            let vals: Vec<&str> = match vals {
                Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                Value::Object(m) => m.keys().map(String::as_str).collect(),
                _ => vec![],
            };
            match (k.as_str(), vals.as_slice()) {
                ("dangling", ["false" | "0"]) => all = true,
                ("dangling", ["true" | "1"]) => {}
                _ => return Err(ApiError::unsupported(&format!("image prune filter {k:?}"))),
            }
        }
    }
    blocking(move || {
        let (removed, bytes) = berth_engine::images::prune(&s.store, all)
            .map_err(|e| ApiError::engine(&s.layout, e))?;
        let deleted: Vec<Value> = removed.iter().map(|r| json!({"Deleted": r})).collect();
        Ok(Json(
            json!({"ImagesDeleted": deleted, "SpaceReclaimed": bytes}),
        ))
    })
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PullQ {
    from_image: Option<String>,
    from_src: Option<String>,
    tag: Option<String>,
    platform: Option<String>,
}

/// Layer progress as docker's JSON lines (`{"status":"Downloading","progressDetail":
/// {...},"id":"..."}`).
struct JsonProgress {
    tx: tokio::sync::mpsc::UnboundedSender<Value>,
    totals: Mutex<HashMap<String, (u64, u64)>>,
}

impl Progress for JsonProgress {
    fn start(&self, id: &str, total: u64, what: &str) {
        self.totals
            .lock()
            .expect("lock")
            .insert(id.to_string(), (0, total));
        let _ = self.tx.send(json!({"status": what, "id": short(id)}));
    }
    fn advance(&self, id: &str, n: u64) {
        let mut t = self.totals.lock().expect("lock");
        let e = t.entry(id.to_string()).or_insert((0, 0));
        e.0 += n;
        let _ = self.tx.send(json!({
            "status": "Downloading", "id": short(id),
            "progressDetail": {"current": e.0, "total": e.1},
        }));
    }
    fn finish(&self, id: &str, status: &str) {
        let _ = self
            .tx
            .send(json!({"status": status, "progressDetail": {}, "id": short(id)}));
    }
}

fn short(id: &str) -> &str {
    let h = id.strip_prefix("sha256:").unwrap_or(id);
    &h[..h.len().min(12)]
}

async fn pull(
    S(s): S<State>,
    headers: HeaderMap,
    Query(q): Query<PullQ>,
) -> Result<Response, ApiError> {
    if q.from_src.as_deref().is_some_and(|s| !s.is_empty()) {
        return Err(ApiError::unsupported(
            "POST /images/create?fromSrc (import)",
        ));
    }
    let image = q
        .from_image
        .filter(|i| !i.is_empty())
        .ok_or_else(|| ApiError::bad("fromImage is required"))?;
    let image = match q.tag.filter(|t| !t.is_empty()) {
        Some(t) if t.starts_with("sha256:") => format!("{image}@{t}"),
        Some(t) => format!("{image}:{t}"),
        None => image,
    };
    // Credentials the client sends (docker login's) are this pull's.
    let creds = crate::transfer::registry_credentials(&headers)?;
    let p = berth_engine::run::Pull::new(
        &image,
        q.platform.as_deref().filter(|p| !p.is_empty()),
        false,
    )
    .map_err(|e| ApiError::bad(chain(&e)))?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let r = p.reference.clone();
    let tag = r
        .tag
        .clone()
        .or(r.digest.clone())
        .unwrap_or_else(|| "latest".into());
    let _ = tx.send(json!({"status": format!("Pulling from {}", r.repository), "id": tag}));
    let progress = Arc::new(JsonProgress {
        tx: tx.clone(),
        totals: Mutex::new(HashMap::new()),
    });
    tokio::spawn(async move {
        let mut opts = s.client_opts.clone();
        if creds.is_some() {
            opts.credentials = creds;
        }
        match p.run(&s.store, &opts, progress).await {
            Ok(rec) => {
                let d = rec.index.as_deref().unwrap_or(&rec.manifest);
                let _ = tx.send(json!({"status": format!("Digest: {d}")}));
                let _ =
                    tx.send(json!({"status": format!("Status: Downloaded newer image for {r}")}));
            }
            // docker reports a failed pull inside the stream, after the 200.
            Err(e) => {
                let m = chain(&e);
                let _ = tx.send(json!({"errorDetail": {"message": m}, "error": m}));
            }
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx).map(|o| {
            o.map(|v| {
                let mut b = serde_json::to_vec(&v).expect("json");
                b.extend_from_slice(b"\r\n");
                Ok::<_, std::io::Error>(Bytes::from(b))
            })
        })
    });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response())
}
