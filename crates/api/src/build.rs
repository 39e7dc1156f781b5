//! `POST /build`: the classic (non-BuildKit) builder's request, as `DOCKER_BUILDKIT=0
//! docker build` sends it (the context as a tar body, the options in the query), carried
//! out by berth_build (`berth build`'s) and answered with the classic builder's JSON
//! lines: `Step k/n : ...`, the RUN output, `{"aux":{"ID":...}}`, `Successfully built`.

use crate::error::chain;
use crate::transfer::ChanReader;
use crate::{ApiError, State};
use axum::body::Body;
use axum::extract::{RawQuery, State as S};
use axum::response::Response;
use berth_build::{BuildOptions, ContextSource, DockerfileSource};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Read;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc::UnboundedSender;

/// The request's options, checked before the body is read.
#[derive(Debug, Default, PartialEq)]
struct Query {
    tags: Vec<String>,
    dockerfile: Option<String>,
    build_args: BTreeMap<String, String>,
    target: Option<String>,
    no_cache: bool,
    pull: bool,
    labels: BTreeMap<String, String>,
    quiet: bool,
    network: Option<String>,
}

/// Parameters the docker CLI always sends, accepted at their defaults (a container's
/// resources in the classic builder's RUN; Berth's RUN has none of them).
const AT_DEFAULT: &[(&str, &[&str])] = &[
    ("cpusetcpus", &[""]),
    ("cpusetmems", &[""]),
    ("cpushares", &["", "0"]),
    ("cpuquota", &["", "0"]),
    ("cpuperiod", &["", "0"]),
    ("memory", &["", "0"]),
    ("memswap", &["", "0"]),
    ("cgroupparent", &[""]),
    ("shmsize", &["", "0"]),
    ("ulimits", &["", "null", "[]"]),
    ("cachefrom", &["", "null", "[]"]),
    ("securityopt", &[""]),
    ("extrahosts", &[""]),
    ("squash", &["", "0", "false"]),
    ("isolation", &["", "default"]),
    ("remote", &[""]),
    ("outputs", &["", "null", "[]"]),
    ("version", &["", "1"]),
];

fn json_map(k: &str, v: &str) -> Result<BTreeMap<String, String>, ApiError> {
    if v.is_empty() || v == "null" {
        return Ok(BTreeMap::new());
    }
    let m: BTreeMap<String, Option<String>> =
        serde_json::from_str(v).map_err(|e| ApiError::bad(format!("invalid {k} {v:?}: {e}")))?;
    // A null value is an arg named without one (and not in the client's environment).
    Ok(m.into_iter().filter_map(|(k, v)| Some((k, v?))).collect())
}

fn on(v: &str) -> bool {
    matches!(v, "1" | "true" | "True" | "TRUE")
}

fn parse_query(q: &str) -> Result<Query, ApiError> {
    let mut o = Query::default();
    let mut unsupported = Vec::new();
    for (k, v) in form_urlencoded::parse(q.as_bytes()) {
        let (k, v) = (k.into_owned(), v.into_owned());
        match k.as_str() {
            "t" => o.tags.push(v),
            "dockerfile" if !v.is_empty() => o.dockerfile = Some(v),
            "dockerfile" => {}
            "buildargs" => o.build_args = json_map(&k, &v)?,
            "labels" => o.labels = json_map(&k, &v)?,
            "target" => o.target = Some(v).filter(|v| !v.is_empty()),
            "nocache" => o.no_cache = on(&v),
            "pull" => o.pull = on(&v),
            "q" => o.quiet = on(&v),
            "networkmode" => o.network = Some(v).filter(|v| !v.is_empty()),
            "platform" if v.is_empty() => {}
            "platform" => berth_build::flags::platform(Some(&v)).map_err(ApiError::bad)?,
            // Intermediate containers are always removed; a session is BuildKit's.
            "rm" | "forcerm" | "session" | "buildid" => {}
            _ => match AT_DEFAULT.iter().find(|(n, _)| *n == k) {
                Some((_, ok)) if ok.contains(&v.as_str()) => {}
                Some(_) => unsupported.push(format!("{k}={v}")),
                None => unsupported.push(k),
            },
        }
    }
    if !unsupported.is_empty() {
        return Err(ApiError::bad(format!(
            "POST /build: not supported by berth serve: {}",
            unsupported.join(", ")
        )));
    }
    berth_build::flags::network(o.network.as_deref()).map_err(ApiError::bad)?;
    berth_build::flags::epoch(true, &o.build_args, None).map_err(ApiError::bad)?;
    Ok(o)
}

/// A build line of berth_build (BuildKit's plain progress) as the classic builder's.
fn classic(line: &str) -> Option<String> {
    let rest = line.strip_prefix('#')?;
    let (_, rest) = rest.split_once(' ')?;
    if let Some(step) = rest.strip_prefix('[') {
        let (label, text) = step.split_once("] ")?;
        // `[stage 2/3]` or `[2/3]`: the step and the count of its stage.
        let count = label.rsplit(' ').next()?;
        if count.contains('/') && !label.starts_with("internal") {
            return Some(format!("Step {count} : {text}"));
        }
        return None;
    }
    if rest == "CACHED" {
        return Some(" ---> Using cache".into());
    }
    // RUN output: `#N 0.123 text`.
    let (secs, text) = rest.split_once(' ')?;
    secs.parse::<f64>().ok().map(|_| text.to_string())
}

/// The build's side of the server: lines to the response, pulls through the store.
struct Frontend {
    tx: UnboundedSender<Value>,
    s: State,
    rt: tokio::runtime::Handle,
    quiet: bool,
}

impl berth_engine::run::Frontend for Frontend {
    fn pull(&mut self, image: &str, platform: Option<&str>) -> berth_engine::Result<()> {
        let p = berth_engine::run::Pull::new(image, platform, false)?;
        if !self.quiet {
            let _ = self
                .tx
                .send(json!({"status": format!("Pulling from {}", p.reference.repository)}));
        }
        let (store, opts) = (self.s.store.clone(), self.s.client_opts.clone());
        let progress = Arc::new(berth_image::distribution::Quiet);
        self.rt.block_on(p.run(&store, &opts, progress))?;
        Ok(())
    }
    fn say(&mut self, line: &str) {
        if self.quiet {
            return;
        }
        if let Some(l) = classic(line) {
            let _ = self.tx.send(json!({"stream": format!("{l}\n")}));
        }
    }
}

/// The body, shared so that what the client sends after the tar can be read once the
/// build is over (an answer before the whole body is read breaks the client's write).
#[derive(Clone)]
struct Shared(Arc<Mutex<ChanReader>>);

impl Read for Shared {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("lock"))?
            .read(out)
    }
}

/// The tag as docker prints it (`x` is `x:latest`).
fn shown_tag(t: &str) -> String {
    let last = t.rsplit('/').next().unwrap_or(t);
    if last.contains(':') || last.contains('@') {
        t.to_string()
    } else {
        format!("{t}:latest")
    }
}

pub(crate) async fn build(
    S(s): S<State>,
    RawQuery(q): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    let q = parse_query(q.as_deref().unwrap_or(""));
    let r = ChanReader::new(body);
    let (q, r) = crate::blocking(move || {
        let mut r = r;
        // A refusal is answered after the body is read (bounded), as dockerd's server
        // does: answered earlier, the client's write of the context fails ("broken
        // pipe") and it never shows the answer.
        let refused = |mut r: ChanReader, e: ApiError| {
            r.drain();
            Err(e)
        };
        let q = match q {
            Ok(q) => q,
            Err(e) => return refused(r, e),
        };
        if let Err(e) = crate::transfer::plain_tar(&mut r, "build context") {
            return refused(r, e);
        }
        match r.peek() {
            Ok([]) => Err(ApiError::bad(
                "POST /build: no build context: send the context as a tar body",
            )),
            Ok(_) => Ok((q, r)),
            Err(e) => Err(ApiError::bad(format!("read the build context: {e}"))),
        }
    })
    .await?;
    let shared = Shared(Arc::new(Mutex::new(r)));
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let rt = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let dockerfile = match &q.dockerfile {
            Some(f) => DockerfileSource::Path(f.into()),
            None => DockerfileSource::Default,
        };
        let opts = BuildOptions {
            context: ContextSource::Tar(Box::new(shared.clone())),
            dockerfile,
            tags: q.tags.clone(),
            build_args: q.build_args.clone(),
            target: q.target.clone(),
            no_cache: q.no_cache,
            pull: q.pull,
            labels: q.labels.clone(),
            network: berth_build::flags::network(q.network.as_deref()).unwrap_or_default(),
            secrets: BTreeMap::new(),
            // As `berth build`'s default: reproducible, SOURCE_DATE_EPOCH as a build arg
            // (its value checked in parse_query).
            epoch: berth_build::flags::epoch(true, &q.build_args, None).unwrap_or(Some(0)),
        };
        let mut fe = Frontend {
            tx: tx.clone(),
            s: s.clone(),
            rt,
            quiet: q.quiet,
        };
        let built = berth_build::build(&s.layout, &s.store, opts, &mut fe);
        if let Ok(mut r) = shared.0.lock() {
            r.drain();
        }
        match built {
            Ok(b) => {
                let _ = tx.send(json!({"aux": {"ID": b.id}}));
                if q.quiet {
                    let _ = tx.send(json!({"stream": format!("{}\n", b.id)}));
                    return;
                }
                let hex = b.id.strip_prefix("sha256:").unwrap_or(&b.id);
                let short = &hex[..hex.len().min(12)];
                let _ = tx.send(json!({"stream": format!("Successfully built {short}\n")}));
                for t in &q.tags {
                    let _ = tx
                        .send(json!({"stream": format!("Successfully tagged {}\n", shown_tag(t))}));
                }
            }
            // As the classic builder: the error inside the stream, after the 200.
            Err(e) => {
                let m = chain(&e);
                let _ = tx.send(json!({"errorDetail": {"message": m}, "error": m}));
            }
        }
    });
    Ok(crate::transfer::json_stream(rx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_docker_clis_query_is_read() {
        let q = "buildargs=%7B%22A%22%3A%221%22%2C%22B%22%3Anull%7D&cachefrom=%5B%5D&cgroupparent=&cpuperiod=0&cpuquota=0&cpusetcpus=&cpusetmems=&cpushares=0&dockerfile=Dockerfile.x&labels=%7B%22l%22%3A%22v%22%7D&memory=0&memswap=0&networkmode=default&rm=1&shmsize=0&t=x&t=y%3A2&target=&ulimits=null&version=1&nocache=1&q=1";
        let o = parse_query(q).unwrap();
        assert_eq!(o.tags, ["x", "y:2"]);
        assert_eq!(o.dockerfile.as_deref(), Some("Dockerfile.x"));
        assert_eq!(o.build_args.len(), 1);
        assert_eq!(o.build_args["A"], "1");
        assert_eq!(o.labels["l"], "v");
        assert!(o.no_cache && o.quiet && !o.pull);
        assert_eq!(o.target, None);
        assert_eq!(o.network.as_deref(), Some("default"));
    }

    #[test]
    fn unsupported_parameters_are_a_400_naming_them() {
        let e = parse_query("t=x&memory=1000&squash=1&bogus=2").unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST);
        assert!(
            e.message.contains("memory=1000, squash=1, bogus"),
            "{}",
            e.message
        );
        assert!(parse_query("networkmode=container:x").is_err());
        assert!(parse_query("platform=linux/s390x").is_err());
        let e = parse_query("buildargs=%7B%22SOURCE_DATE_EPOCH%22%3A%22x%22%7D").unwrap_err();
        assert!(e.message.contains("SOURCE_DATE_EPOCH"), "{}", e.message);
    }

    #[test]
    fn buildkit_lines_become_classic_steps() {
        assert_eq!(
            classic("#5 [2/3] RUN echo hi").as_deref(),
            Some("Step 2/3 : RUN echo hi")
        );
        assert_eq!(
            classic("#4 [build 1/2] FROM busybox").as_deref(),
            Some("Step 1/2 : FROM busybox")
        );
        assert_eq!(classic("#6 0.012 hi").as_deref(), Some("hi"));
        assert_eq!(classic("#6 CACHED").as_deref(), Some(" ---> Using cache"));
        assert_eq!(classic("#6 DONE 0.1s"), None);
        assert_eq!(
            classic("#1 [internal] load build definition from Dockerfile"),
            None
        );
        assert_eq!(shown_tag("x"), "x:latest");
        assert_eq!(shown_tag("localhost:5000/x"), "localhost:5000/x:latest");
        assert_eq!(shown_tag("x:2"), "x:2");
    }
}
