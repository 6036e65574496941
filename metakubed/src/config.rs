//! Daemon configuration: flags over environment over `config.toml` over defaults.

use std::path::{Path, PathBuf};

use serde::Deserialize;

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
    }
}
