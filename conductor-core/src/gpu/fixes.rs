//! Fixes remembered across processes: what `fix` changed for a model on a host, so the next
//! process sends options that fit at once instead of loading with the ones that did not.
//!
//! One small JSON file in the platform state directory (`~/.local/state/conductor/` on Linux;
//! `CONDUCTOR_STATE_DIR` overrides it), rewritten atomically (a temporary file renamed over it).
//! An entry applies to one host, one model and the runner options that were asked for; it is
//! dropped when the model's digest changes (a re-pulled or re-created model loads differently).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use crate::backend::{RunnerOptions, same_model};

/// The file name inside the state directory.
pub const FIXES_FILE: &str = "gpu-fixes.json";

/// Larger files are not read: a few entries take a few hundred bytes.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// One remembered fix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RememberedFix {
    /// The server it applies to, as [`crate::Backend::endpoint`] prints it (no credentials).
    pub host: String,
    /// The model, with its tag.
    pub model: String,
    /// The model's digest when the fix was made; another digest voids the fix.
    pub digest: String,
    /// The runner options that were asked for (and did not fit).
    pub requested: RunnerOptions,
    /// The runner options sent instead.
    pub options: RunnerOptions,
    /// What changed, one line each, e.g. `num_ctx 131072 (from Ollama's own default) → 16384`.
    pub changes: Vec<String>,
    /// When it was recorded (RFC 3339).
    pub recorded_at: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct FixFile {
    #[serde(default)]
    fixes: Vec<RememberedFix>,
    /// Trained context lengths by model digest: whether a loaded context is Ollama's clamped
    /// default (see [`FixStore::trained_context`]) without asking `/api/show` on every run.
    #[serde(default)]
    trained_contexts: Vec<TrainedContext>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct TrainedContext {
    digest: String,
    context: u64,
}

/// The store of remembered fixes for one host. Without a path it remembers nothing.
#[derive(Debug, Clone)]
pub struct FixStore {
    path: Option<PathBuf>,
    host: String,
}

impl FixStore {
    /// A store in `path` for fixes on `host`.
    #[must_use]
    pub fn new(path: impl Into<PathBuf>, host: impl Into<String>) -> Self {
        Self {
            path: Some(path.into()),
            host: host.into(),
        }
    }

    /// A store that remembers nothing (fixes then last as long as the process).
    #[must_use]
    pub fn disabled(host: impl Into<String>) -> Self {
        Self {
            path: None,
            host: host.into(),
        }
    }

    /// The default file: `$CONDUCTOR_STATE_DIR/gpu-fixes.json`, else the platform state
    /// directory (`~/.local/state/conductor/` on Linux; the local data directory elsewhere).
    #[must_use]
    pub fn default_path() -> Option<PathBuf> {
        let dir = std::env::var_os("CONDUCTOR_STATE_DIR")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                dirs::state_dir()
                    .or_else(dirs::data_local_dir)
                    .map(|d| d.join("conductor"))
            })?;
        Some(dir.join(FIXES_FILE))
    }

    /// The file, if any.
    #[must_use]
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The host this store's fixes apply to.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Every remembered fix, for every host. A missing file is empty; a damaged one is logged
    /// and treated as empty (it is rewritten on the next fix).
    #[must_use]
    pub fn all(&self) -> Vec<RememberedFix> {
        self.path
            .as_deref()
            .map(read_file)
            .unwrap_or_default()
            .fixes
    }

    /// The fixes for this host.
    #[must_use]
    pub fn for_host(&self) -> Vec<RememberedFix> {
        self.all()
            .into_iter()
            .filter(|f| f.host == self.host)
            .collect()
    }

    /// The fix for `model` asked with `requested` runner options, if one is remembered.
    #[must_use]
    pub fn find(&self, model: &str, requested: &RunnerOptions) -> Option<RememberedFix> {
        let requested = requested.runner_only();
        self.for_host()
            .into_iter()
            .find(|f| same_model(&f.model, model) && f.requested == requested)
    }

    /// Remembers `fix`, replacing an earlier one for the same host, model and request.
    ///
    /// # Errors
    /// When the state directory or file cannot be written.
    pub fn record(&self, fix: RememberedFix) -> io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let mut file = read_file(path);
        file.fixes.retain(|f| {
            !(f.host == fix.host
                && same_model(&f.model, &fix.model)
                && f.requested == fix.requested)
        });
        file.fixes.push(fix);
        write_atomically(path, &file)
    }

    /// The trained context length remembered for the model with this digest.
    #[must_use]
    pub fn trained_context(&self, digest: &str) -> Option<u64> {
        let path = self.path.as_deref()?;
        read_file(path)
            .trained_contexts
            .iter()
            .find(|t| t.digest == digest)
            .map(|t| t.context)
    }

    /// Remembers the trained context length of the model with this digest (a model's weights
    /// never change under one digest).
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn record_trained_context(&self, digest: &str, context: u64) -> io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let mut file = read_file(path);
        if file.trained_contexts.iter().any(|t| t.digest == digest) {
            return Ok(());
        }
        // A few hundred models at most; keep the newest.
        if file.trained_contexts.len() >= 256 {
            file.trained_contexts.remove(0);
        }
        file.trained_contexts.push(TrainedContext {
            digest: digest.to_owned(),
            context,
        });
        write_atomically(path, &file)
    }

    /// Forgets this host's fixes for `model` (all models when `None`); returns how many.
    ///
    /// # Errors
    /// When the file cannot be rewritten.
    pub fn forget(&self, model: Option<&str>) -> io::Result<usize> {
        let Some(path) = &self.path else {
            return Ok(0);
        };
        let mut file = read_file(path);
        let before = file.fixes.len();
        file.fixes
            .retain(|f| !(f.host == self.host && model.is_none_or(|m| same_model(&f.model, m))));
        let forgotten = before - file.fixes.len();
        if forgotten > 0 {
            write_atomically(path, &file)?;
        }
        Ok(forgotten)
    }
}

fn read_file(path: &Path) -> FixFile {
    let metadata = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return FixFile::default(),
        Err(err) => {
            warn!(path = %path.display(), %err, "cannot read the remembered GPU fixes");
            return FixFile::default();
        }
    };
    if !metadata.is_file() || metadata.len() > MAX_FILE_BYTES {
        warn!(path = %path.display(), "ignoring the remembered GPU fixes: not a small regular file");
        return FixFile::default();
    }
    match std::fs::read(path).map(|bytes| serde_json::from_slice::<FixFile>(&bytes)) {
        Ok(Ok(file)) => file,
        Ok(Err(err)) => {
            warn!(path = %path.display(), %err, "ignoring damaged remembered GPU fixes");
            FixFile::default()
        }
        Err(err) => {
            warn!(path = %path.display(), %err, "cannot read the remembered GPU fixes");
            FixFile::default()
        }
    }
}

/// Writes a sibling temporary file, syncs it, and renames it over `path`: a reader sees the old
/// file or the new one, never half of one, and concurrent writers do not interleave.
fn write_atomically(path: &Path, file: &FixFile) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let bytes = serde_json::to_vec_pretty(file).map_err(io::Error::other)?;
    let tmp = dir.join(format!(
        ".{FIXES_FILE}.{}.{}.tmp",
        std::process::id(),
        fastrand::u64(..)
    ));
    let result = (|| {
        let mut out = std::fs::File::create(&tmp)?;
        out.write_all(&bytes)?;
        out.write_all(b"\n")?;
        out.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    debug!(path = %path.display(), ok = result.is_ok(), "remembered GPU fixes written");
    result
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn fix(host: &str, model: &str, ctx: u32) -> RememberedFix {
        RememberedFix {
            host: host.into(),
            model: model.into(),
            digest: "abc".into(),
            requested: RunnerOptions::default(),
            options: RunnerOptions {
                num_ctx: Some(ctx),
                ..RunnerOptions::default()
            },
            changes: vec![format!("num_ctx 131072 → {ctx}")],
            recorded_at: "2026-11-30T00:00:00Z".into(),
        }
    }

    #[test]
    fn records_finds_replaces_and_forgets_per_host_and_model() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state").join(FIXES_FILE);
        let a = FixStore::new(&path, "http://a:11434");
        let b = FixStore::new(&path, "http://b:11434");
        assert!(a.find("m3b", &RunnerOptions::default()).is_none());
        a.record(fix("http://a:11434", "m3b:latest", 8192)).unwrap();
        b.record(fix("http://b:11434", "m3b:latest", 4096)).unwrap();
        a.record(fix("http://a:11434", "m3b:latest", 16384))
            .unwrap();
        let found = a.find("m3b", &RunnerOptions::default()).unwrap();
        assert_eq!(found.options.num_ctx, Some(16384));
        assert_eq!(a.for_host().len(), 1, "replaced, not added");
        // Another request (an explicit context) is another fix.
        let explicit = RunnerOptions {
            num_ctx: Some(65536),
            temperature: Some(0.2),
            ..RunnerOptions::default()
        };
        assert!(a.find("m3b", &explicit).is_none());
        assert_eq!(a.forget(Some("m3b:latest")).unwrap(), 1);
        assert!(a.find("m3b", &RunnerOptions::default()).is_none());
        assert_eq!(b.for_host().len(), 1, "another host's fix stays");
        // No temporary files are left behind.
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(FIXES_FILE)]);
    }

    #[test]
    fn a_damaged_or_odd_file_is_ignored_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FIXES_FILE);
        std::fs::write(&path, b"{not json").unwrap();
        let store = FixStore::new(&path, "h");
        assert!(store.all().is_empty());
        store.record(fix("h", "m", 2048)).unwrap();
        assert_eq!(store.all().len(), 1, "rewritten whole");
        // A directory where the file should be: nothing read, and writing fails cleanly.
        let odd = dir.path().join("odd");
        std::fs::create_dir_all(odd.join(FIXES_FILE)).unwrap();
        let store = FixStore::new(odd.join(FIXES_FILE), "h");
        assert!(store.all().is_empty());
        assert!(store.record(fix("h", "m", 2048)).is_err());
    }

    #[test]
    fn a_disabled_store_remembers_nothing() {
        let store = FixStore::disabled("h");
        store.record(fix("h", "m", 2048)).unwrap();
        assert!(store.all().is_empty());
        assert_eq!(store.forget(None).unwrap(), 0);
    }
}
