//! Where the configuration file is looked for, for `conductor config path`.

use std::path::{Path, PathBuf};

/// Why a path is a candidate for the config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CandidateSource {
    /// Named on the command line (`--config`).
    Flag,
    /// Named by `CONDUCTOR_CONFIG`.
    Env,
    /// The platform default: `conductor/conductor.toml` in the config directory.
    Platform,
}

impl std::fmt::Display for CandidateSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Flag => "--config",
            Self::Env => "CONDUCTOR_CONFIG",
            Self::Platform => "platform default",
        })
    }
}

/// One place the config file may be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigCandidate {
    /// The file.
    pub path: PathBuf,
    /// Why it is a candidate.
    pub source: CandidateSource,
    /// True for the one [`super::LoadedConfig::load`] reads (when it exists; a file named by
    /// `--config` or `CONDUCTOR_CONFIG` is used, and an error, even when missing).
    pub used: bool,
}

/// The config file candidates in the order [`super::LoadedConfig::load_with`] considers them:
/// `--config`, then `CONDUCTOR_CONFIG`, then `conductor/conductor.toml` in `config_dir`. The
/// first named one is used; the ones after it are listed for a person debugging ("why is my
/// file not read?").
#[must_use]
pub fn search_paths(
    config_flag: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
    config_dir: Option<&Path>,
) -> Vec<ConfigCandidate> {
    let mut candidates = Vec::new();
    if let Some(path) = config_flag {
        candidates.push((path.to_path_buf(), CandidateSource::Flag));
    }
    if let Some(path) = env("CONDUCTOR_CONFIG").filter(|v| !v.is_empty()) {
        candidates.push((PathBuf::from(path), CandidateSource::Env));
    }
    if let Some(dir) = config_dir {
        candidates.push((
            dir.join("conductor").join("conductor.toml"),
            CandidateSource::Platform,
        ));
    }
    candidates
        .into_iter()
        .enumerate()
        .map(|(at, (path, source))| ConfigCandidate {
            path,
            source,
            used: at == 0,
        })
        .collect()
}
