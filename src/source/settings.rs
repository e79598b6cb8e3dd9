//! The user's settings for a source (its reducer), kept in the user's config directory (or
//! `$REWIND_CONFIG_DIR`), one small JSON file per source named as its mirror is: outside the
//! mirror, so removing or remaking a mirror never loses them, and never beside the source,
//! which is not written.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// What the user set for one source.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Settings {
    /// The source, as its canonical path (for the reader of the file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The reducer its streams use (`jq:…`), instead of the format's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reducer: Option<String>,
    /// The reducer of each DeltaChannel of a LangGraph file, by channel name (`append`,
    /// `update` or `jq:FILTER`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub channels: std::collections::BTreeMap<String, String>,
    /// Which fields of its objects are an event's parts (events of the user's own as JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map: Option<super::json_events::Mapping>,
    /// The mapping file its tables are read through: a shipped mapping's name (`seed-000`),
    /// or a file's canonical path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapping: Option<String>,
    /// The debugger's summary of each event, as a jq program over `{state, event}`, by
    /// stream name or glob (`*` for all), instead of the keys the event changed.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub stream_titles: std::collections::BTreeMap<String, String>,
    /// The same by event type (a stream's program comes first).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub type_titles: std::collections::BTreeMap<String, String>,
}

/// The folder settings live in.
pub fn folder() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("REWIND_CONFIG_DIR") {
        return Ok(PathBuf::from(dir).join("sources"));
    }
    directories::ProjectDirs::from("", "", "rewind")
        .map(|dirs| dirs.config_dir().join("sources"))
        .ok_or_else(|| {
            Error::Input("no home directory to keep settings in; set REWIND_CONFIG_DIR".into())
        })
}

/// The settings file of a source: its mirror's name, as JSON.
pub fn path(source: &Path) -> Result<PathBuf> {
    let mirror = super::mirror::mirror_path(source)?;
    let name = mirror
        .file_stem()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(folder()?.join(format!("{name}.json")))
}

/// A source's settings (the defaults where none were saved).
pub fn load(source: &Path) -> Result<Settings> {
    let file = path(source)?;
    match std::fs::read(&file) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            Error::Input(format!(
                "{}: the settings for {} are not readable ({e}); fix or remove the file",
                file.display(),
                source.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Settings::default()),
        Err(cause) => Err(Error::Io { path: file, cause }),
    }
}

/// Saves a source's settings: written beside and renamed over, so a killed process leaves
/// the old file or the new one, never half of one.
pub fn save(source: &Path, settings: &Settings) -> Result<PathBuf> {
    let file = path(source)?;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |cause| Error::Io { path, cause }
    };
    let dir = file.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let settings = Settings {
        source: Some(super::mirror::canonical_text(source)),
        ..settings.clone()
    };
    let text = serde_json::to_vec_pretty(&settings).map_err(|e| Error::Input(e.to_string()))?;
    let partial = file.with_extension("json.partial");
    {
        use std::io::Write;
        let mut out = std::fs::File::create(&partial).map_err(io(&partial))?;
        out.write_all(&text).map_err(io(&partial))?;
        out.sync_all().map_err(io(&partial))?;
    }
    std::fs::rename(&partial, &file).map_err(io(&file))?;
    Ok(file)
}
