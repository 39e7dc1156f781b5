//! berth-net: a container's network setup and teardown, exec'd by its monitor as podman
//! execs netavark (crates/engine/src/net/helper.rs has the protocol):
//!
//! ```text
//! berth-net prepare --root R --id ID --generation G   (stdout: a SOCK_SEQPACKET socket)
//! berth-net plug --pid PID                            (stdin: the attachment)
//! berth-net unplug --root R --id ID [--keep-leases]   (stdin: the attachment)
//! berth-net unplug-owner --root R --id ID
//! berth-net release --root R --id ID
//! ```
//!
//! The monitor lives as long as its container and stays small by not carrying this code
//! (docs/engine.md). Exit 0, or 1 with the error(s) on stderr, one per line. The work is
//! `berth_engine::net::attach`'s, which `network connect` runs in-process.
#![forbid(unsafe_code)]

use berth_engine::layout::Layout;
use berth_engine::net::{attach, helper};
use std::io::Read;
use std::os::fd::AsFd;
use std::path::PathBuf;

/// The parsed command line.
#[derive(Debug, PartialEq)]
enum Cmd {
    Prepare {
        root: PathBuf,
        id: String,
        generation: u32,
    },
    Plug {
        pid: i32,
    },
    Unplug {
        root: PathBuf,
        id: String,
        keep_leases: bool,
    },
    UnplugOwner {
        root: PathBuf,
        id: String,
    },
    Release {
        root: PathBuf,
        id: String,
    },
    /// A kube play httpGet/tcpSocket probe: the probe (JSON), made from inside the network
    /// namespace at `netns` to `addr`; exit 0 when it passes, 1 when not.
    Probe {
        probe: String,
        netns: Option<PathBuf>,
        addr: String,
        timeout_ms: u64,
    },
}

fn parse(args: &[String]) -> Result<Cmd, String> {
    let verb = args.first().map(String::as_str).unwrap_or("");
    let (valued, flags): (&[&str], &[&str]) = match verb {
        "prepare" => (&["--root", "--id", "--generation"], &[]),
        "plug" => (&["--pid"], &[]),
        "unplug" => (&["--root", "--id"], &["--keep-leases"]),
        "unplug-owner" | "release" => (&["--root", "--id"], &[]),
        "probe" => (&["--probe", "--netns", "--addr", "--timeout-ms"], &[]),
        "" => {
            return Err(
                "usage: berth-net prepare|plug|unplug|unplug-owner|release|probe ...".into(),
            )
        }
        v => return Err(format!("unknown command {v:?}")),
    };
    let mut values = std::collections::BTreeMap::new();
    let mut set = Vec::new();
    let mut it = args[1..].iter();
    while let Some(a) = it.next() {
        if valued.contains(&a.as_str()) {
            let v = it.next().ok_or_else(|| format!("{a} needs a value"))?;
            values.insert(a.as_str(), v.clone());
        } else if flags.contains(&a.as_str()) {
            set.push(a.as_str());
        } else {
            return Err(format!("unexpected argument {a:?}"));
        }
    }
    let get = |k: &str| {
        values
            .get(k)
            .cloned()
            .ok_or_else(|| format!("{k} is required"))
    };
    let num = |k: &str| -> Result<u64, String> {
        let v = get(k)?;
        v.parse().map_err(|_| format!("bad {k} {v:?}"))
    };
    let root = || get("--root").map(PathBuf::from);
    Ok(match verb {
        "prepare" => Cmd::Prepare {
            root: root()?,
            id: get("--id")?,
            generation: u32::try_from(num("--generation")?)
                .map_err(|_| "bad --generation".to_string())?,
        },
        "plug" => Cmd::Plug {
            pid: i32::try_from(num("--pid")?)
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("bad --pid {:?}", values["--pid"]))?,
        },
        "unplug" => Cmd::Unplug {
            root: root()?,
            id: get("--id")?,
            keep_leases: set.contains(&"--keep-leases"),
        },
        "unplug-owner" => Cmd::UnplugOwner {
            root: root()?,
            id: get("--id")?,
        },
        "probe" => Cmd::Probe {
            probe: get("--probe")?,
            netns: values.get("--netns").map(PathBuf::from),
            addr: get("--addr")?,
            timeout_ms: num("--timeout-ms")?,
        },
        _ => Cmd::Release {
            root: root()?,
            id: get("--id")?,
        },
    })
}

fn chain(e: &dyn std::error::Error) -> String {
    berth_engine::error::chain(e)
}

fn stdin_json<T: serde::de::DeserializeOwned>(what: &str) -> Result<T, String> {
    let mut data = Vec::new();
    std::io::stdin()
        .read_to_end(&mut data)
        .map_err(|e| format!("read {what}: {e}"))?;
    serde_json::from_slice(&data).map_err(|e| format!("bad {what} on stdin: {e}"))
}

fn config(
    root: &PathBuf,
    id: &str,
) -> Result<(Layout, berth_engine::record::ContainerConfig), String> {
    let layout = Layout::open(root).map_err(|e| chain(&e))?;
    let cfg = layout.load_config(id).map_err(|e| chain(&e))?;
    Ok((layout, cfg))
}

/// Ok, or the errors to print.
fn run(cmd: Cmd) -> Result<(), Vec<String>> {
    let one = |e: String| vec![e];
    let errs = |v: Vec<String>| if v.is_empty() { Ok(()) } else { Err(v) };
    match cmd {
        Cmd::Prepare {
            root,
            id,
            generation,
        } => {
            let (layout, cfg) = config(&root, &id).map_err(one)?;
            let att = attach::prepare(&layout, &cfg, generation).map_err(|e| one(chain(&e)))?;
            if let Err(e) = helper::send(std::io::stdout().as_fd(), att.as_ref()) {
                // The monitor gets nothing to take back: do it here.
                if let Some(a) = att {
                    attach::unplug(&layout, &cfg, a);
                }
                return Err(one(format!("send the attachment to the monitor: {e}")));
            }
            Ok(())
        }
        Cmd::Plug { pid } => {
            let att: attach::Attachment = stdin_json("attachment").map_err(one)?;
            attach::plug_endpoints(pid, &attach::plug_request(&att)).map_err(|e| one(chain(&e)))
        }
        Cmd::Unplug {
            root,
            id,
            keep_leases,
        } => {
            let att: attach::Attachment = stdin_json("attachment").map_err(one)?;
            let (layout, cfg) = config(&root, &id).map_err(one)?;
            errs(attach::unplug_keeping(&layout, &cfg, att, keep_leases))
        }
        Cmd::UnplugOwner { root, id } => {
            let (layout, cfg) = config(&root, &id).map_err(one)?;
            errs(attach::unplug_owner(&layout, &cfg))
        }
        Cmd::Release { root, id } => {
            let (layout, cfg) = config(&root, &id).map_err(one)?;
            attach::release_leases(&layout, &cfg);
            Ok(())
        }
        Cmd::Probe {
            probe,
            netns,
            addr,
            timeout_ms,
        } => {
            let probe: berth_engine::options::NetProbe =
                serde_json::from_str(&probe).map_err(|e| one(format!("bad --probe: {e}")))?;
            let addr = addr
                .parse()
                .map_err(|_| one(format!("bad --addr {addr:?}")))?;
            let target = berth_engine::probe::Target { netns, addr };
            let timeout = std::time::Duration::from_millis(timeout_ms);
            // What passed goes to stdout (the health log); why not, to stderr.
            let r = berth_engine::probe::run(&probe, &target, timeout).map_err(one)?;
            println!("{r}");
            Ok(())
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(errs) = parse(&args).map_err(|e| vec![e]).and_then(run) {
        for e in errs {
            eprintln!("{}", e.replace('\n', " "));
        }
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_every_command_and_refuses_the_rest() {
        assert_eq!(
            parse(&args(&[
                "prepare",
                "--root",
                "/r",
                "--id",
                "x",
                "--generation",
                "3"
            ])),
            Ok(Cmd::Prepare {
                root: "/r".into(),
                id: "x".into(),
                generation: 3
            })
        );
        assert_eq!(
            parse(&args(&["plug", "--pid", "42"])),
            Ok(Cmd::Plug { pid: 42 })
        );
        assert_eq!(
            parse(&args(&[
                "probe",
                "--probe",
                "{}",
                "--addr",
                "10.0.0.2",
                "--timeout-ms",
                "1500"
            ])),
            Ok(Cmd::Probe {
                probe: "{}".into(),
                netns: None,
                addr: "10.0.0.2".into(),
                timeout_ms: 1500
            })
        );
        assert!(parse(&args(&["probe", "--probe", "{}", "--addr", "x"])).is_err());
        assert_eq!(
            parse(&args(&[
                "unplug",
                "--keep-leases",
                "--root",
                "/r",
                "--id",
                "x"
            ])),
            Ok(Cmd::Unplug {
                root: "/r".into(),
                id: "x".into(),
                keep_leases: true
            })
        );
        assert_eq!(
            parse(&args(&["release", "--root", "/r", "--id", "x"])),
            Ok(Cmd::Release {
                root: "/r".into(),
                id: "x".into()
            })
        );
        for bad in [
            &["plug", "--pid", "0"][..],
            &["plug", "--pid", "x"],
            &["plug", "--pid"],
            &["plug", "--root", "/r"],
            &["prepare", "--root", "/r", "--id", "x"],
            &["prepare", "--root", "/r", "--id", "x", "--generation", "-1"],
            &["unplug-owner", "--root", "/r", "--id", "x", "--keep-leases"],
            &["down"],
            &[],
        ] {
            assert!(parse(&args(bad)).is_err(), "{bad:?}");
        }
    }
}
