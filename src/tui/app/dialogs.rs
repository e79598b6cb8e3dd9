//! The actions that write or look further than the cursor: snapshots, copy, blame, the
//! snapshot list, compaction, verify, and the mouse.

use super::{
    App, Effect, Goal, ListKind, ListRow, Listing, Load, MAX_COPY, Overlay, Pane, Scope, clean,
};
use crate::model::Target;
use crate::tui::action::Action;
use crate::tui::jobs::VerifyJob;
use crate::tui::ui;

impl App {
    // ---- actions with side effects -----------------------------------------------------

    pub(super) fn writable(&self, what: &str) -> anyhow::Result<()> {
        if self.read_only {
            anyhow::bail!("the database is open read-only: {what} is disabled");
        }
        Ok(())
    }

    pub(super) fn take_snapshot(&mut self, label: Option<String>) -> anyhow::Result<()> {
        self.writable("taking snapshots")?;
        let name = self.current_stream()?.name;
        self.snapshots_of = None;
        let snap = self.engine.take_snapshot(
            &name,
            Target::Version(self.cursor),
            "manual",
            label.as_deref(),
        )?;
        self.message = Some(format!(
            "snapshot taken at v{} ({} bytes{})",
            snap.version,
            snap.stored_size,
            label.map_or_else(String::new, |l| format!(", label {:?}", clean(&l)))
        ));
        Ok(())
    }

    /// What `y` copies and `Y` writes: the value under the state cursor, or the event at
    /// the cursor as an export line (on one line, or `pretty`); with what it is called, and a
    /// file name for it.
    fn copied(&mut self, pretty: bool) -> anyhow::Result<(String, String, String)> {
        self.settle_state_cursor();
        let stream = self.stream().map_or_else(String::new, |s| s.name.clone());
        let (what, text, name) = match self.focus {
            Pane::State => {
                let value = self.view.state.pointer(&self.state_path).ok_or_else(|| {
                    anyhow::anyhow!("nothing at {:?} to copy", clean(&self.state_path))
                })?;
                let path = if self.state_path.is_empty() {
                    "the state".to_string()
                } else {
                    clean(&self.state_path)
                };
                let name = format!(
                    "{stream}-v{}{}.json",
                    self.cursor,
                    self.state_path.replace('/', "-")
                );
                (path, serde_json::to_string_pretty(value)?, name)
            }
            Pane::Events => {
                let event = self
                    .view
                    .event
                    .as_ref()
                    .ok_or_else(|| anyhow::anyhow!("no event at v0 to copy"))?;
                let line = crate::jsonl::export_line(event);
                let text = if pretty {
                    serde_json::to_string_pretty(&line)?
                } else {
                    line.to_string()
                };
                (
                    format!("event v{}", event.version),
                    text,
                    format!("{stream}-event-v{}.json", event.version),
                )
            }
        };
        // Pasted later into a terminal, a raw control character (a C1 CSI, say) would drive
        // it: the clipboard gets the same JSON with those written as escapes.
        let text = crate::text::json_safe(&text);
        // A file name from a stream's name: letters, digits, `-`, `_` and `.` only.
        let name: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        Ok((what, text, name))
    }

    pub(super) fn copy(&mut self) -> anyhow::Result<()> {
        let (what, text, _) = self.copied(false)?;
        if text.len() > MAX_COPY {
            anyhow::bail!(
                "{what} is {} bytes: more than the clipboard takes ({MAX_COPY} bytes); Y writes it to a file",
                text.len()
            );
        }
        self.message = Some(match &self.copy_note {
            Some(note) => format!("copied {what} ({} bytes), but {note}", text.len()),
            None => format!("copied {what} ({} bytes)", text.len()),
        });
        self.effects.push(Effect::Copy(text));
        self.want = Load::Nothing;
        Ok(())
    }

    /// Enter: the value under the state cursor, or the event at the cursor, whole in the
    /// viewer.
    pub(super) fn open_viewer(&mut self) -> anyhow::Result<()> {
        // The event as JSON lines of its own, not one long line.
        let (what, text, _) = self.copied(true)?;
        let stream = self.stream().map_or_else(String::new, |s| clean(&s.name));
        self.overlay = Some(Overlay::Viewer(super::Viewer {
            title: format!(
                " {stream} · {what} @ v{} ",
                crate::model::group(self.cursor)
            ),
            text,
            top: 0,
            left: 0,
            wrap: false,
        }));
        self.want = Load::Nothing;
        Ok(())
    }

    /// `D`: the whole diff the diff pane shows, in the viewer.
    pub(super) fn open_diff(&mut self) -> anyhow::Result<()> {
        let view = &self.view;
        let text = if self.text_diff {
            view.text_diff.clone()
        } else {
            view.changes
                .iter()
                .map(crate::diff::Change::line)
                .collect::<Vec<_>>()
                .join("\n")
        };
        if text.is_empty() {
            anyhow::bail!("no changes to show");
        }
        self.overlay = Some(Overlay::Viewer(super::Viewer {
            title: format!(
                " Diff v{} → v{} ",
                crate::model::group(view.diff_from),
                crate::model::group(self.cursor)
            ),
            text: crate::text::json_safe(&text),
            top: 0,
            left: 0,
            wrap: false,
        }));
        self.want = Load::Nothing;
        Ok(())
    }

    /// Rows of text the viewer shows at the terminal's size.
    pub fn viewer_rows(&self) -> usize {
        usize::from(self.size.1.saturating_sub(1 + 2 + 1)).max(1)
    }

    pub(super) fn view_move(&mut self, step: super::ViewMove) {
        use super::ViewMove as M;
        self.want = Load::Nothing;
        let page = self.viewer_rows();
        let Some(Overlay::Viewer(viewer)) = &mut self.overlay else {
            return;
        };
        let lines = viewer.text.lines().count();
        let last = lines.saturating_sub(page);
        viewer.top = match step {
            M::Down => viewer.top + 1,
            M::Up => viewer.top.saturating_sub(1),
            M::PageDown => viewer.top + page,
            M::PageUp => viewer.top.saturating_sub(page),
            M::Top => 0,
            M::Bottom => last,
            _ => viewer.top,
        }
        .min(if viewer.wrap {
            lines.saturating_sub(1)
        } else {
            last
        });
        let widest = viewer
            .text
            .lines()
            .map(|l| l.chars().count())
            .max()
            .unwrap_or(0);
        match step {
            M::Left => viewer.left = viewer.left.saturating_sub(8),
            M::Right if !viewer.wrap => {
                viewer.left = (viewer.left + 8).min(widest.saturating_sub(8))
            }
            M::Wrap => {
                viewer.wrap = !viewer.wrap;
                viewer.left = 0;
            }
            _ => {}
        }
    }

    /// `v` and `E`: what the viewer shows (else what `y` copies) to `$PAGER` or `$EDITOR`.
    pub(super) fn page(&mut self, editor: bool) -> anyhow::Result<()> {
        let text = match &self.overlay {
            Some(Overlay::Viewer(viewer)) => viewer.text.clone(),
            _ => self.copied(true)?.1,
        };
        self.effects.push(Effect::Page { text, editor });
        self.want = Load::Nothing;
        Ok(())
    }

    /// `Y`: the prompt for a file to write what `y` copies to, with a name filled in.
    pub(super) fn prompt_write(&mut self) -> anyhow::Result<()> {
        let (_, _, name) = self.copied(false)?;
        self.prompt = Some(super::Prompt::new(super::PromptKind::WriteFile, name));
        self.want = Load::Nothing;
        Ok(())
    }

    /// Writes what `y` copies to a new file (an existing one is never written over).
    pub(super) fn write_file(&mut self, path: &str) -> anyhow::Result<()> {
        if path.is_empty() {
            anyhow::bail!("no file named: nothing written");
        }
        let (what, text, _) = self.copied(false)?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}; nothing written", clean(path)))?;
        use std::io::Write;
        file.write_all(text.as_bytes())
            .and_then(|()| file.write_all(b"\n"))
            .and_then(|()| file.sync_all())
            .map_err(|e| anyhow::anyhow!("{}: {e}", clean(path)))?;
        self.message = Some(format!(
            "wrote {what} to {} ({} bytes)",
            clean(path),
            text.len() + 1
        ));
        self.want = Load::Nothing;
        Ok(())
    }

    pub(super) fn blame(&mut self) -> anyhow::Result<()> {
        self.settle_state_cursor();
        let name = self.current_stream()?.name;
        let path = self.state_path.clone();
        let events = self
            .engine
            .blame(&name, &path, Target::Version(self.cursor))?;
        let shown = if path.is_empty() {
            "the state".to_string()
        } else {
            clean(&path)
        };
        let rows = events
            .iter()
            .map(|e| ListRow {
                text: format!(
                    "v{:<8} {:<12} {}",
                    crate::model::group(e.version),
                    self.time_text(e.ts),
                    clean(&e.kind)
                ),
                goal: Goal::Jump(name.clone(), e.version),
                alarm: false,
                pick: None,
            })
            .collect::<Vec<_>>();
        self.overlay = Some(Overlay::List(Listing {
            kind: ListKind::Blame,
            title: format!(" Blame {shown} ≤ v{} ", crate::model::group(self.cursor)),
            header: vec![format!(
                "{} events changed {shown}, newest first",
                rows.len()
            )],
            rows,
            selected: 0,
            hint: "Enter jumps · Esc closes".into(),
            armed: None,
        }));
        Ok(())
    }

    pub(super) fn list_snapshots(&mut self) -> anyhow::Result<()> {
        let stream = self.current_stream()?;
        let fingerprint = self
            .engine
            .reducer(&stream.reducer)?
            .fingerprint()
            .to_string();
        let snapshots = self.engine.store().snapshots(Some(stream.id))?;
        let rows = snapshots
            .iter()
            .rev()
            .map(|s| {
                // Loaded and checked now: a corrupt one says what is wrong with it.
                let problem = match self.engine.decode_snapshot(s, &s.fingerprint) {
                    Err(reason) => format!("  corrupt: {reason}"),
                    Ok(_) if s.fingerprint != fingerprint => "  stale (other reducer)".into(),
                    Ok(_) => String::new(),
                };
                let what = s.label.as_deref().map_or_else(
                    || s.trigger.clone(),
                    |l| format!("{} {:?}", s.trigger, clean(l)),
                );
                ListRow {
                    text: format!(
                        "v{:<8} {:<5} {:>9} B  {:<12} {}{}",
                        crate::model::group(s.version),
                        s.kind,
                        crate::model::group(s.stored_size),
                        self.time_text(s.ts),
                        clean(&what),
                        clean(&problem)
                    ),
                    goal: Goal::Jump(stream.name.clone(), s.version),
                    alarm: !problem.is_empty(),
                    pick: None,
                }
            })
            .collect::<Vec<_>>();
        let bytes: u64 = snapshots.iter().map(|s| s.stored_size).sum();
        let writes = if self.read_only { "" } else { " · x drops" };
        self.overlay = Some(Overlay::List(Listing {
            kind: ListKind::Snapshots,
            title: format!(" Snapshots of {} ", clean(&stream.name)),
            header: vec![format!(
                "{} snapshots, {} bytes, newest first",
                rows.len(),
                crate::model::group(bytes)
            )],
            rows,
            selected: 0,
            hint: format!("Enter jumps{writes} · Esc closes"),
            armed: None,
        }));
        Ok(())
    }

    /// The rules the compaction dialog uses: the stream's retention policy, or a ladder
    /// (dense near the head, sparse far back) that drops stale snapshots.
    pub(super) fn compaction_rules(
        &self,
        stream: &str,
    ) -> anyhow::Result<(crate::model::Rules, String)> {
        let policy = self.engine.policy_of(Some(stream))?;
        Ok(match policy.keep {
            Some(rules) if rules != crate::model::Rules::default() => {
                let text = serde_json::to_string(&rules)?;
                (rules, format!("the retention policy {text}"))
            }
            _ => (
                crate::model::Rules {
                    ladder: true,
                    drop_stale: true,
                    ..crate::model::Rules::default()
                },
                "a ladder (no retention policy is set), dropping stale snapshots".to_string(),
            ),
        })
    }

    pub(super) fn plan_compaction(&mut self) -> anyhow::Result<()> {
        self.writable("compaction")?;
        let name = self.current_stream()?.name;
        let (rules, how) = self.compaction_rules(&name)?;
        let plan = crate::snapshot::compact::compact(&mut self.engine, Some(&name), &rules, true)?;
        let step = |what: &str, s: &crate::snapshot::compact::Step, pick: Option<bool>| ListRow {
            text: format!(
                "{what:<6} v{:<8} {:<5} {:>9} B  {}{}",
                crate::model::group(s.version),
                s.kind,
                crate::model::group(s.stored_size),
                clean(&s.reason),
                s.label
                    .as_deref()
                    .map_or_else(String::new, |l| format!("  label {:?}", clean(l)))
            ),
            goal: Goal::Jump(s.stream.clone(), s.version),
            alarm: false,
            pick,
        };
        // What the rules drop comes selected; a labelled snapshot they would drop is listed
        // and left out unless the user selects it; rebases follow from what goes.
        let rows: Vec<ListRow> = (plan.drop.iter().map(|s| step("drop", s, Some(true))))
            .chain(
                plan.kept_labelled
                    .iter()
                    .map(|s| step("keep", s, Some(false))),
            )
            .chain(plan.rebase.iter().map(|s| step("rebase", s, None)))
            .collect();
        let mut listing = Listing {
            kind: ListKind::Compact,
            title: format!(" Compact {} (dry run) ", clean(&name)),
            header: vec![
                format!("rules: {}", clean(&how)),
                format!(
                    "drops {}, rebases {}, keeps {} ({} labelled), frees {} bytes",
                    plan.drop.len(),
                    plan.rebase.len(),
                    plan.kept,
                    plan.kept_labelled.len(),
                    crate::model::group(plan.bytes_freed)
                ),
            ],
            rows,
            selected: 0,
            hint: String::new(),
            armed: None,
        };
        compaction_hint(&mut listing);
        self.overlay = Some(Overlay::List(listing));
        Ok(())
    }

    /// Space on a compaction row: selects it or leaves it out.
    pub(super) fn toggle_row(&mut self) -> anyhow::Result<()> {
        self.want = Load::Nothing;
        let Some(Overlay::List(list)) = &mut self.overlay else {
            return Ok(());
        };
        match list.rows.get_mut(list.selected).map(|r| &mut r.pick) {
            Some(Some(chosen)) => *chosen = !*chosen,
            Some(None) => {
                anyhow::bail!("a rebase follows from what is dropped: it is not chosen itself")
            }
            None => {}
        }
        compaction_hint(list);
        Ok(())
    }

    /// `x` in the snapshot list: once arms the row, twice drops its snapshot.
    pub(super) fn drop_row(&mut self) -> anyhow::Result<()> {
        self.want = Load::Nothing;
        let read_only = self.writable("dropping snapshots");
        let Some(Overlay::List(list)) = &mut self.overlay else {
            return Ok(());
        };
        if list.kind != ListKind::Snapshots {
            anyhow::bail!("x drops a snapshot in the snapshot list (S)");
        }
        let Some(ListRow {
            goal: Goal::Jump(stream, version),
            ..
        }) = list.rows.get(list.selected).cloned()
        else {
            return Ok(());
        };
        read_only?;
        if list.armed != Some(list.selected) {
            list.armed = Some(list.selected);
            self.message = Some(format!(
                "x again drops the snapshot at v{version}; any other key keeps it"
            ));
            return Ok(());
        }
        let selected = list.selected;
        self.snapshots_of = None;
        self.markers_of.clear();
        let plan = crate::snapshot::compact::drop_chosen(&mut self.engine, &stream, &[version])?;
        self.list_snapshots()?;
        if let Some(Overlay::List(list)) = &mut self.overlay {
            list.selected = selected.min(list.rows.len().saturating_sub(1));
        }
        self.message = Some(format!(
            "dropped the snapshot at v{version}{}",
            match plan.rebase.len() {
                0 => String::new(),
                n => format!("; {n} delta(s) built on it rewritten as full snapshots"),
            }
        ));
        self.want = Load::Everything;
        Ok(())
    }

    pub(super) fn activate(&mut self) -> anyhow::Result<()> {
        let Some(Overlay::List(list)) = self.overlay.clone() else {
            return Ok(());
        };
        if list.kind == ListKind::Compact {
            let chosen: Vec<u64> = list
                .rows
                .iter()
                .filter(|r| r.pick == Some(true))
                .filter_map(|r| match &r.goal {
                    Goal::Jump(_, version) => Some(*version),
                    Goal::None => None,
                })
                .collect();
            if list.rows.is_empty() {
                self.overlay = None;
                return Ok(());
            }
            if chosen.is_empty() {
                anyhow::bail!("nothing is selected: Space selects a row, Esc cancels");
            }
            self.writable("compaction")?;
            self.overlay = None;
            let name = self.current_stream()?.name;
            self.snapshots_of = None;
            self.markers_of.clear();
            let plan = crate::snapshot::compact::drop_chosen(&mut self.engine, &name, &chosen)?;
            self.message = Some(format!(
                "compacted {}: dropped {}, rebased {}, freed {} bytes",
                clean(&name),
                plan.drop.len(),
                plan.rebase.len(),
                crate::model::group(plan.bytes_freed)
            ));
            return Ok(());
        }
        if let Some(ListRow {
            goal: Goal::Jump(stream, version),
            ..
        }) = list.rows.get(list.selected)
        {
            self.overlay = None;
            self.scope = Scope::Stream;
            self.seq = None;
            self.jump(stream, *version)?;
        }
        Ok(())
    }

    pub(super) fn start_verify(&mut self) -> anyhow::Result<()> {
        if self.job.is_some() {
            anyhow::bail!("verify is already running");
        }
        let path = self
            .engine
            .store()
            .path()
            .map(std::path::Path::to_path_buf)
            .ok_or_else(|| anyhow::anyhow!("verify needs a database file"))?;
        let source = self.source.as_ref().map(|s| s.path.clone());
        self.job = Some(VerifyJob::start(path, source, self.now)?);
        if self.deterministic {
            self.finish_jobs()?;
        }
        self.want = Load::Nothing;
        Ok(())
    }

    /// Waits for the background job, if any, and shows its outcome (for `rewind render` and
    /// tests, where nothing may depend on timing).
    pub fn finish_jobs(&mut self) -> anyhow::Result<()> {
        if let Some(job) = self.job.take() {
            let report = job.wait();
            self.show_report(report)?;
        }
        Ok(())
    }

    pub(super) fn poll_job(&mut self) -> anyhow::Result<()> {
        self.want = Load::Nothing;
        if self.counting() {
            self.count_matches(Some(std::time::Duration::from_millis(8)))?;
        }
        self.summarise_pending()?;
        if self.job.as_ref().is_some_and(VerifyJob::is_finished) {
            self.finish_jobs()?;
            self.want = Load::Everything;
        }
        Ok(())
    }

    pub(super) fn show_report(
        &mut self,
        report: anyhow::Result<crate::snapshot::verify::Report>,
    ) -> anyhow::Result<()> {
        let report = report?;
        self.findings = report
            .findings
            .iter()
            .filter(|f| !f.stream.is_empty())
            .map(|f| f.stream.clone())
            .collect();
        self.markers_of.clear();
        let rows: Vec<ListRow> = report
            .findings
            .iter()
            .map(|f| ListRow {
                text: format!(
                    "{:<16} {:<10} {:?}: {}",
                    clean(&f.stream),
                    f.version
                        .map_or_else(String::new, |v| format!("v{}", crate::model::group(v))),
                    f.kind,
                    clean(&f.detail)
                ),
                goal: match f.version {
                    Some(v) if !f.stream.is_empty() => Goal::Jump(f.stream.clone(), v),
                    _ => Goal::None,
                },
                alarm: true,
                pick: None,
            })
            .collect();
        let header = vec![format!(
            "{} streams, {} snapshots, {} events replayed: {}",
            crate::model::group(report.streams as u64),
            crate::model::group(report.snapshots as u64),
            crate::model::group(report.events),
            if rows.is_empty() {
                "no findings".to_string()
            } else {
                format!("{} findings", rows.len())
            }
        )];
        self.overlay = Some(Overlay::List(Listing {
            kind: ListKind::Findings,
            title: " Verify ".into(),
            header,
            rows,
            selected: 0,
            hint: "Enter jumps · Esc closes".into(),
            armed: None,
        }));
        Ok(())
    }

    pub(super) fn click(&mut self, x: u16, y: u16, action: Action) -> anyhow::Result<()> {
        let areas = self.areas();
        let at = (x, y).into();
        if areas.timeline.contains(at) {
            let inner = ui::inner(areas.timeline);
            let Some(density) = self.view.density.clone() else {
                return Ok(());
            };
            let col = x.clamp(inner.x, inner.x + inner.width.max(1) - 1) - inner.x;
            let ts = crate::tui::panes::timeline::time_at(density.span, inner.width, col);
            match self.scope {
                Scope::Stream => {
                    let stream = self.current_stream()?;
                    let v = self.engine.resolve(&stream, Target::Time(ts))?;
                    self.go(v.max(1).min(stream.head))?;
                }
                Scope::All => {
                    if let Some(seq) = self.engine.store().seq_at_time(ts)?
                        && let Some(event) = self.engine.store().event_at_seq(seq)?
                    {
                        self.go_event(&event)?;
                    }
                }
            }
            return Ok(());
        }
        if action != Action::Click(x, y) {
            return Ok(());
        }
        let inner = |r| ui::inner(r);
        if inner(areas.events).contains(at) {
            let row = usize::from(y - inner(areas.events).y);
            if let Some(event) = self.view.events.get(row).cloned() {
                self.focus = Pane::Events;
                self.go_event(&event)?;
            }
        } else if inner(areas.state).contains(at) {
            let row = usize::from(y - inner(areas.state).y);
            let target = self.view.tree.top + row;
            let by = i64::try_from(target).unwrap_or(0)
                - i64::try_from(self.view.tree.cursor).unwrap_or(0);
            self.move_state(by)?;
        } else if inner(areas.streams).contains(at) {
            let row = usize::from(y - inner(areas.streams).y);
            let i = crate::tui::panes::streams::first_row(
                self.selected,
                usize::from(inner(areas.streams).height),
            ) + row;
            if i < self.streams.len() && i != self.selected {
                self.select_stream(i);
                self.scope = Scope::Stream;
                self.seq = None;
            }
        }
        Ok(())
    }
}

/// The compaction list's hint: what Enter drops, counted.
fn compaction_hint(list: &mut Listing) {
    let chosen = list.rows.iter().filter(|r| r.pick == Some(true)).count();
    list.hint = if list.rows.is_empty() {
        "nothing to do · Esc closes".into()
    } else {
        format!("Space selects · Enter drops {chosen} selected · Esc cancels")
    };
}
