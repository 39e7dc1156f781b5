//! What requests carry, read the same way by every handler: query flags, docker's
//! `filters`, container references, sizes.

use crate::{ApiError, State};
use serde_json::Value;

/// A query flag: `1` or `true` (as docker's clients send them); anything else is off.
pub(crate) fn flag(v: &Option<String>) -> bool {
    flag_or(v, false)
}

/// A query flag; absent or empty is `default`.
pub(crate) fn flag_or(v: &Option<String>, default: bool) -> bool {
    match v.as_deref() {
        None | Some("") => default,
        Some(x) => matches!(x, "1" | "true" | "True" | "TRUE"),
    }
}

/// `filters={"status":["running"],"label":["a=b"]}` (or docker's old form
/// `{"status":{"running":true}}`) as the engine's `key=value` list.
pub(crate) fn filters(f: &Option<String>) -> Result<Vec<String>, ApiError> {
    let Some(f) = f.as_deref().filter(|f| !f.is_empty()) else {
        return Ok(vec![]);
    };
    let v: Value = serde_json::from_str(f)
        .map_err(|e| ApiError::bad(format!("invalid filters {f:?}: {e}")))?;
    let mut out = Vec::new();
    for (k, vals) in v
        .as_object()
        .ok_or_else(|| ApiError::bad(format!("invalid filters {f:?}: not an object")))?
    {
        match vals {
            Value::Object(m) => out.extend(
                m.iter()
                    .filter(|(_, on)| on.as_bool() != Some(false))
                    .map(|(x, _)| format!("{k}={x}")),
            ),
            Value::Array(a) => {
                for x in a {
                    let x = x.as_str().ok_or_else(|| {
                        ApiError::bad(format!("invalid filter {k:?}: values must be strings"))
                    })?;
                    out.push(format!("{k}={x}"));
                }
            }
            _ => return Err(ApiError::bad(format!("invalid filter {k:?}"))),
        }
    }
    Ok(out)
}

/// A container's id from a name, id or id prefix; docker's 404 when none.
pub(crate) fn resolve(s: &State, r: &str) -> Result<String, ApiError> {
    berth_engine::lookup::resolve(&s.layout, r).map_err(|e| ApiError::engine(&s.layout, e))
}

/// A resize's `h` or `w`.
pub(crate) fn dimension(v: &Option<String>, what: &str) -> Result<u16, ApiError> {
    let v = v.as_deref().unwrap_or("0");
    v.parse()
        .map_err(|_| ApiError::bad(format!("invalid {what} {v:?}: a number from 0 to 65535")))
}

/// A body value at its zero (null, false, 0, "", all-default arrays and objects): what a
/// client sends for a field it does not set.
pub(crate) fn is_default(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.iter().all(is_default),
        Value::Object(o) => o.values().all(is_default),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_filters() {
        assert!(flag(&Some("1".into())) && flag(&Some("True".into())) && !flag(&None));
        assert!(flag_or(&None, true) && !flag_or(&Some("0".into()), true));
        assert_eq!(
            filters(&Some(
                r#"{"status":["running"],"label":{"a=b":true,"c":false}}"#.into()
            ))
            .unwrap(),
            vec!["status=running", "label=a=b"]
        );
        assert!(filters(&Some("[1]".into())).is_err());
        assert!(filters(&Some(r#"{"x":[1]}"#.into())).is_err());
        assert!(dimension(&Some("70000".into()), "height").is_err());
        assert!(is_default(&serde_json::json!({"a": [0, ""], "b": null})));
    }
}
