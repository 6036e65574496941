//! krew/metakube.yaml against krew's v1alpha2 rules (the checks `krew`'s validate-krew-manifest
//! makes): name, semver version, homepage, short description, platforms with selectors, an
//! https archive URI, a sha256, a `bin` that the archive's `files` provide.

use metakube_tests::repo_root;
use serde_norway::Value;

fn manifest() -> Value {
    serde_norway::from_str(
        &std::fs::read_to_string(repo_root().join("krew/metakube.yaml")).unwrap(),
    )
    .unwrap()
}

#[test]
fn manifest_follows_krew_rules() {
    let m = manifest();
    let text = std::fs::read_to_string(repo_root().join("krew/metakube.yaml")).unwrap();
    assert_eq!(
        m["apiVersion"],
        "krew.googlecontainertools.github.com/v1alpha2"
    );
    assert_eq!(m["kind"], "Plugin");
    let name = m["metadata"]["name"].as_str().unwrap();
    assert_eq!(name, "metakube");
    assert!(name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
    let spec = &m["spec"];
    let version = spec["version"].as_str().unwrap();
    let semver = version
        .strip_prefix('v')
        .expect("krew versions start with v");
    assert_eq!(
        semver
            .split('.')
            .filter(|p| p.parse::<u64>().is_ok())
            .count(),
        3,
        "{version} is not vMAJOR.MINOR.PATCH"
    );
    assert_eq!(
        version.trim_start_matches('v'),
        env!("CARGO_PKG_VERSION"),
        "manifest version follows the workspace version"
    );
    assert!(spec["homepage"].as_str().unwrap().starts_with("https://"));
    let short = spec["shortDescription"].as_str().unwrap();
    assert!(
        !short.is_empty() && short.len() <= 50,
        "krew wants a short description of at most 50 characters"
    );
    assert!(!spec["description"].as_str().unwrap().trim().is_empty());
    let platforms = spec["platforms"].as_sequence().unwrap();
    let mut seen = Vec::new();
    for p in platforms {
        let labels = &p["selector"]["matchLabels"];
        let (os, arch) = (
            labels["os"].as_str().unwrap(),
            labels["arch"].as_str().unwrap(),
        );
        seen.push(format!("{os}/{arch}"));
        let uri = p["uri"].as_str().unwrap();
        assert!(
            uri.starts_with("https://") && (uri.ends_with(".tar.gz") || uri.ends_with(".zip")),
            "{uri}"
        );
        assert!(
            uri.contains(&format!("_{os}_{arch}.")),
            "{uri} names its platform"
        );
        assert!(
            uri.contains(&format!("/{version}/")),
            "{uri} is the release of {version}"
        );
        // krew's YAML reader (YAML 1.1) reads an unquoted all-digit sha256 as an integer and
        // rejects the manifest; the values must be quoted strings in the file itself.
        let sha = p["sha256"].as_str().unwrap();
        assert!(
            text.contains(&format!("sha256: \"{sha}\"")),
            "the sha256 of {uri} must be a quoted string in krew/metakube.yaml"
        );
        assert_eq!(sha.len(), 64, "sha256 of {uri}");
        assert!(sha
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        let bin = p["bin"].as_str().unwrap();
        assert_eq!(bin, "kubectl-metakube");
        let files = p["files"].as_sequence().unwrap();
        assert!(
            files.iter().any(|f| f["from"] == bin),
            "{os}/{arch}: bin must be among the files"
        );
        assert!(
            files.iter().any(|f| f["from"] == "metakubed"),
            "{os}/{arch}: the daemon ships with the plugin"
        );
        assert!(
            files.iter().any(|f| f["from"] == "LICENSE"),
            "krew requires a license file"
        );
    }
    for want in ["linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64"] {
        assert!(seen.iter().any(|s| s == want), "missing platform {want}");
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), platforms.len(), "a platform appears twice");
}

#[test]
fn release_script_and_units_exist() {
    let root = repo_root();
    let script = std::fs::read_to_string(root.join("krew/build-release.sh")).unwrap();
    assert!(script.contains("sha256sum") && script.contains("krew/metakube.yaml"));
    for unit in ["metakubed.service", "metakubed.socket"] {
        let text =
            std::fs::read_to_string(root.join("kubectl-metakube/systemd").join(unit)).unwrap();
        assert!(text.contains("[Install]"), "{unit}");
    }
    assert!(
        std::fs::read_to_string(root.join("kubectl-metakube/systemd/metakubed.socket"))
            .unwrap()
            .contains("SocketMode=0600")
    );
}
