//! `berth network create/ls/inspect/rm/prune/connect/disconnect`, with docker's flags and
//! output. Errors exit 1, as docker's network commands do. The work is the engine's
//! (berth_engine::net).

use crate::Globals;
use anyhow::{anyhow, bail, Result};
use berth_engine::layout::Layout;
use berth_engine::net::store::{self, CreateNetwork, Networks};
use berth_engine::template::Template;
use berth_network::dns::NetworkRecord;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Write;

#[derive(clap::Subcommand)]
#[command(defer = true)]
pub enum Cmd {
    /// Manage networks
    #[command(subcommand)]
    Network(NetworkCmd),
}

#[derive(clap::Subcommand)]
#[command(defer = true)]
pub enum NetworkCmd {
    /// Create a network
    Create(CreateArgs),
    /// List networks
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more networks
    Inspect(InspectArgs),
    /// Remove one or more networks
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Remove all unused networks
    Prune(PruneArgs),
    /// Connect a container to a network
    Connect(ConnectArgs),
    /// Disconnect a container from a network
    Disconnect(DisconnectArgs),
}

#[derive(clap::Args)]
pub struct CreateArgs {
    /// Driver to manage the Network (bridge)
    #[arg(short = 'd', long)]
    driver: Option<String>,
    /// Subnet in CIDR format that represents a network segment
    #[arg(long)]
    subnet: Vec<String>,
    /// IPv4 or IPv6 Gateway for the master subnet
    #[arg(long)]
    gateway: Vec<String>,
    /// Allocate container ip from a sub-range
    #[arg(long = "ip-range")]
    ip_range: Vec<String>,
    /// Restrict external access to the network
    #[arg(long)]
    internal: bool,
    /// Enable IPv6 networking
    #[arg(long)]
    ipv6: bool,
    /// Set metadata on a network (KEY=VALUE)
    #[arg(long)]
    label: Vec<String>,
    /// Set driver specific options (com.docker.network.bridge.name, com.docker.network.driver.mtu)
    #[arg(short = 'o', long = "opt")]
    opt: Vec<String>,
    name: String,
}

#[derive(clap::Args)]
pub struct LsArgs {
    /// Only display network IDs
    #[arg(short, long)]
    quiet: bool,
    /// Do not truncate the output
    #[arg(long)]
    no_trunc: bool,
    /// Pretty-print networks using a Go template (or `json`)
    #[arg(long)]
    format: Option<String>,
    /// Provide filter values (driver, id, label, name, scope, type=custom|builtin, dangling)
    #[arg(short, long)]
    filter: Vec<String>,
}

#[derive(clap::Args)]
pub struct InspectArgs {
    /// Format the output using the given Go template
    #[arg(short, long)]
    format: Option<String>,
    #[arg(required = true)]
    names: Vec<String>,
}

#[derive(clap::Args)]
pub struct RmArgs {
    /// Do not error if the network does not exist
    #[arg(short, long)]
    force: bool,
    #[arg(required = true)]
    names: Vec<String>,
}

#[derive(clap::Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation (prune never prompts)
    #[arg(short, long)]
    force: bool,
}

#[derive(clap::Args)]
pub struct ConnectArgs {
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long)]
    ip: Option<String>,
    /// IPv6 address (e.g., 2001:db8::33)
    #[arg(long)]
    ip6: Option<String>,
    /// Add network-scoped alias for the container
    #[arg(long)]
    alias: Vec<String>,
    network: String,
    container: String,
}

#[derive(clap::Args)]
pub struct DisconnectArgs {
    /// Force the container to disconnect from a network
    #[arg(short, long)]
    force: bool,
    network: String,
    container: String,
}

pub fn dispatch(g: &Globals, c: Cmd) -> i32 {
    let Cmd::Network(c) = c;
    let layout = match Layout::open(&g.root) {
        Ok(l) => l,
        Err(e) => return fail(anyhow!(e)),
    };
    let r = match c {
        NetworkCmd::Create(a) => create(&layout, a),
        NetworkCmd::Ls(a) => ls(&layout, a),
        NetworkCmd::Inspect(a) => return inspect(&layout, a),
        NetworkCmd::Rm(a) => return rm(&layout, a),
        NetworkCmd::Prune(a) => prune(&layout, a),
        NetworkCmd::Connect(a) => berth_engine::net::connect(
            &layout,
            &a.network,
            &a.container,
            berth_engine::options::NetworkAttach {
                aliases: a.alias,
                ipv4: a.ip,
                ipv6: a.ip6,
                ..Default::default()
            },
        )
        .map_err(|e| err(&layout, e)),
        NetworkCmd::Disconnect(a) => {
            berth_engine::net::disconnect(&layout, &a.network, &a.container, a.force)
                .map_err(|e| err(&layout, e))
        }
    };
    match r {
        Ok(()) => 0,
        Err(e) => fail(e),
    }
}

fn fail(e: anyhow::Error) -> i32 {
    crate::print_error(&e);
    1
}

/// Engine errors in docker's words.
fn err(l: &Layout, e: berth_engine::Error) -> anyhow::Error {
    use berth_engine::Error as E;
    match e {
        E::NoSuchContainer(r) => anyhow!("No such container: {r}"),
        E::NoSuchNetwork(r) => anyhow!("network {r} not found"),
        E::NameInUse(n) => anyhow!(berth_engine::create::name_in_use_message(l, &n)),
        e => anyhow::Error::new(e),
    }
}

fn kv(v: &[String], what: &str) -> Result<BTreeMap<String, String>> {
    let mut m = BTreeMap::new();
    for s in v {
        let (k, v) = s.split_once('=').unwrap_or((s, ""));
        if k.is_empty() {
            bail!("invalid {what} {s:?}: empty name");
        }
        m.insert(k.to_string(), v.to_string());
    }
    Ok(m)
}

fn create(l: &Layout, a: CreateArgs) -> Result<()> {
    let c = CreateNetwork {
        name: a.name,
        driver: a.driver,
        subnets: a.subnet,
        gateways: a.gateway,
        ip_ranges: a.ip_range,
        internal: a.internal,
        ipv6: a.ipv6,
        labels: kv(&a.label, "label")?,
        options: kv(&a.opt, "option")?,
    };
    let rec = Networks::new(l).create(&c).map_err(|e| err(l, e))?;
    println!("{}", rec.id);
    Ok(())
}

fn ls_value(r: &NetworkRecord, trunc: bool) -> Value {
    let labels: Vec<String> = r.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    json!({
        "ID": if trunc { &r.id[..12] } else { r.id.as_str() },
        "Name": r.name,
        "Driver": r.driver,
        "Scope": "local",
        "IPv6": r.ipv6.to_string(),
        "Internal": r.internal.to_string(),
        "Labels": labels.join(","),
        "CreatedAt": r.created,
    })
}

fn header(f: &str) -> Option<String> {
    Some(
        match f {
            "ID" => "NETWORK ID",
            "Name" => "NAME",
            "Driver" => "DRIVER",
            "Scope" => "SCOPE",
            "IPv6" => "IPV6",
            "Internal" => "INTERNAL",
            "Labels" => "LABELS",
            "CreatedAt" => "CREATED AT",
            _ => return None,
        }
        .to_string(),
    )
}

fn ls(l: &Layout, a: LsArgs) -> Result<()> {
    let v = store::list(l, &a.filter).map_err(|e| err(l, e))?;
    let format = match (&a.format, a.quiet) {
        (_, true) => "{{.ID}}".to_string(),
        (Some(f), false) if f != "table" => f.clone(),
        _ => "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}".into(),
    };
    let t = Template::parse(&format)?;
    let values: Vec<Value> = v.iter().map(|r| ls_value(r, !a.no_trunc)).collect();
    let out = t.render_all(&values, &header)?;
    std::io::stdout().write_all(out.as_bytes())?;
    Ok(())
}

fn pretty(v: &Value) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    serde::Serialize::serialize(v, &mut ser).expect("json values serialise");
    String::from_utf8(buf).expect("json is utf-8")
}

fn inspect(l: &Layout, a: InspectArgs) -> i32 {
    let t = match a.format.as_deref().map(Template::parse).transpose() {
        Ok(t) => t,
        Err(e) => return fail(anyhow!(e)),
    };
    let mut found = Vec::new();
    let mut code = 0;
    for n in &a.names {
        match store::find_any(l, n).map_err(|e| err(l, e)) {
            Ok(r) => found.push(store::inspect_value(l, &r)),
            Err(e) => {
                code = 1;
                crate::print_error(&e);
            }
        }
    }
    let out = match &t {
        Some(t) => {
            let mut s = String::new();
            for v in &found {
                match t.render(v) {
                    Ok(x) => {
                        s.push_str(&x);
                        s.push('\n');
                    }
                    Err(e) => return fail(anyhow!(e)),
                }
            }
            s
        }
        None => format!("{}\n", pretty(&Value::Array(found))),
    };
    let _ = std::io::stdout().write_all(out.as_bytes());
    code
}

fn rm(l: &Layout, a: RmArgs) -> i32 {
    let mut code = 0;
    for n in &a.names {
        match Networks::new(l).remove(n) {
            Ok(_) => println!("{n}"),
            Err(berth_engine::Error::NoSuchNetwork(_)) if a.force => {}
            Err(e) => {
                crate::print_error(&err(l, e));
                code = 1;
            }
        }
    }
    code
}

fn prune(l: &Layout, a: PruneArgs) -> Result<()> {
    let _ = a.force;
    let gone = Networks::new(l).prune().map_err(|e| err(l, e))?;
    if !gone.is_empty() {
        println!("Deleted Networks:");
        for n in gone {
            println!("{n}");
        }
    }
    Ok(())
}
