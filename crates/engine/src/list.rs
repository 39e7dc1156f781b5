//! The container list behind docker's `ps` and the API's `GET /containers/json`: every
//! container, newest first, with docker's filters (values of one key OR-ed, different keys
//! AND-ed, every label matching). Reads records only (plus /proc for the containers whose
//! monitor may be gone): never the runtime. What cannot be read is listed too.

use crate::error::{Error, Result};
use crate::inventory::Entry;
use crate::layout::Layout;
use crate::record::{ContainerConfig, ContainerState, Status};
use crate::status;
use berth_image::store::Store;

/// What to list (docker's `ps -a`, `-n`, `--filter`).
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// Stopped containers too.
    pub all: bool,
    /// Only the last N created (any state).
    pub last: Option<usize>,
    /// `KEY=VALUE` filters.
    pub filters: Vec<String>,
}

/// One listed container. `odd` is set for a container that cannot be read or is half
/// made: its state word and status text ("unknown", "Unknown (why)"; "created",
/// "Creating"), which stand in for the state's.
pub struct Listed {
    pub config: ContainerConfig,
    pub state: ContainerState,
    pub odd: Option<(&'static str, String)>,
}

impl Listed {
    /// docker's State word.
    pub fn state_word(&self) -> &str {
        self.odd
            .as_ref()
            .map_or(self.state.status.as_str(), |o| o.0)
    }
    /// docker's STATUS text.
    pub fn status_text(&self) -> String {
        match &self.odd {
            Some((_, t)) => t.clone(),
            None => crate::human::status_text(&self.state),
        }
    }
}

/// The containers `o` selects, newest first. A bad filter is an error naming it.
pub fn containers(layout: &Layout, store: &Store, o: &ListOptions) -> Result<Vec<Listed>> {
    let mut filters = Filters::parse(&o.filters)?;
    filters.resolve_refs(layout)?;
    let mut items: Vec<(ContainerConfig, ContainerState)> = Vec::new();
    // What cannot be read is listed too, as unknown with the reason (docker has no such
    // state; its `dead` is a removal that failed).
    let mut odd: std::collections::BTreeMap<String, (&'static str, String)> = Default::default();
    for ent in crate::inventory::entries(layout, store)? {
        match ent {
            Entry::Container(c) => match status::current(layout, &c.id) {
                Ok(s) => items.push((*c, s)),
                Err(Error::Unreadable { reason, .. }) => {
                    odd.insert(c.id.clone(), ("unknown", format!("Unknown ({reason})")));
                    items.push((*c, ContainerState::default()));
                }
                // Removed meanwhile.
                Err(_) => {}
            },
            Entry::Broken { id, reason } => {
                odd.insert(id.clone(), ("unknown", format!("Unknown ({reason})")));
                items.push((placeholder(layout, &id, None), ContainerState::default()));
            }
            Entry::HalfMade { id, creator, .. } => {
                odd.insert(id.clone(), ("created", "Creating".to_string()));
                items.push((
                    placeholder(layout, &id, creator.as_ref()),
                    ContainerState::default(),
                ));
            }
        }
    }
    items.sort_by(|x, y| y.0.created.cmp(&x.0.created));
    let last = o.last.filter(|n| *n > 0);
    let all = o.all || last.is_some() || filters.has("status") || filters.has("exited");
    let mut rows = Vec::new();
    for (c, s) in items {
        let unknown = odd.get(&c.id).is_some_and(|o| o.0 == "unknown");
        if !all
            && !unknown
            && !matches!(
                s.status,
                Status::Running | Status::Paused | Status::Restarting
            )
        {
            continue;
        }
        if unknown && filters.has("status") && !filters.wants_status("unknown") {
            continue;
        }
        if !filters.matches(&c, &s) {
            continue;
        }
        rows.push(Listed {
            odd: odd.get(&c.id).cloned(),
            config: c,
            state: s,
        });
        if last.is_some_and(|n| rows.len() >= n) {
            break;
        }
    }
    Ok(rows)
}

struct Filters {
    by: Vec<(String, String)>,
    /// `before=`/`since=` references resolved to the created time of that container.
    created_of: std::collections::BTreeMap<String, String>,
}

impl Filters {
    fn parse(f: &[String]) -> Result<Filters> {
        let bad = |m: String| Error::Invalid(m);
        let mut by = Vec::new();
        for x in f {
            let Some((k, v)) = x.split_once('=') else {
                return Err(bad(format!("invalid filter '{x}'")));
            };
            let k = k.trim().to_ascii_lowercase();
            match k.as_str() {
                "status" => {
                    if ![
                        "created",
                        "restarting",
                        "running",
                        "removing",
                        "paused",
                        "exited",
                        "dead",
                        "unknown",
                    ]
                    .contains(&v)
                    {
                        return Err(bad(format!("invalid filter 'status={v}'")));
                    }
                }
                "exited" => {
                    if v.parse::<i32>().is_err() {
                        return Err(bad(format!("invalid filter 'exited={v}'")));
                    }
                }
                "health" => {
                    if !["starting", "healthy", "unhealthy", "none"].contains(&v) {
                        return Err(bad(format!("invalid filter 'health={v}'")));
                    }
                }
                "name" | "id" | "label" | "ancestor" | "before" | "since" | "volume" => {}
                _ => return Err(bad(format!("invalid filter '{k}'"))),
            }
            by.push((k, v.to_string()));
        }
        Ok(Filters {
            by,
            created_of: Default::default(),
        })
    }

    /// Resolves the containers named by `before=`/`since=` (docker's error when missing).
    fn resolve_refs(&mut self, layout: &Layout) -> Result<()> {
        for (k, v) in &self.by {
            if k == "before" || k == "since" {
                let id = crate::lookup::resolve(layout, v)?;
                let c = layout.load_config(&id)?;
                self.created_of.insert(v.clone(), c.created);
            }
        }
        Ok(())
    }

    fn wants_status(&self, v: &str) -> bool {
        self.by.iter().any(|(k, x)| k == "status" && x == v)
    }

    fn has(&self, key: &str) -> bool {
        self.by.iter().any(|(k, _)| k == key)
    }

    /// Values of one key are OR-ed, different keys AND-ed, and every label must match
    /// (docker's rules).
    fn matches(&self, c: &ContainerConfig, s: &ContainerState) -> bool {
        let keys: std::collections::BTreeSet<&str> =
            self.by.iter().map(|(k, _)| k.as_str()).collect();
        keys.into_iter().all(|key| {
            let mut vals = self.by.iter().filter(|(k, _)| k == key);
            let one = |(_, v): &(String, String)| match key {
                "status" => s.status.as_str() == v,
                "name" => c.name.contains(v.trim_start_matches('/')),
                "id" => c.id.starts_with(v.as_str()),
                "exited" => s.status == Status::Exited && v.parse() == Ok(s.exit_code),
                "health" => match &s.health {
                    Some(h) if !h.status.is_empty() => h.status == *v,
                    _ => v == "none",
                },
                "before" => self.created_of.get(v).is_some_and(|t| c.created < *t),
                "since" => self.created_of.get(v).is_some_and(|t| c.created > *t),
                "volume" => {
                    c.volumes.iter().any(|u| u.name == *v || u.target == *v)
                        || c.options.mounts.iter().any(|m| match m {
                            crate::options::MountSpec::Bind { source, target, .. } => {
                                source == v || target == v
                            }
                            crate::options::MountSpec::Tmpfs { target, .. } => target == v,
                            crate::options::MountSpec::Volume { target, .. } => target == v,
                        })
                }
                "label" => crate::parse::label_matches(v, &c.options.labels),
                "ancestor" => {
                    let img = v.as_str();
                    let hex = img.strip_prefix("sha256:").unwrap_or(img);
                    c.options.image == img
                        || c.options.image == format!("{img}:latest")
                        || img == format!("{}:latest", c.options.image)
                        || (hex.len() >= 4
                            && c.image_id.trim_start_matches("sha256:").starts_with(hex))
                }
                _ => false,
            };
            if key == "label" {
                vals.all(one)
            } else {
                vals.any(one)
            }
        })
    }
}

/// A config to list a container whose own cannot be read: its id, the name that links
/// to it, and what its creator recorded.
fn placeholder(
    layout: &Layout,
    id: &str,
    creator: Option<&crate::record::Creating>,
) -> ContainerConfig {
    let name = crate::inventory::names_of(layout, id)
        .into_iter()
        .next()
        .or_else(|| creator.map(|c| c.name.clone()))
        .unwrap_or_default();
    let options = crate::options::CreateOptions {
        image: creator.map(|c| c.image.clone()).unwrap_or_default(),
        ..Default::default()
    };
    ContainerConfig {
        created: creator.map(|c| c.created.clone()).unwrap_or_default(),
        ..ContainerConfig::bare(id, &name, options)
    }
}
