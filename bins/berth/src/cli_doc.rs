//! `berth completion SHELL` (clap_complete) and the command reference in docs/cli.md,
//! generated from the same clap definitions the CLI parses with (a test keeps the file
//! current).

use clap::Command;
use std::fmt::Write;

/// The shell completion script for `shell`, on stdout.
pub fn completion(cmd: &mut Command, shell: clap_complete::Shell) {
    // Into a buffer first: clap_complete panics on a write error (`| head`).
    let mut buf = Vec::new();
    clap_complete::generate(shell, cmd, "berth", &mut buf);
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), &buf);
}

/// Every command, its arguments and their help, as Markdown.
pub fn markdown(cmd: &Command) -> String {
    let mut out = String::from(
        "# berth command reference\n\n\
         Generated from the CLI's own definitions (`berth __cli-doc > docs/cli.md`; \
         bins/berth/tests/parity.rs fails when this file is out of date). Shell \
         completions: `berth completion bash|zsh|fish`.\n\n",
    );
    walk(cmd, &mut Vec::new(), &mut out);
    out
}

fn walk(cmd: &Command, path: &mut Vec<String>, out: &mut String) {
    if cmd.is_hide_set() {
        return;
    }
    path.push(cmd.get_name().to_string());
    let full = path.join(" ");
    let depth = path.len().min(4);
    let _ = writeln!(out, "{} `{full}`\n", "#".repeat(depth + 1));
    if let Some(a) = cmd.get_about() {
        let _ = writeln!(out, "{a}\n");
    }
    let args: Vec<_> = cmd
        .get_arguments()
        // The global options (hidden in help, listed by `berth --help`'s epilogue) at the
        // top only.
        .filter(|a| {
            if a.is_global_set() {
                path.len() == 1
            } else {
                !a.is_hide_set()
            }
        })
        .collect();
    if !args.is_empty() {
        for a in args {
            let mut name = String::new();
            if let Some(s) = a.get_short() {
                let _ = write!(name, "-{s}");
            }
            if let Some(l) = a.get_long() {
                if !name.is_empty() {
                    name.push_str(", ");
                }
                let _ = write!(name, "--{l}");
            }
            if name.is_empty() {
                name = a.get_id().to_string().to_uppercase();
            }
            let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
            let _ = writeln!(out, "- `{name}`: {help}");
        }
        out.push('\n');
    }
    for sub in cmd.get_subcommands() {
        walk(sub, path, out);
    }
    path.pop();
}
