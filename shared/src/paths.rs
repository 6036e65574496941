//! Where the socket, data and configuration live, so plugin and daemon agree.
//!
//! | what | path | fallback when the XDG variable is unset |
//! |---|---|---|
//! | socket | `$XDG_RUNTIME_DIR/metakube/metakubed.sock` | `/tmp/metakube-$UID/metakubed.sock` |
//! | data (RocksDB, index) | `$XDG_DATA_HOME/metakube/` | `$HOME/.local/share/metakube/` |
//! | configuration | `$XDG_CONFIG_HOME/metakube/config.toml` | `$HOME/.config/metakube/config.toml` |
//!
//! `METAKUBE_SOCKET`, `METAKUBE_DATA_DIR` and `METAKUBE_CONFIG` override each. The functions
//! take an environment lookup so they stay pure and testable.

use std::path::PathBuf;

/// The daemon's socket path.
pub fn socket_path(env: impl Fn(&str) -> Option<String>, uid: u32) -> PathBuf {
    if let Some(p) = env("METAKUBE_SOCKET").filter(|s| !s.is_empty()) {
        return PathBuf::from(p);
    }
    match env("XDG_RUNTIME_DIR").filter(|s| !s.is_empty()) {
        Some(d) => PathBuf::from(d).join("metakube").join("metakubed.sock"),
        None => PathBuf::from(format!("/tmp/metakube-{uid}")).join("metakubed.sock"),
    }
}

fn xdg(env: &impl Fn(&str) -> Option<String>, var: &str, home_rel: &str) -> PathBuf {
    match env(var).filter(|s| !s.is_empty()) {
        Some(d) => PathBuf::from(d).join("metakube"),
        None => PathBuf::from(env("HOME").unwrap_or_else(|| "/tmp".into()))
            .join(home_rel)
            .join("metakube"),
    }
}

/// The daemon's data directory.
pub fn data_dir(env: impl Fn(&str) -> Option<String>) -> PathBuf {
    if let Some(p) = env("METAKUBE_DATA_DIR").filter(|s| !s.is_empty()) {
        return PathBuf::from(p);
    }
    xdg(&env, "XDG_DATA_HOME", ".local/share")
}

/// The configuration file.
pub fn config_file(env: impl Fn(&str) -> Option<String>) -> PathBuf {
    if let Some(p) = env("METAKUBE_CONFIG").filter(|s| !s.is_empty()) {
        return PathBuf::from(p);
    }
    xdg(&env, "XDG_CONFIG_HOME", ".config").join("config.toml")
}

/// The real process environment, for the functions above.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xdg_paths_and_fallbacks() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            socket_path(env(&[("XDG_RUNTIME_DIR", "/run/user/7")]), 7),
            PathBuf::from("/run/user/7/metakube/metakubed.sock")
        );
        assert_eq!(
            socket_path(env(&[]), 7),
            PathBuf::from("/tmp/metakube-7/metakubed.sock")
        );
        assert_eq!(
            socket_path(env(&[("METAKUBE_SOCKET", "/x.sock")]), 7),
            PathBuf::from("/x.sock")
        );
        assert_eq!(
            data_dir(env(&[("HOME", "/home/a")])),
            PathBuf::from("/home/a/.local/share/metakube")
        );
        assert_eq!(
            config_file(env(&[("XDG_CONFIG_HOME", "/c")])),
            PathBuf::from("/c/metakube/config.toml")
        );
    }
}
