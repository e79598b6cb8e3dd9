//! What the debugger remembers between runs, in one small JSON file beside the user's
//! settings (`$REWIND_CONFIG_DIR`, else the config directory): what was typed at each prompt
//! (Up and Down recall it) and the view choices (times, diff mode, zoom). A file that cannot
//! be read is said once and left alone; the debugger starts from the defaults.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::app::{App, HISTORY, History, Times};

/// The remembered state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    /// What was typed at each prompt, oldest first.
    #[serde(default)]
    pub history: History,
    /// Times shown absolute (rather than relative).
    #[serde(default)]
    pub absolute_times: bool,
    /// The diff as unified text (rather than paths).
    #[serde(default)]
    pub text_diff: bool,
    /// The focused pane maximised.
    #[serde(default)]
    pub zoomed: bool,
}

impl Memory {
    /// Reads a memory file's bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let mut memory: Self = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        for entries in memory.history.values_mut() {
            let over = entries.len().saturating_sub(HISTORY);
            entries.drain(..over);
        }
        Ok(memory)
    }

    /// What the debugger shows now, to remember.
    pub fn of(app: &App) -> Self {
        Self {
            history: app.history.clone(),
            absolute_times: app.times == Times::Absolute,
            text_diff: app.text_diff,
            zoomed: app.zoomed,
        }
    }

    /// Opens the debugger as it was left.
    pub fn apply(&self, app: &mut App) {
        app.history.clone_from(&self.history);
        if self.absolute_times {
            app.times = Times::Absolute;
        }
        app.text_diff = self.text_diff;
        app.zoomed = self.zoomed;
    }
}

/// The file.
pub fn path() -> Option<PathBuf> {
    crate::source::settings::folder()
        .ok()
        .and_then(|sources| sources.parent().map(|dir| dir.join("debugger.json")))
}

/// The remembered state (the defaults where there is none), and what was wrong with the file
/// if it could not be read.
pub fn load(file: &Path) -> (Memory, Option<String>) {
    match std::fs::read(file) {
        Ok(bytes) => match Memory::parse(&bytes) {
            Ok(memory) => (memory, None),
            Err(e) => (
                Memory::default(),
                Some(format!(
                    "{}: not readable ({e}); starting without the prompt history and view choices",
                    file.display()
                )),
            ),
        },
        Err(_) => (Memory::default(), None),
    }
}

/// Saves it: written beside and renamed over, so a killed process leaves the old file or the
/// new one.
pub fn save(file: &Path, memory: &Memory) -> std::io::Result<()> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let partial = file.with_extension("json.partial");
    let text = serde_json::to_vec_pretty(memory).map_err(std::io::Error::other)?;
    std::fs::write(&partial, text)?;
    std::fs::rename(&partial, file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_memory_file_reads_back_and_keeps_the_newest_entries() {
        let mut memory = Memory {
            absolute_times: true,
            ..Memory::default()
        };
        memory
            .history
            .insert("go".into(), (0..150).map(|i| i.to_string()).collect());
        let text = serde_json::to_vec(&memory).unwrap();
        let back = Memory::parse(&text).unwrap();
        assert_eq!(back.history["go"].len(), HISTORY);
        assert_eq!(back.history["go"].last().map(String::as_str), Some("149"));
        assert!(back.absolute_times);
        assert!(Memory::parse(b"{").is_err());
        assert_eq!(Memory::parse(b"{}").unwrap(), Memory::default());
    }
}
