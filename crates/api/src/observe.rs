//! Watching and tuning: `/events`, `/system/df`, and a container's `top`, `stats`,
//! `changes`, `update`, plus `POST /containers/prune`, each over the engine call the CLI
//! makes (`berth events`, `system df`, `top`, `stats`, `diff`, `update`,
//! `container prune`).

use crate::error::chain;
use crate::params::{filters, flag_or, is_default, resolve};
use crate::{blocking, ApiError, State};
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State as S};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use berth_engine::events::{message, Filters, WatchOptions};
use berth_engine::{stats, status};
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::{Duration, SystemTime};

pub(crate) fn routes() -> Router<State> {
    Router::new()
        .route("/events", get(events))
        .route("/system/df", get(df))
        .route("/containers/prune", post(prune))
        .route("/containers/{id}/top", get(top))
        .route("/containers/{id}/stats", get(container_stats))
        .route("/containers/{id}/changes", get(changes))
        .route("/containers/{id}/update", post(update))
}

/// A body that ends when `rx` does: the blocking producer stops once it sees the
/// receiver gone (the client closed the connection).
fn streamed(rx: tokio::sync::mpsc::Receiver<Bytes>) -> Response {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response()
}

fn json_line(v: &Value) -> Bytes {
    let mut b = serde_json::to_vec(v).expect("json");
    b.push(b'\n');
    Bytes::from(b)
}

#[derive(Deserialize)]
struct EventsQ {
    since: Option<String>,
    until: Option<String>,
    filters: Option<String>,
}

/// dockerd's GET /events: past events from `since`, then new ones as they happen, until
/// `until` (at once when it has passed) or the client goes; one JSON object a line.
async fn events(S(s): S<State>, Query(q): Query<EventsQ>) -> Result<Response, ApiError> {
    let now = SystemTime::now();
    let time = |v: &Option<String>| -> Result<Option<SystemTime>, ApiError> {
        match v.as_deref().filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => berth_engine::logs::parse_time(v, now)
                .map(Some)
                .map_err(|e| ApiError::bad(chain(&e))),
        }
    };
    let o = WatchOptions {
        since: time(&q.since)?,
        until: time(&q.until)?,
        filters: Filters::parse(&filters(&q.filters)?).map_err(|e| ApiError::bad(chain(&e)))?,
    };
    if let (Some(a), Some(b)) = (o.since, o.until) {
        if b < a {
            return Err(ApiError::bad(format!(
                "`since` time ({}) cannot be after `until` time ({})",
                q.since.unwrap_or_default(),
                q.until.unwrap_or_default()
            )));
        }
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    tokio::task::spawn_blocking(move || {
        let _ = berth_engine::events::watch(&s.layout, &o, &mut |evs| {
            for e in evs {
                if tx.blocking_send(json_line(&message(e))).is_err() {
                    return Ok(false);
                }
            }
            Ok(!tx.is_closed())
        });
    });
    Ok(streamed(rx))
}

/// GET /system/df: docker's DiskUsage (LayersSize, Images, Containers, Volumes,
/// BuildCache) from the engine's `system df`.
async fn df(S(s): S<State>) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let eng = |e| ApiError::engine(&s.layout, e);
        let d = berth_engine::info::disk_usage(&s.layout, &s.store).map_err(eng)?;
        let listed = berth_engine::list::containers(
            &s.layout,
            &s.store,
            &berth_engine::list::ListOptions {
                all: true,
                ..Default::default()
            },
        )
        .map_err(eng)?;
        let images: Vec<Value> = d
            .image_items
            .iter()
            .map(|i| {
                // Each image's layers count whole (the engine shares none in its sums).
                json!({
                    "Id": i.id, "ParentId": "", "RepoTags": i.repo_tags,
                    "RepoDigests": i.repo_digests, "Created": i.created, "Size": i.size,
                    "SharedSize": 0, "VirtualSize": i.size, "Labels": {},
                    "Containers": i.containers,
                })
            })
            .collect();
        let containers: Vec<Value> = listed
            .iter()
            .filter_map(|l| {
                let c = &l.config;
                let rw = *d.container_sizes.get(&c.id)?;
                let image = d
                    .image_items
                    .iter()
                    .find(|i| i.id == c.image_id)
                    .map_or(0, |i| i.size);
                let mut command = c.path.clone();
                for a in &c.args {
                    command.push(' ');
                    command.push_str(a);
                }
                let created = berth_engine::record::parse_rfc3339(&c.created)
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_secs());
                Some(json!({
                    "Id": c.id, "Names": [format!("/{}", c.name)], "Image": c.options.image,
                    "ImageID": c.image_id, "Command": command, "Created": created,
                    "Ports": [], "SizeRw": rw, "SizeRootFs": rw + image,
                    "Labels": c.options.labels, "State": l.state_word(),
                    "Status": l.status_text(),
                    "Mounts": c.volumes.iter().map(|v| json!({
                        "Type": "volume", "Name": v.name, "Destination": v.target,
                        "Driver": "local", "RW": true,
                    })).collect::<Vec<_>>(),
                }))
            })
            .collect();
        let volumes: Vec<Value> = d
            .volume_items
            .iter()
            .map(|v| {
                let mut j = serde_json::to_value(&v.volume).expect("volumes serialise");
                j["UsageData"] = json!({"Size": v.size, "RefCount": v.ref_count});
                j
            })
            .collect();
        Ok(Json(json!({
            "LayersSize": d.images.size,
            "Images": images,
            "Containers": containers,
            "Volumes": volumes,
            "BuildCache": [],
        })))
    })
    .await
}

#[derive(Deserialize)]
struct TopQ {
    ps_args: Option<String>,
}

async fn top(
    S(s): S<State>,
    Path(r): Path<String>,
    Query(q): Query<TopQ>,
) -> Result<Json<Value>, ApiError> {
    let args: Vec<String> = q
        .ps_args
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    blocking(move || {
        let id = resolve(&s, &r)?;
        let st = status::current(&s.layout, &id).map_err(|e| ApiError::engine(&s.layout, e))?;
        if !status::is_running(&st) {
            return Err(ApiError::conflict(format!("Container {id} is not running")));
        }
        let t = berth_engine::top::top(&s.layout, &id, &args).map_err(|e| match e {
            // ps refused its arguments, or printed no PID column: dockerd's 500.
            berth_engine::Error::Invalid(m) => ApiError::internal(m),
            e => ApiError::engine(&s.layout, e),
        })?;
        Ok(Json(json!({"Titles": t.titles, "Processes": t.processes})))
    })
    .await
}

#[derive(Deserialize)]
struct StatsQ {
    stream: Option<String>,
    #[serde(rename = "one-shot")]
    one_shot: Option<String>,
}

/// dockerd's stats: one object a second while `stream` (the default); without it, one
/// object whose precpu_stats is a reading a second before (so the client's CPU % is
/// real), or with `one-shot` at once (precpu_stats zero). A container that is not running
/// is docker's zeros.
async fn container_stats(
    S(s): S<State>,
    Path(r): Path<String>,
    Query(q): Query<StatsQ>,
) -> Result<Response, ApiError> {
    let stream = flag_or(&q.stream, true);
    let one_shot = flag_or(&q.one_shot, false);
    if stream && one_shot {
        return Err(ApiError::bad("cannot have stream=true and one-shot=true"));
    }
    let s2 = s.clone();
    let t = blocking(move || {
        let id = resolve(&s2, &r)?;
        stats::target(&s2.layout, &id)
            .map_err(|e| ApiError::engine(&s2.layout, e))?
            .ok_or_else(|| ApiError::not_found(format!("No such container: {r}")))
    })
    .await?;
    if !stream {
        let v = blocking(move || {
            let mut prev = None;
            if !one_shot && t.running {
                prev = stats::read(&t);
                std::thread::sleep(Duration::from_secs(1));
            }
            let cur = stats::read(&t);
            let prev = prev.filter(|_| cur.is_some());
            Ok(stats::docker_json(&t, prev.as_ref(), cur.as_ref()))
        })
        .await?;
        return Ok(Json(v).into_response());
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    tokio::task::spawn_blocking(move || {
        let mut t = t;
        let mut prev: Option<stats::Reading> = None;
        loop {
            let cur = stats::read(&t);
            let v = stats::docker_json(&t, prev.as_ref(), cur.as_ref());
            if tx.blocking_send(json_line(&v)).is_err() {
                return;
            }
            prev = cur;
            std::thread::sleep(Duration::from_secs(1));
            // Started, stopped or restarted meanwhile: read it anew; removed: the end.
            match stats::target(&s.layout, &t.id) {
                Ok(Some(n)) => {
                    if n.pid != t.pid {
                        prev = None;
                    }
                    t = n;
                }
                _ => return,
            }
        }
    });
    Ok(streamed(rx))
}

async fn changes(S(s): S<State>, Path(r): Path<String>) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let id = resolve(&s, &r)?;
        let ch = berth_engine::commit::diff(&s.layout, &s.store, &id)
            .map_err(|e| ApiError::engine(&s.layout, e))?;
        // docker's kinds: 0 modified, 1 added, 2 deleted.
        let v: Vec<Value> = ch
            .iter()
            .map(|c| {
                let kind = match c.kind {
                    'A' => 1,
                    'D' => 2,
                    _ => 0,
                };
                json!({"Path": c.path, "Kind": kind})
            })
            .collect();
        Ok(Json(Value::Array(v)))
    })
    .await
}

#[derive(Deserialize)]
struct PruneQ {
    filters: Option<String>,
}

async fn prune(S(s): S<State>, Query(q): Query<PruneQ>) -> Result<Json<Value>, ApiError> {
    let f = filters(&q.filters)?;
    blocking(move || {
        let p = berth_engine::control::prune(&s.layout, &s.store, &f).map_err(|e| match e {
            berth_engine::Error::Invalid(m) => ApiError::bad(m),
            e => ApiError::engine(&s.layout, e),
        })?;
        // dockerd logs the containers it could not remove and answers with the rest.
        for (id, e) in &p.failed {
            eprintln!("berth serve: container prune: remove {id}: {}", chain(e));
        }
        let deleted = (!p.deleted.is_empty()).then_some(p.deleted);
        Ok(Json(
            json!({"ContainersDeleted": deleted, "SpaceReclaimed": p.space}),
        ))
    })
    .await
}

/// POST /containers/{id}/update's body (docker's UpdateConfig: the Resources fields and
/// RestartPolicy) as the engine's update. Fields at their zero value change nothing; one
/// the engine cannot change, set, is refused naming it.
fn update_options(b: &Value) -> Result<berth_engine::control::UpdateOptions, ApiError> {
    let obj = b
        .as_object()
        .ok_or_else(|| ApiError::bad("invalid update body: not a JSON object"))?;
    let mut u = berth_engine::control::UpdateOptions::default();
    let int = |k: &str, v: &Value| -> Result<Option<i64>, ApiError> {
        match v {
            Value::Null => Ok(None),
            v => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| ApiError::bad(format!("invalid {k} {v}: not an integer"))),
        }
    };
    let nonzero = |k: &str, v: &Value| -> Result<Option<i64>, ApiError> {
        Ok(int(k, v)?.filter(|n| *n != 0))
    };
    let unsigned = |k: &str, v: &Value| -> Result<Option<u64>, ApiError> {
        nonzero(k, v)?
            .map(|n| u64::try_from(n).map_err(|_| ApiError::bad(format!("invalid {k} {n}"))))
            .transpose()
    };
    for (k, v) in obj {
        match k.as_str() {
            "Memory" => u.memory = nonzero(k, v)?,
            "MemorySwap" => u.memory_swap = nonzero(k, v)?,
            "MemoryReservation" => u.memory_reservation = nonzero(k, v)?,
            "NanoCpus" | "NanoCPUs" => u.nano_cpus = nonzero(k, v)?,
            "CpuShares" => u.cpu_shares = unsigned(k, v)?,
            "CpuPeriod" => u.cpu_period = unsigned(k, v)?,
            "CpuQuota" => u.cpu_quota = nonzero(k, v)?,
            "CpusetCpus" => {
                u.cpuset_cpus = v.as_str().filter(|s| !s.is_empty()).map(str::to_string)
            }
            // null leaves it; 0 and -1 are docker's "unlimited".
            "PidsLimit" => u.pids_limit = int(k, v)?,
            "BlkioWeight" => {
                u.blkio_weight = unsigned(k, v)?
                    .map(|n| {
                        u16::try_from(n)
                            .map_err(|_| ApiError::bad(format!("invalid BlkioWeight {n}")))
                    })
                    .transpose()?
            }
            "RestartPolicy" => {
                let name = v["Name"].as_str().unwrap_or_default();
                let n = v["MaximumRetryCount"].as_i64().unwrap_or(0);
                if !name.is_empty() {
                    let p = if name == "on-failure" && n > 0 {
                        format!("{name}:{n}")
                    } else {
                        name.to_string()
                    };
                    u.restart = Some(
                        berth_engine::parse::restart(&p).map_err(|e| ApiError::bad(chain(&e)))?,
                    );
                }
            }
            // docker's default swappiness is -1 (the kernel's).
            "MemorySwappiness" if v.as_i64() == Some(-1) => {}
            _ if is_default(v) => {}
            _ => {
                return Err(ApiError::bad(format!(
                    "{k} is not supported by berth update (given {v})"
                )))
            }
        }
    }
    u.check().map_err(|e| ApiError::bad(chain(&e)))?;
    Ok(u)
}

async fn update(
    S(s): S<State>,
    Path(r): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let b: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad(format!("invalid JSON body: {e}")))?;
    let u = update_options(&b)?;
    blocking(move || {
        let id = resolve(&s, &r)?;
        // Nothing set: nothing to do (dockerd's answer to an empty update).
        if u.is_empty() {
            return Ok(Json(json!({"Warnings": []})));
        }
        let warnings = berth_engine::control::update(&s.layout, &id, &u)
            .map_err(|e| ApiError::engine(&s.layout, e))?;
        Ok(Json(json!({"Warnings": warnings})))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_bodies_as_the_docker_cli_sends_them() {
        // `docker update --memory 64m --cpus 0.5`: every Resources field, zeros for the
        // flags not given.
        let b = json!({
            "Memory": 67108864, "MemorySwap": 0, "MemoryReservation": 0, "NanoCpus": 500000000,
            "CpuShares": 0, "CpuPeriod": 0, "CpuQuota": 0, "CpusetCpus": "", "CpusetMems": "",
            "KernelMemory": 0, "CpuRealtimePeriod": 0, "BlkioWeight": 0, "PidsLimit": null,
            "Devices": null, "Ulimits": null, "MemorySwappiness": null, "OomKillDisable": null,
            "BlkioWeightDevice": null, "CgroupParent": "",
            "RestartPolicy": {"Name": "", "MaximumRetryCount": 0},
        });
        let u = update_options(&b).unwrap();
        assert_eq!(u.memory, Some(64 << 20));
        assert_eq!(u.nano_cpus, Some(500_000_000));
        assert_eq!(
            (u.cpu_shares, u.pids_limit, u.restart.clone()),
            (None, None, None)
        );
        let u = update_options(&json!({"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3}, "PidsLimit": 50})).unwrap();
        assert_eq!(
            u.restart,
            Some(berth_engine::options::RestartPolicy::OnFailure(3))
        );
        assert_eq!(u.pids_limit, Some(50));
        // Set and not supported: refused, naming it.
        let e = update_options(&json!({"Memory": 1 << 26, "CpusetMems": "0"})).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.message.contains("CpusetMems"), "{}", e.message);
        let e = update_options(&json!({"KernelMemory": 1 << 26})).unwrap_err();
        assert!(e.message.contains("KernelMemory"), "{}", e.message);
        // Nothing to change is no change; CPUs both ways is docker's error.
        assert!(update_options(&json!({"Memory": 0})).unwrap().is_empty());
        let e = update_options(&json!({"NanoCpus": 1, "CpuQuota": 5})).unwrap_err();
        assert!(e.message.contains("conflicting options"), "{}", e.message);
    }

    #[test]
    fn filter_and_flag_forms() {
        assert_eq!(
            filters(&Some(
                r#"{"type":["container"],"label":{"a=b":true}}"#.into()
            ))
            .unwrap(),
            vec!["type=container", "label=a=b"]
        );
        assert!(filters(&Some("[1]".into())).is_err());
        assert!(flag_or(&None, true) && !flag_or(&Some("0".into()), true));
        assert!(flag_or(&Some("1".into()), false) && !flag_or(&None, false));
    }
}
