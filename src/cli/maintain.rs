//! Subcommands of the snapshot policy: policy (show and set) and maintain (one tick, or
//! `--watch` under the maintainer lease).

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use super::output::{clean, json, stdout};
use super::signals::{Signal, Stop};
use super::{DbArg, JsonFlag};
use crate::engine::Policy;
use crate::model::{Rules, group};
use crate::process::Process;
use crate::snapshot::maintain::{self, Claim, Vacated};
use crate::store::OpenMode;

/// `rewind policy`.
#[derive(Debug, Args)]
pub struct PolicyArgs {
    #[command(flatten)]
    db: DbArg,
    /// A stream's own policy instead of the database's.
    #[arg(long)]
    stream: Option<String>,
    /// Snapshot every N events (0: never by count).
    #[arg(long, value_name = "N")]
    every: Option<u64>,
    /// Snapshot once the events since the last one hold this many bytes.
    #[arg(long, value_name = "BYTES")]
    bytes: Option<u64>,
    /// Snapshot at the first event of each hour, day or month.
    #[arg(long, value_name = "BUCKET", value_parser = super::bucket_parser())]
    per: Option<crate::model::Bucket>,
    /// `maintain` snapshots a stream this long after its last snapshot if it was written to
    /// since, e.g. 1h.
    #[arg(long, value_name = "DURATION", value_parser = crate::time::parse_duration)]
    every_time: Option<crate::model::Micros>,
    /// One policy snapshot in K is full, the rest deltas.
    #[arg(long, value_name = "K")]
    full_every: Option<u64>,
    /// Policy snapshots expire this long after they are taken, e.g. 30d.
    #[arg(long, value_name = "DURATION", value_parser = crate::time::parse_duration)]
    expire_after: Option<crate::model::Micros>,
    /// Retention for `maintain`: keep the newest N snapshots of each stream.
    #[arg(long, value_name = "N")]
    keep_last: Option<usize>,
    /// Retention for `maintain`: keep the newest snapshot of each hour, day or month.
    #[arg(long, value_name = "BUCKET", value_parser = super::bucket_parser())]
    keep_per: Option<crate::model::Bucket>,
    /// Retention for `maintain`: keep a logarithmic ladder.
    #[arg(long)]
    ladder: bool,
    /// `maintain` archives events older than this (e.g. 90d); a database setting.
    #[arg(long, value_name = "DURATION", conflicts_with = "stream", value_parser = crate::time::parse_duration)]
    archive_after: Option<crate::model::Micros>,
    /// A cron schedule (UTC, e.g. "0 * * * *"): `maintain` snapshots streams written to since
    /// it fired. Repeat for several.
    #[arg(long, value_name = "CRON")]
    schedule: Vec<String>,
    /// Forget this policy (a stream then follows the database's; the database the defaults).
    #[arg(long, conflicts_with_all = ["every", "bytes", "per", "every_time", "full_every", "expire_after", "keep_last", "keep_per", "ladder", "schedule", "archive_after"])]
    reset: bool,
    #[command(flatten)]
    json: JsonFlag,
}

pub(super) fn policy(args: &PolicyArgs) -> Result<()> {
    let mut engine = super::open(&args.db, OpenMode::Existing)?;
    if let Some(name) = &args.stream {
        engine.store().require_stream(name)?;
    }
    let stream = args.stream.as_deref();
    let own = if args.reset {
        Policy::default()
    } else {
        engine.own_policy(stream)?
    };
    let changes = Policy {
        every: args.every,
        bytes: args.bytes,
        per: args.per,
        every_time_us: args.every_time,
        full_every: args.full_every,
        expire_after_us: args.expire_after,
        archive_after_us: args.archive_after,
        schedules: if args.schedule.is_empty() {
            None
        } else {
            for text in &args.schedule {
                crate::time::parse_cron(text).map_err(anyhow::Error::msg)?;
            }
            Some(args.schedule.clone())
        },
        keep: (args.keep_last.is_some() || args.keep_per.is_some() || args.ladder).then(|| Rules {
            keep_last: args.keep_last,
            keep_per: args.keep_per,
            ladder: args.ladder,
            ..Rules::default()
        }),
    };
    if args.reset || changes != Policy::default() {
        let updated = changes.over(&own);
        engine.write(|engine| engine.set_policy(stream, &updated))?;
    }
    let effective = engine.policy_of(stream)?;
    let resolved = effective.resolve();
    let mut out = stdout();
    if args.json.json {
        return json(
            &mut out,
            &serde_json::json!({"stream": stream, "policy": effective}),
        );
    }
    let whose = stream.map_or_else(
        || "the database".to_string(),
        |s| format!("stream {}", clean(s, 60)),
    );
    writeln!(out, "policy of {whose}:")?;
    let every = if resolved.every == 0 {
        "never".into()
    } else {
        format!("every {} events", group(resolved.every))
    };
    let bytes = resolved.fixed_bytes.map_or_else(
        || "a quarter of the last snapshot (at least 64 KiB)".into(),
        |b| format!("{} bytes", group(b)),
    );
    writeln!(out, "  snapshot:   {every}, or after {bytes} of events")?;
    if let Some(b) = effective.per {
        writeln!(
            out,
            "              and at the first event of each {}",
            serde_json::to_value(b)?.as_str().unwrap_or("?")
        )?;
    }
    if let Some(t) = effective.every_time_us {
        writeln!(
            out,
            "  maintain:   snapshot {} after the last one if written to since",
            crate::time::format_duration(t)
        )?;
    }
    writeln!(
        out,
        "  deltas:     one snapshot in {} is full",
        resolved.full_every.max(1)
    )?;
    if let Some(t) = effective.expire_after_us {
        writeln!(
            out,
            "  expiry:     policy snapshots expire after {}",
            crate::time::format_duration(t)
        )?;
    }
    if let Some(t) = effective.archive_after_us {
        writeln!(
            out,
            "  archive:    events older than {} (up to a snapshot that covers them)",
            crate::time::format_duration(t)
        )?;
    }
    if let Some(schedules) = &effective.schedules {
        writeln!(
            out,
            "  schedules:  {} (UTC)",
            schedules
                .iter()
                .map(|s| clean(s, 60))
                .collect::<Vec<_>>()
                .join(", ")
        )?;
    }
    if let Some(keep) = &effective.keep {
        writeln!(out, "  retention:  {}", serde_json::to_string(keep)?)?;
    }
    out.flush()?;
    Ok(())
}

/// `rewind maintain`.
#[derive(Debug, Args)]
#[command(after_long_help = MAINTAIN_HELP)]
pub struct MaintainArgs {
    #[command(flatten)]
    db: DbArg,
    /// Keep ticking every interval, holding the maintainer lease (a second maintainer waits,
    /// looking at the lease again every 5s).
    #[arg(long)]
    watch: bool,
    /// With --watch, how long between ticks, e.g. 60s; the lease is held for three.
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = crate::time::parse_duration)]
    interval: crate::model::Micros,
    #[command(flatten)]
    json: JsonFlag,
}

const MAINTAIN_HELP: &str = "\
The lease: a maintainer holds a lease in the database while it ticks, renewed at every tick \
for three intervals, so that two never run at once, and gives it up when it exits. A lease \
whose holder ran on this host and is no longer running (killed, or the machine rebooted) is \
taken over at once; any other only once it lapses, as always for a holder on another host.

Stopping: Ctrl-C or SIGTERM lets the tick under way finish (with --watch, it ends the wait for \
the next one at once), releases the lease and exits: 130 after Ctrl-C, as a shell reports an \
interrupted command, and 0 after SIGTERM, the orderly stop that systemd or docker ask for. A \
second Ctrl-C or SIGTERM stops it at once (130 or 143); its lease is then taken over like a \
killed one's.";

pub(super) fn maintain(args: &MaintainArgs) -> Result<ExitCode> {
    let mut engine = super::open(&args.db, OpenMode::Existing)?;
    let me = Process::current();
    let stop = Stop::install("the tick under way")?;
    let outcome = maintain_under_lease(&mut engine, &me, args, &stop);
    // The lease goes on every way out (done, stopped, failed), so nobody has to wait for it.
    let released = maintain::release(&mut engine, &me);
    let stopped_by = outcome?;
    let released = released?;
    let Some(signal) = stopped_by else {
        return Ok(ExitCode::SUCCESS);
    };
    eprintln!(
        "stopped by {}{}",
        signal.name(),
        if released {
            "; the lease is released"
        } else {
            ""
        }
    );
    Ok(match signal {
        Signal::Interrupt => ExitCode::from(130),
        Signal::Terminate => ExitCode::SUCCESS,
    })
}

/// How often a maintainer that waits for the lease looks at it again, µs.
const RECHECK_US: crate::model::Micros = 5_000_000;

/// Ticks (once, or every interval with --watch) while holding the lease; returns the signal
/// that stopped it, if one did.
fn maintain_under_lease(
    engine: &mut crate::Engine,
    me: &Process,
    args: &MaintainArgs,
    stop: &Stop,
) -> Result<Option<Signal>> {
    let interval = args.interval;
    let mut waiting_for = None;
    loop {
        let now = engine.store().now_us()?;
        let mut wait = interval;
        match maintain::acquire(engine, me, now, interval.saturating_mul(3))? {
            Claim::Refused(held) if !args.watch => {
                anyhow::bail!(
                    "another maintainer, {}, holds the lease until {}",
                    clean(&held.holder.to_string(), 80),
                    crate::time::format(held.until)
                );
            }
            Claim::Refused(held) => {
                if waiting_for.as_ref() != Some(&held.holder) {
                    eprintln!(
                        "waiting: {} holds the lease until {}",
                        clean(&held.holder.to_string(), 80),
                        crate::time::format(held.until)
                    );
                    waiting_for = Some(held.holder);
                }
                // Look again soon, so that a holder that exits or is killed is followed at
                // once, not an interval later; and when the lease lapses.
                wait = wait.min(RECHECK_US).min(held.until.saturating_sub(now));
            }
            claim => {
                waiting_for = None;
                if let Claim::TookOver { from, because, .. } = &claim {
                    let why = match because {
                        Vacated::Gone => "which is no longer running".to_string(),
                        Vacated::Lapsed => {
                            format!("which lapsed at {}", crate::time::format(from.until))
                        }
                    };
                    eprintln!(
                        "taking over the lease of {}, {why}",
                        clean(&from.holder.to_string(), 80)
                    );
                }
                let tick = maintain::tick(engine, now)?;
                print_tick(args, now, &tick)?;
                if !args.watch {
                    return Ok(stop.pending());
                }
            }
        }
        let wait = std::time::Duration::from_micros(u64::try_from(wait).unwrap_or(0));
        if let Some(signal) = stop.wait(wait) {
            return Ok(Some(signal));
        }
    }
}

/// Prints what a tick did, as a table or JSON.
fn print_tick(args: &MaintainArgs, now: crate::model::Micros, tick: &maintain::Tick) -> Result<()> {
    let mut out = stdout();
    if args.json.json {
        return json(&mut out, tick);
    }
    writeln!(
        out,
        "{} tick: {} snapshots taken, {} expired, {} removed by retention, {} events archived",
        crate::time::format(now),
        tick.taken,
        tick.expired,
        tick.retained_out,
        tick.archived
    )?;
    for d in &tick.decisions {
        let at = d
            .version
            .map_or_else(String::new, |v| format!(" v{}", group(v)));
        writeln!(
            out,
            "  {} {}{at}: {}",
            d.action,
            clean(&d.stream, 60),
            clean(&d.detail, 120)
        )?;
    }
    out.flush()?;
    Ok(())
}
