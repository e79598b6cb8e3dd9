//! `maintain`: one tick of the policy (snapshots due by time, expiry, retention), every
//! decision recorded in the maintenance log; and the lease that keeps two maintainers from
//! running at once. Time is passed in, so a tick is a function of the database and `now`;
//! the lease also asks /proc (through [`crate::process`]) whether its holder still runs.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::model::{Micros, Rules};
use crate::process::Process;
use crate::snapshot::compact::compact;

/// One thing a tick did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// The stream, or empty for the whole database.
    pub stream: String,
    /// `snapshot`, `expire` or `retain`.
    pub action: String,
    /// The version snapshotted, if any.
    pub version: Option<u64>,
    /// Why, in words.
    pub detail: String,
}

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Tick {
    /// Snapshots taken because their time window passed.
    pub taken: usize,
    /// Snapshots removed because they expired.
    pub expired: usize,
    /// Snapshots removed by retention rules.
    pub retained_out: usize,
    /// Events moved to the archive.
    pub archived: u64,
    /// Each decision.
    pub decisions: Vec<Decision>,
    /// Time taken, µs.
    pub elapsed_us: u64,
}

/// Runs the policy once at instant `now` (µs, the database's clock in real use). A second
/// tick right after finds nothing to do.
pub fn tick(engine: &mut Engine, now: Micros) -> Result<Tick> {
    let started = Instant::now();
    let mut out = Tick::default();
    let streams = engine.store().streams()?;
    let last_tick: Micros = engine
        .store()
        .meta(LAST_TICK_KEY)?
        .and_then(|t| t.parse().ok())
        .unwrap_or(i64::MIN);
    let mut retention = Vec::new();
    for stream in &streams {
        let policy = engine.policy_of(Some(&stream.name))?;
        if let Some(rules) = policy.keep.clone().filter(|r| *r != Rules::default()) {
            retention.push((stream.name.clone(), rules));
        }
        // A time-driven snapshot is due only if the stream was written to since its last one:
        // by schedule, when one fired since the later of that snapshot and the last tick; by
        // window, when the window has passed since it (or since the stream began).
        let (last_version, snapped) = engine
            .store()
            .last_snapshot(stream.id)?
            .unwrap_or((0, stream.created_at));
        if stream.head == last_version {
            continue;
        }
        let mut due = None;
        for text in policy.schedules.iter().flatten() {
            let cron = crate::time::parse_cron(text)
                .map_err(|e| Error::Input(format!("policy of {:?}: {e}", stream.name)))?;
            if crate::time::cron_fires(&cron, snapped.max(last_tick), now) {
                due = Some(("schedule", format!("schedule {text:?} fired")));
                break;
            }
        }
        if due.is_none()
            && policy
                .every_time_us
                .is_some_and(|window| now.saturating_sub(snapped) >= window)
        {
            due = Some(("time", "window passed".to_string()));
        }
        if let Some((trigger, why)) = due {
            let snap = engine.take_policy_snapshot(&stream.name, trigger)?;
            out.taken += 1;
            out.decisions.push(Decision {
                stream: stream.name.clone(),
                action: "snapshot".into(),
                version: Some(snap.version),
                detail: format!(
                    "{why}, {} events since v{last_version}",
                    stream.head - last_version
                ),
            });
        }
    }
    if engine.store().expired_snapshots(now)? > 0 {
        let plan = compact(
            engine,
            None,
            &Rules {
                expired_at: Some(now),
                ..Rules::default()
            },
            false,
        )?;
        out.expired = plan.drop.len();
        out.decisions.extend(plan.drop.iter().map(|s| Decision {
            stream: s.stream.clone(),
            action: "expire".into(),
            version: Some(s.version),
            detail: s.reason.clone(),
        }));
    }
    for (name, rules) in retention {
        let plan = compact(engine, Some(&name), &rules, false)?;
        out.retained_out += plan.drop.len();
        out.decisions.extend(plan.drop.iter().map(|s| Decision {
            stream: s.stream.clone(),
            action: "retain".into(),
            version: Some(s.version),
            detail: s.reason.clone(),
        }));
    }
    if let Some(older_than) = engine.own_policy(None)?.archive_after_us {
        let report = match crate::snapshot::archive::archive(engine, older_than, now) {
            // Another run is moving the same history: this tick leaves it to that one.
            Err(crate::error::Error::ArchiveBusy(runner)) => {
                out.decisions.push(Decision {
                    stream: String::new(),
                    action: "archive".into(),
                    version: None,
                    detail: format!("skipped: another archive run ({runner}) is under way"),
                });
                crate::snapshot::archive::Report::default()
            }
            other => other?,
        };
        out.archived = report.events;
        out.decisions.extend(report.moved.iter().map(|m| Decision {
            stream: m.stream.clone(),
            action: "archive".into(),
            version: Some(m.upto),
            detail: format!("versions {}..={} moved to the archive", m.from + 1, m.upto),
        }));
    }
    out.elapsed_us = crate::engine::elapsed_us(started);
    let detail = serde_json::json!({"taken": out.taken, "expired": out.expired, "retained_out": out.retained_out, "archived": out.archived, "decisions": out.decisions});
    engine.write(|engine| {
        engine.store().set_meta(LAST_TICK_KEY, &now.to_string())?;
        engine.store().log("tick", None, &detail, out.elapsed_us)
    })?;
    Ok(out)
}

/// Who holds the maintainer lease, and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The maintainer holding it.
    #[serde(flatten)]
    pub holder: Process,
    /// When it lapses unless renewed, µs since the epoch.
    pub until: Micros,
}

/// Why a lease held by another maintainer was taken over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vacated {
    /// Its holder ran on this host and is no longer running (killed, or the machine
    /// rebooted).
    Gone,
    /// It lapsed: its holder stopped renewing it.
    Lapsed,
}

/// What [`acquire`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The lease is the caller's now: it was free, released, or already the caller's.
    Held(Lease),
    /// The lease is the caller's now, taken over from another maintainer.
    TookOver {
        /// The caller's lease.
        lease: Lease,
        /// The lease it replaced.
        from: Lease,
        /// Why that one could be taken.
        because: Vacated,
    },
    /// Another maintainer holds the lease; it is the one shown.
    Refused(Lease),
}

const LEASE_KEY: &str = "maintainer_lease";

/// When the last tick ran (µs), so a schedule fires once however often maintain ticks.
const LAST_TICK_KEY: &str = "last_tick_at";

/// The lease as stored, if any.
fn stored_lease(engine: &Engine) -> Result<Option<Lease>> {
    engine
        .store()
        .meta(LEASE_KEY)?
        .map(|text| {
            serde_json::from_str(&text).map_err(|e| Error::Input(format!("meta {LEASE_KEY}: {e}")))
        })
        .transpose()
}

/// Takes or renews the lease for `me` (normally [`Process::current`]) for `ttl` µs from
/// `now`. A lease held by another maintainer is taken over at once if `me` knows its holder
/// is gone (same host, see [`Process::knows_gone`]), and otherwise only once it lapses.
pub fn acquire(engine: &mut Engine, me: &Process, now: Micros, ttl: Micros) -> Result<Claim> {
    engine.write(|engine| {
        let previous = stored_lease(engine)?;
        let lease = Lease {
            holder: me.clone(),
            until: now.saturating_add(ttl),
        };
        let over = match previous {
            Some(held) if held.holder != *me => {
                if me.knows_gone(&held.holder) {
                    Some((held, Vacated::Gone))
                } else if held.until > now {
                    return Ok(Claim::Refused(held));
                } else if held.holder.pid == 0 {
                    // Written by an earlier rewind, which named no process (and left an empty
                    // holder when it released the lease): nobody to report.
                    None
                } else {
                    Some((held, Vacated::Lapsed))
                }
            }
            _ => None,
        };
        let text = serde_json::to_string(&lease).map_err(|e| Error::Input(e.to_string()))?;
        engine.store().set_meta(LEASE_KEY, &text)?;
        Ok(match over {
            Some((from, because)) => Claim::TookOver {
                lease,
                from,
                because,
            },
            None => Claim::Held(lease),
        })
    })
}

/// Gives the lease up if `me` holds it, so the next maintainer need not wait for it to
/// lapse; says whether it did.
pub fn release(engine: &mut Engine, me: &Process) -> Result<bool> {
    engine.write(|engine| {
        let mine = stored_lease(engine)
            .ok()
            .flatten()
            .is_some_and(|lease| lease.holder == *me);
        if mine {
            engine.store().delete_meta(LEASE_KEY)?;
        }
        Ok(mine)
    })
}
