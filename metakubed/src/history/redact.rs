//! Secret-looking settings in a pod template (an env var named like a password or token, a
//! `--token=…` argument) are kept and compared as digests: a change to one is seen, its value
//! never stored or shown.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Names that hold credentials (as the export scrubber reads them).
static SECRETISH: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|credential|private[_-]?key)")
        .expect("valid regex")
});

/// What a digested value starts with.
pub const DIGEST: &str = "sha256:";

/// A value's digest (`sha256:…`).
pub fn digest(s: &str) -> String {
    format!("{DIGEST}{:x}", Sha256::digest(s.as_bytes()))
}

/// Whether a value is a digest this module made (shown as "changed", without values).
pub fn is_digest(v: &Value) -> bool {
    v.as_str().is_some_and(|s| s.starts_with(DIGEST))
}

/// Replaces, anywhere under `v`, the value of an env var with a secret-looking name and the
/// value part of a secret-looking argument (`--db-password=x`, or the word after
/// `--db-password`) with its digest.
pub fn redact(v: &mut Value) {
    match v {
        Value::Object(m) => {
            let secret_env = m
                .get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| SECRETISH.is_match(n));
            for (k, x) in m.iter_mut() {
                match (k.as_str(), x) {
                    ("value", Value::String(s)) if secret_env => *s = digest(s),
                    ("args" | "command", Value::Array(a)) => redact_args(a),
                    (_, x) => redact(x),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(redact),
        _ => {}
    }
}

fn redact_args(args: &mut [Value]) {
    let mut next_is_secret = false;
    for a in args.iter_mut() {
        let Value::String(s) = a else { continue };
        if next_is_secret && !s.starts_with('-') {
            *s = digest(s);
            next_is_secret = false;
            continue;
        }
        next_is_secret = false;
        match s.split_once('=') {
            Some((flag, value)) if SECRETISH.is_match(flag) => {
                *s = format!("{flag}={}", digest(value))
            }
            None if s.starts_with('-') && SECRETISH.is_match(s) => next_is_secret = true,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_looking_settings_become_digests_and_the_rest_stays() {
        let mut t = json!({"spec": {"containers": [{
            "env": [{"name": "DB_PASSWORD", "value": "hunter2"}, {"name": "DB_HOST", "value": "db:5432"}],
            "args": ["--api-token=abc123", "--secret-key", "s3cr3t", "--port=8080", "--verbose"],
        }]}});
        redact(&mut t);
        let c = &t["spec"]["containers"][0];
        assert!(is_digest(&c["env"][0]["value"]));
        assert_eq!(c["env"][1]["value"], "db:5432");
        assert!(c["args"][0]
            .as_str()
            .unwrap()
            .starts_with("--api-token=sha256:"));
        assert_eq!(c["args"][1], "--secret-key");
        assert!(is_digest(&c["args"][2]));
        assert_eq!(
            (c["args"][3].as_str(), c["args"][4].as_str()),
            (Some("--port=8080"), Some("--verbose"))
        );
        let text = t.to_string();
        assert!(!text.contains("hunter2") && !text.contains("abc123") && !text.contains("s3cr3t"));
    }
}
