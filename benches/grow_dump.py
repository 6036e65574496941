#!/usr/bin/env python3
"""Grows a recorded-format cluster-info dump to a realistic size around one broken workload.

    python3 benches/grow_dump.py OBJECTS NAMESPACES OUT [SCENARIO]

Starts from a scenario's dump (default: the selector-mismatch cascade, `deploy/auth -n team-a`
whose root cause is `service/redis`) and adds healthy neighbour applications until the dump
holds at least OBJECTS objects: each neighbour is a Deployment, its ReplicaSet, 3 Running pods
(with a `logs.txt` each), a Service, its Endpoints and 2 events per pod (Scheduled, Started),
spread round-robin over NAMESPACES namespaces (`team-a` first, then `ns-01`, `ns-02`, …), on
one worker Node per 30 pods. One neighbour in 40 outside `team-a` crash-loops (noise: other
failing workloads), and every node has an old `NodeHasSufficientMemory` event in `default`.
Every list is written as kubectl writes it: indented by 4 spaces.

    python3 benches/grow_dump.py 21000 1 /tmp/grow21k
    kubectl metakube diagnose deploy/auth -n team-a --from-dump /tmp/grow21k --no-llm -o json

The answer must stay `Service/redis`, SelectorMatchesNoPods, network, at every size.
"""
import copy
import json
import os
import shutil
import sys

objects_goal = int(sys.argv[1])
namespaces = int(sys.argv[2])
out = sys.argv[3]
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
scenario = sys.argv[4] if len(sys.argv) > 4 else os.path.join(
    root, "tests/scenarios/011-network-selector-mismatch-cascade-0")
TARGET_NS = "team-a"

shutil.rmtree(out, ignore_errors=True)
shutil.copytree(os.path.join(scenario, "dump"), out)


def load(path):
    with open(path) as f:
        return json.load(f)


def write(path, lst):
    """A List as `kubectl cluster-info dump` writes it: indented by 4 spaces, UTF-8."""
    with open(path, "w") as f:
        json.dump(lst, f, indent=4, ensure_ascii=False)
        f.write("\n")


def count(path):
    return len(load(path)["items"]) if os.path.exists(path) else 0


existing = 0
for dirpath, _, files in os.walk(out):
    for f in files:
        if f.endswith(".json"):
            existing += count(os.path.join(dirpath, f))

ns_dir = os.path.join(out, TARGET_NS)
tpl = {k: load(os.path.join(ns_dir, k + ".json"))["items"]
       for k in ["deployments", "replicasets", "pods", "services", "endpoints"]}
pick = lambda k: next(i for i in tpl[k] if i["metadata"]["name"].startswith("notify"))
dep_t, rs_t, svc_t, ep_t = pick("deployments"), pick("replicasets"), pick("services"), pick("endpoints")
pod_t = next(i for i in tpl["pods"] if i["metadata"]["name"].startswith("notify"))
log_t = open(os.path.join(ns_dir, pod_t["metadata"]["name"], "logs.txt")).read()
log_t = log_t.replace(f"{TARGET_NS}/{pod_t['metadata']['name']}", "{NS}/{POD}")
nodes = load(os.path.join(out, "nodes.json"))
node_t = nodes["items"][0]
created = pod_t["metadata"].get("creationTimestamp", "2025-11-12T08:14:00Z")

ns_names = [TARGET_NS] + [f"ns-{i:02d}" for i in range(1, namespaces)]
lists = {ns: {k: [] for k in ["deployments", "replicasets", "pods", "services", "endpoints", "events"]}
         for ns in ns_names}
logs = []  # (ns, pod, text)
pods_total = 0
node_names = []
PER_NEIGHBOUR = 1 + 1 + 3 + 1 + 1 + 6
n = 0
while existing + n * PER_NEIGHBOUR + len(node_names) * 2 < objects_goal:
    ns = ns_names[n % len(ns_names)]
    app = f"app{n:05d}"
    h = f"{n:05d}abcd"
    crash = ns != TARGET_NS and n % 40 == 39
    d = copy.deepcopy(dep_t)
    d["metadata"].update(name=app, namespace=ns, uid=f"d-{n}", labels={"app": app})
    d["spec"]["selector"] = {"matchLabels": {"app": app}}
    d["spec"]["template"]["metadata"]["labels"] = {"app": app}
    d["spec"]["replicas"] = 3
    d["status"] = {"replicas": 3, "readyReplicas": 0 if crash else 3, "availableReplicas": 0 if crash else 3,
                   "updatedReplicas": 3, "observedGeneration": d["metadata"].get("generation", 1),
                   "conditions": [{"type": "Available", "status": "False" if crash else "True",
                                   "reason": "MinimumReplicasUnavailable" if crash else "MinimumReplicasAvailable",
                                   "lastTransitionTime": created}]}
    r = copy.deepcopy(rs_t)
    r["metadata"].update(name=f"{app}-{h}", namespace=ns, uid=f"r-{n}",
                         labels={"app": app, "pod-template-hash": h})
    r["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "Deployment", "name": app,
                                         "uid": f"d-{n}", "controller": True, "blockOwnerDeletion": True}]
    r["spec"]["selector"] = {"matchLabels": {"app": app, "pod-template-hash": h}}
    r["spec"]["template"]["metadata"]["labels"] = {"app": app, "pod-template-hash": h}
    r["spec"]["replicas"] = 3
    r["status"] = {"replicas": 3, "readyReplicas": 0 if crash else 3, "availableReplicas": 0 if crash else 3,
                   "observedGeneration": 1}
    L = lists[ns]
    L["deployments"].append(d)
    L["replicasets"].append(r)
    addresses = []
    for j in range(3):
        if pods_total % 30 == 0:
            node_names.append(f"worker-{len(node_names):04d}")
        node = node_names[-1]
        pods_total += 1
        pname = f"{app}-{h}-p{j}"
        p = copy.deepcopy(pod_t)
        p["metadata"].update(name=pname, namespace=ns, uid=f"p-{n}-{j}",
                             labels={"app": app, "pod-template-hash": h})
        p["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                             "name": f"{app}-{h}", "uid": f"r-{n}",
                                             "controller": True, "blockOwnerDeletion": True}]
        p["spec"]["nodeName"] = node
        ip = f"10.{(pods_total >> 16) & 255}.{(pods_total >> 8) & 255}.{pods_total & 255}"
        p["status"]["podIP"] = ip
        p["status"]["podIPs"] = [{"ip": ip}]
        if crash:
            for c in p["status"].get("containerStatuses", []):
                c.update(ready=False, restartCount=9,
                         state={"waiting": {"reason": "CrashLoopBackOff",
                                            "message": "back-off 5m0s restarting failed container"}},
                         lastState={"terminated": {"reason": "Error", "exitCode": 1,
                                                   "startedAt": created, "finishedAt": created}})
            p["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
        L["pods"].append(p)
        addresses.append({"ip": ip, "nodeName": node,
                          "targetRef": {"kind": "Pod", "namespace": ns, "name": pname, "uid": f"p-{n}-{j}"}})
        for reason, msg in [("Scheduled", f"Successfully assigned {ns}/{pname} to {node}"),
                            ("BackOff", "Back-off restarting failed container app in pod " + pname) if crash
                            else ("Started", "Started container app")]:
            L["events"].append({
                "metadata": {"name": f"{pname}.{reason.lower()}", "namespace": ns,
                             "resourceVersion": str(900000 + len(L["events"]))},
                "involvedObject": {"kind": "Pod", "namespace": ns, "name": pname, "uid": f"p-{n}-{j}"},
                "reason": reason, "message": msg, "type": "Warning" if reason == "BackOff" else "Normal",
                "count": 1, "firstTimestamp": created, "lastTimestamp": created,
                "source": {"component": "default-scheduler" if reason == "Scheduled" else "kubelet"}})
        text = log_t.replace("{NS}", ns).replace("{POD}", pname)
        if crash:
            text = text.replace("listening on :8080", "panic: cannot open /data/state: permission denied")
        logs.append((ns, pname, text))
    s = copy.deepcopy(svc_t)
    s["metadata"].update(name=app, namespace=ns, uid=f"s-{n}")
    s["spec"]["selector"] = {"app": app}
    s["spec"].pop("clusterIP", None)
    s["spec"].pop("clusterIPs", None)
    L["services"].append(s)
    e = copy.deepcopy(ep_t)
    e["metadata"].update(name=app, namespace=ns)
    ports = (ep_t.get("subsets") or [{}])[0].get("ports", [{"port": 8080, "protocol": "TCP"}])
    e["subsets"] = [{"notReadyAddresses" if crash else "addresses": addresses, "ports": ports}]
    L["endpoints"].append(e)
    n += 1

for ns, kinds in lists.items():
    d = os.path.join(out, ns)
    os.makedirs(d, exist_ok=True)
    for k, items in kinds.items():
        path = os.path.join(d, k + ".json")
        base = load(path) if os.path.exists(path) else {"kind": "List", "apiVersion": "v1",
                                                         "metadata": {"resourceVersion": ""}, "items": []}
        base["items"].extend(items)
        write(path, base)
    for k in ["daemonsets", "replication-controllers"]:
        path = os.path.join(d, k + ".json")
        if not os.path.exists(path):
            write(path, {"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": ""}, "items": []})
for ns, pod, text in logs:
    os.makedirs(os.path.join(out, ns, pod), exist_ok=True)
    with open(os.path.join(out, ns, pod, "logs.txt"), "w") as f:
        f.write(text)

node_events = []
for name in node_names:
    nd = copy.deepcopy(node_t)
    nd["metadata"]["name"] = name
    nd["metadata"].setdefault("labels", {})["kubernetes.io/hostname"] = name
    nd["metadata"]["labels"].pop("node-role.kubernetes.io/control-plane", None)
    nd["spec"].pop("taints", None)
    nodes["items"].append(nd)
    node_events.append({
        "metadata": {"name": f"{name}.sufficient", "namespace": "default",
                     "resourceVersion": str(800000 + len(node_events))},
        "involvedObject": {"kind": "Node", "name": name, "uid": name},
        "reason": "NodeHasSufficientMemory", "message": f"Node {name} status is now: NodeHasSufficientMemory",
        "type": "Normal", "count": 1, "firstTimestamp": "2025-11-01T00:00:00Z",
        "lastTimestamp": "2025-11-01T00:00:00Z", "source": {"component": "kubelet", "host": name}})
write(os.path.join(out, "nodes.json"), nodes)
ev = os.path.join(out, "default", "events.json")
base = load(ev)
base["items"].extend(node_events)
write(ev, base)

total = existing + n * PER_NEIGHBOUR + 2 * len(node_names)
size = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(out) for f in fs)
print(json.dumps({"objects": total, "pods": pods_total + 6, "namespaces": len(ns_names) + 2,
                  "nodes": len(node_names) + 1, "bytes": size}))
