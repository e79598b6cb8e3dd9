//! `rewind demo`: build the demo database once and say where it is and what it holds.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::output::{json, stdout};
use crate::model::group;

/// `rewind demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to keep the demo database (default: the user's data directory).
    #[arg(long)]
    path: Option<PathBuf>,
    /// Build it again even if an up-to-date one exists.
    #[arg(long)]
    rebuild: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// Only build and print; do not open the debugger (it opens only on a terminal anyway).
    #[arg(long)]
    no_open: bool,
}

pub(super) fn run(args: &DemoArgs) -> Result<()> {
    let path = match &args.path {
        Some(p) => p.clone(),
        None => crate::demo::default_path()?,
    };
    let summary = crate::demo::ensure(&path, args.rebuild)?;
    let mut out = stdout();
    if args.json {
        return json(&mut out, &summary);
    }
    let db = path.display();
    let verb = if summary.built { "built" } else { "up to date" };
    writeln!(out, "demo database: {db} ({verb})")?;
    writeln!(
        out,
        "{} events in {} streams, {} snapshots:",
        group(summary.events),
        group(summary.streams),
        group(summary.snapshots)
    )?;
    writeln!(
        out,
        "  order-1001 … order-2200  order workflows: placed → paid → packed → shipped → delivered (merge)"
    )?;
    writeln!(
        out,
        "  inventory                stock reserved and shipped by those orders (JSON Patch)"
    )?;
    writeln!(
        out,
        "  account-ACC-100{{1,2,3}}   bank accounts, domain events reduced by a jq filter"
    )?;
    writeln!(
        out,
        "  agent-run-6, agent-run-7 AI-agent checkpoints (replace); run 7 crashed mid-task"
    )?;
    writeln!(
        out,
        "try (`rewind` as `cargo install --path .` installs it; `cargo run --release --` before):"
    )?;
    for cmd in [
        "streams {db}",
        "state {db} agent-run-7",
        "diff {db} agent-run-7",
        "blame {db} order-1042 /status",
        "state {db} account-ACC-1001 --at-time 2026-03-20T00:00:00Z",
    ] {
        writeln!(out, "  rewind {}", cmd.replace("{db}", &db.to_string()))?;
    }
    out.flush()?;
    drop(out);
    use std::io::IsTerminal;
    if !args.no_open && std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
        // It opens on the story the README tells: the agent run that crashed.
        return super::tui::open_path(&path, Some(crate::demo::CRASHED));
    }
    Ok(())
}
