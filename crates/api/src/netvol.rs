//! `/networks/...` and `/volumes/...`: create, list, inspect, remove, prune, and a
//! network's connect and disconnect, each the engine call `berth network`/`berth volume`
//! make.

use crate::error::chain;
use crate::params::filters;
use crate::{blocking, ApiError, State};
use axum::body::Bytes;
use axum::extract::{Path, Query, State as S};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use berth_engine::net::store::{self, CreateNetwork, Networks};
use berth_engine::volumes;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub fn routes() -> Router<State> {
    Router::new()
        .route("/networks", get(net_list))
        .route("/networks/create", post(net_create))
        .route("/networks/prune", post(net_prune))
        .route("/networks/{id}", get(net_inspect).delete(net_remove))
        .route("/networks/{id}/connect", post(net_connect))
        .route("/networks/{id}/disconnect", post(net_disconnect))
        .route("/volumes", get(vol_list))
        .route("/volumes/create", post(vol_create))
        .route("/volumes/prune", post(vol_prune))
        .route("/volumes/{name}", get(vol_inspect).delete(vol_remove))
}

#[derive(Deserialize)]
struct FiltersQ {
    filters: Option<String>,
}

fn json_body(body: &Bytes) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad(format!("invalid JSON body: {e}")))
}

fn labels(v: &Value, what: &str) -> Result<BTreeMap<String, String>, ApiError> {
    let mut m = BTreeMap::new();
    for (k, x) in v.as_object().into_iter().flatten() {
        let x = x
            .as_str()
            .ok_or_else(|| ApiError::bad(format!("{what}.{k} must be a string")))?;
        m.insert(k.clone(), x.to_string());
    }
    Ok(m)
}

async fn net_list(S(s): S<State>, Query(q): Query<FiltersQ>) -> Result<Json<Value>, ApiError> {
    let f = filters(&q.filters)?;
    blocking(move || {
        let v = store::list(&s.layout, &f).map_err(|e| ApiError::engine(&s.layout, e))?;
        Ok(Json(Value::Array(
            v.iter()
                .map(|r| store::inspect_value(&s.layout, r))
                .collect(),
        )))
    })
    .await
}

async fn net_inspect(S(s): S<State>, Path(n): Path<String>) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let r = store::find_any(&s.layout, &n).map_err(|e| ApiError::engine(&s.layout, e))?;
        Ok(Json(store::inspect_value(&s.layout, &r)))
    })
    .await
}

/// A string field of a request body (null is empty); another type is docker's 400.
fn str_of<'a>(k: &str, v: &'a Value) -> Result<&'a str, ApiError> {
    match v {
        Value::Null => Ok(""),
        Value::String(s) => Ok(s),
        _ => Err(ApiError::bad(format!(
            "json: cannot unmarshal {v} into field {k} of type string"
        ))),
    }
}

fn bool_of(k: &str, v: &Value) -> Result<bool, ApiError> {
    match v {
        Value::Null => Ok(false),
        Value::Bool(b) => Ok(*b),
        _ => Err(ApiError::bad(format!(
            "json: cannot unmarshal {v} into field {k} of type bool"
        ))),
    }
}

async fn net_create(S(s): S<State>, body: Bytes) -> Result<Response, ApiError> {
    let b = json_body(&body)?;
    let mut c = CreateNetwork::default();
    for (k, v) in b.as_object().into_iter().flatten() {
        match k.as_str() {
            "Name" => c.name = str_of(k, v)?.to_string(),
            "Driver" => {
                c.driver = Some(str_of(k, v)?)
                    .filter(|d| !d.is_empty())
                    .map(str::to_string)
            }
            "Internal" => c.internal = bool_of(k, v)?,
            "EnableIPv6" => c.ipv6 = bool_of(k, v)?,
            "Labels" => c.labels = labels(v, "Labels")?,
            "Options" => c.options = labels(v, "Options")?,
            "IPAM" => {
                let drv = v.get("Driver").and_then(Value::as_str).unwrap_or("default");
                if !drv.is_empty() && drv != "default" {
                    return Err(ApiError::bad(format!(
                        "IPAM driver {drv:?} is not supported (only default)"
                    )));
                }
                for cfg in v
                    .get("Config")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let f = |n: &str| cfg.get(n).and_then(Value::as_str).filter(|x| !x.is_empty());
                    if let Some(x) = f("Subnet") {
                        c.subnets.push(x.to_string());
                    }
                    if let Some(x) = f("Gateway") {
                        c.gateways.push(x.to_string());
                    }
                    if let Some(x) = f("IPRange") {
                        c.ip_ranges.push(x.to_string());
                    }
                }
            }
            // Duplicate names are always refused; attachable changes nothing on one host.
            "CheckDuplicate" | "Attachable" => {}
            "Scope" if v.as_str().is_none_or(|x| x.is_empty() || x == "local") => {}
            "Ingress" | "ConfigOnly" if v.as_bool() != Some(true) => {}
            "ConfigFrom" if v.is_null() => {}
            _ => {
                return Err(ApiError::bad(format!(
                    "network create: {k} is not supported by berth (given {v})"
                )))
            }
        }
    }
    if c.name.is_empty() {
        return Err(ApiError::bad("network create: Name is required"));
    }
    blocking(move || {
        let rec = Networks::new(&s.layout).create(&c).map_err(|e| match e {
            berth_engine::Error::NameInUse(n) | berth_engine::Error::Invalid(n)
                if n.contains("already exists") =>
            {
                ApiError::conflict(n)
            }
            e => ApiError::engine(&s.layout, e),
        })?;
        Ok((
            StatusCode::CREATED,
            Json(json!({"Id": rec.id, "Warning": ""})),
        )
            .into_response())
    })
    .await
}

async fn net_remove(S(s): S<State>, Path(n): Path<String>) -> Result<StatusCode, ApiError> {
    blocking(move || {
        Networks::new(&s.layout).remove(&n).map_err(|e| match e {
            berth_engine::Error::Invalid(m) => ApiError::conflict(m),
            e => ApiError::engine(&s.layout, e),
        })?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

async fn net_prune(S(s): S<State>, Query(q): Query<FiltersQ>) -> Result<Json<Value>, ApiError> {
    if !filters(&q.filters)?.is_empty() {
        return Err(ApiError::unsupported("filters on POST /networks/prune"));
    }
    blocking(move || {
        let gone = Networks::new(&s.layout)
            .prune()
            .map_err(|e| ApiError::engine(&s.layout, e))?;
        Ok(Json(json!({"NetworksDeleted": gone})))
    })
    .await
}

async fn net_connect(
    S(s): S<State>,
    Path(n): Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let b = json_body(&body)?;
    let container = b
        .get("Container")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad("Container is required"))?
        .to_string();
    let ep = b.get("EndpointConfig").cloned().unwrap_or(Value::Null);
    let strs = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let ipam = ep.get("IPAMConfig");
    let ip = |k: &str| {
        ipam.and_then(|i| i.get(k))
            .and_then(Value::as_str)
            .filter(|x| !x.is_empty())
            .map(str::to_string)
    };
    let attach = berth_engine::options::NetworkAttach {
        aliases: strs(ep.get("Aliases")),
        ipv4: ip("IPv4Address"),
        ipv6: ip("IPv6Address"),
        ..Default::default()
    };
    if !strs(ep.get("Links")).is_empty() {
        return Err(ApiError::unsupported("EndpointConfig.Links (legacy links)"));
    }
    blocking(move || {
        berth_engine::net::connect(&s.layout, &n, &container, attach).map_err(|e| match e {
            berth_engine::Error::Invalid(m) => ApiError::bad(m),
            e => ApiError::engine(&s.layout, e),
        })?;
        Ok(StatusCode::OK)
    })
    .await
}

async fn net_disconnect(
    S(s): S<State>,
    Path(n): Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let b = json_body(&body)?;
    let container = b
        .get("Container")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad("Container is required"))?
        .to_string();
    let force = b.get("Force").and_then(Value::as_bool).unwrap_or(false);
    blocking(move || {
        berth_engine::net::disconnect(&s.layout, &n, &container, force)
            .map_err(|e| ApiError::engine(&s.layout, e))?;
        Ok(StatusCode::OK)
    })
    .await
}

fn volume_value(v: &volumes::Volume) -> Value {
    serde_json::to_value(v).expect("volume serialises")
}

async fn vol_list(S(s): S<State>, Query(q): Query<FiltersQ>) -> Result<Json<Value>, ApiError> {
    let f = filters(&q.filters)?;
    blocking(move || {
        let v =
            volumes::list_filtered(&s.layout, &f).map_err(|e| ApiError::engine(&s.layout, e))?;
        Ok(Json(json!({
            "Volumes": v.iter().map(volume_value).collect::<Vec<_>>(),
            "Warnings": [],
        })))
    })
    .await
}

async fn vol_inspect(S(s): S<State>, Path(n): Path<String>) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let v = volumes::load(&s.layout, &n).map_err(|e| ApiError::engine(&s.layout, e))?;
        Ok(Json(volume_value(&v)))
    })
    .await
}

async fn vol_create(S(s): S<State>, body: Bytes) -> Result<Response, ApiError> {
    let b = json_body(&body)?;
    let mut name = None;
    let mut lbl = BTreeMap::new();
    for (k, v) in b.as_object().into_iter().flatten() {
        match k.as_str() {
            "Name" => {
                name = Some(str_of(k, v)?)
                    .filter(|n| !n.is_empty())
                    .map(str::to_string)
            }
            "Driver" => {
                let d = str_of(k, v)?;
                if !d.is_empty() && d != "local" {
                    return Err(ApiError::bad(format!(
                        "volume driver {d:?} is not supported (only local)"
                    )));
                }
            }
            "DriverOpts" => {
                if let Some((o, _)) = v.as_object().and_then(|m| m.iter().next()) {
                    return Err(ApiError::bad(format!(
                        "volume option {o:?} is not supported (the local driver takes no \
                         options here)"
                    )));
                }
            }
            "Labels" => lbl = labels(v, "Labels")?,
            _ => {
                return Err(ApiError::bad(format!(
                    "volume create: {k} is not supported by berth"
                )))
            }
        }
    }
    blocking(move || {
        let (v, _) = volumes::create(&s.layout, name.as_deref(), lbl, false)
            .map_err(|e| ApiError::bad(chain(&e)))?;
        Ok((StatusCode::CREATED, Json(volume_value(&v))).into_response())
    })
    .await
}

#[derive(Deserialize)]
struct VolRmQ {
    force: Option<String>,
}

async fn vol_remove(
    S(s): S<State>,
    Path(n): Path<String>,
    Query(q): Query<VolRmQ>,
) -> Result<StatusCode, ApiError> {
    let force = matches!(q.force.as_deref(), Some("1" | "true"));
    blocking(move || match volumes::remove(&s.layout, &n) {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(berth_engine::Error::NoSuchVolume(_)) if force => Ok(StatusCode::NO_CONTENT),
        Err(e @ berth_engine::Error::NoSuchVolume(_)) => Err(ApiError::engine(&s.layout, e)),
        Err(e) => Err(ApiError::conflict(chain(&e))),
    })
    .await
}

async fn vol_prune(S(s): S<State>, Query(q): Query<FiltersQ>) -> Result<Json<Value>, ApiError> {
    let mut all = false;
    for f in filters(&q.filters)? {
        match f.as_str() {
            "all=true" | "all=1" => all = true,
            "all=false" | "all=0" => {}
            f => return Err(ApiError::unsupported(&format!("volume prune filter {f:?}"))),
        }
    }
    blocking(move || {
        let (gone, bytes) =
            volumes::prune(&s.layout, all).map_err(|e| ApiError::engine(&s.layout, e))?;
        Ok(Json(
            json!({"VolumesDeleted": gone, "SpaceReclaimed": bytes}),
        ))
    })
    .await
}
