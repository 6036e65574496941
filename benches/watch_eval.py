#!/usr/bin/env python3
"""Scores `kubectl metakube watch --replay STREAM -o json` against STREAM.truth.json (from
watch_stream.py synthetic): per fault, whether an incident named its root cause (object, reason
and category), how many incidents it took, and the detection delay from the fault's first watch
event to the incident (events and stream seconds); incidents that match no fault are false.

  watch_eval.py STREAM.jsonl [KUBECTL_METAKUBE]      (the daemon must be running)
"""
import json, subprocess, sys, time
from datetime import datetime


def parse(t):
    return datetime.strptime(t, "%Y-%m-%dT%H:%M:%SZ")


def main(stream, binary="kubectl-metakube"):
    truth = json.load(open(stream + ".truth.json"))
    t0 = time.time()
    p = subprocess.run([binary, "watch", "--replay", stream, "-o", "json"], capture_output=True, text=True)
    wall = time.time() - t0
    if p.returncode != 0:
        print(p.stderr, file=sys.stderr)
        return 2
    opened = {}
    for line in p.stdout.splitlines():
        u = json.loads(line)
        if u["change"] == "opened":
            opened[u["incident"]] = u
        elif u["incident"] in opened:
            opened[u["incident"]]["affected"] = u["affected"]
    used = set()
    rows = []
    for f in truth["faults"]:
        root = f["root"]
        start = parse(f["start_time"])
        end = parse(f["fixed_time"]) if f.get("fixed_time") else None

        def about(u):
            first = parse(u["first_seen"][:19] + "Z")
            if first < start or (end and first > end):
                return False
            if f.get("anomaly"):
                return u["kind"] == "anomaly" and any(a["name"] == root["name"] for a in u["affected"])
            rc = u.get("root_cause") or {}
            o = rc.get("object") or {}
            return o.get("kind") == root["kind"] and o.get("name") == root["name"]

        mine = [u for u in opened.values() if about(u)]
        used.update(u["incident"] for u in mine)
        if not mine:
            rows.append((f["family"], "MISSED", 0, None, None, ""))
            continue
        u = min(mine, key=lambda u: u["detection"]["at_event"])
        rc = u.get("root_cause") or {}
        right = f.get("anomaly") or (rc.get("reason") == f["reason"] and u.get("category") == f["category"])
        delay_events = u["detection"]["at_event"] - f["first_line"] + 1
        # At opening, last_seen is the stream's time then.
        delay_s = (parse(u["last_seen"][:19] + "Z") - start).total_seconds()
        rows.append((f["family"], "right" if right else "WRONG " + str(rc.get("reason")), len(mine),
                     delay_events, delay_s, len(u["affected"])))
    false = [u for u in opened.values() if u["incident"] not in used]
    print(f"{stream}: {truth['events']} events, {len(truth['faults'])} faults, replay {wall:.2f} s "
          f"({truth['events'] / wall:.0f} events/s)")
    print("family        answer          incidents  delay(events)  delay(s, stream)  affected")
    for r in rows:
        print(f"{r[0]:<13} {r[1]:<15} {r[2]:>9}  {r[3] if r[3] is not None else '-':>13}  "
              f"{r[4] if r[4] is not None else '-':>16}  {r[5]}")
    print(f"false incidents: {len(false)}" + "".join(
        f"\n  {u['incident']} {u['kind']} {u['target']['kind']}/{u['target']['name']} "
        f"{(u.get('root_cause') or {}).get('reason')} at event {u['detection']['at_event']}" for u in false))
    print(p.stderr.strip().splitlines()[-1] if p.stderr.strip() else "")
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(*sys.argv[1:]))
