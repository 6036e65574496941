#!/usr/bin/env bash
# Starts metakubed (through the plugin's autostart) and diagnoses a bundled example: a caller
# crash-looping because the Redis Service it calls selects no pod.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${CARGO_TARGET_DIR:-$HOME/.cache/metakube/target}/release"
example="$root/tests/scenarios/011-network-selector-mismatch-cascade-0"
ns=$(awk '/^target:/{t=1;next} t&&/namespace:/{print $2; exit}' "$example/expected.yaml")
name=$(awk '/^target:/{t=1;next} t&&/name:/{print $2; exit}' "$example/expected.yaml")
echo "\$ kubectl metakube diagnose deploy/$name -n $ns --from-dump $example/dump"
"$bin/kubectl-metakube" diagnose "deploy/$name" -n "$ns" --from-dump "$example/dump"
echo
"$bin/kubectl-metakube" daemon status
