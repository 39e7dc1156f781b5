//! `berth cp`: between a container and the host, done by this process through fds of the
//! container's rootfs (berth_engine::cp): nothing runs in the container and none of its
//! files are executed or loaded (BAD-13, CVE-2019-14271, CVE-2018-15664). `-` as the
//! source extracts a tar stream from stdin into a container directory (entries naming
//! `..` or an absolute path are refused); `-` as the destination writes one to stdout.

use super::resolve;
use crate::Globals;
use anyhow::{bail, Context, Result};
use berth_engine::cp::{self, CopyOptions, Owner, Side};
use berth_engine::layout::Layout;
use berth_engine::rootfs::{self, ContainerPath};
use berth_image::store::Store;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short, long)]
    archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long)]
    follow_link: bool,
    /// Suppress progress output during copy
    #[arg(short, long)]
    quiet: bool,
    /// CONTAINER:SRC_PATH or SRC_PATH
    src: String,
    /// CONTAINER:DEST_PATH or DEST_PATH
    dest: String,
}

/// docker's splitCpArg: `CONTAINER:PATH`, unless the argument is an absolute path or
/// starts with `.` (a local path that happens to hold a colon).
fn split(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.starts_with('.') && !c.is_empty() => (Some(c), p),
        _ => (None, arg),
    }
}

pub fn run(g: &Globals, layout: &Layout, a: CpArgs) -> Result<()> {
    let (sc, sp) = split(&a.src);
    let (dc, dp) = split(&a.dest);
    let (container, into) = match (sc, dc) {
        (Some(_), Some(_)) => bail!("copying between containers is not supported"),
        (None, None) => bail!("must specify at least one container source"),
        (Some(c), None) => (c, false),
        (None, Some(c)) => (c, true),
    };
    if !into && dp == "-" && std::io::stdout().is_terminal() {
        bail!("refusing to write a tar stream to a terminal; redirect stdout");
    }
    let id = resolve(layout, container)?;
    let store = Store::open(&g.root).with_context(|| format!("open store {}", g.root.display()))?;
    let ctr_arg = if into { dp } else { sp };
    let cpath = ContainerPath::open(layout, &store, &id, ctr_arg, into)?;
    let owner = match (a.archive, into) {
        (true, _) => Owner::Source,
        // docker: files copied into a container belong to its root user ...
        (false, true) => Owner::Set(0, 0),
        // ... and copied out, to whoever runs the command.
        (false, false) => Owner::Caller,
    };
    let opts = CopyOptions {
        follow_link: a.follow_link,
        owner,
    };
    let report = if into && sp == "-" {
        cp::extract_tar(std::io::stdin().lock(), cpath.side(), &opts)
    } else if !into && dp == "-" {
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        let r = cp::write_tar(cpath.side(), &opts, &mut out);
        std::io::Write::flush(&mut out).context("write the tar stream")?;
        r
    } else if into {
        cp::copy(Side::host(Path::new(sp)), cpath.side(), &opts)
    } else {
        cp::copy(cpath.side(), Side::host(Path::new(dp)), &opts)
    }?;
    drop(cpath);
    if !a.quiet && sp != "-" && dp != "-" && std::io::stderr().is_terminal() {
        eprintln!(
            "Successfully copied {} to {}",
            berth_engine::stats::human_size(report.bytes),
            a.dest
        );
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long)]
    output: Option<PathBuf>,
    container: String,
}

/// docker's `export`: the container's root filesystem (its image's layers and what the
/// container changed, without its volumes and bind mounts) as a tar stream.
pub fn export(g: &Globals, layout: &Layout, a: ExportArgs) -> Result<()> {
    if a.output.is_none() && std::io::stdout().is_terminal() {
        bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    }
    let id = resolve(layout, &a.container)?;
    let store = Store::open(&g.root).with_context(|| format!("open store {}", g.root.display()))?;
    match &a.output {
        Some(p) => {
            // Written beside the target and renamed: a failed export leaves no partial file.
            let dir = p.parent().filter(|d| !d.as_os_str().is_empty());
            let tmp = tempfile::NamedTempFile::new_in(dir.unwrap_or(Path::new(".")))
                .with_context(|| format!("create {}", p.display()))?;
            let mut w = std::io::BufWriter::new(tmp.as_file());
            rootfs::export(layout, &store, &id, &mut w)?;
            std::io::Write::flush(&mut w).with_context(|| format!("write {}", p.display()))?;
            drop(w);
            use std::os::unix::fs::PermissionsExt;
            // 0644 as docker's file, not the temporary file's 0600.
            std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))
                .with_context(|| format!("write {}", p.display()))?;
            tmp.persist(p)
                .with_context(|| format!("write {}", p.display()))?;
        }
        None => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            rootfs::export(layout, &store, &id, &mut out)?;
            std::io::Write::flush(&mut out).context("write the tar stream")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn docker_arg_split() {
        assert_eq!(split("c:/etc/x"), (Some("c"), "/etc/x"));
        assert_eq!(split("/abs:x"), (None, "/abs:x"));
        assert_eq!(split("./a:b"), (None, "./a:b"));
        assert_eq!(split("file"), (None, "file"));
        assert_eq!(split("c:"), (Some("c"), ""));
    }
}
