#!/usr/bin/env python3
"""Watch streams in the API server's `?watch=true` format for `kubectl metakube watch --replay`.

  watch_stream.py from-dump DUMP OUT.jsonl
      A `kubectl cluster-info dump --output-directory` folder as the stream a watch started on
      that cluster would see: every object ADDED (kind and apiVersion filled in, as a watch of one
      resource carries them), cluster-scoped first, then each namespace's lists, events last in
      time order.

  watch_stream.py synthetic OUT.jsonl [--workloads N] [--minutes M] [--seed S] [--faults LIST]
      A healthy cluster of N Deployments (3 pods, a Service and Endpoints each) over M minutes of
      churn (rolling updates, scale changes, probe blips, normal events, node heartbeats), with
      faults injected at known times and fixed later. Ground truth goes to OUT.truth.json: per
      fault its first event's line number and time, the expected root-cause object, reason and
      category, and when it was fixed. LIST is a comma-separated subset of
      selector,oom,image,node,unschedulable,restarts (default: all); "none" for a healthy stream.
"""
import json, os, random, sys, zlib
from datetime import datetime, timedelta, timezone

KINDS = {  # list file -> (kind, apiVersion, namespaced)
    "nodes": ("Node", "v1", False), "namespaces": ("Namespace", "v1", False),
    "persistentvolumes": ("PersistentVolume", "v1", False),
    "storageclasses": ("StorageClass", "storage.k8s.io/v1", False),
    "pods": ("Pod", "v1", True), "services": ("Service", "v1", True),
    "endpoints": ("Endpoints", "v1", True),
    "deployments": ("Deployment", "apps/v1", True), "replicasets": ("ReplicaSet", "apps/v1", True),
    "statefulsets": ("StatefulSet", "apps/v1", True), "daemonsets": ("DaemonSet", "apps/v1", True),
    "replication-controllers": ("ReplicationController", "v1", True),
    "replicationcontrollers": ("ReplicationController", "v1", True),
    "jobs": ("Job", "batch/v1", True), "cronjobs": ("CronJob", "batch/v1", True),
    "configmaps": ("ConfigMap", "v1", True), "secrets": ("Secret", "v1", True),
    "serviceaccounts": ("ServiceAccount", "v1", True),
    "persistentvolumeclaims": ("PersistentVolumeClaim", "v1", True),
    "horizontalpodautoscalers": ("HorizontalPodAutoscaler", "autoscaling/v2", True),
    "networkpolicies": ("NetworkPolicy", "networking.k8s.io/v1", True),
    "ingresses": ("Ingress", "networking.k8s.io/v1", True),
    "resourcequotas": ("ResourceQuota", "v1", True), "limitranges": ("LimitRange", "v1", True),
    "poddisruptionbudgets": ("PodDisruptionBudget", "policy/v1", True),
    "endpointslices": ("EndpointSlice", "discovery.k8s.io/v1", True),
    "events": ("Event", "v1", True),
}


def event_time(e):
    return e.get("lastTimestamp") or e.get("eventTime") or e.get("firstTimestamp") or \
        e.get("metadata", {}).get("creationTimestamp") or ""


def from_dump(dump, out):
    lines = []

    def add(path, namespaced_dir):
        stem = os.path.basename(path)[:-5]
        if stem not in KINDS:
            return []
        kind, api, namespaced = KINDS[stem]
        if namespaced != namespaced_dir:
            return []
        try:
            with open(path) as f:
                items = json.load(f).get("items") or []
        except (OSError, ValueError) as e:
            print(f"skipped {path}: {e}", file=sys.stderr)
            return []
        out_items = []
        for it in items:
            if not isinstance(it, dict):
                continue
            it = dict(it, kind=kind, apiVersion=api)
            out_items.append(it)
        return out_items

    top = sorted(os.listdir(dump))
    events = []
    for name in top:
        p = os.path.join(dump, name)
        if name.endswith(".json") and os.path.isfile(p):
            lines += add(p, False)
    for name in top:
        d = os.path.join(dump, name)
        if not os.path.isdir(d):
            continue
        for f in sorted(os.listdir(d)):
            p = os.path.join(d, f)
            if f.endswith(".json") and os.path.isfile(p):
                items = add(p, True)
                if f == "events.json":
                    events += items
                else:
                    lines += items
    events.sort(key=event_time)
    with open(out, "w") as f:
        for o in lines + events:
            f.write(json.dumps({"type": "ADDED", "object": o}, separators=(",", ":")) + "\n")
    print(f"{out}: {len(lines) + len(events)} events", file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# Synthetic streams

T0 = datetime(2026, 11, 30, 9, 0, 0, tzinfo=timezone.utc)


def h(s):
    """A stable hash (Python's own changes between runs)."""
    return zlib.crc32(s.encode())


def ts(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class Stream:
    def __init__(self, path):
        self.f = open(path, "w")
        self.n = 0
        self.rv = 1000

    def emit(self, typ, obj):
        self.rv += 1
        obj.setdefault("metadata", {})["resourceVersion"] = str(self.rv)
        self.f.write(json.dumps({"type": typ, "object": obj}, separators=(",", ":")) + "\n")
        self.n += 1
        return self.n


def meta(name, ns, t, **extra):
    m = {"name": name, "namespace": ns, "uid": f"uid-{ns}-{name}", "creationTimestamp": ts(t)}
    m.update(extra)
    return m


class App:
    def __init__(self, ns, name, image, mem="256Mi", replicas=3, env=None):
        self.ns, self.name, self.image, self.mem, self.replicas = ns, name, image, mem, replicas
        self.env = env or []
        self.rev = 1
        self.pods = []  # [name, node, restarts, state]

    def labels(self):
        return {"app": self.name}

    def template(self):
        return {"metadata": {"labels": self.labels()}, "spec": {"containers": [{
            "name": self.name, "image": self.image, "env": self.env,
            "ports": [{"containerPort": 8080}],
            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": self.mem}},
            "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}}}]}}

    def rs_name(self):
        return f"{self.name}-{self.rev:05d}"

    def deployment(self, t, available=True, progressing=True):
        conds = [{"type": "Available", "status": "True" if available else "False",
                  "reason": "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
                  "lastTransitionTime": ts(t), "lastUpdateTime": ts(t)},
                 {"type": "Progressing", "status": "True" if progressing else "False",
                  "reason": "NewReplicaSetAvailable" if progressing else "ProgressDeadlineExceeded",
                  "lastTransitionTime": ts(t), "lastUpdateTime": ts(t)}]
        ready = sum(1 for p in self.pods if p[3] == "ok")
        return {"kind": "Deployment", "apiVersion": "apps/v1",
                "metadata": meta(self.name, self.ns, T0, generation=self.rev,
                                 annotations={"deployment.kubernetes.io/revision": str(self.rev)}),
                "spec": {"replicas": self.replicas, "selector": {"matchLabels": self.labels()},
                         "template": self.template(), "progressDeadlineSeconds": 600},
                "status": {"observedGeneration": self.rev, "replicas": self.replicas,
                           "readyReplicas": ready, "availableReplicas": ready,
                           "updatedReplicas": self.replicas,
                           "unavailableReplicas": self.replicas - ready, "conditions": conds}}

    def replicaset(self, t, rev=None, replicas=None, image=None):
        rev = rev or self.rev
        tpl = self.template()
        if image:
            tpl["spec"]["containers"][0]["image"] = image
        tpl["metadata"]["labels"]["pod-template-hash"] = f"{rev:05d}"
        n = self.replicas if replicas is None else replicas
        return {"kind": "ReplicaSet", "apiVersion": "apps/v1",
                "metadata": meta(f"{self.name}-{rev:05d}", self.ns, t,
                                 annotations={"deployment.kubernetes.io/revision": str(rev)},
                                 ownerReferences=[{"apiVersion": "apps/v1", "kind": "Deployment",
                                                   "name": self.name, "uid": f"uid-{self.ns}-{self.name}",
                                                   "controller": True}]),
                "spec": {"replicas": n, "selector": {"matchLabels": tpl["metadata"]["labels"]},
                         "template": tpl},
                "status": {"replicas": n, "readyReplicas": n, "availableReplicas": n}}

    def pod(self, p, t, created):
        name, node, restarts, state = p
        c = {"name": self.name, "image": self.image, "restartCount": restarts,
             "imageID": f"{self.image}@sha256:{'a' * 64}", "containerID": f"containerd://{name}"}
        phase, ready = "Running", True
        if state == "ok":
            c.update(ready=True, started=True, state={"running": {"startedAt": ts(created)}})
        elif state in ("crash", "oom"):  # crash-looping: the last run ended in an error or an OOM kill
            reason, code = ("Error", 1) if state == "crash" else ("OOMKilled", 137)
            c.update(ready=False, started=False,
                     state={"waiting": {"reason": "CrashLoopBackOff",
                                        "message": f"back-off 40s restarting failed container={self.name} pod={name}"}},
                     lastState={"terminated": {"reason": reason, "exitCode": code,
                                               "startedAt": ts(t - timedelta(seconds=20)),
                                               "finishedAt": ts(t - timedelta(seconds=5))}})
            ready = False
        elif state == "restarted":  # exited cleanly and was restarted: Running and Ready again
            c.update(ready=True, started=True, state={"running": {"startedAt": ts(t)}},
                     lastState={"terminated": {"reason": "Completed", "exitCode": 0,
                                               "startedAt": ts(created), "finishedAt": ts(t)}})
        elif state == "imagepull":
            c.update(ready=False, started=False, image=self.bad_image, imageID="",
                     state={"waiting": {"reason": "ImagePullBackOff",
                                        "message": f'Back-off pulling image "{self.bad_image}"'}})
            ready = False
        elif state == "notready":  # its node stopped reporting: the node controller marks it NotReady
            c.update(ready=False, started=True, state={"running": {"startedAt": ts(created)}})
            ready = False
        elif state == "pending":
            phase, ready, c = "Pending", False, None
        conds = [{"type": "PodScheduled", "status": "True", "lastTransitionTime": ts(created)},
                 {"type": "Initialized", "status": "True", "lastTransitionTime": ts(created)},
                 {"type": "Ready", "status": "True" if ready else "False",
                  "lastTransitionTime": ts(created if ready and state == "ok" else t)},
                 {"type": "ContainersReady", "status": "True" if ready else "False",
                  "lastTransitionTime": ts(created if ready and state == "ok" else t)}]
        status = {"phase": phase, "conditions": conds, "startTime": ts(created),
                  "podIP": "10.1.%d.%d" % (h(name) % 250, h(name[::-1]) % 250),
                  "hostIP": "10.0.0.%d" % (int(node.split("-")[-1]) + 10)}
        if c:
            status["containerStatuses"] = [c]
        if state == "pending":
            conds[0] = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                        "message": "0/%d nodes are available: %d Insufficient memory. preemption: 0/%d nodes are available: %d No preemption victims found for incoming pod." % (self.nodes, self.nodes, self.nodes, self.nodes),
                        "lastTransitionTime": ts(t)}
            status = {"phase": "Pending", "conditions": conds[:1], "qosClass": "Burstable"}
        spec = self.template()["spec"]
        if state == "imagepull":
            spec["containers"][0]["image"] = self.bad_image
        if state != "pending":
            spec["nodeName"] = node
        rs = name.rsplit("-", 1)[0]
        return {"kind": "Pod", "apiVersion": "v1",
                "metadata": meta(name, self.ns, created,
                                 labels=dict(self.labels(), **{"pod-template-hash": rs.rsplit("-", 1)[-1]}),
                                 ownerReferences=[{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                                   "name": rs, "uid": f"uid-{self.ns}-{rs}", "controller": True}]),
                "spec": spec, "status": status}


def event(ns, name, kind, obj, reason, message, t, typ="Normal", count=1, comp="kubelet"):
    return {"kind": "Event", "apiVersion": "v1",
            "metadata": meta(f"{obj}.{h(obj + reason) % 10**16:016x}", ns, t),
            "involvedObject": {"kind": kind, "namespace": ns if kind != "Node" else "", "name": obj},
            "reason": reason, "message": message, "type": typ, "count": count,
            "firstTimestamp": ts(t), "lastTimestamp": ts(t), "source": {"component": comp},
            "reportingComponent": comp}


def synthetic(out, workloads=40, minutes=60, seed=7, faults=None):
    rnd = random.Random(seed)
    s = Stream(out)
    truth = []
    nodes = [f"worker-{i}" for i in range(max(3, workloads // 10))]
    namespaces = ["shop", "payments", "search", "platform"]

    def node_obj(n, t, ready=True):
        return {"kind": "Node", "apiVersion": "v1",
                "metadata": {"name": n, "uid": f"uid-{n}", "creationTimestamp": ts(T0 - timedelta(days=30)),
                             "labels": {"kubernetes.io/hostname": n}},
                "spec": {},
                "status": {"capacity": {"cpu": "4", "memory": "16Gi", "pods": "110"},
                           "allocatable": {"cpu": "3800m", "memory": "15Gi", "pods": "110"},
                           "conditions": [
                               {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory",
                                "lastHeartbeatTime": ts(t), "lastTransitionTime": ts(T0 - timedelta(days=30))},
                               {"type": "DiskPressure", "status": "False", "reason": "KubeletHasNoDiskPressure",
                                "lastHeartbeatTime": ts(t), "lastTransitionTime": ts(T0 - timedelta(days=30))},
                               {"type": "PIDPressure", "status": "False", "reason": "KubeletHasSufficientPID",
                                "lastHeartbeatTime": ts(t), "lastTransitionTime": ts(T0 - timedelta(days=30))},
                               {"type": "Ready", "status": "True" if ready else "Unknown",
                                "reason": "KubeletReady" if ready else "NodeStatusUnknown",
                                "message": "kubelet is posting ready status" if ready else "Kubelet stopped posting node status.",
                                "lastHeartbeatTime": ts(t), "lastTransitionTime": ts(T0 - timedelta(days=30) if ready else t)}],
                           "nodeInfo": {"kubeletVersion": "v1.31.2", "containerRuntimeVersion": "containerd://1.7.22"}}}

    apps = []
    for i in range(workloads):
        ns = namespaces[i % len(namespaces)]
        a = App(ns, f"svc-{i:03d}", f"registry.example.com/{ns}/svc-{i:03d}:1.{i % 7}.0")
        a.nodes = len(nodes)
        apps.append(a)
    # The fault families need a caller → backend pair and a few named victims.
    backend = App("shop", "redis", "redis:7.2.4", replicas=1)
    caller = App("shop", "checkout", "registry.example.com/shop/checkout:2.3.1",
                 env=[{"name": "REDIS_URL", "value": "redis://redis.shop.svc.cluster.local:6379"}])
    caller2 = App("shop", "cart", "registry.example.com/shop/cart:1.9.0",
                  env=[{"name": "REDIS_URL", "value": "redis://redis.shop.svc.cluster.local:6379"}])
    for a in (backend, caller, caller2):
        a.nodes = len(nodes)
    apps += [backend, caller, caller2]

    t = T0
    for n in nodes:
        s.emit("ADDED", node_obj(n, t))
    for a in apps:
        s.emit("ADDED", a.deployment(t))
        s.emit("ADDED", a.replicaset(t))
        for k in range(a.replicas):
            a.pods.append([f"{a.rs_name()}-{k:05x}", rnd.choice(nodes), 0, "ok"])
            s.emit("ADDED", a.pod(a.pods[-1], t, t - timedelta(hours=2)))
        port = 6379 if a.name == "redis" else 8080
        s.emit("ADDED", {"kind": "Service", "apiVersion": "v1", "metadata": meta(a.name, a.ns, T0),
                         "spec": {"selector": a.labels(), "ports": [{"port": port, "targetPort": port, "protocol": "TCP"}],
                                  "clusterIP": "10.96.5.5" if a.name == "redis" else "10.96.%d.%d" % (len(a.name), h(a.name) % 250), "type": "ClusterIP"}})
        s.emit("ADDED", {"kind": "Endpoints", "apiVersion": "v1", "metadata": meta(a.name, a.ns, T0, annotations={"endpoints.kubernetes.io/last-change-trigger-time": ts(T0)}),
                         "subsets": [{"addresses": [{"ip": "10.1.0.%d" % k, "targetRef": {"kind": "Pod", "namespace": a.ns, "name": p[0]}}
                                                    for k, p in enumerate(a.pods)],
                                      "ports": [{"port": port, "protocol": "TCP"}]}]})

    families = ["selector", "oom", "image", "node", "unschedulable", "restarts"] if faults is None else faults
    # Faults start after a warm-up third of the stream, one every few minutes, each fixed later.
    schedule = {}
    if families:
        gap = (minutes * 2 // 3) / max(1, len(families))
        for k, fam in enumerate(families):
            start = int(minutes / 3 + k * gap)
            schedule.setdefault(start, []).append(fam)
    active = {}

    def endpoints(a, t):
        # The endpoints controller: ready pods in addresses, the others in notReadyAddresses.
        port = 6379 if a.name == "redis" else 8080
        ready = [p for p in a.pods if p[3] in ("ok", "restarted")]
        not_ready = [p for p in a.pods if p[3] not in ("ok", "restarted")]
        sub = {"ports": [{"port": port, "protocol": "TCP"}]}
        if ready:
            sub["addresses"] = [{"ip": "10.1.0.%d" % k, "targetRef": {"kind": "Pod", "namespace": a.ns, "name": p[0]}} for k, p in enumerate(ready)]
        if not_ready:
            sub["notReadyAddresses"] = [{"ip": "10.1.1.%d" % k, "targetRef": {"kind": "Pod", "namespace": a.ns, "name": p[0]}} for k, p in enumerate(not_ready)]
        s.emit("MODIFIED", {"kind": "Endpoints", "apiVersion": "v1",
                            "metadata": meta(a.name, a.ns, T0, annotations={"endpoints.kubernetes.io/last-change-trigger-time": ts(t)}),
                            "subsets": [sub]})

    def pods_update(a, t, state, created=None):
        for p in a.pods:
            p[3] = state
            s.emit("MODIFIED", a.pod(p, t, created or t - timedelta(hours=2)))
        endpoints(a, t)

    for minute in range(minutes):
        for sec in range(0, 60, 10):
            t = T0 + timedelta(minutes=minute, seconds=sec)
            if sec == 0:
                for n in nodes:
                    if active.get("node", {}).get("node") == n:
                        continue
                    s.emit("MODIFIED", node_obj(n, t))
            # Healthy churn: a rolling update, a probe blip, normal events.
            r = rnd.random()
            busy = {info["app"].name for info in active.values() if "app" in info}
            calm = [a for a in apps[:workloads] if a.name not in busy]
            if r < 0.15:
                a = rnd.choice(calm)
                a.rev += 1
                s.emit("ADDED", a.replicaset(t))
                old = a.pods
                a.pods = []
                for k in range(a.replicas):
                    a.pods.append([f"{a.rs_name()}-{k:05x}", rnd.choice(nodes), 0, "ok"])
                    p = a.pod(a.pods[-1], t, t)
                    s.emit("ADDED", event(a.ns, a.name, "Pod", a.pods[-1][0], "Scheduled",
                                          f"Successfully assigned {a.ns}/{a.pods[-1][0]} to {a.pods[-1][1]}", t, comp="default-scheduler"))
                    s.emit("ADDED", p)
                    s.emit("ADDED", event(a.ns, a.name, "Pod", a.pods[-1][0], "Started", f"Started container {a.name}", t))
                for p in old:
                    s.emit("DELETED", a.pod(p, t, t - timedelta(hours=2)))
                s.emit("MODIFIED", a.replicaset(t, rev=a.rev - 1, replicas=0))
                s.emit("MODIFIED", a.deployment(t))
                s.emit("ADDED", event(a.ns, a.name, "Deployment", a.name, "ScalingReplicaSet",
                                      f"Scaled up replica set {a.rs_name()} to {a.replicas}", t, comp="deployment-controller"))
            elif r < 0.22:
                a = rnd.choice(calm)
                p = rnd.choice(a.pods)
                s.emit("ADDED", event(a.ns, a.name, "Pod", p[0], "Unhealthy",
                                      "Readiness probe failed: HTTP probe failed with statuscode: 503", t, typ="Warning", count=1))
            elif r < 0.35:
                a = rnd.choice(apps[:workloads])
                s.emit("ADDED", event(a.ns, a.name, "Pod", rnd.choice(a.pods)[0], "Pulled",
                                      f'Container image "{a.image}" already present on machine', t))
            # Faults.
            for fam in (schedule.pop(minute, []) if sec == 0 else []):
                info = {"family": fam, "start_time": ts(t)}
                if fam == "selector":
                    svc = {"kind": "Service", "apiVersion": "v1", "metadata": meta("redis", "shop", T0),
                           "spec": {"selector": {"app": "redis-cache"}, "ports": [{"port": 6379, "targetPort": 6379, "protocol": "TCP"}],
                                    "clusterIP": "10.96.5.5", "type": "ClusterIP"}}
                    info["first_line"] = s.emit("MODIFIED", svc)
                    s.emit("MODIFIED", {"kind": "Endpoints", "apiVersion": "v1", "metadata": meta("redis", "shop", T0, annotations={"endpoints.kubernetes.io/last-change-trigger-time": ts(t)})})
                    info.update(root={"kind": "Service", "namespace": "shop", "name": "redis"},
                                reason="SelectorMatchesNoPods", category="network", affected=["Deployment/shop/checkout", "Deployment/shop/cart"])
                elif fam == "oom":
                    a = apps[1]
                    info["first_line"] = s.n + 1
                    pods_update(a, t, "oom")
                    for p in a.pods:
                        s.emit("ADDED", event(a.ns, a.name, "Pod", p[0], "BackOff",
                                              f"Back-off restarting failed container {a.name} in pod {p[0]}_{a.ns}", t, typ="Warning", count=3))
                    info.update(root={"kind": "Deployment", "namespace": a.ns, "name": a.name}, reason="MemoryLimitTooLow",
                                category="resource", app=a)
                elif fam == "image":
                    a = apps[2]
                    a.bad_image = a.image.rsplit(":", 1)[0] + ":9.9.9-typo"
                    old_rev = a.rev
                    a.rev += 1
                    s.emit("MODIFIED", a.replicaset(t, rev=old_rev))
                    dep = a.deployment(t, progressing=True)
                    dep["spec"]["template"]["spec"]["containers"][0]["image"] = a.bad_image
                    dep["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = str(a.rev)
                    info["first_line"] = s.emit("MODIFIED", dep)
                    s.emit("ADDED", a.replicaset(t, image=a.bad_image, replicas=1))
                    bad = [f"{a.rs_name()}-00000", rnd.choice(nodes), 0, "imagepull"]
                    s.emit("ADDED", a.pod(bad, t, t))
                    s.emit("ADDED", event(a.ns, a.name, "Pod", bad[0], "Failed",
                                          f'Failed to pull image "{a.bad_image}": rpc error: code = NotFound desc = failed to pull and unpack image "{a.bad_image}": failed to resolve reference "{a.bad_image}": {a.bad_image}: not found',
                                          t, typ="Warning", count=2))
                    info.update(root={"kind": "Deployment", "namespace": a.ns, "name": a.name}, reason="ImageNotFound",
                                category="image", app=a, bad=bad, old_rev=old_rev)
                elif fam == "node":
                    n = nodes[-1]
                    info["first_line"] = s.emit("MODIFIED", node_obj(n, t, ready=False))
                    s.emit("ADDED", event("default", n, "Node", n, "NodeNotReady", f"Node {n} status is now: NodeNotReady", t, comp="node-controller"))
                    on_node = [(a, p) for a in apps for p in a.pods if p[1] == n and p[3] == "ok"]
                    for a, p in on_node:
                        pod = a.pod(p, t, t - timedelta(hours=2))
                        for c in pod["status"]["conditions"]:
                            if c["type"] == "Ready":
                                c.update(status="False", lastTransitionTime=ts(t))
                        pod["status"]["containerStatuses"][0]["ready"] = False
                        s.emit("MODIFIED", pod)
                        p[3] = "notready"
                    for a in {id(a): a for a, _ in on_node}.values():
                        s.emit("MODIFIED", a.deployment(t))
                        endpoints(a, t)
                    info["on_node"] = on_node
                    info.update(root={"kind": "Node", "name": n}, reason="NodeNotReady", category="system", node=n)
                elif fam == "unschedulable":
                    a = App("search", "indexer", "registry.example.com/search/indexer:4.0.0", mem="64Gi", replicas=1)
                    a.nodes = len(nodes)
                    a.template_mem = "64Gi"
                    dep = a.deployment(t, available=False)
                    dep["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["memory"] = "64Gi"
                    info["first_line"] = s.emit("ADDED", dep)
                    rs = a.replicaset(t)
                    rs["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["memory"] = "64Gi"
                    s.emit("ADDED", rs)
                    p = [f"{a.rs_name()}-00000", nodes[0], 0, "pending"]
                    pod = a.pod(p, t, t)
                    pod["spec"]["containers"][0]["resources"]["requests"]["memory"] = "64Gi"
                    s.emit("ADDED", pod)
                    s.emit("ADDED", event("search", "indexer", "Pod", p[0], "FailedScheduling",
                                          pod["status"]["conditions"][0]["message"], t, typ="Warning", comp="default-scheduler"))
                    info.update(root={"kind": "Deployment", "namespace": "search", "name": "indexer"}, reason="InsufficientResources",
                                category="scheduling", app=a, pod=pod)
                elif fam == "restarts":
                    a = apps[3]
                    info["first_line"] = s.n + 1
                    info.update(root={"kind": "Deployment", "namespace": a.ns, "name": a.name}, reason="anomaly",
                                category=None, app=a, anomaly=True)
                active[fam] = info
                truth.append(info)
            # Fault progress: callers crash while redis selects nothing; the flapping workload
            # restarts every 10 s and is Ready again in between.
            if "selector" in active and sec == 0:
                for a in (caller, caller2):
                    for p in a.pods:
                        p[2] += 1
                    pods_update(a, t, "crash")
                    for p in a.pods:
                        s.emit("ADDED", event(a.ns, a.name, "Pod", p[0], "BackOff",
                                              f"Back-off restarting failed container {a.name} in pod {p[0]}_{a.ns}", t, typ="Warning", count=p[2]))
            if "restarts" in active:
                a = active["restarts"]["app"]
                p = a.pods[(minute * 6 + sec // 10) % len(a.pods)]
                p[2] += 1
                p[3] = "restarted"
                s.emit("MODIFIED", a.pod(p, t, t - timedelta(hours=2)))
            # Fixes, each a few minutes after its fault.
            for fam, info in list(active.items()):
                started = datetime.strptime(info["start_time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
                if t - started < timedelta(minutes=6) or sec != 0:
                    continue
                if fam == "selector":
                    s.emit("MODIFIED", {"kind": "Service", "apiVersion": "v1", "metadata": meta("redis", "shop", T0),
                                        "spec": {"selector": {"app": "redis"}, "ports": [{"port": 6379, "targetPort": 6379, "protocol": "TCP"}],
                                                 "clusterIP": "10.96.5.5", "type": "ClusterIP"}})
                    s.emit("MODIFIED", {"kind": "Endpoints", "apiVersion": "v1", "metadata": meta("redis", "shop", T0, annotations={"endpoints.kubernetes.io/last-change-trigger-time": ts(t)}),
                                        "subsets": [{"addresses": [{"ip": "10.1.0.1", "targetRef": {"kind": "Pod", "namespace": "shop", "name": backend.pods[0][0]}}],
                                                     "ports": [{"port": 6379, "protocol": "TCP"}]}]})
                    for a in (caller, caller2):
                        pods_update(a, t, "ok", created=t)
                elif fam == "oom":
                    a = info["app"]
                    a.mem = "512Mi"
                    s.emit("MODIFIED", a.deployment(t))
                    pods_update(a, t, "ok", created=t)
                elif fam == "image":
                    a = info["app"]
                    s.emit("DELETED", a.pod(info["bad"], t, t))
                    s.emit("MODIFIED", a.replicaset(t, image=a.bad_image, replicas=0))
                    a.rev = info["old_rev"]
                    s.emit("MODIFIED", a.deployment(t))
                elif fam == "node":
                    s.emit("MODIFIED", node_obj(info["node"], t))
                    for a, p in info["on_node"]:
                        p[3] = "ok"
                        s.emit("MODIFIED", a.pod(p, t, t - timedelta(hours=2)))
                    for a in {id(a): a for a, _ in info["on_node"]}.values():
                        s.emit("MODIFIED", a.deployment(t))
                        endpoints(a, t)
                elif fam == "unschedulable":
                    s.emit("DELETED", info["pod"])
                    s.emit("DELETED", info["app"].deployment(t))
                elif fam == "restarts":
                    for p in info["app"].pods:
                        p[3] = "ok"
                info["fixed_time"] = ts(t)
                del active[fam]
    s.f.close()
    for info in truth:
        for k in ("app", "bad", "pod", "node", "old_rev", "on_node"):
            info.pop(k, None)
    with open(out + ".truth.json", "w") as f:
        json.dump({"events": s.n, "faults": truth, "workloads": len(apps), "minutes": minutes}, f, indent=1)
    print(f"{out}: {s.n} events, {len(truth)} faults", file=sys.stderr)


def main(argv):
    if len(argv) >= 3 and argv[0] == "from-dump":
        return from_dump(argv[1], argv[2])
    if len(argv) >= 2 and argv[0] == "synthetic":
        out = argv[1]
        opts = {"--workloads": 40, "--minutes": 60, "--seed": 7}
        faults = None
        i = 2
        while i < len(argv):
            if argv[i] == "--faults":
                faults = [] if argv[i + 1] == "none" else argv[i + 1].split(",")
            else:
                opts[argv[i]] = int(argv[i + 1])
            i += 2
        return synthetic(out, opts["--workloads"], opts["--minutes"], opts["--seed"], faults)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]) or 0)
