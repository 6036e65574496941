#!/usr/bin/env bash
# End-to-end growth with cluster size (issue 12): `kubectl metakube diagnose --from-dump` on
# dumps grown by benches/grow_dump.py, against one warm ephemeral daemon (no model text, no
# memory). Prints, per size: objects, pods, dump MB, CLI wall time p50/p90 over RUNS runs, the
# engine's own timings_ms (total and graph), the daemon's RSS afterwards, and the growth
# exponent of the CLI p50 from one size to the next (log t2/t1 / log n2/n1).
#
#   benches/scale_cli.sh                 # 500, 5k, 20k in one namespace; 100k over 50
#   SIZES="500:1 5000:1" RUNS=3 benches/scale_cli.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${CARGO_TARGET_DIR:-$HOME/.cache/metakube/target}/release"
SIZES="${SIZES:-500:1 5000:1 20000:1 100000:50}"
RUNS="${RUNS:-7}"
work="$(mktemp -d)"
chmod 700 "$work"
trap 'kill "$daemon" 2>/dev/null || true; rm -rf "$work"' EXIT
export METAKUBE_SOCKET="$work/d.sock"
"$bin/metakubed" --ephemeral --llm none --no-memory >"$work/daemon.log" 2>&1 &
daemon=$!
for _ in $(seq 100); do [ -S "$METAKUBE_SOCKET" ] && break; sleep 0.1; done
printf '%-8s %-7s %-6s %-9s %-9s %-11s %-10s %-8s %s\n' objects pods MB cli_p50 cli_p90 engine_ms graph_ms rss_MB exponent
prev_n=""; prev_t=""
for s in $SIZES; do
  n="${s%%:*}"; ns="${s##*:}"
  dump="${TMPDIR:-/tmp}/metakube-dump-$n-$ns"
  if [ ! -f "$dump/nodes.json" ]; then
    python3 "$root/benches/grow_dump.py" "$n" "$ns" "$dump.partial" >/dev/null
    mv "$dump.partial" "$dump"
  fi
  meta=$(python3 - "$dump" <<'PY'
import json, os, sys
d = sys.argv[1]; objs = pods = size = 0
for dp, _, fs in os.walk(d):
    for f in fs:
        p = os.path.join(dp, f); size += os.path.getsize(p)
        if f.endswith(".json"):
            items = json.load(open(p))["items"]; objs += len(items)
            pods += len(items) if f == "pods.json" else 0
print(objs, pods, round(size / 1e6, 1))
PY
)
  read -r objs pods mb <<<"$meta"
  times=(); engine=(); graph=()
  for _ in $(seq "$RUNS"); do
    start=$(date +%s.%N)
    out=$("$bin/kubectl-metakube" diagnose deploy/auth -n team-a --from-dump "$dump" --no-llm -o json 2>/dev/null)
    end=$(date +%s.%N)
    times+=("$(python3 -c "print(($end - $start) * 1000)")")
    read -r e g rc <<<"$(echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); t=d["timings_ms"]; print(t["total"], t.get("graph",0), d["root_cause"]["object"]["name"]+"/"+d["root_cause"]["reason"])')"
    [ "$rc" = "redis/SelectorMatchesNoPods" ] || { echo "wrong answer at $n objects: $rc" >&2; exit 1; }
    engine+=("$e"); graph+=("$g")
  done
  pct() { printf '%s\n' "$@" | sort -n | awk -v p="$P" '{a[NR]=$1} END {i=int((NR-1)*p+0.5)+1; printf "%.0f", a[i]}'; }
  P=0.5; p50=$(pct "${times[@]}"); e50=$(pct "${engine[@]}"); g50=$(pct "${graph[@]}")
  P=0.9; p90=$(pct "${times[@]}")
  rss=$(( $(awk '/VmRSS/{print $2}' /proc/$daemon/status) / 1024 ))
  exp="-"
  if [ -n "$prev_n" ]; then exp=$(python3 -c "import math; print(round(math.log($p50/$prev_t)/math.log($objs/$prev_n), 2))"); fi
  printf '%-8s %-7s %-6s %-9s %-9s %-11s %-10s %-8s %s\n' "$objs" "$pods" "$mb" "${p50}ms" "${p90}ms" "$e50" "$g50" "$rss" "$exp"
  prev_n=$objs; prev_t=$p50
done
