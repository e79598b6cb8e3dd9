//! `maintain`: one tick of the policy (snapshots due by time, expiry, retention), every
//! decision recorded in the maintenance log; and the lease that keeps two maintainers from
//! running at once. Time is passed in, so a tick is a function of the database and `now`.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::model::{Micros, Rules};
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
        let report = crate::snapshot::archive::archive(engine, older_than, now)?;
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
    /// The holder, e.g. `host pid 4711`.
    pub owner: String,
    /// When it lapses unless renewed, µs since the epoch.
    pub until: Micros,
}

const LEASE_KEY: &str = "maintainer_lease";

/// When the last tick ran (µs), so a schedule fires once however often maintain ticks.
const LAST_TICK_KEY: &str = "last_tick_at";

/// Takes or renews the lease for `ttl` µs from `now`. `Ok(Err(holder))` when another owner
/// holds an unexpired lease; a lease left by a killed maintainer lapses and is taken over.
pub fn acquire(
    engine: &mut Engine,
    owner: &str,
    now: Micros,
    ttl: Micros,
) -> Result<std::result::Result<Lease, Lease>> {
    engine.write(|engine| {
        if let Some(text) = engine.store().meta(LEASE_KEY)? {
            let held: Lease = serde_json::from_str(&text)
                .map_err(|e| Error::Input(format!("meta {LEASE_KEY}: {e}")))?;
            if held.owner != owner && held.until > now {
                return Ok(Err(held));
            }
        }
        let lease = Lease {
            owner: owner.to_string(),
            until: now.saturating_add(ttl),
        };
        let text = serde_json::to_string(&lease).map_err(|e| Error::Input(e.to_string()))?;
        engine.store().set_meta(LEASE_KEY, &text)?;
        Ok(Ok(lease))
    })
}

/// Gives the lease up, if `owner` holds it.
pub fn release(engine: &mut Engine, owner: &str) -> Result<()> {
    engine.write(|engine| {
        let mine = engine
            .store()
            .meta(LEASE_KEY)?
            .and_then(|text| serde_json::from_str::<Lease>(&text).ok())
            .is_some_and(|l| l.owner == owner);
        if mine {
            engine.store().set_meta(
                LEASE_KEY,
                &serde_json::to_string(&Lease {
                    owner: String::new(),
                    until: 0,
                })
                .unwrap_or_default(),
            )?;
        }
        Ok(())
    })
}
