#!/usr/bin/env python3
"""Generates metakube's scenario corpus: `tests/scenarios/<id>/dump/` in the
`kubectl cluster-info dump` layout plus `expected.yaml`.

Every fault family comes in several variants with other names, namespaces, images, ports and
noise (healthy neighbours, a crashing bystander in another namespace, old resolved events), so
the engine cannot key on names. Message texts follow the Kubernetes components' 1.31 wording
(kubelet, scheduler, controllers, containerd). Deterministic: re-running rewrites the same bytes.

    python3 tests/scenarios/generate.py            # writes tests/scenarios/<id>/
"""

import os
import shutil
import sys
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from k8s import Cluster, container, h, probe_http, probe_tcp, ts, uid  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
APPS = ["checkout", "cart", "payments", "orders", "inventory", "catalog", "billing", "search", "profile", "ledger",
        "gateway", "reports", "auth", "shipping", "pricing", "reviews", "notify", "quotes", "tickets", "media"]
NAMESPACES = ["shop", "prod", "team-a", "payments", "storefront", "backend", "ops", "staging", "core", "apps"]
IMAGES = ["ghcr.io/acme/{a}:1.8.2", "registry.example.com/{a}-svc:2024.11", "acme/{a}:v3.1.0", "quay.io/acme/{a}:0.9.4"]
NOW0 = datetime(2025, 11, 12, 10, 30, 0, tzinfo=timezone.utc)

SCENARIOS = []


def scenario(category, family, variants):
    def deco(fn):
        for v in range(variants):
            SCENARIOS.append((category, family, v, fn))
        return fn
    return deco


def pick(pool, v, off=0):
    return pool[(v * 7 + off * 3) % len(pool)]


def base(v, nodes=("kind-control-plane",), family=""):
    now = NOW0 + timedelta(days=v, minutes=int(h(family, v, n=2, alpha="0123456789")))
    return Cluster(f"{family}-{v}", now, node_names=nodes)


def noise(c, ns, v, exclude=()):
    """Healthy neighbours, a crash-looping bystander elsewhere, and an old resolved warning."""
    apps = [a for a in APPS if a not in exclude]
    n1 = pick(apps, v, 5)
    img = pick(IMAGES, v, 2).format(a=n1)
    c.deployment(ns, n1, [container("app", img, ports=[8080], limits={"cpu": "500m", "memory": "256Mi"}, requests={"cpu": "100m", "memory": "128Mi"},
                                    readiness=probe_http(8080, "/ready"))], replicas=2)
    c.service(ns, n1, {"app": n1}, [(80, 8080)])
    if v % 2 == 0:
        other = "monitoring" if ns != "monitoring" else "tools"
        c.deployment(other, "log-shipper", [container("shipper", "fluent/fluent-bit:3.1", limits={"memory": "128Mi"})],
                     state={"kind": "crashloop", "exit": 1, "restarts": 14, "uptime": 3,
                            "log": "[2025/11/12 10:02:11] [error] [output:es:es.0] HTTP status=401 URI=/_bulk\n[2025/11/12 10:02:11] [engine] caught signal (SIGTERM)"})
    if v % 3 == 0:
        c.event(ns, "Pod", f"{n1}-old", "Unhealthy", "Readiness probe failed: Get \"http://10.244.0.9:8080/ready\": dial tcp 10.244.0.9:8080: connect: connection refused",
                typ="Warning", first=c.now - timedelta(minutes=58), last=c.now - timedelta(minutes=57))


def expected(target_kind, ns, target, category, rc_kind, rc_name, reason, rc_ns="ns", also=()):
    rc = {"kind": rc_kind, "name": rc_name}
    if rc_ns == "ns":
        rc["namespace"] = ns
    elif rc_ns:
        rc["namespace"] = rc_ns
    any_of = [rc] + [dict(a, namespace=ns) if a.get("namespace", True) and a["kind"] not in ("Node", "StorageClass") else a for a in also]
    return {"target": {"kind": target_kind, "namespace": ns, "name": target}, "category": category, "root_cause": rc,
            "root_cause_any_of": any_of, "reason": reason}


# ============================================================================ resource
@scenario("resource", "oom-at-startup", 3)
def oom_startup(v):
    c = base(v, family="oom-start")
    ns, app = pick(NAMESPACES, v), pick(APPS, v)
    img = pick(IMAGES, v).format(a=app)
    lim = ["128Mi", "64Mi", "256Mi"][v % 3]
    c.deployment(ns, app, [container("server", img, ports=[8080], limits={"cpu": "200m", "memory": lim}, requests={"cpu": "100m", "memory": lim})],
                 replicas=1 + v % 2, state={"kind": "oom", "restarts": 5 + v, "uptime": 2 + v, "exit": 137,
                                            "log": '{"level":"info","msg":"loading catalog into memory","items":1250000}\n{"level":"info","msg":"warming caches"}'})
    c.service(ns, app, {"app": app}, [(80, 8080)])
    noise(c, ns, v, exclude=[app])
    return c, expected("Deployment", ns, app, "resource", "Deployment", app, "MemoryLimitTooLow")


@scenario("resource", "oom-leak", 3)
def oom_leak(v):
    c = base(v, family="oom-leak")
    ns, app = pick(NAMESPACES, v, 1), pick(APPS, v, 1)
    img = pick(IMAGES, v, 1).format(a=app)
    up = [6 * 3600, 19 * 3600, 2 * 86400][v % 3]
    c.deployment(ns, app, [container("api", img, ports=[9000], limits={"cpu": "1", "memory": "512Mi"}, requests={"cpu": "250m", "memory": "512Mi"})],
                 replicas=2, state={"kind": "oom", "restarts": 2 + v, "uptime": up, "ago": 300, "exit": 137,
                                    "log": '{"level":"info","msg":"request served","heap_mb":488}\n{"level":"warn","msg":"gc pause 1.8s","heap_mb":503}'},
                 created=c.now - timedelta(days=3))
    c.service(ns, app, {"app": app}, [(80, 9000)])
    noise(c, ns, v, exclude=[app])
    return c, expected("Deployment", ns, app, "resource", "Deployment", app, "MemoryLeak")


@scenario("resource", "quota-must-specify", 2)
def quota_missing(v):
    c = base(v, family="quota")
    ns, app = pick(NAMESPACES, v, 2), pick(APPS, v, 2)
    res = ["limits.cpu", "limits.memory"][v % 2]
    c.resourcequota(ns, "compute-quota", {"limits.cpu": "4", "limits.memory": "8Gi", "requests.cpu": "2", "requests.memory": "4Gi"})
    c.deployment(ns, app, [container("app", pick(IMAGES, v, 2).format(a=app), ports=[8080], requests={"cpu": "100m", "memory": "128Mi"})],
                 replicas=2, pods=False, failed_create=f"Error creating: pods \"{{pod}}\" is forbidden: failed quota: compute-quota: must specify {res} for: app")
    noise(c, ns, v, exclude=[app])
    return c, expected("Deployment", ns, app, "resource", "ResourceQuota", "compute-quota", "QuotaExceeded", also=[{"kind": "Deployment", "name": app}])


@scenario("resource", "limitrange-max", 2)
def limitrange(v):
    c = base(v, family="limitrange")
    ns, app = pick(NAMESPACES, v, 3), pick(APPS, v, 3)
    cpu = ["900m", "2"][v % 2]
    c.limitrange(ns, "container-limits", max_={"cpu": "700m", "memory": "1Gi"}, default={"cpu": "200m", "memory": "256Mi"})
    c.deployment(ns, app, [container("web", pick(IMAGES, v, 3).format(a=app), ports=[8080], limits={"cpu": cpu, "memory": "512Mi"})],
                 replicas=1, pods=False, failed_create=f"Error creating: pods \"{{pod}}\" is forbidden: maximum cpu usage per Container is 700m, but limit is {cpu}")
    noise(c, ns, v, exclude=[app])
    return c, expected("Deployment", ns, app, "resource", "Deployment", app, "LimitRangeViolation", also=[{"kind": "LimitRange", "name": "container-limits"}])


# ============================================================================ network
@scenario("network", "selector-mismatch-cascade", 4)
def selector_mismatch(v):
    c = base(v, family="selector")
    ns = pick(NAMESPACES, v, 4)
    caller = pick(APPS, v, 4)
    backend = ["redis", "cache", "session-store", "backend"][v % 4]
    actual = {"redis": "redis-cache", "cache": "memcache", "session-store": "sessions", "backend": "backend-v2"}[backend]
    c.deployment(ns, backend, [container("redis", "redis:7.2-alpine", ports=[6379], limits={"cpu": "250m", "memory": "256Mi"})],
                 labels={"app": actual}, replicas=1)
    ip = c.service(ns, backend, {"app": backend}, [6379])["spec"]["clusterIP"]
    refused = "\n".join([f'{{"level":"info","msg":"connecting to {backend}:6379"}}',
                         f'{{"level":"error","msg":"cache init failed","error":"dial tcp {ip}:6379: connect: connection refused"}}',
                         f'panic: redis: dial tcp {backend}:6379: connect: connection refused',
                         "", "goroutine 1 [running]:", "main.main()", "\t/src/cmd/server/main.go:88 +0x2f4"])
    c.deployment(ns, caller, [container("server", pick(IMAGES, v, 4).format(a=caller), ports=[8080], env=[{"name": "REDIS_ADDR", "value": f"{backend}:6379"}],
                                        limits={"cpu": "500m", "memory": "256Mi"})],
                 replicas=2, state={"kind": "crashloop", "exit": 2, "restarts": 7 + v, "uptime": 1, "log": refused})
    c.service(ns, caller, {"app": caller}, [(80, 8080)])
    noise(c, ns, v, exclude=[caller, backend])
    target = ("Deployment", caller) if v != 3 else ("Service", backend)
    return c, expected(target[0], ns, target[1], "network", "Service", backend, "SelectorMatchesNoPods", also=[{"kind": "Endpoints", "name": backend}])


@scenario("network", "target-port-mismatch", 3)
def target_port(v):
    c = base(v, family="targetport")
    ns = pick(NAMESPACES, v, 5)
    web, client = pick(APPS, v, 5), pick(APPS, v, 6)
    c.deployment(ns, web, [container("nginx", "nginx:1.27", ports=[80], limits={"cpu": "200m", "memory": "128Mi"})], replicas=2)
    ip = c.service(ns, f"{web}-svc", {"app": web}, [(80, [8080, 8000][v % 2])])["spec"]["clusterIP"]
    log = "\n".join([f"Connecting to {web}-svc ({ip}:80)", f"wget: can't connect to remote host ({ip}): Connection refused", "---"] * 3)
    c.deployment(ns, client, [container("client", "busybox:1.36", command=["sh", "-c", f"while true; do wget -qO- http://{web}-svc; echo ---; sleep 5; done"])],
                 state={"kind": "running", "log": log})
    noise(c, ns, v, exclude=[web, client])
    return c, expected("Deployment", ns, client, "network", "Service", f"{web}-svc", "TargetPortMismatch", also=[{"kind": "Endpoints", "name": f"{web}-svc"}])


@scenario("network", "networkpolicy-blocks", 3)
def netpol(v):
    c = base(v, family="netpol")
    ns = pick(NAMESPACES, v, 6)
    api, fe = pick(APPS, v, 7), pick(APPS, v, 8)
    c.deployment(ns, api, [container("api", pick(IMAGES, v, 1).format(a=api), ports=[8080], limits={"cpu": "300m", "memory": "256Mi"})], labels={"app": api, "tier": "backend"})
    c.service(ns, api, {"app": api}, [(80, 8080)])
    c.networkpolicy(ns, f"{api}-ingress", {"app": api}, {"tier": "backend"} if v == 0 else {"app": "admin"})
    log = "\n".join([f"2025-11-12T10:{10 + i:02d}:00Z ERROR request to http://{api}/v1/items failed: Get \"http://{api}/v1/items\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)" for i in range(6)])
    c.deployment(ns, fe, [container("web", pick(IMAGES, v, 2).format(a=fe), ports=[3000], env=[{"name": "API_URL", "value": f"http://{api}"}])],
                 labels={"app": fe, "tier": "frontend"}, state={"kind": "running", "log": log})
    noise(c, ns, v, exclude=[api, fe])
    return c, expected("Deployment", ns, fe, "network", "NetworkPolicy", f"{api}-ingress", "NetworkPolicyBlocks")


# ============================================================================ scheduling
@scenario("scheduling", "untolerated-taint", 3)
def taint(v):
    c = base(v, nodes=("worker-1",), family="taint")
    c.nodes[0]["spec"]["taints"] = [{"effect": "NoSchedule", "key": ["dedicated", "gpu"][v % 2], "value": ["batch", "true"][v % 2]}]
    ns, app = pick(NAMESPACES, v, 7), pick(APPS, v, 9)
    k, val = ["dedicated", "gpu"][v % 2], ["batch", "true"][v % 2]
    c.deployment(ns, app, [container("app", pick(IMAGES, v).format(a=app), ports=[8080], requests={"cpu": "100m", "memory": "64Mi"})],
                 state={"kind": "pending", "message": f"0/1 nodes are available: 1 node(s) had untolerated taint {{{k}: {val}}}. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."})
    c.service(ns, app, {"app": app}, [(80, 8080)])
    return c, expected("Deployment", ns, app, "scheduling", "Deployment", app, "UntoleratedTaint", also=[{"kind": "Node", "name": "worker-1"}])


@scenario("scheduling", "node-selector-mismatch", 3)
def nodesel(v):
    c = base(v, nodes=("node-a", "node-b"), family="nodesel")
    ns, app = pick(NAMESPACES, v, 8), pick(APPS, v, 10)
    key, val = [("disktype", "nvme"), ("environment", "production-gpu")][v % 2]
    c.deployment(ns, app, [container("app", pick(IMAGES, v, 3).format(a=app), ports=[8080])], replicas=2, extra_spec={"nodeSelector": {key: val}},
                 state={"kind": "pending", "message": "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."})
    c.service(ns, app, {"app": app}, [(80, 8080)])
    noise(c, ns, v, exclude=[app])
    return c, expected("Service" if v == 1 else "Deployment", ns, app, "scheduling", "Deployment", app, "NodeSelectorMismatch")


@scenario("scheduling", "insufficient-cpu", 2)
def insufficient(v):
    c = base(v, nodes=("node-a", "node-b"), family="insufficient")
    ns, app = pick(NAMESPACES, v, 9), pick(APPS, v, 11)
    res = ["cpu", "memory"][v % 2]
    c.deployment(ns, app, [container("worker", pick(IMAGES, v, 1).format(a=app), requests={"cpu": "16", "memory": "1Gi"} if res == "cpu" else {"cpu": "1", "memory": "64Gi"})],
                 state={"kind": "pending", "message": f"0/2 nodes are available: 2 Insufficient {res}. preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod."})
    noise(c, ns, v, exclude=[app])
    return c, expected("Deployment", ns, app, "scheduling", "Deployment", app, "InsufficientResources")


@scenario("scheduling", "pod-affinity", 2)
def podaff(v):
    c = base(v, family="podaff")
    ns, app = pick(NAMESPACES, v, 1), pick(APPS, v, 12)
    aff = {"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {"matchLabels": {"app": "cache"}}, "topologyKey": "topology.kubernetes.io/zone"}]}}}
    c.deployment(ns, app, [container("app", pick(IMAGES, v).format(a=app), ports=[8080])], extra_spec=aff,
                 state={"kind": "pending", "message": "0/1 nodes are available: 1 node(s) didn't match pod affinity rules. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."})
    noise(c, ns, v, exclude=[app])
    return c, expected("Deployment", ns, app, "scheduling", "Deployment", app, "PodAffinityUnsatisfied")


# ============================================================================ image
@scenario("image", "image-not-found", 4)
def image_nf(v):
    c = base(v, family="imagenf")
    ns, app = pick(NAMESPACES, v, 2), pick(APPS, v, 13)
    img = ["nginx:1.277", f"ghcr.io/acme/{app}:v9.9.9", "busyboxx:latest"][v % 3]
    ref = img if "/" in img.split(":")[0] else f"docker.io/library/{img}"
    msg = (f"failed to pull and unpack image \"{ref}\": failed to resolve reference \"{ref}\": {ref}: not found" if v % 3 != 2 else
           f"failed to pull and unpack image \"{ref}\": failed to resolve reference \"{ref}\": pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed")
    c.deployment(ns, app, [container("app", img, ports=[80])], state={"kind": "imagepull", "message": msg})
    noise(c, ns, v, exclude=[app])
    return c, expected("Deployment", ns, app, "image", "Deployment", app, "ImageNotFound")


@scenario("image", "image-unauthorized", 3)
def image_auth(v):
    c = base(v, family="imageauth")
    ns, app = pick(NAMESPACES, v, 3), pick(APPS, v, 14)
    img = [f"gcr.io/private-project/{app}:latest", f"registry.example.com/internal/{app}:2.0", f"123456789.dkr.ecr.eu-west-1.amazonaws.com/{app}:1.4"][v % 3]
    msg = [f"failed to pull and unpack image \"{img}\": failed to resolve reference \"{img}\": failed to authorize: failed to fetch anonymous token: unexpected status from GET request to https://gcr.io/v2/token?scope=repository%3Aprivate-project%2F{app}%3Apull&service=gcr.io: 403 Forbidden",
           f"failed to pull and unpack image \"{img}\": failed to resolve reference \"{img}\": unexpected status from HEAD request to https://registry.example.com/v2/internal/{app}/manifests/2.0: 401 Unauthorized",
           f"failed to pull and unpack image \"{img}\": failed to resolve reference \"{img}\": pull access denied, authorization failed: no basic auth credentials"][v % 3]
    c.deployment(ns, app, [container("app", img, ports=[8080])], state={"kind": "imagepull", "message": msg})
    noise(c, ns, v, exclude=[app])
    return c, expected("Deployment", ns, app, "image", "Deployment", app, "ImagePullUnauthorized")


@scenario("image", "invalid-image-name", 2)
def image_invalid(v):
    c = base(v, family="imageinvalid")
    ns, app = pick(NAMESPACES, v, 4), pick(APPS, v, 15)
    img = ["Nginx:Latest", f"acme/{app}:v1:2"][v % 2]
    c.deployment(ns, app, [container("app", img)], state={"kind": "imagepull", "invalid": True, "message": "InvalidImageName"})
    noise(c, ns, v, exclude=[app])
    return c, expected("Deployment", ns, app, "image", "Deployment", app, "InvalidImageName")


# ============================================================================ configuration
@scenario("configuration", "missing-configmap-mount", 2)
def cm_missing(v):
    c = base(v, family="cmmissing")
    ns, app = pick(NAMESPACES, v, 5), pick(APPS, v, 16)
    c.configmap(ns, f"{app}-configuration" if v == 0 else "unrelated-settings", {"app.yaml": "listen: 8080\n"})
    vol = [{"configMap": {"defaultMode": 420, "name": f"{app}-config"}, "name": "config"}]
    c.deployment(ns, app, [container("app", pick(IMAGES, v).format(a=app), ports=[8080], mounts=[{"mountPath": "/etc/app", "name": "config"}])], volumes=vol,
                 state={"kind": "mountfail", "message": f"MountVolume.SetUp failed for volume \"config\" : configmap \"{app}-config\" not found"})
    noise(c, ns, v, exclude=[app])
    return c, expected("Deployment", ns, app, "configuration", "ConfigMap", f"{app}-config", "MissingConfigMap", also=[{"kind": "Deployment", "name": app}])


@scenario("configuration", "missing-secret-env", 2)
def secret_missing(v):
    c = base(v, family="secretmissing")
    ns, app = pick(NAMESPACES, v, 6), pick(APPS, v, 17)
    env = [{"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"key": "password", "name": f"{app}-db"}}}]
    c.deployment(ns, app, [container("app", pick(IMAGES, v, 1).format(a=app), ports=[8080], env=env)],
                 state={"kind": "configerror", "message": f"secret \"{app}-db\" not found"})
    noise(c, ns, v, exclude=[app])
    return c, expected("Deployment", ns, app, "configuration", "Secret", f"{app}-db", "MissingSecret", also=[{"kind": "Deployment", "name": app}])


@scenario("configuration", "bad-command", 2)
def bad_command(v):
    c = base(v, family="badcmd")
    ns, app = pick(NAMESPACES, v, 7), pick(APPS, v, 18)
    exe = ["pyhton", "/app/start.sh"][v % 2]
    msg = f"failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: \"{exe}\": {'executable file not found in $PATH' if v % 2 == 0 else 'stat /app/start.sh: no such file or directory'}: unknown"
    c.deployment(ns, app, [container("worker", pick(IMAGES, v, 2).format(a=app), command=[exe, "main.py"] if v % 2 == 0 else [exe])],
                 state={"kind": "startfail", "container": "worker", "message": msg, "log": ""})
    noise(c, ns, v, exclude=[app])
    return c, expected("Deployment", ns, app, "configuration", "Deployment", app, "BadCommand")


@scenario("configuration", "liveness-wrong-port", 2)
def liveness_port(v):
    c = base(v, family="livenessport")
    ns, app = pick(NAMESPACES, v, 8), pick(APPS, v, 19)
    port, wrong = [(8080, 8081), (3000, 80)][v % 2]
    log = f'{{"level":"info","msg":"listening on :{port}"}}\n{{"level":"info","msg":"GET /api/items 200 3.1ms"}}\n{{"level":"info","msg":"received SIGTERM, shutting down"}}'
    c.deployment(ns, app, [container("app", pick(IMAGES, v, 3).format(a=app), ports=[port], liveness=probe_http(wrong, "/healthz"))],
                 state={"kind": "liveness", "restarts": 6, "exit": 0,
                        "message": f"Liveness probe failed: Get \"http://10.244.0.{30 + v}:{wrong}/healthz\": dial tcp 10.244.0.{30 + v}:{wrong}: connect: connection refused",
                        "log": log})
    c.service(ns, app, {"app": app}, [(80, port)])
    noise(c, ns, v, exclude=[app])
    return c, expected("Deployment", ns, app, "configuration", "Deployment", app, "LivenessProbeWrongPort")


@scenario("configuration", "config-rejected-cascade", 2)
def config_rejected(v):
    c = base(v, family="cfgreject")
    ns, app = pick(NAMESPACES, v, 9), pick(APPS, v, 1)
    db = ["postgres", "orders-db"][v % 2]
    c.deployment(ns, db, [container("postgres", "postgres:16", ports=[5432], command=["postgres"] if v % 2 == 0 else None,
                                    env=[{"name": "POSTGRES_PASSWORD", "value": "example"}] if v % 2 == 0 else [{"name": "PGDATA", "value": "/var/lib/postgresql/data"}])],
                 state={"kind": "crashloop", "exit": 1, "restarts": 9, "uptime": 1,
                        "log": '"root" execution of the PostgreSQL server is not permitted.\nThe server must be started under an unprivileged user ID to prevent\npossible system security compromise.  See the documentation for\nmore information on how to properly start the server.'
                        if v % 2 == 0 else
                        "Error: Database is uninitialized and superuser password is not specified.\n       You must specify POSTGRES_PASSWORD to a non-empty value for the\n       superuser. For example, \"-e POSTGRES_PASSWORD=password\" on \"docker run\".\ninvalid configuration: POSTGRES_PASSWORD is required"})
    c.service(ns, db, {"app": db}, [5432])
    c.deployment(ns, app, [container("api", pick(IMAGES, v).format(a=app), ports=[8080], env=[{"name": "DATABASE_URL", "value": f"postgres://app@{db}:5432/app"}])],
                 state={"kind": "running", "log": "Waiting for PostgreSQL to be ready...\n" + f"{db}:5432 - no response\n" * 12})
    noise(c, ns, v, exclude=[app, db])
    return c, expected("Deployment", ns, app, "configuration", "Deployment", db, "ConfigRejectedByApp")


# ============================================================================ storage
@scenario("storage", "storageclass-missing", 3)
def sc_missing(v):
    c = base(v, family="scmissing")
    c.storageclass("standard")
    ns, app = pick(NAMESPACES, v, 1), pick(APPS, v, 2)
    sc = ["fast-ssd", "gp3"][v % 2]
    c.pvc(ns, f"{app}-data", sc=sc, phase="Pending")
    c.event(ns, "PersistentVolumeClaim", f"{app}-data", "ProvisioningFailed", f"storageclass.storage.k8s.io \"{sc}\" not found", typ="Warning",
            component="persistentvolume-controller", count=14, first=c.now - timedelta(minutes=20), last=c.now - timedelta(seconds=30))
    vol = [{"name": "data", "persistentVolumeClaim": {"claimName": f"{app}-data"}}]
    c.deployment(ns, app, [container("db", "postgres:16", ports=[5432], mounts=[{"mountPath": "/var/lib/postgresql/data", "name": "data"}])], volumes=vol,
                 state={"kind": "pending", "message": "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."})
    noise(c, ns, v, exclude=[app])
    return c, expected("Deployment", ns, app, "storage", "PersistentVolumeClaim", f"{app}-data", "StorageClassMissing", also=[{"kind": "StorageClass", "name": sc}])


@scenario("storage", "volume-full", 3)
def volume_full(v):
    c = base(v, family="volfull")
    c.storageclass("standard", expand=v == 0)
    ns, app = pick(NAMESPACES, v, 2), pick(APPS, v, 3)
    c.pvc(ns, f"{app}-data", storage="1Gi")
    vol = [{"name": "data", "persistentVolumeClaim": {"claimName": f"{app}-data"}}]
    log = ["Traceback (most recent call last):", "  File \"/app/ingest.py\", line 41, in <module>", "    f.write(chunk)", "OSError: [Errno 28] No space left on device"] if v == 0 else \
        ["2025-11-12 10:12:01.120 UTC [1] PANIC:  could not write to file \"pg_wal/xlogtemp.31\": No space left on device", "2025-11-12 10:12:01.125 UTC [1] LOG:  database system is shut down"]
    c.deployment(ns, app, [container("app", pick(IMAGES, v, 3).format(a=app), ports=[8080], mounts=[{"mountPath": "/data", "name": "data"}])], volumes=vol,
                 state={"kind": "crashloop", "exit": 1, "restarts": 8, "uptime": 20, "log": "\n".join(log)})
    noise(c, ns, v, exclude=[app])
    return c, expected("Deployment", ns, app, "storage", "PersistentVolumeClaim", f"{app}-data", "VolumeFull")


@scenario("storage", "shared-rwo-claim", 2)
def rwo(v):
    c = base(v, nodes=("kind-worker", "kind-worker2"), family="rwo")
    c.storageclass("standard")
    ns, app = pick(NAMESPACES, v, 3), pick(APPS, v, 4)
    c.pvc(ns, f"{app}-pvc")
    vol = [{"name": "data", "persistentVolumeClaim": {"claimName": f"{app}-pvc"}}]
    anti = {"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": "kubernetes.io/hostname"}]}}}
    c.deployment(ns, app, [container("web", pick(IMAGES, v).format(a=app), ports=[8080], mounts=[{"mountPath": "/data", "name": "data"}])], volumes=vol, extra_spec=anti,
                 replicas=2, node=["kind-worker2", None],
                 states=[{"kind": "running"}, {"kind": "pending", "message": "0/2 nodes are available: 1 node(s) didn't match pod anti-affinity rules, 1 node(s) had volume node affinity conflict. preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling."}])
    return c, expected("Deployment", ns, app, "storage", "PersistentVolumeClaim", f"{app}-pvc", "VolumeNodeAffinityConflict", also=[{"kind": "Deployment", "name": app}])


# ============================================================================ system
@scenario("system", "node-disk-pressure", 3)
def disk_pressure(v):
    c = base(v, nodes=("worker-1", "worker-2"), family="diskpressure")
    c.nodes[0] = None
    c.nodes = []
    c.lists.pop(("", "nodes"), None)
    c.add_node("worker-1", pressure="DiskPressure")
    c.add_node("worker-2")
    ns, app = pick(NAMESPACES, v, 4), pick(APPS, v, 5)
    c.event(None, "Node", "worker-1", "EvictionThresholdMet", "Attempting to reclaim ephemeral-storage", typ="Warning", count=9, component="kubelet", host="worker-1",
            first=c.now - timedelta(minutes=25), last=c.now - timedelta(minutes=1))
    msg = f"The node was low on resource: ephemeral-storage. Threshold quantity: 10502755102, available: 9081244Ki. Container {app} was using 4312Ki, request is 0, has larger consumption of ephemeral-storage. "
    c.deployment(ns, app, [container(app, pick(IMAGES, v, 2).format(a=app), ports=[8080])], replicas=2, node="worker-1",
                 states=[{"kind": "evicted", "message": msg}, {"kind": "rejected", "message": "Pod was rejected: The node had condition: [DiskPressure]. "}],
                 extra_spec={"nodeName": "worker-1"} if v == 0 else None)
    noise(c, ns, v, exclude=[app])
    return c, expected("Deployment", ns, app, "system", "Node", "worker-1", "NodeDiskPressure", rc_ns=None)


@scenario("system", "node-not-ready", 3)
def not_ready(v):
    c = base(v, nodes=(), family="notready")
    c.add_node("ip-10-0-1-17.ec2.internal", ready=False)
    c.add_node("ip-10-0-2-40.ec2.internal")
    ns, app = pick(NAMESPACES, v, 5), pick(APPS, v, 6)
    node = "ip-10-0-1-17.ec2.internal"
    c.event(None, "Node", node, "NodeNotReady", f"Node {node} status is now: NodeNotReady", typ="Normal", component="node-controller", first=c.now - timedelta(minutes=8), last=c.now - timedelta(minutes=8))
    dep, rs, pods = c.deployment(ns, app, [container("app", pick(IMAGES, v).format(a=app), ports=[8080])], replicas=1, node=node,
                                 state={"kind": "running"}, extra_spec={"nodeSelector": {"kubernetes.io/hostname": node}})
    for p in pods:  # the node controller marks pods on an unreachable node not ready
        for cond in p["status"]["conditions"]:
            if cond["type"] in ("Ready", "ContainersReady"):
                cond.update(status="False", reason="NodeNotReady" if cond["type"] == "Ready" else "ContainersNotReady")
    c.event(ns, "Pod", pods[0]["metadata"]["name"], "NodeNotReady", "Node is not ready", typ="Warning", component="node-controller")
    noise(c, ns, v, exclude=[app])
    return c, expected("Deployment", ns, app, "system", "Node", node, "NodeNotReady", rc_ns=None)


@scenario("system", "node-pod-capacity", 2)
def pod_capacity(v):
    c = base(v, nodes=(), family="podcap")
    c.add_node("small-node", pods_cap="4")
    c.add_node("big-node")
    ns, app = pick(NAMESPACES, v, 6), pick(APPS, v, 7)
    c.deployment("kube-system", "filler", [container("pause", "registry.k8s.io/pause:3.10")], replicas=4, node="small-node")
    c.deployment(ns, app, [container("app", "nginx:1.27", ports=[80])], replicas=1, extra_spec={"nodeSelector": {"kubernetes.io/hostname": "small-node"}},
                 state={"kind": "pending", "message": "0/2 nodes are available: 1 Too many pods, 1 node(s) didn't match Pod's node affinity/selector. preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling."})
    return c, expected("Deployment", ns, app, "system", "Node", "small-node", "NodePodCapacity", rc_ns=None, also=[{"kind": "Deployment", "name": app}])


# ============================================================================ application
@scenario("application", "malformed-json-upstream", 3)
def malformed(v):
    c = base(v, family="malformed")
    ns = pick(NAMESPACES, v, 7)
    up, mid = pick(APPS, v, 8), pick(APPS, v, 9)
    c.deployment(ns, up, [container("api", pick(IMAGES, v).format(a=up), ports=[8080])],
                 state={"kind": "running", "log": '{"level":"info","msg":"listening on :8080"}\n{"level":"info","msg":"GET /v1/rates 200 1.2ms","bytes":17}'})
    c.service(ns, up, {"app": up}, [(80, 8080)])
    tb = "\n".join(["INFO:app:fetching rates from http://%s/v1/rates" % up, "Traceback (most recent call last):", '  File "/app/main.py", line 57, in refresh',
                    "    rates = resp.json()", '  File "/usr/local/lib/python3.12/site-packages/requests/models.py", line 978, in json',
                    "    raise RequestsJSONDecodeError(e.msg, e.doc, e.pos)", "requests.exceptions.JSONDecodeError: Expecting value: line 1 column 1 (char 0)"])
    c.deployment(ns, mid, [container("worker", pick(IMAGES, v, 1).format(a=mid), ports=[9000], env=[{"name": "RATES_URL", "value": f"http://{up}/v1/rates"}])],
                 state={"kind": "crashloop", "exit": 1, "restarts": 6, "uptime": 3, "log": tb})
    c.service(ns, mid, {"app": mid}, [(80, 9000)])
    if v == 2:
        # Two hops: the front's calls to the crashing consumer are refused.
        front = pick(APPS, v, 10)
        ip = next(x for x in c.lists[(ns, "services")] if x["metadata"]["name"] == mid)["spec"]["clusterIP"]
        flog = "\n".join([f'{{"level":"warn","msg":"upstream call failed","upstream":"http://{mid}/v1/quote","error":"dial tcp {ip}:80: connect: connection refused"}}'] * 5)
        c.deployment(ns, front, [container("web", pick(IMAGES, v, 4).format(a=front), ports=[3000], env=[{"name": "QUOTE_URL", "value": f"http://{mid}/v1/quote"}])],
                     state={"kind": "running", "log": flog})
        return c, expected("Deployment", ns, front, "application", "Deployment", up, "UpstreamMalformedData")
    return c, expected("Deployment", ns, mid, "application", "Deployment", up, "UpstreamMalformedData")


@scenario("application", "app-crash", 2)
def app_crash(v):
    c = base(v, family="appcrash")
    ns, app = pick(NAMESPACES, v, 8), pick(APPS, v, 10)
    log = ["Exception in thread \"main\" java.lang.NullPointerException: Cannot invoke \"String.length()\" because \"token\" is null",
           "\tat com.acme.auth.TokenParser.parse(TokenParser.java:42)", "\tat com.acme.auth.Main.main(Main.java:19)"] if v == 0 else \
          ["panic: runtime error: index out of range [3] with length 3", "", "goroutine 1 [running]:", "main.loadRoutes(...)", "\t/src/routes.go:71 +0x1d4"]
    c.deployment(ns, app, [container("app", pick(IMAGES, v, 2).format(a=app), ports=[8080], limits={"memory": "512Mi"})],
                 state={"kind": "crashloop", "exit": 1 if v == 0 else 2, "restarts": 5, "uptime": 4, "log": "\n".join(log)})
    noise(c, ns, v, exclude=[app])
    return c, expected("Deployment", ns, app, "application", "Deployment", app, "ApplicationCrash")


@scenario("application", "blocked-main-thread", 2)
def blocked(v):
    c = base(v, family="blocked")
    ns, app = pick(NAMESPACES, v, 9), pick(APPS, v, 11)
    port = [8080, 5000][v % 2]
    log = f'{{"level":"info","msg":"listening on :{port}"}}\n{{"level":"info","msg":"starting nightly reindex on request thread"}}'
    c.deployment(ns, app, [container("app", pick(IMAGES, v, 3).format(a=app), ports=[port], liveness=probe_http(port, "/healthz"))],
                 state={"kind": "liveness", "restarts": 5, "exit": 137,
                        "message": f"Liveness probe failed: Get \"http://10.244.0.{50 + v}:{port}/healthz\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
                        "log": log})
    c.service(ns, app, {"app": app}, [(80, port)])
    noise(c, ns, v, exclude=[app])
    return c, expected("Deployment", ns, app, "application", "Deployment", app, "MainThreadBlocked")


@scenario("application", "external-dependency", 2)
def external(v):
    c = base(v, family="external")
    ns, app = pick(NAMESPACES, v), pick(APPS, v, 12)
    host = ["payments.partner-api.com", "db-prod.internal.example.net"][v % 2]
    log = f"curl: (6) Could not resolve host: {host}" if v % 2 == 0 else f"psql: error: connection to server at \"{host}\" (10.20.0.5), port 5432 failed: Connection timed out"
    c.job(ns, f"{app}-sync", container("sync", "curlimages/curl:8.10.1" if v % 2 == 0 else "postgres:16", command=["sh", "-c", f"curl -sf https://{host}/v1/export" if v % 2 == 0 else f"psql -h {host} -c 'select 1'"]),
          [{"kind": "job-failed", "exit": 6 if v % 2 == 0 else 2, "log": log}, {"kind": "job-failed", "exit": 6 if v % 2 == 0 else 2, "log": log}])
    noise(c, ns, v, exclude=[app])
    return c, expected("Job", ns, f"{app}-sync", "application", "Job", f"{app}-sync", "DependencyUnreachable")


@scenario("storage", "no-matching-pv", 2)
def no_pv(v):
    c = base(v, family="nopv")
    ns, app = pick(NAMESPACES, v, 5), pick(APPS, v, 13)
    c.pvc(ns, f"{app}-archive", storage="50Gi", sc="", phase="Pending", modes=("ReadWriteMany",))
    c.event(ns, "PersistentVolumeClaim", f"{app}-archive", "FailedBinding", "no persistent volumes available for this claim and no storage class is set", typ="Normal",
            component="persistentvolume-controller", count=40, first=c.now - timedelta(minutes=30), last=c.now - timedelta(seconds=15))
    vol = [{"name": "archive", "persistentVolumeClaim": {"claimName": f"{app}-archive"}}]
    c.deployment(ns, app, [container("archiver", pick(IMAGES, v, 2).format(a=app), mounts=[{"mountPath": "/archive", "name": "archive"}])], volumes=vol,
                 state={"kind": "pending", "message": "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."})
    noise(c, ns, v, exclude=[app])
    return c, expected("Deployment", ns, app, "storage", "PersistentVolumeClaim", f"{app}-archive", "NoMatchingPersistentVolume")


@scenario("system", "node-memory-pressure", 2)
def memory_pressure(v):
    c = base(v, nodes=(), family="mempressure")
    c.add_node("worker-a", pressure="MemoryPressure")
    c.add_node("worker-b")
    ns, app = pick(NAMESPACES, v, 6), pick(APPS, v, 14)
    c.event(None, "Node", "worker-a", "EvictionThresholdMet", "Attempting to reclaim memory", typ="Warning", count=6, component="kubelet", host="worker-a",
            first=c.now - timedelta(minutes=15), last=c.now - timedelta(minutes=2))
    c.deployment(ns, app, [container(app, pick(IMAGES, v, 3).format(a=app), ports=[8080])], replicas=2, node="worker-a",
                 states=[{"kind": "rejected", "message": "Pod was rejected: The node had condition: [MemoryPressure]. "}] * 2,
                 extra_spec={"nodeSelector": {"kubernetes.io/hostname": "worker-a"}})
    noise(c, ns, v, exclude=[app])
    return c, expected("Deployment", ns, app, "system", "Node", "worker-a", "NodeMemoryPressure", rc_ns=None)


@scenario("application", "slow-dependency", 2)
def slow(v):
    c = base(v, family="slow")
    ns, app = pick(NAMESPACES, v, 7), pick(APPS, v, 15)
    secs = [6.4, 11.2][v % 2]
    log = "\n".join([f"INFO:app:Received request for /{app}", "INFO:app:Querying reporting database (stored procedure sp_MonthlyRollup)",
                      f"INFO:app:Database call completed in {secs} seconds.", f"INFO:     10.244.0.9:4410{i} - \"GET /{app} HTTP/1.1\" 200 OK" if False else "INFO:     10.244.0.9:44102 - \"GET / HTTP/1.1\" 200 OK"] * 4)
    c.deployment(ns, app, [container("api", pick(IMAGES, v, 1).format(a=app), ports=[8000], readiness=probe_http(8000, "/healthz"))], state={"kind": "running", "log": log})
    c.service(ns, app, {"app": app}, [(80, 8000)])
    noise(c, ns, v, exclude=[app])
    return c, expected("Deployment", ns, app, "application", "Deployment", app, "SlowDependency")


@scenario("system", "coredns-down", 2)
def coredns(v):
    c = base(v, family="coredns")
    ns, app = pick(NAMESPACES, v, 8), pick(APPS, v, 16)
    db = pick(APPS, v, 17) + "-db"
    log = ["[INFO] plugin/reload: Running configuration SHA512 = 1b226df79860bfc8",
           "[FATAL] plugin/loop: Loop (127.0.0.1:55953 -> :53) detected for zone \".\", see https://coredns.io/plugins/loop#troubleshooting. Query: \"HINFO 4547991504243258144.3688648895315093531.\""] if v == 0 else \
          ["plugin/forward: no nameservers found", "Listen: listen tcp :53: bind: permission denied"]
    dep, rs, pods = c.deployment("kube-system", "coredns", [container("coredns", "registry.k8s.io/coredns/coredns:v1.11.3", ports=[{"containerPort": 53, "name": "dns"}],
                                                                     args=["-conf", "/etc/coredns/Corefile"], limits={"memory": "170Mi"}, requests={"cpu": "100m", "memory": "70Mi"})],
                                 labels={"k8s-app": "kube-dns"}, replicas=2, state={"kind": "crashloop", "exit": 1, "restarts": 11, "uptime": 1, "log": "\n".join(log)})
    c.service("kube-system", "kube-dns", {"k8s-app": "kube-dns"}, [53])
    c.lists[("kube-system", "services")][-1]["metadata"]["labels"] = {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"}
    c.deployment(ns, db, [container("postgres", "postgres:16", ports=[5432])])
    c.service(ns, db, {"app": db}, [5432])
    alog = "\n".join([f'{{"level":"error","msg":"db connect failed","error":"dial tcp: lookup {db} on 10.96.0.10:53: read udp 10.244.0.14:40412->10.96.0.10:53: i/o timeout"}}'] * 4)
    c.deployment(ns, app, [container("api", pick(IMAGES, v).format(a=app), ports=[8080], env=[{"name": "DB_HOST", "value": db}])],
                 state={"kind": "crashloop", "exit": 1, "restarts": 6, "uptime": 10, "log": alog})
    noise(c, ns, v, exclude=[app, db])
    return c, expected("Deployment", ns, app, "system", "Deployment", "coredns", "CoreDnsDown", rc_ns="kube-system")


# ============================================================================ classes seen on recorded clusters
# The fault classes below were missed on clusters recorded by other teams (kubeasz/kubeadm
# clusters running Online Boutique and Train-Ticket): the control plane and nodes, cordons,
# a backend scaled to zero, a caller configured with the wrong port, probes speaking the wrong
# protocol, a pod's own DNS settings, quotas on object counts and a shared database.

def cordon(node, at):
    node["spec"]["unschedulable"] = True
    node["spec"]["taints"] = node["spec"].get("taints", []) + [{"effect": "NoSchedule", "key": "node.kubernetes.io/unschedulable", "timeAdded": at}]


GRPC_PROBE_REPLY = '"\\x00\\x00\\x06\\x04\\x00\\x00\\x00\\x00\\x00\\x00\\x05\\x00\\x00@\\x00"'


@scenario("system", "scheduler-not-running", 2)
def scheduler_down(v):
    c = base(v, nodes=(), family="schedulerdown")
    cp = ["master", "cp-1"][v % 2]
    n = c.add_node(cp, labels={"kubernetes.io/role": "master"} if v % 2 == 0 else {"node-role.kubernetes.io/control-plane": ""})
    cordon(n, ts(c.now - timedelta(days=12)))
    for w in ("worker-01", "worker-02"):
        c.add_node(w, labels={"kubernetes.io/role": "node"})
    ns, app = pick(NAMESPACES, v, 3), pick(APPS, v, 13)
    noise(c, ns, v, exclude=[app])
    c.deployment(ns, app, [container("server", pick(IMAGES, v, 3).format(a=app), ports=[8080], requests={"cpu": "100m", "memory": "64Mi"})],
                 created=c.now - timedelta(minutes=7), state={"kind": "unscheduled"})
    c.service(ns, app, {"app": app}, [(80, 8080)])
    return c, expected("Deployment", ns, app, "system", "Node", cp, "SchedulerNotRunning", rc_ns=None)


@scenario("scheduling", "nodes-cordoned", 2)
def nodes_cordoned(v):
    c = base(v, nodes=("kind-control-plane",), family="cordoned")
    c.nodes[0]["spec"]["taints"] = [{"effect": "NoSchedule", "key": "node-role.kubernetes.io/control-plane"}]
    w1 = c.add_node("worker-1", labels={"disktype": "ssd"})
    w2 = c.add_node("worker-2")
    ns, app = pick(NAMESPACES, v, 4), pick(APPS, v, 14)
    noise(c, ns, v, exclude=[app])
    cordon(w1, ts(c.now - timedelta(minutes=30)))
    extra = None
    if v == 0:
        cordon(w2, ts(c.now - timedelta(minutes=30)))
        msg = "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 node(s) were unschedulable. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    else:
        extra = {"nodeSelector": {"disktype": "ssd"}}
        msg = "0/3 nodes are available: 1 node(s) were unschedulable, 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    c.deployment(ns, app, [container("app", pick(IMAGES, v, 4).format(a=app), ports=[8080], requests={"cpu": "200m", "memory": "128Mi"})],
                 created=c.now - timedelta(minutes=12), extra_spec=extra, state={"kind": "pending", "message": msg})
    also = [{"kind": "Node", "name": "worker-2"}] if v == 0 else []
    return c, expected("Deployment", ns, app, "scheduling", "Node", "worker-1", "NodesCordoned", rc_ns=None, also=also)


@scenario("configuration", "scaled-to-zero", 2)
def scaled_zero(v):
    c = base(v, family="scaledzero")
    ns = pick(NAMESPACES, v, 5)
    backend, caller = pick(APPS, v, 15), pick(APPS, v, 16)
    c.deployment(ns, backend, [container("server", pick(IMAGES, v, 1).format(a=backend), ports=[8080])], replicas=0,
                 annotations={"kubectl.kubernetes.io/last-applied-configuration": '{"apiVersion":"apps/v1","kind":"Deployment","spec":{"replicas":2}}'})
    ip = c.service(ns, backend, {"app": backend}, [(8080, 8080)])["spec"]["clusterIP"]
    if v == 0:
        log = "\n".join([f"2025-11-12 10:{20 + i:02d}:16.333  WARN 1 --- [oundedElastic-2] o.s.c.l.core.RoundRobinLoadBalancer      : No servers available for service: {backend}" for i in range(5)])
    else:
        log = "\n".join([f'{{"level":"error","msg":"call failed","error":"dial tcp {ip}:8080: connect: connection refused"}}' for _ in range(5)])
    c.deployment(ns, caller, [container("app", pick(IMAGES, v, 2).format(a=caller), ports=[8080], env=[{"name": "BACKEND_URL", "value": f"http://{backend}:8080"}])],
                 state={"kind": "running", "log": log})
    c.service(ns, caller, {"app": caller}, [(80, 8080)])
    noise(c, ns, v, exclude=[backend, caller])
    target = caller if v == 0 else backend
    return c, expected("Deployment", ns, target, "configuration", "Deployment", backend, "ScaledToZero")


@scenario("configuration", "wrong-service-port", 2)
def wrong_port(v):
    c = base(v, family="wrongport")
    ns = pick(NAMESPACES, v, 6)
    backend, caller = ["redis-cart", "currency"][v % 2], pick(APPS, v, 17)
    port = [6379, 7000][v % 2]
    c.deployment(ns, backend, [container("server", ["redis:7.2-alpine", "acme/currency:1.4.0"][v % 2], ports=[port])],
                 state={"kind": "running", "log": f"Ready to accept connections tcp on port {port}"})
    ip = c.service(ns, backend, {"app": backend}, [port])["spec"]["clusterIP"]
    bad = port + 1
    env = [{"name": ["REDIS_ADDR", "CURRENCY_SERVICE_ADDR"][v % 2], "value": f"{backend}:{bad}"}]
    if v == 0:
        log = "\n".join([f"---> StackExchange.Redis.RedisConnectionException: UnableToConnect on {backend}:{bad}/Interactive, Initializing/NotStarted, last: NONE, origin: BeginConnectAsync" for _ in range(4)])
    else:
        log = "\n".join([f'{{"error":"rpc error: code = Unavailable desc = connection error: desc = \\"transport: Error while dialing: dial tcp {ip}:{bad}: connect: connection refused\\"","message":"request error","severity":"error"}}' for _ in range(4)])
    c.deployment(ns, caller, [container("server", pick(IMAGES, v, 3).format(a=caller), ports=[8080], env=env)], state={"kind": "running", "log": log})
    c.service(ns, caller, {"app": caller}, [(80, 8080)])
    noise(c, ns, v, exclude=[backend, caller])
    return c, expected("Deployment", ns, caller, "configuration", "Deployment", caller, "WrongServicePort")


@scenario("configuration", "probe-wrong-protocol", 2)
def probe_protocol(v):
    c = base(v, family="probeproto")
    ns, app = pick(NAMESPACES, v, 7), pick(APPS, v, 18)
    port = [50051, 9555][v % 2]
    ip = f"10.244.0.{60 + v}"
    if v == 0:
        msg = f'Readiness probe failed: Get "http://{ip}:{port}/health": net/http: HTTP/1.x transport connection broken: malformed HTTP response {GRPC_PROBE_REPLY}'
        ctr = container("server", pick(IMAGES, v, 4).format(a=app), ports=[port], readiness=probe_http(port, "/health"))
        state = {"kind": "unready", "message": msg, "log": f'{{"severity":"info","message":"gRPC server listening on :{port}"}}'}
    else:
        msg = f'Liveness probe failed: Get "http://{ip}:{port}/": net/http: HTTP/1.x transport connection broken: malformed HTTP status code {GRPC_PROBE_REPLY}'
        ctr = container("server", pick(IMAGES, v, 4).format(a=app), ports=[port], liveness=probe_http(port, "/"))
        state = {"kind": "liveness", "restarts": 4, "exit": 137, "message": msg, "log": f'{{"severity":"info","message":"gRPC server listening on :{port}"}}'}
    c.deployment(ns, app, [ctr], state=state)
    c.service(ns, app, {"app": app}, [port])
    noise(c, ns, v, exclude=[app])
    return c, expected("Deployment", ns, app, "configuration", "Deployment", app, "ProbeWrongProtocol")


@scenario("network", "pod-dns-policy", 2)
def dns_policy(v):
    c = base(v, family="dnspolicy")
    ns, app = pick(NAMESPACES, v, 8), pick(APPS, v, 19)
    db = ["orders-db", "mysql-leader"][v % 2]
    c.deployment(ns, db, [container("mysql", "mysql:8.0", ports=[3306])])
    c.service(ns, db, {"app": db}, [3306])
    log = f"Caused by: java.net.UnknownHostException: {db}: Temporary failure in name resolution" if v == 0 else f"Error: getaddrinfo EAI_AGAIN {db}\n    at GetAddrInfoReqWrap.onlookup [as oncomplete] (node:dns:107:26)"
    c.deployment(ns, app, [container("app", pick(IMAGES, v, 5).format(a=app), ports=[8080], env=[{"name": "DB_HOST", "value": db}])],
                 extra_spec={"dnsPolicy": "None", "dnsConfig": {"nameservers": [f"10.255.{v}.254"], "searches": [f"{ns}.svc.cluster.local"]}},
                 state={"kind": "crashloop", "exit": 1, "restarts": 6, "uptime": 20, "log": log})
    noise(c, ns, v, exclude=[app, db])
    return c, expected("Deployment", ns, app, "network", "Deployment", app, "PodDnsConfigBroken")


@scenario("resource", "service-quota-exhausted", 2)
def service_quota(v):
    c = base(v, family="svcquota")
    ns = pick(NAMESPACES, v, 9)
    front, missing = pick(APPS, v, 1), ["cartservice", "catalog-api"][v % 2]
    c.deployment(ns, missing, [container("server", pick(IMAGES, v, 6).format(a=missing), ports=[7070])])
    c.deployment(ns, front, [container("web", pick(IMAGES, v, 7).format(a=front), ports=[8080], env=[{"name": "CART_ADDR", "value": f"{missing}:7070"}])],
                 state={"kind": "running", "log": "\n".join([f'{{"error":"could not retrieve cart: rpc error: code = Unavailable desc = connection error: desc = \\"transport: Error while dialing: dial tcp: lookup {missing} on 169.254.20.10:53: no such host\\"","message":"request error","severity":"error"}}'] * 4)})
    c.service(ns, front, {"app": front}, [(80, 8080)])
    noise(c, ns, v, exclude=[front, missing])
    n = len(c.lists.get((ns, "services"), []))
    c.resourcequota(ns, ["service-quota", "object-counts"][v % 2], {"services": str(n)}, used={"services": str(n)})
    return c, expected("Deployment", ns, front, "resource", "ResourceQuota", ["service-quota", "object-counts"][v % 2], "QuotaBlocksCreation",
                       also=[{"kind": "Service", "name": missing}])


@scenario("application", "shared-database-rejects", 2)
def shared_db(v):
    c = base(v, family="shareddb")
    ns = pick(NAMESPACES, v, 1)
    c.deployment(ns, "orders-db", [container("mysql", "mysql:8.0.36", ports=[3306])], labels={"app": "orders-db"})
    c.service(ns, "orders-db", {"app": "orders-db"}, [3306])
    c.deployment(ns, "auth-db", [container("postgres", "postgres:16", ports=[5432])], labels={"app": "auth-db"})
    c.service(ns, "auth-db", {"app": "auth-db"}, [5432])
    c.secret(ns, "orders-mysql", ["ORDERS_MYSQL_HOST", "ORDERS_MYSQL_PASSWORD"])
    err = ["java.sql.SQLNonTransientConnectionException: Too many connections",
           "java.sql.SQLException: The MySQL server is running with the --read-only option so it cannot execute this statement"][v % 2]
    callers = [pick(APPS, v, 2), pick(APPS, v, 3)]
    for i, caller in enumerate(callers):
        log = "\n".join(["2025-11-12 10:21:07.118 ERROR 1 --- [main] com.zaxxer.hikari.pool.HikariPool : HikariPool-1 - Exception during pool initialization.", err,
                         "\tat com.mysql.cj.jdbc.exceptions.SQLError.createSQLException(SQLError.java:111) ~[mysql-connector-j-8.0.33.jar!/:8.0.33]"])
        c.deployment(ns, caller, [container("app", pick(IMAGES, v, 4 + i).format(a=caller), ports=[8080], env_from=[{"secretRef": {"name": "orders-mysql"}}])],
                     state={"kind": "crashloop", "exit": 1, "restarts": 5 + i, "uptime": 25, "log": log})
    noise(c, ns, v, exclude=callers + ["orders-db", "auth-db"])
    return c, expected("Deployment", ns, callers[0], "application", "Deployment", "orders-db", "DatabaseRejects")


@scenario("system", "kubelet-stopped", 2)
def kubelet_stopped(v):
    c = base(v, nodes=(), family="kubeletstopped")
    c.add_node("worker-01")
    bad = "worker-02"
    c.add_node(bad, ready=False)
    ns, app = pick(NAMESPACES, v, 2), pick(APPS, v, 5)
    noise(c, ns, v, exclude=[app])
    c.deployment(ns, app, [container("server", pick(IMAGES, v, 5).format(a=app), ports=[8080])], node=bad,
                 created=c.now - timedelta(minutes=9), state={"kind": "creating"})
    c.service(ns, app, {"app": app}, [(80, 8080)])
    return c, expected("Deployment", ns, app, "system", "Node", bad, "NodeNotReady", rc_ns=None)


@scenario("system", "controller-manager-not-running", 2)
def controller_manager_down(v):
    c = base(v, family="kcmdown")
    ns, app = pick(NAMESPACES, v, 6), pick(APPS, v, 8)
    noise(c, ns, v, exclude=[app])
    # Two replicas wanted, one pod left after a pod was deleted: no SuccessfulCreate, no
    # FailedCreate, nothing from any controller since.
    dep, rs, pods = c.deployment(ns, app, [container("server", pick(IMAGES, v, 6).format(a=app), ports=[8080])], replicas=2,
                                 states=[{"kind": "running"}], created=c.now - timedelta(hours=3))
    deleted = f"{rs['metadata']['name']}-{h(rs['metadata']['name'], 'gone', n=5)}"
    c.event(ns, "Pod", deleted, "Killing", "Stopping container server", first=c.now - timedelta(minutes=6), last=c.now - timedelta(minutes=6))
    c.service(ns, app, {"app": app}, [(80, 8080)])
    return c, expected("Deployment", ns, app, "system", "Node", "kind-control-plane", "ControllerManagerNotRunning", rc_ns=None)


@scenario("network", "egress-deny-dns", 2)
def egress_dns(v):
    c = base(v, family="egressdns")
    ns, app, db = pick(NAMESPACES, v, 7), pick(APPS, v, 9), ["orders-db", "ledger-db"][v % 2]
    c.deployment(ns, db, [container("postgres", "postgres:16", ports=[5432])])
    c.service(ns, db, {"app": db}, [5432])
    log = f"dial tcp: lookup {db} on 10.96.0.10:53: read udp 10.244.0.31:48211->10.96.0.10:53: i/o timeout" if v == 0 else \
          f"psql: error: could not translate host name \"{db}\" to address: Temporary failure in name resolution"
    c.deployment(ns, app, [container("app", pick(IMAGES, v, 8).format(a=app), ports=[8080], env=[{"name": "DB_HOST", "value": db}])],
                 state={"kind": "crashloop", "exit": 1, "restarts": 5, "uptime": 15, "log": log})
    spec = {"podSelector": {}, "policyTypes": ["Egress"]}
    if v == 1:
        spec["egress"] = [{"ports": [{"port": 443, "protocol": "TCP"}]}]
    c.add(ns, "networkpolicies", {"metadata": c.meta(ns, ["default-deny-egress", "only-https-out"][v % 2], c.now - timedelta(minutes=40)), "spec": spec})
    noise(c, ns, v, exclude=[app, db])
    return c, expected("Deployment", ns, app, "network", "NetworkPolicy", ["default-deny-egress", "only-https-out"][v % 2], "NetworkPolicyBlocksEgress")


@scenario("resource", "configmap-quota-exhausted", 1)
def configmap_quota(v):
    c = base(v, family="cmquota")
    ns, app = pick(NAMESPACES, v, 8), pick(APPS, v, 10)
    noise(c, ns, v, exclude=[app])
    cm = f"{app}-settings"
    vol = [{"configMap": {"defaultMode": 420, "name": cm}, "name": "settings"}]
    c.deployment(ns, app, [container("app", pick(IMAGES, v, 9).format(a=app), ports=[8080], mounts=[{"mountPath": "/etc/app", "name": "settings"}])],
                 volumes=vol, state={"kind": "mountfail", "message": f"MountVolume.SetUp failed for volume \"settings\" : configmap \"{cm}\" not found"})
    n = len(c.lists.get((ns, "configmaps"), []))
    c.resourcequota(ns, "object-counts", {"count/configmaps": str(n)}, used={"count/configmaps": str(n)})
    return c, expected("Deployment", ns, app, "resource", "ResourceQuota", "object-counts", "QuotaBlocksCreation", also=[{"kind": "ConfigMap", "name": cm}])


@scenario("system", "kube-proxy-stopped", 2)
def kube_proxy(v):
    c = base(v, nodes=("worker-01", "worker-02"), family="kubeproxy")
    ns = pick(NAMESPACES, v, 9)
    backend, middle, front = "cart", "checkout", "web"
    c.deployment(ns, backend, [container("server", "acme/cart:2.1.0", ports=[7070])], node="worker-01")
    ip = c.service(ns, backend, {"app": backend}, [7070])["spec"]["clusterIP"]
    dial = f"dial tcp {ip}:7070: i/o timeout"
    if v == 0:
        # The caller on worker-02 times out on a healthy Service.
        log = "\n".join([f'{{"error":"could not retrieve cart: rpc error: code = Unavailable desc = connection error: desc = \\"transport: Error while dialing: {dial}\\"","severity":"error"}}'] * 4)
        c.deployment(ns, middle, [container("server", "acme/checkout:1.3.0", ports=[5050], env=[{"name": "CART_SERVICE_ADDR", "value": f"{backend}:7070"}])],
                     node="worker-02", state={"kind": "running", "log": log})
        c.service(ns, middle, {"app": middle}, [5050])
        target = middle
    else:
        # Only the front (on worker-01) logs it, relaying the error checkout (on worker-02) got.
        c.deployment(ns, middle, [container("server", "acme/checkout:1.3.0", ports=[5050], env=[{"name": "CART_SERVICE_ADDR", "value": f"{backend}:7070"}])],
                     node="worker-02", state={"kind": "running", "log": '{"severity":"info","message":"starting to listen on tcp: \\"[::]:5050\\""}'})
        c.service(ns, middle, {"app": middle}, [5050])
        log = "\n".join([f'{{"error":"failed to complete the order: rpc error: code = Internal desc = cart failure: failed to get user cart during checkout: rpc error: code = Unavailable desc = connection error: desc = \\"transport: Error while dialing: {dial}\\"","severity":"error"}}'] * 3)
        c.deployment(ns, front, [container("web", "acme/web:0.9.1", ports=[8080], env=[{"name": "CHECKOUT_SERVICE_ADDR", "value": f"{middle}:5050"}])],
                     node="worker-01", state={"kind": "running", "log": log})
        c.service(ns, front, {"app": front}, [(80, 8080)])
        target = middle
    noise(c, ns, v, exclude=[backend, middle, front])
    return c, expected("Deployment", ns, target, "system", "Node", "worker-02", "NodeServiceProxyBroken", rc_ns=None)


@scenario("healthy", "healthy-among-broken", 2)
def healthy(v):
    c = base(v, family="healthy")
    ns, app, broken = pick(NAMESPACES, v, 3), pick(APPS, v, 6), pick(APPS, v, 7)
    c.deployment(ns, app, [container("app", pick(IMAGES, v, 1).format(a=app), ports=[8080], readiness=probe_http(8080, "/ready"))], replicas=2)
    c.service(ns, app, {"app": app}, [(80, 8080)])
    c.deployment(ns, broken, [container("worker", pick(IMAGES, v, 2).format(a=broken), limits={"memory": "64Mi"})],
                 state={"kind": "oom", "restarts": 7, "uptime": 3})
    noise(c, ns, v, exclude=[app, broken])
    return c, {"target": {"kind": "Deployment", "namespace": ns, "name": app}, "verdict": "healthy"}


def main():
    for d in os.listdir(HERE):
        p = os.path.join(HERE, d)
        if os.path.isdir(p) and d[:3].isdigit():
            shutil.rmtree(p)
    for i, (cat, fam, v, fn) in enumerate(SCENARIOS, 1):
        c, exp = fn(v)
        d = os.path.join(HERE, f"{i:03d}-{cat}-{fam}-{v}")
        c.write(os.path.join(d, "dump"))
        with open(os.path.join(d, "expected.yaml"), "w") as f:
            f.write(f"# {cat} / {fam} variant {v}: generated by generate.py, do not edit\n")
            f.write(to_yaml(exp))
    print(f"wrote {len(SCENARIOS)} scenarios")


def to_yaml(v, indent=0):
    pad = "  " * indent
    out = ""
    if isinstance(v, dict):
        for k, x in v.items():
            if isinstance(x, (dict, list)):
                out += f"{pad}{k}:\n" + to_yaml(x, indent + 1)
            else:
                out += f"{pad}{k}: {x}\n"
    elif isinstance(v, list):
        for x in v:
            inner = to_yaml(x, indent + 1).lstrip()
            out += f"{pad}- {inner}"
    return out


if __name__ == "__main__":
    main()
