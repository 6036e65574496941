//! What each object of a snapshot says about its relations: the edges whose evidence lives in
//! that object's own data (its spec, its labels, its owner references, its log lines).
//!
//! Every edge has exactly one deriving object, fixed by its type ([`deriver_is_source`]): a pod
//! says which node it runs on, what it mounts and reads, whom it calls, which owner it has, and
//! which Services and NetworkPolicies select it (a selector is matched against the pod's labels
//! through the snapshot's selector index); a workload says which Services select its template;
//! a Service says which Endpoints expose it. So the edges of one object can be dropped and
//! derived again alone, which is what lets the graph be re-linked object by object.
//!
//! A change to what an object says here changes kept graphs: raise the `derive-N` revision of
//! `kept::FORMAT`, so graphs stored before are rebuilt rather than loaded.

use foldhash::HashMap;
use metakube_shared::ObjectRef;

use super::{calls, host_key, pod_spec_refs, Edge};
use crate::snapshot::{label_selector_matches, Cluster};

/// Whether an edge is derived by its source (true) or its target.
///
/// Owner references live in the owned object (so `Owns` is the child's, except a pod's own
/// containers and namespace link, which are the pod's); a selector match is the selected
/// object's (pods, workload templates); every other relation is said by its source.
pub fn deriver_is_source(e: Edge, to_kind: &str) -> bool {
    match e {
        Edge::Owns => to_kind == "Container",
        Edge::Selects | Edge::SelectsWorkload => false,
        _ => true,
    }
}

/// Sink for derived relations (which object says each is [`deriver_is_source`]'s to tell).
pub trait Relate {
    /// One relation an object's data says.
    fn relate(&mut self, from: &ObjectRef, to: &ObjectRef, e: Edge);
    /// The host names a pod's configuration and logs mention (how a change to a Service finds
    /// the pods that may now resolve it).
    fn hosts(&mut self, pod: &ObjectRef, keys: Vec<String>);
}

/// Log peers per pod, gathered once from the log signals.
pub fn peers_by_pod(signals: &[crate::signals::Signal]) -> HashMap<&ObjectRef, Vec<&str>> {
    let mut peers_of: HashMap<&ObjectRef, Vec<&str>> = HashMap::default();
    for s in signals.iter().filter(|s| s.code.starts_with("log_")) {
        if let Some(p) = s.peer.as_deref() {
            peers_of.entry(&s.object).or_default().push(p);
        }
    }
    for v in peers_of.values_mut() {
        v.sort_unstable();
        v.dedup();
    }
    peers_of
}

/// Derives the relations of the snapshot's objects for which `want` holds, kind by kind in
/// snapshot order.
pub fn derive(
    c: &Cluster,
    peers: &HashMap<&ObjectRef, Vec<&str>>,
    want: &dyn Fn(&ObjectRef) -> bool,
    out: &mut dyn Relate,
) {
    ownership(c, want, out);
    pods(c, peers, want, out);
    workloads(c, want, out);
    services(c, want, out);
    others(c, want, out);
}

fn ownership(c: &Cluster, want: &dyn Fn(&ObjectRef) -> bool, out: &mut dyn Relate) {
    let metas = c
        .pods
        .iter()
        .map(|o| (&o.r, &o.o.metadata))
        .chain(c.replicasets.iter().map(|o| (&o.r, &o.o.metadata)))
        .chain(c.jobs.iter().map(|o| (&o.r, &o.o.metadata)))
        .chain(c.endpoints.iter().map(|o| (&o.r, &o.o.metadata)));
    for (r, m) in metas.filter(|(r, _)| want(r)) {
        if let Some(owner) = c.owner_of(m) {
            out.relate(&owner, r, Edge::Owns);
        }
    }
}

fn pods(
    c: &Cluster,
    peers: &HashMap<&ObjectRef, Vec<&str>>,
    want: &dyn Fn(&ObjectRef) -> bool,
    out: &mut dyn Relate,
) {
    for p in c.pods.iter().filter(|p| want(&p.r)) {
        let ns = p.r.namespace.clone().unwrap_or_default();
        let labels = p.o.metadata.labels.as_ref();
        for s in c.services_selecting(&ns, labels) {
            out.relate(&s.r, &p.r, Edge::Selects);
        }
        for np in c
            .netpols
            .iter()
            .filter(|np| np.r.namespace.as_deref() == Some(ns.as_str()))
        {
            let Some(spec) = np.o.spec.as_ref() else {
                continue;
            };
            if spec
                .pod_selector
                .as_ref()
                .is_none_or(|sel| label_selector_matches(sel, labels))
            {
                out.relate(&np.r, &p.r, Edge::Selects);
            }
        }
        let nsr = ObjectRef::cluster("Namespace", &ns);
        out.relate(&nsr, &p.r, Edge::Owns);
        let pod_peers = peers.get(&p.r).map_or(&[][..], Vec::as_slice);
        let (deps, hosts) = calls(c, p, pod_peers);
        for s in deps {
            out.relate(&p.r, &s, Edge::DependsOn);
        }
        out.hosts(&p.r, hosts);
        let Some(spec) = p.o.spec.as_ref() else {
            continue;
        };
        if let Some(n) = &spec.node_name {
            out.relate(&p.r, &ObjectRef::cluster("Node", n), Edge::RunsOn);
        }
        for (kind, name, edge) in pod_spec_refs(spec) {
            out.relate(&p.r, &ObjectRef::new(kind, &ns, &name), edge);
        }
        for ctr in spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
        {
            let cr = ObjectRef::new("Container", &ns, format!("{}/{}", p.r.name, ctr.name));
            out.relate(&p.r, &cr, Edge::Owns);
        }
    }
}

fn workloads(c: &Cluster, want: &dyn Fn(&ObjectRef) -> bool, out: &mut dyn Relate) {
    for r in c.workload_refs().filter(|r| want(r)) {
        let Some(labels) = c.template_labels(r) else {
            continue;
        };
        for s in c.services_selecting(r.namespace.as_deref().unwrap_or(""), Some(labels)) {
            out.relate(&s.r, r, Edge::SelectsWorkload);
        }
    }
}

fn services(c: &Cluster, want: &dyn Fn(&ObjectRef) -> bool, out: &mut dyn Relate) {
    for s in c.services.iter().filter(|s| want(&s.r)) {
        if let Some(ep) = c.endpoints_of(&s.r) {
            out.relate(&s.r, &ep.r, Edge::Exposes);
        }
    }
    for ing in c.ingresses.iter().filter(|i| want(&i.r)) {
        let ns = ing.r.namespace.clone().unwrap_or_default();
        let spec = ing.o.spec.as_ref();
        let names = spec
            .and_then(|s| s.rules.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|r| r.http.as_ref())
            .flat_map(|h| h.paths.iter().filter_map(|p| p.backend.service.as_ref()))
            .chain(
                spec.and_then(|s| s.default_backend.as_ref())
                    .and_then(|b| b.service.as_ref()),
            )
            .map(|s| s.name.as_str());
        for n in names {
            out.relate(&ing.r, &ObjectRef::new("Service", &ns, n), Edge::RoutesTo);
        }
    }
}

fn others(c: &Cluster, want: &dyn Fn(&ObjectRef) -> bool, out: &mut dyn Relate) {
    for pvc in c.pvcs.iter().filter(|o| want(&o.r)) {
        let spec = pvc.o.spec.as_ref();
        if let Some(v) = spec.and_then(|s| s.volume_name.as_ref()) {
            let r = ObjectRef::cluster("PersistentVolume", v);
            out.relate(&pvc.r, &r, Edge::Binds);
        }
        if let Some(sc) = spec
            .and_then(|s| s.storage_class_name.as_ref())
            .filter(|s| !s.is_empty())
        {
            let r = ObjectRef::cluster("StorageClass", sc);
            out.relate(&pvc.r, &r, Edge::UsesClass);
        }
    }
    let limits = c
        .quotas
        .iter()
        .map(|q| &q.r)
        .chain(c.limitranges.iter().map(|l| &l.r));
    for q in limits.filter(|r| want(r)) {
        if let Some(ns) = &q.namespace {
            out.relate(q, &ObjectRef::cluster("Namespace", ns), Edge::Constrains);
        }
    }
    for h in c.hpas.iter().filter(|o| want(&o.r)) {
        let ns = h.r.namespace.clone().unwrap_or_default();
        if let Some(t) = h.o.spec.as_ref().map(|s| &s.scale_target_ref) {
            let r = ObjectRef::new(&t.kind, &ns, &t.name);
            out.relate(&h.r, &r, Edge::Scales);
        }
    }
}

/// What else may relate differently when `r` appears, changes or goes, beyond the objects
/// already linked to it (a selector that now matches, a host name that now resolves).
#[derive(Debug, Default)]
pub struct Reach {
    /// Objects to derive again: a Service's selected pods and workloads, an Endpoints'
    /// Service, a NetworkPolicy's pods.
    pub objects: Vec<ObjectRef>,
    /// Host keys ([`super::host_key`]) whose pods are to be derived again: a Service's name
    /// and ClusterIP.
    pub hosts: Vec<String>,
}

/// [`Reach`] of an object of the new snapshot (or of one that is gone).
pub fn reach(c: &Cluster, r: &ObjectRef) -> Reach {
    let ns = r.namespace.as_deref().unwrap_or("");
    let mut out = Reach::default();
    match r.kind.as_str() {
        "Service" => {
            out.hosts.push(host_key(&r.name));
            let Some(s) = c.service(ns, &r.name) else {
                return out;
            };
            let spec = s.o.spec.as_ref();
            out.hosts.extend(
                // A headless Service's "None" resolves nothing.
                spec.and_then(|sp| sp.cluster_ip.as_deref())
                    .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok())
                    .map(host_key),
            );
            let Some(sel) = spec.and_then(|sp| sp.selector.as_ref()) else {
                return out;
            };
            out.objects
                .extend(c.pods_selected_by(ns, sel).into_iter().map(|p| p.r.clone()));
            let workloads = c
                .workload_refs()
                .filter(|w| w.namespace.as_deref() == Some(ns));
            for w in workloads {
                if c.template_labels(w)
                    .is_some_and(|l| crate::snapshot::selector_matches(sel, Some(l)))
                {
                    out.objects.push(w.clone());
                }
            }
        }
        "Endpoints" => out.objects.push(ObjectRef::new("Service", ns, &r.name)),
        "NetworkPolicy" => out.objects.extend(
            c.pods
                .iter()
                .filter(|p| p.r.namespace.as_deref() == Some(ns))
                .map(|p| p.r.clone()),
        ),
        _ => {}
    }
    out
}
