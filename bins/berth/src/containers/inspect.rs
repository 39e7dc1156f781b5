//! `inspect`: containers first, then images; docker's JSON shape; `--format` templates.

use super::Eng;
use anyhow::{anyhow, bail, Result};
use berth_engine::lookup;
use berth_engine::template::Template;
use serde_json::Value;

#[derive(clap::Args)]
pub struct InspectArgs {
    /// Format output using a Go template, or `json`
    #[arg(short, long)]
    pub format: Option<String>,
    /// Only inspect objects of this type (container or image)
    #[arg(long = "type")]
    pub kind: Option<String>,
    /// Display total file sizes (SizeRw: the container's own layer; SizeRootFs: with the image)
    #[arg(short, long)]
    pub size: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}

pub fn inspect(e: &Eng, a: InspectArgs) -> i32 {
    let kind = a.kind.as_deref().unwrap_or("");
    if !["", "container", "image"].contains(&kind) {
        return super::report(Err(anyhow!("\"{kind}\" is not a valid value for --type")));
    }
    let mut out = Vec::new();
    let mut code = 0;
    for n in &a.names {
        let v = (|| -> Result<Value> {
            if kind != "image" {
                match lookup::resolve(&e.layout, n) {
                    Ok(id) => {
                        return Ok(berth_engine::inspect::container(
                            &e.layout, &e.store, &id, a.size,
                        )?)
                    }
                    Err(berth_engine::Error::NoSuchContainer(_)) => {}
                    Err(x) => return Err(x.into()),
                }
            }
            if kind != "container" {
                match berth_engine::images::inspect(&e.store, n) {
                    Ok(v) => return Ok(v),
                    Err(berth_engine::Error::Image(berth_image::Error::NoSuchImage(_))) => {}
                    Err(x) => return Err(x.into()),
                }
            }
            match kind {
                "container" => bail!("No such container: {n}"),
                "image" => bail!("No such image: {n}"),
                _ => bail!("No such object: {n}"),
            }
        })();
        match v {
            Ok(v) => out.push(v),
            Err(x) => {
                crate::print_error(&x);
                code = 1;
            }
        }
    }
    match &a.format {
        Some(f) => {
            let t = match Template::parse(f) {
                Ok(t) => t,
                Err(x) => return super::report(Err(x.into())),
            };
            for v in &out {
                match t.render(v) {
                    Ok(s) => println!("{s}"),
                    Err(x) => return super::report(Err(x.into())),
                }
            }
        }
        None => println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default()),
    }
    code
}
