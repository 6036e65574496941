//! Masking by structure for exports. Known object names are replaced by placeholders first
//! ([`super::mask`]); what is left of a cluster's identity is found by its shape, not by a list:
//! addresses, URLs, host and registry names, image references, `key=value` labels and settings,
//! secret-looking values, generated pod names and other hyphenated object names, e-mail
//! addresses and long opaque tokens.

use std::sync::LazyLock;

use regex::Regex;

/// Words with hyphens that are Kubernetes' or English vocabulary, not names.
const VOCABULARY: &[&str] = &[
    "back-off",
    "read-only",
    "out-of-memory",
    "non-zero",
    "kube-proxy",
    "kube-dns",
    "kube-system",
    "kube-scheduler",
    "kube-controller-manager",
    "kube-apiserver",
    "node-role",
    "cluster-local",
    "pod-template-hash",
    "anti-affinity",
    "multi-attach",
    "read-write",
    "end-to-end",
    "time-out",
    "start-up",
    "e-mail",
    "x-metakube-protocol",
];

struct Rule {
    re: Regex,
    with: &'static str,
}

static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    let r = |p: &str, with: &'static str| Rule {
        re: Regex::new(p).expect("valid masking regex"),
        with,
    };
    vec![
        // Secret-looking settings keep their key, lose their value.
        r(
            r"(?i)\b((?:[a-z0-9_]*?)(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|credentials?))\s*([=:])\s*\S+",
            "${1}${2}<redacted>",
        ),
        r(
            r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b",
            "<email>",
        ),
        r(r#"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s"'<>]+"#, "<url>"),
        // Image references: registry/path[:tag][@digest].
        r(
            r"\b[a-z0-9.-]+(?::[0-9]+)?(?:/[a-z0-9._-]+)+(?::[A-Za-z0-9._-]+)?(?:@sha256:[0-9a-f]{64})?",
            "<image>",
        ),
        r(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b", "<ip>"),
        r(r"\b(?:[0-9a-fA-F]{1,4}:){3,7}[0-9a-fA-F]{1,4}\b", "<ip>"),
        // Host names: dotted names ending in a letter label.
        r(
            r"\b(?:[A-Za-z0-9-]+\.)+[A-Za-z][A-Za-z0-9-]*[A-Za-z]\b",
            "<host>",
        ),
        // key=value pairs (labels, selectors, settings).
        r(r"\b[A-Za-z0-9._/-]+=[^\s,;\)\]\}\x22'<]+", "<label>"),
        // Long opaque tokens (hashes, keys, base64).
        r(r"\b[A-Za-z0-9+/_-]{24,}={0,2}", "<token>"),
    ]
});

static HYPHENATED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b[a-z0-9]+(?:-[a-z0-9]+)+\b").expect("valid regex"));

/// `text` with every identifying shape replaced by a placeholder (after `names` are).
pub fn scrub(text: &str, names: &[(String, String)]) -> String {
    let mut out = super::mask(text, names);
    for rule in RULES.iter() {
        out = rule.re.replace_all(&out, rule.with).into_owned();
    }
    // Hyphenated names left over, but not the placeholders themselves (`<deployment-1>`).
    let mut done = String::with_capacity(out.len());
    let mut last = 0;
    for m in HYPHENATED.find_iter(&out) {
        let w = m.as_str();
        let placeholder = out[..m.start()].ends_with('<');
        done.push_str(&out[last..m.start()]);
        if placeholder || VOCABULARY.contains(&w) || !w.chars().any(|c| c.is_ascii_alphabetic()) {
            done.push_str(w);
        } else {
            done.push_str("<name>");
        }
        last = m.end();
    }
    done.push_str(&out[last..]);
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_are_masked_by_their_shape() {
        let names = vec![("checkout".to_string(), "<deployment-1>".to_string())];
        let text = "checkout-5d8f9c7b6-x2k4p: dial tcp 10.68.199.102:7001: connect: connection refused; \
                    GET https://api.partner.example.com/v1/rates failed; pulling ghcr.io/acme/checkout:1.8.2; \
                    selector app=redis-cache; DB_PASSWORD=hunter2 token: abcd; mail ops@acme.io; \
                    host db.internal.acme.net; key AKIAIOSFODNN7EXAMPLEKEY1234; back-off restarting; \
                    cannot reach orders-db";
        let s = scrub(text, &names);
        for leak in [
            "5d8f9c7b6",
            "10.68.199.102",
            "partner.example.com",
            "ghcr.io",
            "redis-cache",
            "hunter2",
            "abcd",
            "ops@acme.io",
            "acme.net",
            "AKIAIOSFODNN7",
            "orders-db",
        ] {
            assert!(!s.contains(leak), "{leak} leaks: {s}");
        }
        assert!(s.contains("back-off restarting"), "{s}");
        assert!(s.contains("connection refused"), "{s}");
        assert!(s.contains("DB_PASSWORD=<redacted>"), "{s}");
        assert!(s.contains("<deployment-1>"), "placeholders stay: {s}");
    }
}
