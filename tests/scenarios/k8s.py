"""A small model of a Kubernetes cluster that writes `kubectl cluster-info dump` folders.

Objects carry what a 1.31 API server returns (server defaults, ownerReferences with
pod-template-hash, projected token volumes, default tolerations, conditions), events use the
core/v1 shape for kubelet/controllers and the events.k8s.io shape for the scheduler, and
message texts are the components' own wording. Deterministic: every id derives from names.
"""

import hashlib
import json
import os
from datetime import datetime, timedelta, timezone

ALPHA = "bcdfghjklmnpqrstvwxz2456789"  # SafeEncodeString alphabet


def h(*parts, n=10, alpha=ALPHA):
    d = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return "".join(alpha[b % len(alpha)] for b in d[:n])


def uid(*parts):
    x = hashlib.sha256(("uid/" + "/".join(map(str, parts))).encode()).hexdigest()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:32]}"


def ts(t):
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def mts(t):
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


DEFAULT_TOLERATIONS = [
    {"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists", "tolerationSeconds": 300},
    {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists", "tolerationSeconds": 300},
]


def container(name, image, ports=(), env=None, command=None, args=None, limits=None, requests=None,
              liveness=None, readiness=None, mounts=(), env_from=None):
    c = {
        "image": image,
        "imagePullPolicy": "Always" if image.endswith(":latest") or ":" not in image.split("/")[-1] else "IfNotPresent",
        "name": name,
        "resources": {},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
    }
    if command:
        c["command"] = command
    if args:
        c["args"] = args
    if env:
        c["env"] = env
    if env_from:
        c["envFrom"] = env_from
    if ports:
        c["ports"] = [{"containerPort": p, "protocol": "TCP"} if isinstance(p, int) else dict(p, protocol="TCP") for p in ports]
    if limits:
        c["resources"]["limits"] = dict(limits)
        c["resources"]["requests"] = dict(requests or limits)
    elif requests:
        c["resources"]["requests"] = dict(requests)
    for key, probe in (("livenessProbe", liveness), ("readinessProbe", readiness)):
        if probe:
            p = {"failureThreshold": 3, "periodSeconds": 10, "successThreshold": 1, "timeoutSeconds": 1}
            p.update(probe)
            if "httpGet" in p:
                p["httpGet"] = dict({"path": "/", "scheme": "HTTP"}, **p["httpGet"])
            c[key] = p
    c["volumeMounts"] = list(mounts)
    return c


def probe_http(port, path="/healthz", delay=5):
    return {"httpGet": {"path": path, "port": port}, "initialDelaySeconds": delay}


def probe_tcp(port, delay=5):
    return {"tcpSocket": {"port": port}, "initialDelaySeconds": delay}


class Cluster:
    def __init__(self, name, now, node_names=("kind-control-plane",), runtime="containerd", version="v1.31.2"):
        self.name = name
        self.now = now
        self.runtime = runtime
        self.version = version
        self.lists = {}  # (ns or "", plural) -> [items]
        self.logs = {}  # (ns, pod) -> [(container, text)]
        self.rv = 1000
        self.ip = 10
        self.svc_ip = 10
        self.namespaces = set()
        self.nodes = []
        for n in node_names:
            self.add_node(n)

    # ---------------------------------------------------------------- basics
    def next_rv(self):
        self.rv += 7
        return str(self.rv)

    def add(self, ns, plural, item):
        if ns:
            self.namespaces.add(ns)
        self.lists.setdefault((ns or "", plural), []).append(item)
        return item

    def meta(self, ns, name, created, labels=None, annotations=None, owner=None, generate_name=None):
        m = {"creationTimestamp": ts(created), "name": name, "resourceVersion": self.next_rv(), "uid": uid(self.name, ns, name)}
        if ns:
            m["namespace"] = ns
        if labels:
            m["labels"] = dict(labels)
        if annotations:
            m["annotations"] = dict(annotations)
        if owner:
            m["ownerReferences"] = [{"apiVersion": owner[0], "blockOwnerDeletion": True, "controller": True,
                                     "kind": owner[1], "name": owner[2], "uid": uid(self.name, ns, owner[2])}]
        if generate_name:
            m["generateName"] = generate_name
        return m

    def pod_ip(self):
        self.ip += 1
        return f"10.244.{self.ip // 250}.{self.ip % 250 + 2}"

    def cluster_ip(self):
        self.svc_ip += 13
        return f"10.96.{self.svc_ip // 250}.{self.svc_ip % 250 + 1}"

    # ---------------------------------------------------------------- nodes
    def add_node(self, name, labels=None, taints=None, pressure=None, ready=True, pods_cap="110", cpu="8", memory="16329532Ki",
                 created=None, message=None):
        created = created or self.now - timedelta(days=12)
        hb = self.now - timedelta(seconds=17)
        lab = {"beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
               "kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}
        if "control-plane" in name:
            lab["node-role.kubernetes.io/control-plane"] = ""
        lab.update(labels or {})
        conds = []
        for t, ok_reason, ok_msg in (("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                                     ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                                     ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available")):
            if pressure == t:
                bad = {"MemoryPressure": ("KubeletHasInsufficientMemory", "kubelet has insufficient memory available"),
                       "DiskPressure": ("KubeletHasDiskPressure", "kubelet has disk pressure"),
                       "PIDPressure": ("KubeletHasInsufficientPID", "kubelet has insufficient PID available")}[t]
                conds.append({"lastHeartbeatTime": ts(hb), "lastTransitionTime": ts(self.now - timedelta(minutes=24)),
                              "message": bad[1], "reason": bad[0], "status": "True", "type": t})
            else:
                conds.append({"lastHeartbeatTime": ts(hb), "lastTransitionTime": ts(created), "message": ok_msg,
                              "reason": ok_reason, "status": "False", "type": t})
        if ready:
            conds.append({"lastHeartbeatTime": ts(hb), "lastTransitionTime": ts(created + timedelta(seconds=20)),
                          "message": "kubelet is posting ready status", "reason": "KubeletReady", "status": "True", "type": "Ready"})
        else:
            conds.append({"lastHeartbeatTime": ts(self.now - timedelta(minutes=9)), "lastTransitionTime": ts(self.now - timedelta(minutes=8)),
                          "message": message or "Kubelet stopped posting node status.", "reason": "NodeStatusUnknown", "status": "Unknown", "type": "Ready"})
            for c in conds[:3]:
                c.update({"status": "Unknown", "reason": "NodeStatusUnknown", "message": "Kubelet stopped posting node status."})
        ip = f"172.18.0.{len(self.nodes) + 2}"
        node = {
            "metadata": self.meta(None, name, created, labels=lab,
                                  annotations={"kubeadm.alpha.kubernetes.io/cri-socket": f"unix:///run/{self.runtime}/{self.runtime}.sock",
                                               "node.alpha.kubernetes.io/ttl": "0",
                                               "volumes.kubernetes.io/controller-managed-attach-detach": "true"}),
            "spec": {"podCIDR": f"10.244.{len(self.nodes)}.0/24", "podCIDRs": [f"10.244.{len(self.nodes)}.0/24"],
                     "providerID": f"kind://docker/{self.name}/{name}"},
            "status": {
                "addresses": [{"address": ip, "type": "InternalIP"}, {"address": name, "type": "Hostname"}],
                "allocatable": {"cpu": cpu, "ephemeral-storage": "102626232Ki", "hugepages-2Mi": "0", "memory": memory, "pods": pods_cap},
                "capacity": {"cpu": cpu, "ephemeral-storage": "102626232Ki", "hugepages-2Mi": "0", "memory": memory, "pods": pods_cap},
                "conditions": conds,
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": {"architecture": "amd64", "bootID": uid(name, "boot"), "containerRuntimeVersion": f"{self.runtime}://1.7.18",
                             "kernelVersion": "6.8.0-48-generic", "kubeProxyVersion": self.version, "kubeletVersion": self.version,
                             "machineID": h(name, n=32, alpha="0123456789abcdef"), "operatingSystem": "linux",
                             "osImage": "Debian GNU/Linux 12 (bookworm)", "systemUUID": uid(name, "sys")},
            },
        }
        if taints:
            node["spec"]["taints"] = taints
        if not ready:
            node["spec"]["taints"] = (taints or []) + [
                {"effect": "NoSchedule", "key": "node.kubernetes.io/unreachable", "timeAdded": ts(self.now - timedelta(minutes=8))},
                {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "timeAdded": ts(self.now - timedelta(minutes=8))}]
        self.nodes.append(node)
        self.add(None, "nodes", node)
        return node

    # ---------------------------------------------------------------- events
    def event(self, ns, kind, name, reason, message, typ="Normal", count=1, first=None, last=None, component="kubelet",
              host=None, api="v1", field_path=None):
        last = last or self.now - timedelta(seconds=30)
        first = first or last
        if self.now - last > timedelta(hours=1):
            return None  # the event TTL has removed it
        obj_ns = ns if kind not in ("Node",) else None
        io = {"apiVersion": api, "kind": kind, "name": name, "resourceVersion": self.next_rv(), "uid": uid(self.name, obj_ns, name)}
        if obj_ns:
            io["namespace"] = ns
        if field_path:
            io["fieldPath"] = field_path
        ev_ns = ns if kind != "Node" else "default"
        ename = f"{name}.{h(name, reason, message, n=16, alpha='0123456789abcdef')}"
        e = {"apiVersion": None, "involvedObject": io, "metadata": self.meta(ev_ns, ename, first), "reason": reason,
             "message": message, "type": typ}
        del e["apiVersion"]
        if component == "default-scheduler":
            e.update({"action": "Scheduling", "eventTime": mts(first), "firstTimestamp": None, "lastTimestamp": None,
                      "reportingComponent": "default-scheduler", "reportingInstance": f"default-scheduler-{self.nodes[0]['metadata']['name']}",
                      "source": {}})
            if count > 1:
                e["series"] = {"count": count, "lastObservedTime": mts(last)}
        else:
            src = {"component": component}
            if host:
                src["host"] = host
            e.update({"count": count, "firstTimestamp": ts(first), "lastTimestamp": ts(last), "source": src,
                      "reportingComponent": component if component != "kubelet" else "kubelet", "reportingInstance": host or ""})
        self.add(ev_ns, "events", e)
        return e

    # ---------------------------------------------------------------- config
    def configmap(self, ns, name, data, created=None):
        return self.add(ns, "configmaps", {"data": data, "metadata": self.meta(ns, name, created or self.now - timedelta(days=3))})

    def secret(self, ns, name, keys, created=None, typ="Opaque"):
        return self.add(ns, "secrets", {"data": {k: "" for k in keys}, "metadata": self.meta(ns, name, created or self.now - timedelta(days=3)), "type": typ})

    def serviceaccount(self, ns, name):
        return self.add(ns, "serviceaccounts", {"metadata": self.meta(ns, name, self.now - timedelta(days=5))})

    def ensure_namespace(self, ns):
        if (ns, "configmaps") not in self.lists or not any(c["metadata"]["name"] == "kube-root-ca.crt" for c in self.lists[(ns, "configmaps")]):
            self.configmap(ns, "kube-root-ca.crt", {"ca.crt": "-----BEGIN CERTIFICATE-----\nMIIC/jCCAeagAwIBAgIBADANBgkqhkiG9w0BAQsFADAVMRMwEQYDVQQDEwprdWJl\n-----END CERTIFICATE-----\n"},
                           created=self.now - timedelta(days=12))
            self.serviceaccount(ns, "default")

    # ---------------------------------------------------------------- pods
    def pod_spec(self, ns, name, containers, init=None, node=None, volumes=(), sa="default", extra=None):
        tok = f"kube-api-access-{h(ns, name, 'tok', n=5)}"
        mount = {"mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "name": tok, "readOnly": True}
        cs = []
        for c in containers:
            c = json.loads(json.dumps(c))
            c["volumeMounts"] = c.get("volumeMounts", []) + [mount]
            cs.append(c)
        spec = {"containers": cs, "dnsPolicy": "ClusterFirst", "enableServiceLinks": True, "preemptionPolicy": "PreemptLowerPriority",
                "priority": 0, "restartPolicy": "Always", "schedulerName": "default-scheduler", "securityContext": {},
                "serviceAccount": sa, "serviceAccountName": sa, "terminationGracePeriodSeconds": 30,
                "tolerations": list(DEFAULT_TOLERATIONS),
                "volumes": list(volumes) + [{"name": tok, "projected": {"defaultMode": 420, "sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {"configMap": {"items": [{"key": "ca.crt", "path": "ca.crt"}], "name": "kube-root-ca.crt"}},
                    {"downwardAPI": {"items": [{"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}, "path": "namespace"}]}}]}}]}
        if init:
            spec["initContainers"] = []
            for c in init:
                c = json.loads(json.dumps(c))
                c["volumeMounts"] = c.get("volumeMounts", []) + [mount]
                spec["initContainers"].append(c)
        if node:
            spec["nodeName"] = node
        if extra:
            spec.update(extra)
        return spec

    def pod(self, ns, name, labels, spec, state, created, owner=None, generate_name=None):
        """state: dict(kind=..., ...) describing the pod's lifecycle; builds status + kubelet events."""
        self.ensure_namespace(ns)
        p = {"metadata": self.meta(ns, name, created, labels=labels, owner=owner, generate_name=generate_name), "spec": spec}
        p["status"] = self._status(ns, name, spec, state, created)
        self.add(ns, "pods", p)
        return p

    def _cstatus(self, c, ready, state, last=None, restarts=0, started=None, image_ok=True):
        img = c["image"] if "/" in c["image"].split(":")[0] else f"docker.io/library/{c['image']}"
        cs = {"image": img if image_ok else c["image"], "imageID": "" if not image_ok else f"{img.split(':')[0]}@sha256:{h(img, n=64, alpha='0123456789abcdef')}",
              "lastState": last or {}, "name": c["name"], "ready": ready, "restartCount": restarts,
              "started": started if started is not None else ready, "state": state,
              "volumeMounts": [dict(m, recursiveReadOnly="Disabled") if m.get("readOnly") else m for m in c.get("volumeMounts", [])]}
        if image_ok and "waiting" not in state or (last and "terminated" in last):
            cs["containerID"] = f"{self.runtime}://{h(c['name'], img, str(state), n=64, alpha='0123456789abcdef')}"
        return cs

    def _status(self, ns, name, spec, st, created):
        kind = st.get("kind", "running")
        node = spec.get("nodeName")
        t_sched = created
        t_start = created + timedelta(seconds=2)
        conds = lambda ready, init=True, sched=True, containers_ready=None: [  # noqa: E731
            {"lastProbeTime": None, "lastTransitionTime": ts(t_start), "status": "True" if node else "False", "type": "PodReadyToStartContainers"},
            {"lastProbeTime": None, "lastTransitionTime": ts(created), "status": "True" if init else "False", "type": "Initialized",
             **({} if init else {"reason": "ContainersNotInitialized", "message": f"containers with incomplete status: [{spec.get('initContainers', [{}])[0].get('name', '')}]"})},
            {"lastProbeTime": None, "lastTransitionTime": ts(t_start if ready else st.get("since", t_start)), "status": "True" if ready else "False", "type": "Ready",
             **({} if ready else {"reason": "ContainersNotReady", "message": f"containers with unready status: [{' '.join(c['name'] for c in spec['containers'])}]"})},
            {"lastProbeTime": None, "lastTransitionTime": ts(t_start if ready else st.get("since", t_start)), "status": "True" if ready else "False", "type": "ContainersReady",
             **({} if ready else {"reason": "ContainersNotReady", "message": f"containers with unready status: [{' '.join(c['name'] for c in spec['containers'])}]"})},
            {"lastProbeTime": None, "lastTransitionTime": ts(t_sched), "status": "True", "type": "PodScheduled"},
        ]
        ip = self.pod_ip()
        host_ip = next((n["status"]["addresses"][0]["address"] for n in self.nodes if n["metadata"]["name"] == node), "172.18.0.2")
        base = {"hostIP": host_ip, "hostIPs": [{"ip": host_ip}], "podIP": ip, "podIPs": [{"ip": ip}],
                "qosClass": qos(spec), "startTime": ts(created)}
        cs_all = spec["containers"]
        kubelet = dict(component="kubelet", host=node)
        pod_ref = dict(ns=ns, kind="Pod", name=name)

        def ev(reason, msg, typ="Normal", count=1, first=None, last=None, fp=None):
            self.event(ns, "Pod", name, reason, msg, typ=typ, count=count, first=first, last=last, field_path=fp, **kubelet)

        def sched_ok():
            self.event(ns, "Pod", name, "Scheduled", f"Successfully assigned {ns}/{name} to {node}", component="default-scheduler", first=created, last=created)

        def started_events(c, at):
            fp = f"spec.containers{{{c['name']}}}"
            ev("Pulling", f"Pulling image \"{c['image']}\"", first=at, last=at, fp=fp)
            ev("Pulled", f"Successfully pulled image \"{c['image']}\" in 1.204s (1.204s including waiting). Image size: {int(h(c['image'], n=6, alpha='123456789'))*37} bytes.", first=at, last=at, fp=fp)
            ev("Created", f"Created container {c['name']}", first=at, last=at, fp=fp)
            ev("Started", f"Started container {c['name']}", first=at, last=at, fp=fp)

        if kind == "unscheduled":  # the scheduler never saw it: no PodScheduled condition, no event
            return {"phase": "Pending", "qosClass": qos(spec)}
        if kind == "pending":
            msg = st["message"]
            self.event(ns, "Pod", name, "FailedScheduling", msg, typ="Warning", component="default-scheduler",
                       count=st.get("count", 4), first=created, last=self.now - timedelta(seconds=40))
            c = conds(False)
            c[-1] = {"lastProbeTime": None, "lastTransitionTime": ts(created), "message": msg, "reason": "Unschedulable", "status": "False", "type": "PodScheduled"}
            return {"conditions": [c[-1]], "phase": "Pending", "qosClass": qos(spec)}
        sched_ok()
        if kind == "creating":  # bound to a node whose kubelet stopped: nothing ever started
            c = conds(False)
            c[0]["status"] = "False"
            return dict(base, conditions=c, phase="Pending", podIP=None, podIPs=None,
                        containerStatuses=[self._cstatus(x, False, {"waiting": {"reason": "ContainerCreating"}}, image_ok=False) for x in cs_all])
        if kind == "running":
            for c in cs_all:
                started_events(c, t_start)
            return dict(base, conditions=conds(True), phase="Running",
                        containerStatuses=[self._cstatus(c, True, {"running": {"startedAt": ts(t_start)}}) for c in cs_all],
                        **({"initContainerStatuses": [self._cstatus(c, False, {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": ts(created + timedelta(seconds=1)), "finishedAt": ts(t_start), "containerID": f"{self.runtime}://{h(name, c['name'], n=64, alpha='0123456789abcdef')}"}}) for c in spec.get("initContainers", [])]} if spec.get("initContainers") else {}))
        if kind in ("crashloop", "oom"):
            restarts = st.get("restarts", 6)
            bad = st.get("container", cs_all[0]["name"])
            statuses = []
            for c in cs_all:
                if c["name"] != bad:
                    statuses.append(self._cstatus(c, True, {"running": {"startedAt": ts(t_start)}}))
                    continue
                up = st.get("uptime", 2)
                fin = self.now - timedelta(seconds=st.get("ago", 70))
                term = {"exitCode": st.get("exit", 137 if kind == "oom" else 1), "finishedAt": ts(fin),
                        "reason": "OOMKilled" if kind == "oom" else st.get("reason", "Error"),
                        "startedAt": ts(fin - timedelta(seconds=up)),
                        "containerID": f"{self.runtime}://{h(name, 'last', n=64, alpha='0123456789abcdef')}"}
                if st.get("term_message"):
                    term["message"] = st["term_message"]
                backoff = min(300, 10 * 2 ** max(0, restarts - 1))
                state = {"waiting": {"message": f"back-off {backoff // 60}m{backoff % 60}s restarting failed container={c['name']} pod={name}_{ns}({uid(self.name, ns, name)})" if backoff >= 60 else f"back-off {backoff}s restarting failed container={c['name']} pod={name}_{ns}({uid(self.name, ns, name)})",
                                     "reason": "CrashLoopBackOff"}}
                statuses.append(self._cstatus(c, False, state, last={"terminated": term}, restarts=restarts, started=False))
                fp = f"spec.containers{{{c['name']}}}"
                ev("Pulled", f"Container image \"{c['image']}\" already present on machine", count=restarts, first=t_start, last=fin - timedelta(seconds=up), fp=fp)
                ev("Created", f"Created container {c['name']}", count=restarts + 1, first=t_start, last=fin - timedelta(seconds=up), fp=fp)
                ev("Started", f"Started container {c['name']}", count=restarts + 1, first=t_start, last=fin - timedelta(seconds=up), fp=fp)
                ev("BackOff", f"Back-off restarting failed container {c['name']} in pod {name}_{ns}({uid(self.name, ns, name)})", typ="Warning",
                   count=restarts * 4, first=t_start + timedelta(seconds=20), last=self.now - timedelta(seconds=12), fp=fp)
            return dict(base, conditions=conds(False), phase="Running", containerStatuses=statuses)
        if kind == "startfail":  # exec not found: StartError, exit 128
            c = next(c for c in cs_all + spec.get("initContainers", []) if c["name"] == st["container"])
            restarts = st.get("restarts", 5)
            msg = st["message"]
            fin = self.now - timedelta(seconds=50)
            term = {"exitCode": 128, "finishedAt": ts(fin), "message": msg, "reason": "StartError", "startedAt": "1970-01-01T00:00:00Z",
                    "containerID": f"{self.runtime}://{h(name, 'se', n=64, alpha='0123456789abcdef')}"}
            state = {"waiting": {"message": f"back-off 5m0s restarting failed container={c['name']} pod={name}_{ns}({uid(self.name, ns, name)})", "reason": "CrashLoopBackOff"}}
            fp = f"spec.containers{{{c['name']}}}"
            ev("Failed", f"Error: {msg}", typ="Warning", count=restarts + 1, first=t_start, last=fin, fp=fp)
            ev("BackOff", f"Back-off restarting failed container {c['name']} in pod {name}_{ns}({uid(self.name, ns, name)})", typ="Warning", count=restarts * 5, first=t_start, last=self.now - timedelta(seconds=9), fp=fp)
            return dict(base, conditions=conds(False), phase="Running",
                        containerStatuses=[self._cstatus(x, False, state, last={"terminated": term}, restarts=restarts, started=False) if x is c else self._cstatus(x, True, {"running": {"startedAt": ts(t_start)}}) for x in cs_all])
        if kind == "imagepull":
            c = cs_all[0]
            fp = f"spec.containers{{{c['name']}}}"
            n = st.get("count", 5)
            ev("Pulling", f"Pulling image \"{c['image']}\"", count=n, first=t_start, last=self.now - timedelta(seconds=95), fp=fp)
            ev("Failed", f"Failed to pull image \"{c['image']}\": {st['message']}", typ="Warning", count=n, first=t_start, last=self.now - timedelta(seconds=94), fp=fp)
            ev("Failed", "Error: ErrImagePull", typ="Warning", count=n, first=t_start, last=self.now - timedelta(seconds=94), fp=fp)
            ev("BackOff", f"Back-off pulling image \"{c['image']}\"", count=n * 4, first=t_start, last=self.now - timedelta(seconds=8), fp=fp)
            ev("Failed", "Error: ImagePullBackOff", typ="Warning", count=n * 4, first=t_start, last=self.now - timedelta(seconds=8), fp=fp)
            state = {"waiting": {"message": f"Back-off pulling image \"{c['image']}\": ErrImagePull: {st['message']}", "reason": "ImagePullBackOff"}}
            if st.get("invalid"):
                state = {"waiting": {"message": f"Failed to apply default image tag \"{c['image']}\": couldn't parse image name \"{c['image']}\": invalid reference format", "reason": "InvalidImageName"}}
            return dict(base, conditions=conds(False), phase="Pending", containerStatuses=[self._cstatus(c, False, state, image_ok=False)])
        if kind == "configerror":
            c = cs_all[0]
            fp = f"spec.containers{{{c['name']}}}"
            ev("Failed", f"Error: {st['message']}", typ="Warning", count=st.get("count", 9), first=t_start, last=self.now - timedelta(seconds=20), fp=fp)
            ev("Pulled", f"Container image \"{c['image']}\" already present on machine", count=st.get("count", 9), first=t_start, last=self.now - timedelta(seconds=20), fp=fp)
            return dict(base, conditions=conds(False), phase="Pending",
                        containerStatuses=[self._cstatus(c, False, {"waiting": {"message": st["message"], "reason": "CreateContainerConfigError"}})])
        if kind == "mountfail":
            ev(st.get("reason", "FailedMount"), st["message"], typ="Warning", count=st.get("count", 11), first=t_start, last=self.now - timedelta(seconds=25))
            c = conds(False)
            c[0]["status"] = "False"
            return dict(base, conditions=c, phase="Pending", podIP=None, podIPs=None,
                        containerStatuses=[self._cstatus(x, False, {"waiting": {"reason": "ContainerCreating"}}, image_ok=False) for x in cs_all])
        if kind == "evicted":
            ev("Evicted", st["message"], typ="Warning", first=st.get("at", self.now - timedelta(minutes=4)), last=st.get("at", self.now - timedelta(minutes=4)))
            ev("Killing", f"Stopping container {cs_all[0]['name']}", first=st.get("at", self.now - timedelta(minutes=4)), last=st.get("at", self.now - timedelta(minutes=4)))
            term = {"exitCode": 137, "finishedAt": ts(self.now - timedelta(minutes=4)), "reason": "ContainerStatusUnknown", "message": "The container could not be located when the pod was terminated",
                    "startedAt": ts(t_start)}
            return dict(base, conditions=[{"lastProbeTime": None, "lastTransitionTime": ts(self.now - timedelta(minutes=4)), "message": "The node was low on resource: ephemeral-storage. ", "reason": "TerminationByKubelet", "status": "True", "type": "DisruptionTarget"}] + conds(False)[:2],
                        phase="Failed", reason="Evicted", message=st["message"],
                        containerStatuses=[self._cstatus(x, False, {"terminated": term}) for x in cs_all])
        if kind == "rejected":
            msg = st["message"]
            self.event(ns, "Pod", name, "Evicted", msg, typ="Warning", **kubelet)
            return {"message": msg, "phase": "Failed", "reason": "Evicted", "startTime": ts(created), "qosClass": qos(spec)}
        if kind == "liveness":  # running but restarted by liveness failures
            c = cs_all[0]
            restarts = st.get("restarts", 4)
            fp = f"spec.containers{{{c['name']}}}"
            started_events(c, t_start)
            ev("Unhealthy", st["message"], typ="Warning", count=restarts * 3 + 2, first=t_start + timedelta(seconds=40), last=self.now - timedelta(seconds=14), fp=fp)
            ev("Killing", f"Container {c['name']} failed liveness probe, will be restarted", count=restarts, first=t_start + timedelta(seconds=60), last=self.now - timedelta(seconds=40), fp=fp)
            term = {"exitCode": st.get("exit", 137), "finishedAt": ts(self.now - timedelta(seconds=40)), "reason": "Error" if st.get("exit", 137) != 0 else "Completed",
                    "startedAt": ts(self.now - timedelta(seconds=75)), "containerID": f"{self.runtime}://{h(name, 'lv', n=64, alpha='0123456789abcdef')}"}
            return dict(base, conditions=conds(False, since=None) if False else conds(False), phase="Running",
                        containerStatuses=[self._cstatus(c, False, {"running": {"startedAt": ts(self.now - timedelta(seconds=38))}}, last={"terminated": term}, restarts=restarts, started=True)])
        if kind == "unready":
            c = cs_all[0]
            started_events(c, t_start)
            ev("Unhealthy", st["message"], typ="Warning", count=st.get("count", 60), first=t_start + timedelta(seconds=10), last=self.now - timedelta(seconds=5), fp=f"spec.containers{{{c['name']}}}")
            return dict(base, conditions=conds(False), phase="Running",
                        containerStatuses=[self._cstatus(c, False, {"running": {"startedAt": ts(t_start)}}, started=True)])
        if kind in ("job-failed", "job-succeeded"):
            c = cs_all[0]
            started_events(c, t_start)
            code = 0 if kind == "job-succeeded" else st.get("exit", 1)
            fin = t_start + timedelta(seconds=st.get("runtime", 4))
            term = {"exitCode": code, "finishedAt": ts(fin), "reason": "Completed" if code == 0 else "Error", "startedAt": ts(t_start),
                    "containerID": f"{self.runtime}://{h(name, 'job', n=64, alpha='0123456789abcdef')}"}
            c2 = conds(False)
            c2[2]["reason"] = "PodCompleted" if code == 0 else "PodFailed"
            c2[2].pop("message", None)
            c2[3]["reason"] = c2[2]["reason"]
            c2[3].pop("message", None)
            return dict(base, conditions=c2, phase="Succeeded" if code == 0 else "Failed",
                        containerStatuses=[self._cstatus(c, False, {"terminated": term})])
        raise ValueError(kind)

    # ---------------------------------------------------------------- controllers
    def deployment(self, ns, name, containers, replicas=1, labels=None, state=None, states=None, created=None, volumes=(), init=None,
                   node=None, extra_spec=None, annotations=None, sa="default", pods=True, failed_create=None, revision=1, extra_labels=None):
        """A Deployment with its ReplicaSet and pods. `state` applies to every pod, `states` per pod."""
        self.ensure_namespace(ns)
        created = created or self.now - timedelta(hours=2)
        labels = labels or {"app": name}
        tmpl_spec = self.pod_spec(ns, name, containers, init=init, volumes=volumes, sa=sa, extra=extra_spec)
        del tmpl_spec["tolerations"]
        tmpl_spec.pop("nodeName", None)
        tmpl_spec["volumes"] = [v for v in tmpl_spec["volumes"] if not v["name"].startswith("kube-api-access")]
        for c in tmpl_spec["containers"] + tmpl_spec.get("initContainers", []):
            c["volumeMounts"] = [m for m in c["volumeMounts"] if not m["name"].startswith("kube-api-access")]
            if not c["volumeMounts"]:
                del c["volumeMounts"]
        if not tmpl_spec["volumes"]:
            del tmpl_spec["volumes"]
        for k in ("serviceAccount",):
            tmpl_spec.pop(k, None)
        if sa == "default":
            tmpl_spec.pop("serviceAccountName", None)
        tmpl_spec.pop("enableServiceLinks", None)
        tmpl_spec.pop("preemptionPolicy", None)
        tmpl_spec.pop("priority", None)
        pod_labels = dict(labels, **(extra_labels or {}))
        template = {"metadata": {"creationTimestamp": None, "labels": pod_labels}, "spec": tmpl_spec}
        phash = h(ns, name, json.dumps(template, sort_keys=True), n=10)
        rs_name = f"{name}-{phash}"
        states = states or [state or {"kind": "running"}] * replicas
        ready = sum(1 for s in states if s.get("kind", "running") == "running") if pods else 0
        avail = ready
        dep = {
            "metadata": self.meta(ns, name, created, labels=labels, annotations=dict({"deployment.kubernetes.io/revision": str(revision)}, **(annotations or {}))),
            "spec": {"progressDeadlineSeconds": 600, "replicas": replicas, "revisionHistoryLimit": 10, "selector": {"matchLabels": labels},
                     "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}, "type": "RollingUpdate"}, "template": template},
            "status": {"observedGeneration": 1, "replicas": replicas if pods else 0, "updatedReplicas": replicas if pods else 0},
        }
        if ready:
            dep["status"].update(readyReplicas=ready, availableReplicas=avail)
        if ready < replicas:
            dep["status"]["unavailableReplicas"] = replicas - ready
        dep["status"]["conditions"] = [
            {"lastTransitionTime": ts(created), "lastUpdateTime": ts(created), "message": "Deployment has minimum availability." if avail >= replicas - replicas // 4 else "Deployment does not have minimum availability.",
             "reason": "MinimumReplicasAvailable" if avail >= replicas - replicas // 4 else "MinimumReplicasUnavailable", "status": "True" if avail >= replicas - replicas // 4 else "False", "type": "Available"},
            {"lastTransitionTime": ts(created), "lastUpdateTime": ts(created + timedelta(seconds=3)),
             "message": f"ReplicaSet \"{rs_name}\" has successfully progressed." if ready == replicas else f"ReplicaSet \"{rs_name}\" is progressing.",
             "reason": "NewReplicaSetAvailable" if ready == replicas else "ReplicaSetUpdated", "status": "True", "type": "Progressing"}]
        if failed_create:
            dep["status"]["conditions"].append({"lastTransitionTime": ts(created), "lastUpdateTime": ts(created), "message": failed_create.replace("{pod}", f"{rs_name}-{h(rs_name, 'x', n=5)}"),
                                                "reason": "FailedCreate", "status": "True", "type": "ReplicaFailure"})
        self.add(ns, "deployments", dep)
        rs_tmpl = json.loads(json.dumps(template))
        rs_tmpl["metadata"]["labels"]["pod-template-hash"] = phash
        rs = {"metadata": self.meta(ns, rs_name, created, labels=dict(pod_labels, **{"pod-template-hash": phash}),
                                    annotations={"deployment.kubernetes.io/desired-replicas": str(replicas), "deployment.kubernetes.io/max-replicas": str(replicas + max(1, replicas // 4)),
                                                 "deployment.kubernetes.io/revision": str(revision)},
                                    owner=("apps/v1", "Deployment", name)),
              "spec": {"replicas": replicas, "selector": {"matchLabels": dict(labels, **{"pod-template-hash": phash})}, "template": rs_tmpl},
              "status": {"fullyLabeledReplicas": replicas if pods else 0, "observedGeneration": 1, "replicas": replicas if pods else 0}}
        if ready:
            rs["status"].update(readyReplicas=ready, availableReplicas=avail)
        self.add(ns, "replicasets", rs)
        self.event(ns, "Deployment", name, "ScalingReplicaSet", f"Scaled up replica set {rs_name} to {replicas}", component="deployment-controller", api="apps/v1",
                   first=created, last=created)
        out = []
        if not pods:
            msg = failed_create
            for i in range(10):
                pn = f"{rs_name}-{h(rs_name, i, n=5)}"
                self.event(ns, "ReplicaSet", rs_name, "FailedCreate", msg.replace("{pod}", pn), typ="Warning", component="replicaset-controller", api="apps/v1",
                           first=created + timedelta(milliseconds=5 * 2 ** i), last=created + timedelta(milliseconds=5 * 2 ** i))
            self.event(ns, "ReplicaSet", rs_name, "FailedCreate", "(combined from similar events): " + msg.replace("{pod}", f"{rs_name}-{h(rs_name, 'c', n=5)}"), typ="Warning",
                       component="replicaset-controller", api="apps/v1", count=7, first=created + timedelta(seconds=6), last=self.now - timedelta(minutes=3))
            return dep, rs, out
        for i, st in enumerate(states):
            pn = f"{rs_name}-{h(rs_name, i, n=5)}"
            pnode = node if isinstance(node, str) else (node[i] if isinstance(node, list) else self.nodes[i % len(self.nodes)]["metadata"]["name"])
            if st.get("kind") in ("pending", "unscheduled"):
                pnode = None
            spec = self.pod_spec(ns, pn, containers, init=init, node=pnode, volumes=volumes, sa=sa, extra=extra_spec)
            p = self.pod(ns, pn, dict(pod_labels, **{"pod-template-hash": phash}), spec, st, st.get("created", created + timedelta(seconds=1)),
                         owner=("apps/v1", "ReplicaSet", rs_name), generate_name=f"{rs_name}-")
            self.event(ns, "ReplicaSet", rs_name, "SuccessfulCreate", f"Created pod: {pn}", component="replicaset-controller", api="apps/v1", first=created, last=created)
            if st.get("log") is not None:
                for cname, text in st["log"].items() if isinstance(st["log"], dict) else [(containers[0]["name"], st["log"])]:
                    self.logs.setdefault((ns, pn), []).append((cname, text))
            else:
                for c in (init or []) + containers:
                    self.logs.setdefault((ns, pn), []).append((c["name"], default_log(c, st, ns, pn)))
            out.append(p)
        return dep, rs, out

    def service(self, ns, name, selector, ports, created=None, typ="ClusterIP"):
        self.ensure_namespace(ns)
        ip = self.cluster_ip()
        sp = []
        for p in ports:
            port, target = (p, p) if isinstance(p, int) else p
            sp.append({"name": f"p{port}" if len(ports) > 1 else None, "port": port, "protocol": "TCP", "targetPort": target})
            if sp[-1]["name"] is None:
                del sp[-1]["name"]
        svc = {"metadata": self.meta(ns, name, created or self.now - timedelta(hours=3)),
               "spec": {"clusterIP": ip, "clusterIPs": [ip], "internalTrafficPolicy": "Cluster", "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                        "ports": sp, "selector": selector, "sessionAffinity": "None", "type": typ},
               "status": {"loadBalancer": {}}}
        self.add(ns, "services", svc)
        return svc

    def endpoints(self):
        """Endpoints for every Service, from the pods as they are (call after all pods exist)."""
        for (ns, plural), svcs in list(self.lists.items()):
            if plural != "services":
                continue
            for svc in svcs:
                sel = svc["spec"].get("selector") or {}
                pods = [p for p in self.lists.get((ns, "pods"), []) if sel and all(p["metadata"].get("labels", {}).get(k) == v for k, v in sel.items())]
                ready, not_ready = [], []
                for p in pods:
                    if p["status"].get("phase") in ("Succeeded", "Failed") or not p["status"].get("podIP"):
                        continue
                    addr = {"ip": p["status"]["podIP"], "nodeName": p["spec"].get("nodeName"),
                            "targetRef": {"kind": "Pod", "name": p["metadata"]["name"], "namespace": ns, "uid": p["metadata"]["uid"]}}
                    is_ready = any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
                    (ready if is_ready else not_ready).append(addr)
                ep = {"metadata": self.meta(ns, svc["metadata"]["name"], self.now - timedelta(hours=3),
                                            annotations={"endpoints.kubernetes.io/last-change-trigger-time": ts(self.now - timedelta(minutes=30))})}
                if sel:
                    ep["metadata"]["labels"] = {"endpoints.kubernetes.io/managed-by": "endpoint-controller"}
                if ready or not_ready:
                    sub = {"ports": [{"port": (p["targetPort"] if isinstance(p["targetPort"], int) else p["port"]), "protocol": "TCP", **({"name": p["name"]} if p.get("name") else {})} for p in svc["spec"]["ports"]]}
                    if ready:
                        sub["addresses"] = ready
                    if not_ready:
                        sub["notReadyAddresses"] = not_ready
                    ep["subsets"] = [sub]
                self.add(ns, "endpoints", ep)

    def pvc(self, ns, name, storage="1Gi", sc="standard", phase="Bound", volume=None, modes=("ReadWriteOnce",), created=None):
        created = created or self.now - timedelta(hours=2)
        p = {"metadata": self.meta(ns, name, created, annotations={"volume.beta.kubernetes.io/storage-provisioner": "rancher.io/local-path",
                                                                      "volume.kubernetes.io/storage-provisioner": "rancher.io/local-path"} if phase != "Pending" or sc else {}),
             "spec": {"accessModes": list(modes), "resources": {"requests": {"storage": storage}}, "volumeMode": "Filesystem"},
             "status": {"phase": phase}}
        p["metadata"]["finalizers"] = ["kubernetes.io/pvc-protection"]
        if sc is not None:
            p["spec"]["storageClassName"] = sc
        if phase == "Bound":
            vol = volume or f"pvc-{uid(self.name, ns, name)}"
            p["spec"]["volumeName"] = vol
            p["status"].update(accessModes=list(modes), capacity={"storage": storage})
            self.add(None, "persistentvolumes", {
                "metadata": self.meta(None, vol, created, annotations={"pv.kubernetes.io/provisioned-by": "rancher.io/local-path"}),
                "spec": {"accessModes": list(modes), "capacity": {"storage": storage},
                         "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "name": name, "namespace": ns, "uid": uid(self.name, ns, name)},
                         "hostPath": {"path": f"/var/local-path-provisioner/{vol}_{ns}_{name}", "type": "DirectoryOrCreate"},
                         "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": [self.nodes[-1]["metadata"]["name"]]}]}]}},
                         "persistentVolumeReclaimPolicy": "Delete", "storageClassName": sc or "standard", "volumeMode": "Filesystem"},
                "status": {"phase": "Bound"}})
        self.add(ns, "persistentvolumeclaims", p)
        return p

    def storageclass(self, name="standard", default=True, expand=False):
        sc = {"metadata": self.meta(None, name, self.now - timedelta(days=12), annotations={"storageclass.kubernetes.io/is-default-class": "true"} if default else None),
              "provisioner": "rancher.io/local-path", "reclaimPolicy": "Delete", "volumeBindingMode": "WaitForFirstConsumer"}
        if expand:
            sc["allowVolumeExpansion"] = True
        if not sc["metadata"].get("annotations"):
            sc["metadata"].pop("annotations", None)
        self.add(None, "storageclasses", sc)
        return sc

    def job(self, ns, name, container, pod_states, backoff=1, created=None, failed=True, sa="default"):
        self.ensure_namespace(ns)
        created = created or self.now - timedelta(minutes=20)
        cuid = uid(self.name, ns, name)
        labels = {"batch.kubernetes.io/controller-uid": cuid, "batch.kubernetes.io/job-name": name, "controller-uid": cuid, "job-name": name}
        tmpl = self.pod_spec(ns, name, [container], sa=sa)
        tmpl["restartPolicy"] = "Never"
        del tmpl["tolerations"]
        tmpl["volumes"] = [v for v in tmpl["volumes"] if not v["name"].startswith("kube-api-access")] or None
        if tmpl["volumes"] is None:
            del tmpl["volumes"]
        for c in tmpl["containers"]:
            c["volumeMounts"] = [m for m in c["volumeMounts"] if not m["name"].startswith("kube-api-access")]
            if not c["volumeMounts"]:
                del c["volumeMounts"]
        job = {"metadata": self.meta(ns, name, created, labels=labels),
               "spec": {"backoffLimit": backoff, "completionMode": "NonIndexed", "completions": 1, "manualSelector": False, "parallelism": 1,
                        "podReplacementPolicy": "TerminatingOrFailed", "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": cuid}}, "suspend": False,
                        "template": {"metadata": {"creationTimestamp": None, "labels": labels}, "spec": tmpl}},
               "status": {"startTime": ts(created), "uncountedTerminatedPods": {}, "ready": 0, "terminating": 0}}
        if failed:
            job["status"].update(failed=len(pod_states), conditions=[
                {"lastProbeTime": ts(self.now - timedelta(minutes=3)), "lastTransitionTime": ts(self.now - timedelta(minutes=3)), "message": "Job has reached the specified backoff limit",
                 "reason": "BackoffLimitExceeded", "status": "True", "type": "FailureTarget"},
                {"lastProbeTime": ts(self.now - timedelta(minutes=3)), "lastTransitionTime": ts(self.now - timedelta(minutes=3)), "message": "Job has reached the specified backoff limit",
                 "reason": "BackoffLimitExceeded", "status": "True", "type": "Failed"}])
        self.add(ns, "jobs", job)
        for i, st in enumerate(pod_states):
            pn = f"{name}-{h(name, i, n=5)}"
            t = created + timedelta(seconds=1 + 40 * i)
            spec = self.pod_spec(ns, pn, [container], node=self.nodes[0]["metadata"]["name"], sa=sa)
            spec["restartPolicy"] = "Never"
            self.pod(ns, pn, dict(labels), spec, st, t, owner=("batch/v1", "Job", name), generate_name=f"{name}-")
            self.event(ns, "Job", name, "SuccessfulCreate", f"Created pod: {pn}", component="job-controller", api="batch/v1", first=t, last=t)
            self.logs.setdefault((ns, pn), []).append((container["name"], st.get("log", "")))
        if failed:
            self.event(ns, "Job", name, "BackoffLimitExceeded", "Job has reached the specified backoff limit", typ="Warning", component="job-controller", api="batch/v1",
                       first=self.now - timedelta(minutes=3), last=self.now - timedelta(minutes=3))
        return job

    def networkpolicy(self, ns, name, pod_selector, from_labels):
        np = {"metadata": self.meta(ns, name, self.now - timedelta(hours=1)),
              "spec": {"ingress": [{"from": [{"podSelector": {"matchLabels": from_labels}}]}], "podSelector": {"matchLabels": pod_selector}, "policyTypes": ["Ingress"]}}
        return self.add(ns, "networkpolicies", np)

    def resourcequota(self, ns, name, hard, used=None):
        q = {"metadata": self.meta(ns, name, self.now - timedelta(days=1)), "spec": {"hard": hard},
             "status": {"hard": hard, "used": used or {k: "0" for k in hard}}}
        return self.add(ns, "resourcequotas", q)

    def limitrange(self, ns, name, max_=None, default=None):
        lim = {"type": "Container"}
        if max_:
            lim["max"] = max_
        if default:
            lim["default"] = default
            lim["defaultRequest"] = default
        return self.add(ns, "limitranges", {"metadata": self.meta(ns, name, self.now - timedelta(days=1)), "spec": {"limits": [lim]}})

    # ---------------------------------------------------------------- output
    def write(self, out):
        self.endpoints()
        os.makedirs(out, exist_ok=True)
        kinds = {"nodes": ("NodeList", "v1"), "events": ("EventList", "v1"), "replication-controllers": ("ReplicationControllerList", "v1"),
                 "services": ("ServiceList", "v1"), "daemonsets": ("DaemonSetList", "apps/v1"), "deployments": ("DeploymentList", "apps/v1"),
                 "replicasets": ("ReplicaSetList", "apps/v1"), "pods": ("PodList", "v1"), "endpoints": ("EndpointsList", "v1"),
                 "configmaps": ("ConfigMapList", "v1"), "secrets": ("SecretList", "v1"), "serviceaccounts": ("ServiceAccountList", "v1"),
                 "persistentvolumeclaims": ("PersistentVolumeClaimList", "v1"), "persistentvolumes": ("PersistentVolumeList", "v1"),
                 "storageclasses": ("StorageClassList", "storage.k8s.io/v1"), "jobs": ("JobList", "batch/v1"), "statefulsets": ("StatefulSetList", "apps/v1"),
                 "networkpolicies": ("NetworkPolicyList", "networking.k8s.io/v1"), "resourcequotas": ("ResourceQuotaList", "v1"),
                 "limitranges": ("LimitRangeList", "v1")}
        for ns in sorted(self.namespaces | {"default"}):
            self.ensure_namespace(ns)
            for p in ("events", "replication-controllers", "services", "daemonsets", "deployments", "replicasets", "pods"):
                self.lists.setdefault((ns, p), [])
        for (ns, plural), items in sorted(self.lists.items()):
            kind, api = kinds[plural]
            d = os.path.join(out, ns) if ns else out
            os.makedirs(d, exist_ok=True)
            items = sorted(items, key=lambda i: i["metadata"]["name"])
            with open(os.path.join(d, f"{plural}.json"), "w") as f:
                json.dump({"apiVersion": api, "items": items, "kind": kind, "metadata": {"resourceVersion": str(self.rv + 100)}}, f, indent=4, sort_keys=True)
                f.write("\n")
        for (ns, pod), blocks in sorted(self.logs.items()):
            d = os.path.join(out, ns, pod)
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "logs.txt"), "w") as f:
                for cname, text in blocks:
                    f.write(f"==== START logs for container {cname} of pod {ns}/{pod} ====\n")
                    if text:
                        f.write(text if text.endswith("\n") else text + "\n")
                    f.write(f"==== END logs for container {cname} of pod {ns}/{pod} ====\n")


def qos(spec):
    cs = spec["containers"]
    if all(c.get("resources", {}).get("limits") and c["resources"].get("limits") == c["resources"].get("requests") for c in cs):
        return "Guaranteed"
    if any(c.get("resources") for c in cs):
        return "Burstable"
    return "BestEffort"


def default_log(c, st, ns, pod):
    kind = st.get("kind", "running")
    if kind == "pending":
        return ""
    if kind == "imagepull":
        return f"Request log error: container \"{c['name']}\" in pod \"{pod}\" is waiting to start: trying and failing to pull image"
    if kind == "configerror":
        return f"Request log error: container \"{c['name']}\" in pod \"{pod}\" is waiting to start: CreateContainerConfigError"
    if kind == "mountfail":
        return f"Request log error: container \"{c['name']}\" in pod \"{pod}\" is waiting to start: ContainerCreating"
    port = (c.get("ports") or [{"containerPort": 8080}])[0]["containerPort"]
    img = c["image"]
    if img.startswith("nginx"):
        return "\n".join([
            "/docker-entrypoint.sh: /docker-entrypoint.d/ is not empty, will attempt to perform configuration",
            "/docker-entrypoint.sh: Configuration complete; ready for start up",
            "2025/11/12 08:14:03 [notice] 1#1: using the \"epoll\" event method",
            "2025/11/12 08:14:03 [notice] 1#1: nginx/1.27.3",
            "2025/11/12 08:14:03 [notice] 1#1: start worker processes"])
    if img.startswith("redis"):
        return "1:C 12 Nov 2025 08:14:02.846 * oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo\n1:M 12 Nov 2025 08:14:02.893 * Running mode=standalone, port=6379.\n1:M 12 Nov 2025 08:14:02.244 * Ready to accept connections tcp"
    if img.startswith("postgres"):
        return "2025-11-12 08:14:05.120 UTC [1] LOG:  starting PostgreSQL 16.4 on x86_64-pc-linux-gnu\n2025-11-12 08:14:05.124 UTC [1] LOG:  listening on IPv4 address \"0.0.0.0\", port 5432\n2025-11-12 08:14:05.131 UTC [1] LOG:  database system is ready to accept connections"
    return "\n".join([
        f'{{"level":"info","ts":"2025-11-12T08:14:03.101Z","msg":"starting {c["name"]}","version":"1.8.{int(h(pod, n=2, alpha="0123456789"))}"}}',
        f'{{"level":"info","ts":"2025-11-12T08:14:03.214Z","msg":"listening on :{port}"}}',
        '{"level":"info","ts":"2025-11-12T08:20:41.550Z","msg":"GET /healthz 200 0.4ms"}'])
