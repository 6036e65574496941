//! Stage 1: the snapshot, typed. Every object the plugin sent is read into its k8s-openapi type
//! once; an object that does not fit its type is reported as a gap, never a panic.

// Per-request indexes of a snapshot's objects: foldhash, not SipHash (no key here comes from
// anyone able to aim collisions at a daemon that answers only its own user).
use foldhash::HashMap;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, Event, LimitRange, Node, PersistentVolume, PersistentVolumeClaim, Pod,
    PodSpec, PodTemplateSpec, ResourceQuota, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use metakube_shared::snapshot::ContainerLog;
use metakube_shared::{Gap, KindInfo, ObjectRef, Snapshot};
use serde::de::DeserializeOwned;

/// One typed object with its reference.
#[derive(Debug, Clone)]
pub struct Obj<T> {
    /// Kind, namespace, name.
    pub r: ObjectRef,
    /// The typed object.
    pub o: T,
}

/// The snapshot, typed and indexed. Built once per diagnosis; everything downstream reads it.
#[derive(Debug, Default, Clone)]
pub struct Cluster {
    /// The object asked about.
    pub target: ObjectRef,
    /// The namespace the request ran in.
    pub namespace: String,
    /// When the state was observed.
    pub now: Timestamp,
    /// Pods.
    pub pods: Vec<Obj<Pod>>,
    /// Nodes.
    pub nodes: Vec<Obj<Node>>,
    /// Services.
    pub services: Vec<Obj<Service>>,
    /// Endpoints.
    pub endpoints: Vec<Obj<Endpoints>>,
    /// Deployments.
    pub deployments: Vec<Obj<Deployment>>,
    /// ReplicaSets.
    pub replicasets: Vec<Obj<ReplicaSet>>,
    /// StatefulSets.
    pub statefulsets: Vec<Obj<StatefulSet>>,
    /// DaemonSets.
    pub daemonsets: Vec<Obj<DaemonSet>>,
    /// Jobs.
    pub jobs: Vec<Obj<Job>>,
    /// CronJobs.
    pub cronjobs: Vec<Obj<CronJob>>,
    /// ConfigMaps.
    pub configmaps: Vec<Obj<ConfigMap>>,
    /// Secrets (key names only).
    pub secrets: Vec<Obj<Secret>>,
    /// ServiceAccounts.
    pub serviceaccounts: Vec<Obj<ServiceAccount>>,
    /// PersistentVolumeClaims.
    pub pvcs: Vec<Obj<PersistentVolumeClaim>>,
    /// PersistentVolumes.
    pub pvs: Vec<Obj<PersistentVolume>>,
    /// StorageClasses.
    pub storageclasses: Vec<Obj<StorageClass>>,
    /// NetworkPolicies.
    pub netpols: Vec<Obj<NetworkPolicy>>,
    /// Ingresses.
    pub ingresses: Vec<Obj<Ingress>>,
    /// ResourceQuotas.
    pub quotas: Vec<Obj<ResourceQuota>>,
    /// LimitRanges.
    pub limitranges: Vec<Obj<LimitRange>>,
    /// HorizontalPodAutoscalers.
    pub hpas: Vec<Obj<HorizontalPodAutoscaler>>,
    /// Events.
    pub events: Vec<Obj<Event>>,
    /// Container logs, as sent.
    pub logs: Vec<ContainerLog>,
    /// Objects that did not fit their type, and kinds metakube does not read.
    pub gaps: Vec<Gap>,
    /// Which kinds were collected at all (an absent ConfigMap list proves nothing).
    pub collected_kinds: Vec<String>,
    /// Position in its typed vector of every object, by reference.
    index: HashMap<ObjectRef, usize>,
    /// Events by the (kind, namespace, name) they are about.
    events_by_object: HashMap<(String, Option<String>, String), Vec<usize>>,
    /// Pods by namespace and label pair: a selector's candidates are the shortest posting list
    /// among its pairs, so matching a Service to its pods does not scan every pod.
    pods_by_label: HashMap<LabelKey, Vec<usize>>,
    /// Services by namespace and selector pair: the Services that may select a pod are those
    /// listed under one of its labels.
    services_by_selector: HashMap<LabelKey, Vec<usize>>,
    /// Pods by the controller their `ownerReferences` name (a ReplicaSet, a Job, …).
    pods_by_controller: HashMap<ObjectRef, Vec<usize>>,
}

/// (namespace, label key, label value).
type LabelKey = (String, String, String);

/// Positions of objects by each (namespace, key, value) pair of a label map they carry.
fn index_by_pairs<'a>(
    objects: impl Iterator<
        Item = (
            &'a ObjectRef,
            Option<&'a std::collections::BTreeMap<String, String>>,
        ),
    >,
) -> HashMap<LabelKey, Vec<usize>> {
    let mut by = HashMap::<LabelKey, Vec<usize>>::default();
    for (i, (r, pairs)) in objects.enumerate() {
        let ns = r.namespace.clone().unwrap_or_default();
        for (k, v) in pairs.into_iter().flatten() {
            by.entry((ns.clone(), k.clone(), v.clone()))
                .or_default()
                .push(i);
        }
    }
    by
}

/// The typed objects of an earlier snapshot of the same cluster, by reference: an object whose
/// resourceVersion did not move is taken from here rather than typed again.
type Typed<T> = HashMap<ObjectRef, T>;

fn typed<T>(v: Vec<Obj<T>>) -> Typed<T> {
    v.into_iter().map(|Obj { r, o }| (r, o)).collect()
}

fn load<T: DeserializeOwned + k8s_openapi::Metadata<Ty = ObjectMeta>>(
    by_kind: &HashMap<&str, Vec<&metakube_shared::KubeObject>>,
    kind: &str,
    gaps: &mut Vec<Gap>,
    mut before: Typed<T>,
    reused: &mut usize,
) -> Vec<Obj<T>> {
    by_kind
        .get(kind)
        .into_iter()
        .flatten()
        .filter_map(|o| {
            let r = o.object_ref();
            let rv = o.resource_version();
            // An object seen before at the same version is taken; one that moved is typed anew
            // (and its earlier form dropped with the rest of what was not taken).
            if let (Some(rv), Some(t)) = (rv, before.remove(&r)) {
                if t.metadata().resource_version.as_deref() == Some(rv) {
                    *reused += 1;
                    return Some(Obj { r, o: t });
                }
            }
            match o.typed::<T>() {
                Ok(t) => Some(Obj { r, o: t }),
                Err(e) => {
                    gaps.push(Gap {
                        what: format!("{r}"),
                        namespace: o.namespace().map(str::to_string),
                        reason: format!("does not fit the {kind} schema: {e}"),
                    });
                    None
                }
            }
        })
        .collect()
}

impl Cluster {
    /// Types and indexes a snapshot.
    pub fn from_snapshot(snap: &Snapshot) -> Cluster {
        Cluster::from_snapshot_reusing(snap, None).0
    }

    /// Types and indexes a snapshot, taking from `before` (the typed snapshot of an earlier look
    /// at the same cluster) every object whose resourceVersion did not move instead of typing
    /// it again. Also says how many objects were taken.
    pub fn from_snapshot_reusing(snap: &Snapshot, before: Option<Cluster>) -> (Cluster, usize) {
        let b = before.unwrap_or_default();
        let mut gaps = snap.meta.gaps.clone();
        let mut c = Cluster {
            target: snap.target.clone(),
            namespace: snap.meta.namespace.clone(),
            now: snap.meta.collected_at,
            ..Cluster::default()
        };
        // One pass groups the objects by kind; pods (most of a large snapshot) are typed on a
        // second thread while the other kinds are typed on this one.
        let mut by_kind: HashMap<&str, Vec<&metakube_shared::KubeObject>> = HashMap::default();
        for o in &snap.objects {
            by_kind.entry(o.kind()).or_default().push(o);
        }
        let by_kind = &by_kind;
        let mut n = 0;
        let before_pods = typed(b.pods);
        let (pods, pod_gaps, pods_reused) = std::thread::scope(|scope| {
            let pods = scope.spawn(move || {
                let (mut g, mut n) = (Vec::new(), 0);
                (load(by_kind, "Pod", &mut g, before_pods, &mut n), g, n)
            });
            let gaps = &mut gaps;
            let n = &mut n;
            c.nodes = load(by_kind, "Node", gaps, typed(b.nodes), n);
            c.services = load(by_kind, "Service", gaps, typed(b.services), n);
            c.endpoints = load(by_kind, "Endpoints", gaps, typed(b.endpoints), n);
            c.deployments = load(by_kind, "Deployment", gaps, typed(b.deployments), n);
            c.replicasets = load(by_kind, "ReplicaSet", gaps, typed(b.replicasets), n);
            c.statefulsets = load(by_kind, "StatefulSet", gaps, typed(b.statefulsets), n);
            c.daemonsets = load(by_kind, "DaemonSet", gaps, typed(b.daemonsets), n);
            c.jobs = load(by_kind, "Job", gaps, typed(b.jobs), n);
            c.cronjobs = load(by_kind, "CronJob", gaps, typed(b.cronjobs), n);
            c.configmaps = load(by_kind, "ConfigMap", gaps, typed(b.configmaps), n);
            c.secrets = load(by_kind, "Secret", gaps, typed(b.secrets), n);
            c.serviceaccounts = load(by_kind, "ServiceAccount", gaps, typed(b.serviceaccounts), n);
            c.pvcs = load(by_kind, "PersistentVolumeClaim", gaps, typed(b.pvcs), n);
            c.pvs = load(by_kind, "PersistentVolume", gaps, typed(b.pvs), n);
            c.storageclasses = load(by_kind, "StorageClass", gaps, typed(b.storageclasses), n);
            c.netpols = load(by_kind, "NetworkPolicy", gaps, typed(b.netpols), n);
            c.ingresses = load(by_kind, "Ingress", gaps, typed(b.ingresses), n);
            c.quotas = load(by_kind, "ResourceQuota", gaps, typed(b.quotas), n);
            c.limitranges = load(by_kind, "LimitRange", gaps, typed(b.limitranges), n);
            c.hpas = load(by_kind, "HorizontalPodAutoscaler", gaps, typed(b.hpas), n);
            c.events = load(by_kind, "Event", gaps, typed(b.events), n);
            pods.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
        });
        n += pods_reused;
        c.pods = pods;
        // Gaps in the order the kinds are listed: the snapshot's, pods', then the rest.
        let rest = gaps.split_off(snap.meta.gaps.len());
        gaps.extend(pod_gaps);
        gaps.extend(rest);
        c.logs = snap.logs.clone();
        let mut kinds: Vec<String> = by_kind.keys().map(|k| k.to_string()).collect();
        kinds.sort();
        c.collected_kinds = kinds;
        c.gaps = gaps;
        c.build_index();
        (c, n)
    }

    /// Whether any object of this kind was collected.
    pub fn has_kind(&self, kind: &str) -> bool {
        self.collected_kinds.iter().any(|k| k == kind)
    }

    /// Whether the pods of a namespace were read: a missing or unreadable pods list (a gap)
    /// means "no pods" proves nothing.
    pub fn pods_read(&self, ns: &str) -> bool {
        self.has_kind("Pod")
            && !self.gaps.iter().any(|g| {
                g.namespace.as_deref() == Some(ns)
                    && (g.what.ends_with("pods.json") || g.what == "pods")
            })
    }

    /// An object's position in its kind's list.
    pub fn position(&self, r: &ObjectRef) -> Option<usize> {
        self.index.get(r).copied()
    }

    /// A pod by namespace and name.
    pub fn pod(&self, ns: &str, name: &str) -> Option<&Obj<Pod>> {
        let &i = self.index.get(&ObjectRef::new("Pod", ns, name))?;
        self.pods.get(i)
    }

    /// A node by name.
    pub fn node(&self, name: &str) -> Option<&Obj<Node>> {
        let &i = self.index.get(&ObjectRef::cluster("Node", name))?;
        self.nodes.get(i)
    }

    /// A Service by namespace and name.
    pub fn service(&self, ns: &str, name: &str) -> Option<&Obj<Service>> {
        let &i = self.index.get(&ObjectRef::new("Service", ns, name))?;
        self.services.get(i)
    }

    /// Resolves a host named in configuration or a log line to a Service: by ClusterIP, by
    /// `name`, `name.ns`, `name.ns.svc[.cluster.local]`.
    pub fn resolve_service(&self, host: &str, from_ns: &str) -> Option<ObjectRef> {
        if host.parse::<std::net::IpAddr>().is_ok() {
            return self
                .services
                .iter()
                .find(|s| s.o.spec.as_ref().and_then(|sp| sp.cluster_ip.as_deref()) == Some(host))
                .map(|s| s.r.clone());
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let labels: Vec<&str> = host.split('.').collect();
        let name = labels.first()?;
        let ns = match labels.get(1) {
            Some(ns) if labels.len() == 2 || labels.get(2) == Some(&"svc") => *ns,
            Some(_) => return None, // an external FQDN
            None => from_ns,
        };
        self.service(ns, name).map(|s| s.r.clone())
    }

    /// The one Service of a namespace whose name, without punctuation, equals or ends with
    /// `token` (`orderservice` → `ts-order-service`): how API paths name their service.
    pub fn service_named_like(&self, token: &str, ns: &str) -> Option<ObjectRef> {
        let norm = |s: &str| -> String {
            s.chars()
                .filter(char::is_ascii_alphanumeric)
                .map(|c| c.to_ascii_lowercase())
                .collect()
        };
        let t = norm(token);
        if t.len() < 6 {
            return None;
        }
        let mut hits = self
            .services
            .iter()
            .filter(|s| s.r.namespace.as_deref() == Some(ns))
            .filter(|s| norm(&s.r.name).ends_with(&t));
        let first = hits.next()?;
        hits.next().is_none().then(|| first.r.clone())
    }

    /// The Endpoints of a Service.
    pub fn endpoints_of(&self, svc: &ObjectRef) -> Option<&Obj<Endpoints>> {
        let r = ObjectRef {
            kind: "Endpoints".into(),
            namespace: svc.namespace.clone(),
            name: svc.name.clone(),
        };
        let &i = self.index.get(&r)?;
        self.endpoints.get(i)
    }

    /// A PVC by namespace and name.
    pub fn pvc(&self, ns: &str, name: &str) -> Option<&Obj<PersistentVolumeClaim>> {
        let &i = self
            .index
            .get(&ObjectRef::new("PersistentVolumeClaim", ns, name))?;
        self.pvcs.get(i)
    }

    /// A ConfigMap by namespace and name.
    pub fn configmap(&self, ns: &str, name: &str) -> Option<&Obj<ConfigMap>> {
        let &i = self.index.get(&ObjectRef::new("ConfigMap", ns, name))?;
        self.configmaps.get(i)
    }

    /// A Secret by namespace and name.
    pub fn secret(&self, ns: &str, name: &str) -> Option<&Obj<Secret>> {
        self.secrets
            .iter()
            .find(|p| p.r.name == name && p.r.namespace.as_deref() == Some(ns))
    }

    /// Events about one object, newest last.
    pub fn events_for<'a>(&'a self, r: &'a ObjectRef) -> impl Iterator<Item = &'a Obj<Event>> + 'a {
        let key = (r.kind.clone(), r.namespace.clone(), r.name.clone());
        let hits = self
            .events_by_object
            .get(&key)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        hits.iter().map(move |&i| &self.events[i])
    }

    /// Log tails of one pod's container (current and previous runs).
    pub fn logs_of<'a>(
        &'a self,
        ns: &'a str,
        pod: &'a str,
    ) -> impl Iterator<Item = &'a ContainerLog> + 'a {
        self.logs
            .iter()
            .filter(move |l| l.namespace == ns && l.pod == pod)
    }

    /// The controller owner of an object, resolved to the object it names, if collected.
    pub fn owner_of(&self, meta: &ObjectMeta) -> Option<ObjectRef> {
        let ns = meta.namespace.clone()?;
        controller_ref(meta).map(|o| ObjectRef::new(&o.kind, ns, &o.name))
    }

    /// The top of an object's owner chain (Pod → ReplicaSet → Deployment), the object itself
    /// when it has no owner. At most four steps.
    pub fn workload_of(&self, r: &ObjectRef) -> ObjectRef {
        let mut cur = r.clone();
        for _ in 0..4 {
            let meta = match self.meta_of(&cur) {
                Some(m) => m,
                None => break,
            };
            match self.owner_of(meta) {
                Some(o) => cur = o,
                None => break,
            }
        }
        cur
    }

    /// Every typed object but events, with its metadata, kind by kind in a fixed order (the
    /// objects a graph has a node for).
    pub fn objects(&self) -> Vec<(&ObjectRef, &ObjectMeta)> {
        let mut out = Vec::with_capacity(self.index.len());
        macro_rules! all {
            ($($v:ident),*) => { $( out.extend(self.$v.iter().map(|o| (&o.r, &o.o.metadata))); )* };
        }
        all!(
            pods,
            nodes,
            services,
            endpoints,
            deployments,
            replicasets,
            statefulsets,
            daemonsets,
            jobs,
            cronjobs,
            configmaps,
            secrets,
            serviceaccounts,
            pvcs,
            pvs,
            storageclasses,
            netpols,
            ingresses,
            quotas,
            limitranges,
            hpas
        );
        out
    }

    /// The metadata of a collected object.
    pub fn meta_of(&self, r: &ObjectRef) -> Option<&ObjectMeta> {
        let &i = self.index.get(r)?;
        Some(match r.kind.as_str() {
            "Pod" => &self.pods[i].o.metadata,
            "ReplicaSet" => &self.replicasets[i].o.metadata,
            "Deployment" => &self.deployments[i].o.metadata,
            "StatefulSet" => &self.statefulsets[i].o.metadata,
            "DaemonSet" => &self.daemonsets[i].o.metadata,
            "Job" => &self.jobs[i].o.metadata,
            "CronJob" => &self.cronjobs[i].o.metadata,
            "Service" => &self.services[i].o.metadata,
            "Node" => &self.nodes[i].o.metadata,
            "PersistentVolumeClaim" => &self.pvcs[i].o.metadata,
            "ConfigMap" => &self.configmaps[i].o.metadata,
            "Ingress" => &self.ingresses[i].o.metadata,
            "NetworkPolicy" => &self.netpols[i].o.metadata,
            _ => return None,
        })
    }

    /// The pod template of a workload (or a bare Pod's spec) and the JSON pointer of that
    /// spec, for patches.
    pub fn template_of(&self, w: &ObjectRef) -> Option<(&PodSpec, &'static str)> {
        let &i = self.index.get(w)?;
        fn from<'a>(
            t: Option<&'a PodTemplateSpec>,
            at: &'static str,
        ) -> Option<(&'a PodSpec, &'static str)> {
            t?.spec.as_ref().map(|s| (s, at))
        }
        const T: &str = "/spec/template/spec";
        match w.kind.as_str() {
            "Deployment" => from(self.deployments[i].o.spec.as_ref().map(|s| &s.template), T),
            "StatefulSet" => from(self.statefulsets[i].o.spec.as_ref().map(|s| &s.template), T),
            "DaemonSet" => from(self.daemonsets[i].o.spec.as_ref().map(|s| &s.template), T),
            "ReplicaSet" => from(
                self.replicasets[i]
                    .o
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.as_ref()),
                T,
            ),
            "Job" => from(self.jobs[i].o.spec.as_ref().map(|s| &s.template), T),
            "CronJob" => from(
                self.cronjobs[i]
                    .o
                    .spec
                    .as_ref()
                    .and_then(|s| s.job_template.spec.as_ref())
                    .map(|s| &s.template),
                "/spec/jobTemplate/spec/template/spec",
            ),
            "Pod" => self.pods[i].o.spec.as_ref().map(|s| (s, "/spec")),
            _ => None,
        }
    }

    /// The Deployments and StatefulSets of a namespace: each one's reference, metadata, pod
    /// template labels and the replicas it asks for.
    pub fn templated_workloads<'a>(
        &'a self,
        ns: &'a str,
    ) -> impl Iterator<Item = TemplatedWorkload<'a>> + 'a {
        let deployments = self.deployments.iter().map(|d| {
            let spec = d.o.spec.as_ref();
            (
                &d.r,
                &d.o.metadata,
                spec.and_then(|s| s.template.metadata.as_ref()?.labels.as_ref()),
                spec.and_then(|s| s.replicas),
            )
        });
        let statefulsets = self.statefulsets.iter().map(|d| {
            let spec = d.o.spec.as_ref();
            (
                &d.r,
                &d.o.metadata,
                spec.and_then(|s| s.template.metadata.as_ref()?.labels.as_ref()),
                spec.and_then(|s| s.replicas),
            )
        });
        deployments
            .chain(statefulsets)
            .filter(move |(r, ..)| r.namespace.as_deref() == Some(ns))
    }

    /// The workloads with a pod template (Deployments, StatefulSets, DaemonSets), in that order.
    pub fn workload_refs(&self) -> impl Iterator<Item = &ObjectRef> {
        self.deployments
            .iter()
            .map(|o| &o.r)
            .chain(self.statefulsets.iter().map(|o| &o.r))
            .chain(self.daemonsets.iter().map(|o| &o.r))
    }

    /// The labels of a workload's pod template.
    pub fn template_labels(
        &self,
        w: &ObjectRef,
    ) -> Option<&std::collections::BTreeMap<String, String>> {
        let &i = self.index.get(w)?;
        let meta = match w.kind.as_str() {
            "Deployment" => self.deployments[i]
                .o
                .spec
                .as_ref()?
                .template
                .metadata
                .as_ref(),
            "StatefulSet" => self.statefulsets[i]
                .o
                .spec
                .as_ref()?
                .template
                .metadata
                .as_ref(),
            "DaemonSet" => self.daemonsets[i]
                .o
                .spec
                .as_ref()?
                .template
                .metadata
                .as_ref(),
            _ => None,
        }?;
        meta.labels.as_ref()
    }

    /// Replaces one object with a new version of it (a patched copy), typed again.
    pub fn replace(&mut self, o: &metakube_shared::KubeObject) -> Result<(), String> {
        fn put<T: DeserializeOwned>(
            v: &mut [Obj<T>],
            i: usize,
            o: &metakube_shared::KubeObject,
        ) -> Result<(), String> {
            v[i].o = o.typed::<T>().map_err(|e| e.to_string())?;
            Ok(())
        }
        let r = o.object_ref();
        let &i = self
            .index
            .get(&r)
            .ok_or_else(|| format!("{r} is not in the snapshot"))?;
        match r.kind.as_str() {
            "Pod" => put(&mut self.pods, i, o),
            "ReplicaSet" => put(&mut self.replicasets, i, o),
            "Deployment" => put(&mut self.deployments, i, o),
            "StatefulSet" => put(&mut self.statefulsets, i, o),
            "DaemonSet" => put(&mut self.daemonsets, i, o),
            "Job" => put(&mut self.jobs, i, o),
            "CronJob" => put(&mut self.cronjobs, i, o),
            "Service" => put(&mut self.services, i, o),
            "Node" => put(&mut self.nodes, i, o),
            "PersistentVolumeClaim" => put(&mut self.pvcs, i, o),
            "ConfigMap" => put(&mut self.configmaps, i, o),
            "Ingress" => put(&mut self.ingresses, i, o),
            "NetworkPolicy" => put(&mut self.netpols, i, o),
            "HorizontalPodAutoscaler" => put(&mut self.hpas, i, o),
            "ResourceQuota" => put(&mut self.quotas, i, o),
            k => Err(format!("metakube does not patch {k}")),
        }?;
        if matches!(r.kind.as_str(), "Pod" | "Service") {
            self.build_label_index();
        }
        Ok(())
    }

    fn build_index(&mut self) {
        fn add<T>(index: &mut HashMap<ObjectRef, usize>, v: &[Obj<T>]) {
            for (i, o) in v.iter().enumerate() {
                index.insert(o.r.clone(), i);
            }
        }
        let mut index = HashMap::default();
        add(&mut index, &self.pods);
        add(&mut index, &self.replicasets);
        add(&mut index, &self.deployments);
        add(&mut index, &self.statefulsets);
        add(&mut index, &self.daemonsets);
        add(&mut index, &self.jobs);
        add(&mut index, &self.cronjobs);
        add(&mut index, &self.services);
        add(&mut index, &self.endpoints);
        add(&mut index, &self.nodes);
        add(&mut index, &self.pvcs);
        add(&mut index, &self.configmaps);
        add(&mut index, &self.ingresses);
        add(&mut index, &self.netpols);
        add(&mut index, &self.hpas);
        add(&mut index, &self.quotas);
        self.index = index;
        let mut by = HashMap::<(String, Option<String>, String), Vec<usize>>::default();
        for (i, e) in self.events.iter().enumerate() {
            let io = &e.o.involved_object;
            let (Some(kind), Some(name)) = (io.kind.clone(), io.name.clone()) else {
                continue;
            };
            // Cluster-scoped objects (Nodes) are looked up without a namespace.
            let ns = if KindInfo::lookup(&kind).is_some_and(|k| !k.namespaced) {
                None
            } else {
                io.namespace.clone()
            };
            by.entry((kind, ns, name)).or_default().push(i);
        }
        self.events_by_object = by;
        self.build_label_index();
    }

    /// The selector indexes; rebuilt when a patched Pod or Service replaces the original.
    fn build_label_index(&mut self) {
        self.pods_by_label = index_by_pairs(
            self.pods
                .iter()
                .map(|p| (&p.r, p.o.metadata.labels.as_ref())),
        );
        self.services_by_selector = index_by_pairs(
            self.services
                .iter()
                .map(|s| (&s.r, s.o.spec.as_ref().and_then(|sp| sp.selector.as_ref()))),
        );
        let mut pods_by_controller = HashMap::<ObjectRef, Vec<usize>>::default();
        for (i, p) in self.pods.iter().enumerate() {
            if let Some(o) = self.owner_of(&p.o.metadata) {
                pods_by_controller.entry(o).or_default().push(i);
            }
        }
        self.pods_by_controller = pods_by_controller;
    }

    /// The pods whose controller (an `ownerReferences` entry) is this object, in snapshot order.
    pub fn pods_controlled_by<'a>(
        &'a self,
        r: &ObjectRef,
    ) -> impl Iterator<Item = &'a Obj<Pod>> + 'a {
        self.pods_by_controller
            .get(r)
            .into_iter()
            .flatten()
            .map(|&i| &self.pods[i])
    }

    /// The pods of `ns` an equality selector (a Service's `spec.selector`) selects, in snapshot
    /// order. An empty selector selects nothing, as for a Service.
    pub fn pods_selected_by(
        &self,
        ns: &str,
        selector: &std::collections::BTreeMap<String, String>,
    ) -> Vec<&Obj<Pod>> {
        let key = |(k, v): (&String, &String)| (ns.to_string(), k.clone(), v.clone());
        let Some(shortest) = selector
            .iter()
            .map(|kv| {
                self.pods_by_label
                    .get(&key(kv))
                    .map_or(&[][..], Vec::as_slice)
            })
            .min_by_key(|l| l.len())
        else {
            return Vec::new();
        };
        shortest
            .iter()
            .map(|&i| &self.pods[i])
            .filter(|p| selector_matches(selector, p.o.metadata.labels.as_ref()))
            .collect()
    }

    /// The Services of `ns` whose selector selects this label set, in snapshot order.
    pub fn services_selecting(
        &self,
        ns: &str,
        labels: Option<&std::collections::BTreeMap<String, String>>,
    ) -> Vec<&Obj<Service>> {
        let mut candidates: Vec<usize> = labels
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| {
                self.services_by_selector
                    .get(&(ns.to_string(), k.clone(), v.clone()))
            })
            .flatten()
            .copied()
            .collect();
        candidates.sort_unstable();
        candidates.dedup();
        candidates
            .into_iter()
            .map(|i| &self.services[i])
            .filter(|s| {
                s.o.spec
                    .as_ref()
                    .and_then(|sp| sp.selector.as_ref())
                    .is_some_and(|sel| selector_matches(sel, labels))
            })
            .collect()
    }

    /// Whether a referenced object exists in the snapshot.
    pub fn exists(&self, r: &ObjectRef) -> bool {
        match r.kind.as_str() {
            "Secret" => self.secrets.iter().any(|o| o.r == *r),
            "PersistentVolume" => self.pvs.iter().any(|o| o.r.name == r.name),
            "StorageClass" => self.storageclasses.iter().any(|o| o.r.name == r.name),
            "ServiceAccount" => self.serviceaccounts.iter().any(|o| o.r == *r),
            _ => self.meta_of(r).is_some(),
        }
    }

    /// Pods owned (directly or through a ReplicaSet) by a workload, or the pod itself.
    pub fn pods_of(&self, workload: &ObjectRef) -> Vec<&Obj<Pod>> {
        self.pods
            .iter()
            .filter(|p| p.r == *workload || self.owner_chain(&p.r).contains(workload))
            .collect()
    }

    /// The owners of an object, nearest first.
    pub fn owner_chain(&self, r: &ObjectRef) -> Vec<ObjectRef> {
        let mut out = Vec::new();
        let mut cur = r.clone();
        for _ in 0..4 {
            let Some(meta) = self.meta_of(&cur) else {
                break;
            };
            let Some(o) = self.owner_of(meta) else { break };
            out.push(o.clone());
            cur = o;
        }
        out
    }
}

/// A workload as [`Cluster::templated_workloads`] lists it: reference, metadata, pod template
/// labels, replicas.
pub type TemplatedWorkload<'a> = (
    &'a ObjectRef,
    &'a ObjectMeta,
    Option<&'a std::collections::BTreeMap<String, String>>,
    Option<i32>,
);

/// The owner reference marked `controller: true`, or the first one.
pub fn controller_ref(meta: &ObjectMeta) -> Option<&OwnerReference> {
    let owners = meta.owner_references.as_ref()?;
    owners
        .iter()
        .find(|o| o.controller == Some(true))
        .or_else(|| owners.first())
}

/// Whether a label selector (`matchLabels` form) selects a label set. An empty selector
/// selects nothing here, as a Service's empty selector does.
pub fn selector_matches(
    selector: &std::collections::BTreeMap<String, String>,
    labels: Option<&std::collections::BTreeMap<String, String>>,
) -> bool {
    if selector.is_empty() {
        return false;
    }
    let Some(labels) = labels else { return false };
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Whether a full `LabelSelector` (matchLabels + matchExpressions) selects a label set.
/// An empty `LabelSelector` selects everything, as in NetworkPolicy `podSelector: {}`.
pub fn label_selector_matches(
    sel: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
    labels: Option<&std::collections::BTreeMap<String, String>>,
) -> bool {
    let empty = std::collections::BTreeMap::new();
    let labels = labels.unwrap_or(&empty);
    if let Some(ml) = &sel.match_labels {
        if !ml.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            return false;
        }
    }
    for e in sel.match_expressions.iter().flatten() {
        let vals = e.values.clone().unwrap_or_default();
        let ok = match e.operator.as_str() {
            "In" => labels.get(&e.key).is_some_and(|v| vals.contains(v)),
            "NotIn" => labels.get(&e.key).is_none_or(|v| !vals.contains(v)),
            "Exists" => labels.contains_key(&e.key),
            "DoesNotExist" => !labels.contains_key(&e.key),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// Parses a Kubernetes quantity into a number of base units (bytes, cores).
pub fn parse_quantity(q: &str) -> Option<f64> {
    let q = q.trim();
    let idx = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(q.len());
    let (num, suffix) = q.split_at(idx);
    let n: f64 = num.parse().ok()?;
    let mult = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0f64.powi(4),
        s if s.starts_with('e') || s.starts_with('E') => 10f64.powi(s[1..].parse().ok()?),
        _ => return None,
    };
    Some(n * mult)
}

/// Formats bytes as a Kubernetes quantity in Mi (rounded up).
pub fn format_mebibytes(bytes: f64) -> String {
    format!("{}Mi", (bytes / (1024.0 * 1024.0)).ceil() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse() {
        assert_eq!(parse_quantity("128Mi"), Some(128.0 * 1024.0 * 1024.0));
        assert_eq!(parse_quantity("900m"), Some(0.9));
        assert_eq!(parse_quantity("2"), Some(2.0));
        assert_eq!(parse_quantity("1G"), Some(1e9));
        assert_eq!(parse_quantity("1e3"), Some(1000.0));
        assert_eq!(parse_quantity("x"), None);
        assert_eq!(format_mebibytes(200.0 * 1024.0 * 1024.0 + 1.0), "201Mi");
    }
}
