#!/usr/bin/env bash
# Starts metakubed (through the plugin's autostart) and diagnoses a bundled example: a caller
# crash-looping because the Redis Service it calls selects no pod. Then confirms the fix and
# diagnoses the same fault in another deployment (other names), answered from memory.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${CARGO_TARGET_DIR:-$HOME/.cache/metakube/target}/release"
target_of() {
  local ns name
  ns=$(awk '/^target:/{t=1;next} t&&/namespace:/{print $2; exit}' "$1/expected.yaml")
  name=$(awk '/^target:/{t=1;next} t&&/name:/{print $2; exit}' "$1/expected.yaml")
  echo "deploy/$name -n $ns"
}
first="$root/tests/scenarios/011-network-selector-mismatch-cascade-0"
second="$root/tests/scenarios/012-network-selector-mismatch-cascade-1"
echo "\$ kubectl metakube diagnose $(target_of "$first") --from-dump $first/dump"
# shellcheck disable=SC2046
"$bin/kubectl-metakube" diagnose $(target_of "$first") --from-dump "$first/dump" | tee /tmp/metakube-demo.$$
id=$(grep -o 'id [0-9a-f-]\{36\}' /tmp/metakube-demo.$$ | head -1 | cut -d' ' -f2)
rm -f /tmp/metakube-demo.$$
echo
echo "\$ kubectl metakube feedback $id --fixed"
"$bin/kubectl-metakube" feedback "$id" --fixed
echo
echo "\$ kubectl metakube diagnose $(target_of "$second") --from-dump $second/dump # same fault, other deployment"
# shellcheck disable=SC2046
"$bin/kubectl-metakube" diagnose $(target_of "$second") --from-dump "$second/dump"
echo
"$bin/kubectl-metakube" daemon status
