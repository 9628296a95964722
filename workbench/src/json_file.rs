//! The run directories' JSON files (`run.json`, `results.json`,
//! `schedule.json`, `wars.json`), written atomically and read with the
//! file's name in every error.
//!
//! Below every module that writes or reads one (the campaign, a run, its
//! `wars.json` collection, the simulator's runs, `workbench check`,
//! `explore`), so none of them imports another for these two helpers.

use std::path::Path;

use anyhow::{Context, Result};

/// Writes `value` as pretty JSON to `path` atomically (temp file, rename).
pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text + "\n").with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// Reads and parses a JSON file, naming it in errors.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is malformed", path.display()))
}
