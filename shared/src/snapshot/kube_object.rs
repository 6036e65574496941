//! One Kubernetes object as API JSON — kept as the bytes it arrived in until a field is read.
//!
//! A snapshot of a large namespace is tens of megabytes of JSON. Parsed into a
//! `serde_json::Value` tree it is ten times that in small allocations, built in a third of a
//! second and freed in as long again, only for most of it to be read once more into its
//! k8s-openapi type. So an object read from JSON keeps its bytes ([`RawValue`]) and the few
//! fields that name and relate it (kind, name, namespace, uid, resourceVersion, owners,
//! labels, a selector, a pod template's labels); the daemon types it
//! straight from the bytes ([`KubeObject::typed`]), and a `Value` is parsed only for an
//! object whose fields something reads ([`KubeObject::value`]). The plugin reads the items of
//! a dump's list files and of the API server's list pages the same way
//! ([`KubeObject::from_list_item_json`]: compact text, kind filled in, managedFields cut out)
//! and sends those bytes on as they are. An object built from a value (a watch event, a test's
//! fixture) or edited (a Secret's values blanked) stays a value.

use std::fmt;
use std::sync::OnceLock;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::object::{KindInfo, ObjectRef};

/// One Kubernetes object as API JSON, with `kind` and `apiVersion` set.
#[derive(Clone)]
pub struct KubeObject(Repr);

#[derive(Clone)]
enum Repr {
    /// Built from a value (collected, edited, or a test's fixture).
    Value(Value),
    /// Read from JSON: its bytes, what names it, and its value once a field was read.
    Raw(Box<Received>),
}

#[derive(Clone)]
struct Received {
    raw: Box<RawValue>,
    head: Head,
    value: OnceLock<Value>,
}

/// The fields that name an object, read from its bytes without building a tree.
#[derive(Clone, Default, Deserialize)]
struct Head {
    /// `None`: no `kind` key; `Some(None)`: `"kind": null`.
    #[serde(default, deserialize_with = "present_or_null")]
    kind: Option<Option<String>>,
    #[serde(default, rename = "apiVersion", deserialize_with = "present")]
    has_api_version: bool,
    #[serde(default)]
    metadata: Option<MetaHead>,
    #[serde(default)]
    spec: Option<SpecHead>,
}

/// What a workload or Service selects with, and the labels a workload gives its pods.
#[derive(Clone, Default, Deserialize)]
struct SpecHead {
    #[serde(default)]
    selector: Option<Value>,
    #[serde(default)]
    template: Option<TemplateHead>,
}

#[derive(Clone, Default, Deserialize)]
struct TemplateHead {
    #[serde(default)]
    metadata: Option<TemplateMetaHead>,
}

#[derive(Clone, Default, Deserialize)]
struct TemplateMetaHead {
    #[serde(default)]
    labels: Option<Value>,
}

#[derive(Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetaHead {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    uid: Option<String>,
    #[serde(default)]
    resource_version: Option<String>,
    #[serde(default)]
    owner_references: Option<Vec<OwnerHead>>,
    #[serde(default)]
    labels: Option<Value>,
    /// Where `managedFields`' value lies in the text the head was read from (offset, length).
    #[serde(default, rename = "managedFields", deserialize_with = "span")]
    managed_fields: Option<(usize, usize)>,
}

impl Head {
    /// The head of an object's JSON text, or `None` when the text is not an object whose
    /// naming fields are what the API writes.
    fn read(text: &str) -> Option<Head> {
        if !text.starts_with('{') {
            return None;
        }
        let mut head: Head = serde_json::from_str(text).ok()?;
        if let Some(m) = head.metadata.as_mut() {
            // `span` gave an address in `text`: make it an offset.
            m.managed_fields = m
                .managed_fields
                .and_then(|(at, len)| Some((at.checked_sub(text.as_ptr() as usize)?, len)));
        }
        Some(head)
    }
}

/// Where a value lies in the text being read: its address and length (the text is borrowed
/// from, never copied, by serde_json reading a `&str`).
fn span<'de, D: Deserializer<'de>>(d: D) -> Result<Option<(usize, usize)>, D::Error> {
    let raw = <&'de RawValue>::deserialize(d)?;
    Ok(Some((raw.get().as_ptr() as usize, raw.get().len())))
}

/// A key that is there, whatever its value (`null` included).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| true)
}

/// A key that is there, told apart from one that is not even when its value is `null`.
fn present_or_null<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Clone, Default, Deserialize)]
struct OwnerHead {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    controller: Option<bool>,
}

impl KubeObject {
    /// An object from its API JSON value.
    pub fn new(value: Value) -> KubeObject {
        KubeObject(Repr::Value(value))
    }

    /// Wraps a list item, filling in the kind and apiVersion that list items lack.
    pub fn from_list_item(mut item: Value, info: &KindInfo) -> KubeObject {
        if let Some(map) = item.as_object_mut() {
            map.entry("kind").or_insert_with(|| Value::from(info.kind));
            map.entry("apiVersion")
                .or_insert_with(|| Value::from(info.api_version));
        }
        KubeObject::new(item)
    }

    /// [`KubeObject::from_list_item`] for an item still in the JSON text of its list (a
    /// dump's `pods.json`): kept as bytes, no tree built. The bytes are made compact (the
    /// whitespace between tokens dropped: kubectl indents its lists) and `kind`/`apiVersion`
    /// are written in where the item lacks them. `metadata.managedFields` (the API server's
    /// record of which client set which field: a third of a live object's bytes, never read
    /// by a diagnosis) is left out. An item whose naming fields are odd is parsed whole, as
    /// when deserialising.
    pub fn from_list_item_json(
        item: &RawValue,
        info: &KindInfo,
    ) -> Result<KubeObject, serde_json::Error> {
        let mut text = compact(item.get());
        let Some(mut head) = Head::read(&text) else {
            return Ok(KubeObject::from_list_item(
                serde_json::from_str(&text)?,
                info,
            ));
        };
        if let Some(m) = head.metadata.as_mut() {
            if let Some((at, len)) = m.managed_fields {
                if cut_member(&mut text, "\"managedFields\":", at, at + len) {
                    m.managed_fields = None;
                }
            }
        }
        let mut fill = String::new();
        if head.kind.is_none() {
            fill = format!("\"kind\":{},", Value::from(info.kind));
            head.kind = Some(Some(info.kind.to_string()));
        }
        if !head.has_api_version {
            fill.push_str(&format!(
                "\"apiVersion\":{},",
                Value::from(info.api_version)
            ));
            head.has_api_version = true;
        }
        if !fill.is_empty() {
            if text[1..].starts_with('}') {
                fill.pop();
            }
            text.insert_str(1, &fill);
        }
        match RawValue::from_string(text) {
            Ok(raw) => Ok(KubeObject(Repr::Raw(Box::new(Received {
                raw,
                head,
                value: OnceLock::new(),
            })))),
            // Not reached (the text was JSON and stays JSON), but were it, the item as given.
            Err(_) => Ok(KubeObject::from_list_item(
                serde_json::from_str(item.get())?,
                info,
            )),
        }
    }

    /// The JSON text the object was read from, while it is kept as that (not built from a
    /// value, not edited).
    pub fn json(&self) -> Option<&str> {
        match &self.0 {
            Repr::Value(_) => None,
            Repr::Raw(r) => Some(r.raw.get()),
        }
    }

    /// Whether it carries `metadata.managedFields` (which the plugin drops before sending).
    pub fn has_managed_fields(&self) -> bool {
        match &self.0 {
            Repr::Value(v) => pointer(v, "/metadata/managedFields").is_some(),
            Repr::Raw(r) => r
                .head
                .metadata
                .as_ref()
                .is_some_and(|m| m.managed_fields.is_some()),
        }
    }

    /// The object as a JSON value (parsed from its bytes the first time it is asked for; a
    /// value that cannot be parsed again — it was validated on the way in — reads as null).
    pub fn value(&self) -> &Value {
        match &self.0 {
            Repr::Value(v) => v,
            Repr::Raw(r) => r
                .value
                .get_or_init(|| serde_json::from_str(r.raw.get()).unwrap_or(Value::Null)),
        }
    }

    /// Whether the object is held as a value tree (built from one, edited, or a field was
    /// read) rather than only as the bytes it arrived in.
    pub fn is_parsed(&self) -> bool {
        match &self.0 {
            Repr::Value(_) => true,
            Repr::Raw(r) => r.value.get().is_some(),
        }
    }

    /// The object as a JSON value to edit (its bytes, if it had any, are dropped).
    pub fn value_mut(&mut self) -> &mut Value {
        if let Repr::Raw(_) = self.0 {
            let v = std::mem::take(self).into_value();
            self.0 = Repr::Value(v);
        }
        match &mut self.0 {
            Repr::Value(v) => v,
            Repr::Raw(_) => unreachable!("made a value above"),
        }
    }

    /// The object as an owned JSON value.
    pub fn into_value(self) -> Value {
        match self.0 {
            Repr::Value(v) => v,
            Repr::Raw(r) => {
                let r = *r;
                match r.value.into_inner() {
                    Some(v) => v,
                    None => serde_json::from_str(r.raw.get()).unwrap_or(Value::Null),
                }
            }
        }
    }

    /// The object read into its typed form (a k8s-openapi struct): straight from its bytes
    /// when it has them, no value tree in between.
    pub fn typed<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        match &self.0 {
            Repr::Value(v) => T::deserialize(v),
            Repr::Raw(r) => serde_json::from_str(r.raw.get()),
        }
    }

    fn head_value(&self, pick: impl Fn(&Head) -> Option<&Value>, ptr: &str) -> Option<&Value> {
        match &self.0 {
            Repr::Value(v) => pointer(v, ptr),
            Repr::Raw(r) => pick(&r.head),
        }
    }

    /// `metadata.labels`.
    pub fn labels(&self) -> Option<&Value> {
        self.head_value(|h| h.metadata.as_ref()?.labels.as_ref(), "/metadata/labels")
    }

    /// `spec.selector`: a Service's label map, a workload's label selector.
    pub fn selector(&self) -> Option<&Value> {
        self.head_value(|h| h.spec.as_ref()?.selector.as_ref(), "/spec/selector")
    }

    /// `spec.template.metadata.labels`: the labels a workload gives its pods.
    pub fn template_labels(&self) -> Option<&Value> {
        self.head_value(
            |h| {
                h.spec
                    .as_ref()?
                    .template
                    .as_ref()?
                    .metadata
                    .as_ref()?
                    .labels
                    .as_ref()
            },
            "/spec/template/metadata/labels",
        )
    }

    fn head_str(&self, pick: impl Fn(&Head) -> Option<&String>, ptr: &str) -> Option<&str> {
        match &self.0 {
            Repr::Value(v) => pointer(v, ptr).and_then(Value::as_str),
            Repr::Raw(r) => pick(&r.head).map(String::as_str),
        }
    }

    /// The object's kind (empty when missing).
    pub fn kind(&self) -> &str {
        self.head_str(|h| h.kind.as_ref()?.as_ref(), "/kind")
            .unwrap_or("")
    }

    /// `metadata.name` (empty when missing).
    pub fn name(&self) -> &str {
        self.head_str(|h| h.metadata.as_ref()?.name.as_ref(), "/metadata/name")
            .unwrap_or("")
    }

    /// `metadata.namespace`, if any.
    pub fn namespace(&self) -> Option<&str> {
        self.head_str(
            |h| h.metadata.as_ref()?.namespace.as_ref(),
            "/metadata/namespace",
        )
    }

    /// `metadata.uid`, if any.
    pub fn uid(&self) -> Option<&str> {
        self.head_str(|h| h.metadata.as_ref()?.uid.as_ref(), "/metadata/uid")
    }

    /// `metadata.resourceVersion`, if any and not empty.
    pub fn resource_version(&self) -> Option<&str> {
        self.head_str(
            |h| h.metadata.as_ref()?.resource_version.as_ref(),
            "/metadata/resourceVersion",
        )
        .filter(|v| !v.is_empty())
    }

    /// The owner that controls this object (kind, name): the ownerReference marked
    /// `controller`, else the first one.
    pub fn controller(&self) -> Option<(&str, &str)> {
        match &self.0 {
            Repr::Value(v) => {
                let refs = pointer(v, "/metadata/ownerReferences")?.as_array()?;
                let c = refs
                    .iter()
                    .find(|x| x.get("controller").and_then(Value::as_bool) == Some(true))
                    .or_else(|| refs.first())?;
                Some((c.get("kind")?.as_str()?, c.get("name")?.as_str()?))
            }
            Repr::Raw(r) => {
                let refs = r.head.metadata.as_ref()?.owner_references.as_ref()?;
                let c = refs
                    .iter()
                    .find(|x| x.controller == Some(true))
                    .or_else(|| refs.first())?;
                Some((c.kind.as_deref()?, c.name.as_deref()?))
            }
        }
    }

    /// Whether any of its ownerReferences names `kind`/`name`, controller or not.
    pub fn owned_by(&self, kind: &str, name: &str) -> bool {
        match &self.0 {
            Repr::Value(v) => pointer(v, "/metadata/ownerReferences")
                .and_then(Value::as_array)
                .is_some_and(|refs| {
                    refs.iter().any(|x| {
                        x.get("kind").and_then(Value::as_str) == Some(kind)
                            && x.get("name").and_then(Value::as_str) == Some(name)
                    })
                }),
            Repr::Raw(r) => r
                .head
                .metadata
                .as_ref()
                .and_then(|m| m.owner_references.as_ref())
                .is_some_and(|refs| {
                    refs.iter()
                        .any(|x| x.kind.as_deref() == Some(kind) && x.name.as_deref() == Some(name))
                }),
        }
    }

    /// A reference to this object.
    pub fn object_ref(&self) -> ObjectRef {
        ObjectRef {
            kind: self.kind().to_string(),
            namespace: self.namespace().map(str::to_string),
            name: self.name().to_string(),
        }
    }

    /// Whether this object is the one `r` names (compared in place, nothing copied).
    pub fn is(&self, r: &ObjectRef) -> bool {
        self.name() == r.name && self.kind() == r.kind && self.namespace() == r.namespace.as_deref()
    }

    /// A reference to the object an API JSON value is (kind, `metadata.namespace`,
    /// `metadata.name`), without wrapping (or copying) it.
    pub fn ref_of(v: &Value) -> ObjectRef {
        let s = |ptr: &str| pointer(v, ptr).and_then(Value::as_str);
        ObjectRef {
            kind: s("/kind").unwrap_or("").to_string(),
            namespace: s("/metadata/namespace").map(str::to_string),
            name: s("/metadata/name").unwrap_or("").to_string(),
        }
    }

    /// A field by JSON pointer (`/spec/selector`).
    pub fn pointer(&self, ptr: &str) -> Option<&Value> {
        pointer(self.value(), ptr)
    }
}

impl Default for KubeObject {
    fn default() -> KubeObject {
        KubeObject::new(Value::Null)
    }
}

impl From<Value> for KubeObject {
    fn from(v: Value) -> KubeObject {
        KubeObject::new(v)
    }
}

impl PartialEq for KubeObject {
    fn eq(&self, other: &KubeObject) -> bool {
        self.value() == other.value()
    }
}

impl fmt::Debug for KubeObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("KubeObject").field(self.value()).finish()
    }
}

impl Serialize for KubeObject {
    /// As the bytes it was read from, when it is kept as them (serde_json writes them as they
    /// are; its `Value` serializer parses them), else as its value. A serializer outside
    /// serde_json would see serde_json's private raw-value struct: objects only travel and are
    /// stored as JSON.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Repr::Raw(r) => r.raw.serialize(s),
            Repr::Value(v) => v.serialize(s),
        }
    }
}

/// Removes from compact JSON text the object member whose value lies at `start..end` and whose
/// key is written `key` (`"managedFields":`) just before it, with the comma that set it apart;
/// `false`, the text unchanged, when the key is written otherwise (escaped).
fn cut_member(text: &mut String, key: &str, start: usize, end: usize) -> bool {
    let Some(k) = start
        .checked_sub(key.len())
        .filter(|&k| text.get(k..start) == Some(key))
    else {
        return false;
    };
    let range = if text.get(end..).is_some_and(|t| t.starts_with(',')) {
        k..end + 1
    } else if text[..k].ends_with(',') {
        k - 1..end
    } else {
        k..end
    };
    text.replace_range(range, "");
    true
}

/// `json` without the whitespace between its tokens (spaces, tabs, line breaks outside
/// strings). `json` is valid JSON (a [`RawValue`]'s text), so a `"` not escaped by a `\` is
/// where a string starts or ends, and no two tokens that whitespace kept apart (two numbers)
/// run together.
fn compact(json: &str) -> String {
    let bytes = json.as_bytes();
    // Room for the kind and apiVersion a list item is given.
    let mut out = String::with_capacity(json.len() + 96);
    let (mut i, mut start) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                // To the closing quote, over escapes (most of an object's bytes are strings).
                i += 1;
                loop {
                    let rest = bytes.get(i..).unwrap_or_default();
                    match memchr::memchr2(b'"', b'\\', rest) {
                        Some(j) if rest[j] == b'\\' => i += j + 2,
                        Some(j) => {
                            i += j + 1;
                            break;
                        }
                        None => {
                            i = bytes.len();
                            break;
                        }
                    }
                }
            }
            b' ' | b'\t' | b'\n' | b'\r' => {
                if start < i {
                    out.push_str(&json[start..i]);
                }
                i += 1;
                start = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(json.get(start..).unwrap_or_default());
    out
}

impl<'de> Deserialize<'de> for KubeObject {
    /// From JSON: the object's bytes and its naming fields; an object whose naming fields are
    /// not what the API writes (a number for a name, a key given twice, not an object at all) is
    /// parsed whole, so
    /// it reads exactly as a value would. Needs serde_json (or a `Value`) underneath.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<KubeObject, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        let head = Head::read(raw.get());
        Ok(match head {
            Some(head) => KubeObject(Repr::Raw(Box::new(Received {
                raw,
                head,
                value: OnceLock::new(),
            }))),
            None => {
                KubeObject::new(serde_json::from_str(raw.get()).map_err(serde::de::Error::custom)?)
            }
        })
    }
}

/// `v.pointer(ptr)` (RFC 6901), without `serde_json`'s two new strings per token: the
/// accessors above run for every object of a 20k-object snapshot many times over, and the
/// allocations were a fifth of the neighbourhood's time. Tokens are unescaped (`~1` → `/`,
/// `~0` → `~`) only when they hold a `~`.
pub fn pointer<'v>(v: &'v Value, ptr: &str) -> Option<&'v Value> {
    if ptr.is_empty() {
        return Some(v);
    }
    let rest = ptr.strip_prefix('/')?;
    rest.split('/').try_fold(v, |target, token| {
        let owned;
        let token = if token.contains('~') {
            owned = token.replace("~1", "/").replace("~0", "~");
            owned.as_str()
        } else {
            token
        };
        match target {
            Value::Object(map) => map.get(token),
            Value::Array(list) => array_index(token).and_then(|i| list.get(i)),
            _ => None,
        }
    })
}

/// An RFC 6901 array index: digits, no sign, no leading zero.
fn array_index(s: &str) -> Option<usize> {
    if s.starts_with('+') || (s.starts_with('0') && s.len() != 1) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A pod as `kubectl get pod -o json` prints it (trimmed), owned by a ReplicaSet.
    fn pod() -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "creationTimestamp": "2026-11-30T10:00:00Z",
                "generateName": "checkout-7d9f8b6c5d-",
                "labels": {"app": "checkout", "pod-template-hash": "7d9f8b6c5d"},
                "name": "checkout-7d9f8b6c5d-x2x4k",
                "namespace": "shop",
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "Node", "name": "not-the-controller", "uid": "1"},
                    {"apiVersion": "apps/v1", "blockOwnerDeletion": true, "controller": true,
                     "kind": "ReplicaSet", "name": "checkout-7d9f8b6c5d", "uid": "2"}
                ],
                "resourceVersion": "48211",
                "uid": "0b6b2c1e-5d7c-4a55-9d1a-0d6f2f1c9a10"
            },
            "spec": {
                "containers": [{"image": "shop/checkout:1.4.2", "name": "checkout",
                                "env": [{"name": "REDIS_HOST", "value": "redis.shop.svc"}]}],
                "nodeName": "worker-2"
            },
            "status": {
                "conditions": [{"lastTransitionTime": "2026-11-30T10:01:00Z", "status": "False", "type": "Ready"}],
                "phase": "Running"
            }
        })
    }

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_string()).expect("valid JSON")
    }

    fn read(v: &Value) -> KubeObject {
        serde_json::from_str(&v.to_string()).expect("valid JSON")
    }

    type Naming = (
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<(String, String)>,
        [Option<Value>; 3],
    );

    fn naming(o: &KubeObject) -> Naming {
        (
            o.kind().into(),
            o.name().into(),
            o.namespace().map(Into::into),
            o.uid().map(Into::into),
            o.resource_version().map(Into::into),
            o.controller().map(|(k, n)| (k.into(), n.into())),
            [o.labels(), o.selector(), o.template_labels()].map(|v| v.cloned()),
        )
    }

    #[test]
    fn read_from_json_it_names_itself_as_its_value_does_without_a_tree() {
        let v = pod();
        let o = read(&v);
        assert!(!o.is_parsed(), "naming fields are read from the bytes");
        assert_eq!(naming(&o), naming(&KubeObject::new(v.clone())));
        assert_eq!(
            o.controller(),
            Some(("ReplicaSet", "checkout-7d9f8b6c5d")),
            "the owner marked controller, not the first"
        );
        for x in [&o, &KubeObject::new(v.clone())] {
            assert!(
                x.owned_by("Node", "not-the-controller"),
                "any owner, controller or not"
            );
            assert!(x.owned_by("ReplicaSet", "checkout-7d9f8b6c5d"));
            assert!(!x.owned_by("ReplicaSet", "checkout"));
        }
        assert!(o.is(&ObjectRef::new("Pod", "shop", "checkout-7d9f8b6c5d-x2x4k")));
        assert_eq!(o.labels().unwrap()["app"], "checkout");
        assert!(!o.is_parsed());
        let deploy = json!({"kind": "Deployment", "metadata": {"name": "checkout", "namespace": "shop"},
            "spec": {"selector": {"matchLabels": {"app": "checkout"}},
                     "template": {"metadata": {"labels": {"app": "checkout", "tier": "web"}}}}});
        let d = read(&deploy);
        assert_eq!(naming(&d), naming(&KubeObject::new(deploy.clone())));
        assert_eq!(d.template_labels().unwrap()["tier"], "web");
        assert_eq!(d.selector().unwrap()["matchLabels"]["app"], "checkout");
        assert!(!d.is_parsed());
        // A typed read goes from the bytes too.
        #[derive(Deserialize, PartialEq, Debug)]
        struct Spec {
            #[serde(rename = "nodeName")]
            node_name: String,
        }
        #[derive(Deserialize, PartialEq, Debug)]
        struct Typed {
            spec: Spec,
        }
        let t: Typed = o.typed().unwrap();
        assert_eq!(t, KubeObject::new(v.clone()).typed::<Typed>().unwrap());
        assert_eq!(t.spec.node_name, "worker-2");
        assert!(!o.is_parsed());
        // A field read builds the value once; it equals the value the bytes hold.
        assert_eq!(
            o.pointer("/spec/containers/0/image"),
            Some(&json!("shop/checkout:1.4.2"))
        );
        assert!(o.is_parsed());
        assert_eq!(o.value(), &v);
        assert_eq!(o, KubeObject::new(v));
    }

    #[test]
    fn odd_naming_fields_read_as_a_value_would() {
        for v in [
            json!({"kind": "Pod", "metadata": {"name": 7, "namespace": "shop"}}),
            json!({"kind": ["Pod"], "metadata": "x"}),
            json!({"kind": "Pod", "metadata": {"name": "a", "ownerReferences": {"kind": "ReplicaSet"}}}),
            json!({"kind": "Pod", "metadata": {"name": null, "resourceVersion": ""}}),
            json!({"kind": "Service", "metadata": {"name": "s", "labels": 3}, "spec": {"selector": "app=x"}}),
            json!({"kind": "Deployment", "metadata": {"name": "d"}, "spec": {"template": []}}),
            json!({"metadata": {"name": "no-kind"}}),
            json!(["Pod", {"name": "a"}]),
            json!("Pod"),
            json!(null),
        ] {
            assert_eq!(
                naming(&read(&v)),
                naming(&KubeObject::new(v.clone())),
                "{v}"
            );
            assert_eq!(read(&v).value(), &v);
        }
        // A key given twice: the last one counts, as in a value.
        let twice = r#"{"kind": "Pod", "kind": "Service", "metadata": {"name": "a"}}"#;
        let o: KubeObject = serde_json::from_str(twice).unwrap();
        assert_eq!(o.kind(), "Service");
        assert_eq!(
            o.kind(),
            serde_json::from_str::<Value>(twice).unwrap()["kind"]
        );
    }

    #[test]
    fn bad_json_is_an_error_that_says_where() {
        let e = serde_json::from_str::<Vec<KubeObject>>(
            r#"[{"kind": "Pod", "metadata": {"name": "a"}"#,
        )
        .unwrap_err();
        assert!(e.is_eof(), "{e}");
        let e = serde_json::from_str::<Vec<KubeObject>>(r#"[{"kind": "Pod",, }]"#).unwrap_err();
        assert_eq!(e.line(), 1, "{e}");
        assert!(e.column() >= 16, "points at the second comma: {e}");
    }

    #[test]
    fn edits_and_round_trips_keep_the_object() {
        let v = pod();
        let mut o = read(&v);
        assert_eq!(
            serde_json::to_value(&o).unwrap(),
            v,
            "written back as it came"
        );
        o.value_mut()["spec"]["nodeName"] = json!("worker-3");
        assert_eq!(o.pointer("/spec/nodeName"), Some(&json!("worker-3")));
        assert_eq!(
            o.name(),
            "checkout-7d9f8b6c5d-x2x4k",
            "naming read from the edited value"
        );
        o.value_mut()["metadata"]["name"] = json!("renamed");
        assert_eq!(o.name(), "renamed");
        let back: KubeObject = serde_json::from_str(&serde_json::to_string(&o).unwrap()).unwrap();
        assert_eq!(back, o);
        assert_eq!(back.into_value()["spec"]["nodeName"], "worker-3");
        // Read from a value (not bytes) it is the same object.
        let from_value: KubeObject = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(naming(&from_value), naming(&KubeObject::new(v.clone())));
        assert_eq!(from_value.into_value(), v);
    }

    #[test]
    fn a_list_items_text_is_kept_compact_with_its_kind_filled_in() {
        let pod_info = KindInfo::lookup("Pod").unwrap();
        // An item as kubectl prints a list (indented), with strings that hold what `compact`
        // must leave alone: spaces, escaped quotes, a backslash before a quote, tabs.
        let mut item = pod();
        item.as_object_mut().unwrap().remove("kind");
        item.as_object_mut().unwrap().remove("apiVersion");
        item["spec"]["containers"][0]["args"] =
            json!(["-c", "echo \"a  b\"\t{ }", "C:\\dir\\", "x\\\" y", " "]);
        item["metadata"]["managedFields"] = json!([{"manager": "kubectl", "operation": "Update"}]);
        let text = serde_json::to_string_pretty(&item).unwrap();
        assert!(text.contains("\n    "));
        let o = KubeObject::from_list_item_json(&raw(&text), pod_info).unwrap();
        let mut from_value = KubeObject::from_list_item(item.clone(), pod_info);
        assert!(from_value.has_managed_fields());
        let fields = from_value.value_mut()["metadata"].as_object_mut().unwrap();
        fields.remove("managedFields");
        assert!(!o.is_parsed());
        assert_eq!(naming(&o), naming(&from_value));
        assert_eq!(
            (o.kind(), o.value()["apiVersion"].as_str()),
            ("Pod", Some("v1"))
        );
        assert!(!o.has_managed_fields(), "left out of the text");
        assert!(!KubeObject::new(json!({"metadata": {}})).has_managed_fields());
        let json = o.json().unwrap();
        assert!(
            json.starts_with(r#"{"kind":"Pod","apiVersion":"v1","#),
            "{json}"
        );
        assert!(json.len() < text.len() && !json.contains('\n') && !json.contains(": "));
        assert_eq!(
            o.value(),
            from_value.value(),
            "the same object, strings intact"
        );
        // Written as the bytes it holds; read back it is the same object.
        assert_eq!(serde_json::to_string(&o).unwrap(), json);
        assert_eq!(serde_json::to_value(&o).unwrap(), *from_value.value());
        let back: KubeObject = serde_json::from_str(json).unwrap();
        assert_eq!(naming(&back), naming(&o));
        assert!(!back.is_parsed());
    }

    #[test]
    fn a_list_items_own_kind_and_odd_items_read_as_from_a_value() {
        let info = KindInfo::lookup("ConfigMap").unwrap();
        for v in [
            json!({}),
            json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "keeps-its-kind"}}),
            json!({"kind": null, "metadata": {"name": "null-kind"}}),
            json!({"apiVersion": "v2", "metadata": {"name": "own-version"}}),
            json!({"metadata": {"name": 7}}),
            json!(["not", "an", "object"]),
            json!("text"),
        ] {
            let text = serde_json::to_string_pretty(&v).unwrap();
            let o = KubeObject::from_list_item_json(&raw(&text), info).unwrap();
            let expected = KubeObject::from_list_item(v.clone(), info);
            assert_eq!(naming(&o), naming(&expected), "{v}");
            assert_eq!(o.value(), expected.value(), "{v}");
        }
    }

    #[test]
    fn compact_text_is_what_serde_json_writes_compact() {
        for v in [
            pod(),
            json!({"a": "C:\\dir\\", "b": "q\"  \"z", "c": "\\\"", "d": ["héllo ✓", "\n\t\u{1}"],
                   "e": {"f": [1, -2.5, true, null, {}, []], "g": " { } [ ] , : "}}),
            json!("\\"),
            json!([]),
        ] {
            assert_eq!(
                compact(&serde_json::to_string_pretty(&v).unwrap()),
                v.to_string()
            );
            assert_eq!(compact(&v.to_string()), v.to_string());
        }
        assert_eq!(compact(" {\r\n\t\"a b\" :\t1 }\n"), r#"{"a b":1}"#);
    }

    #[test]
    fn managed_fields_are_cut_from_a_list_items_text_wherever_they_stand() {
        let info = KindInfo::lookup("Pod").unwrap();
        let mf = r#"[{"manager": "kubelet", "fieldsV1": {"f:status": {".": {}}}, "operation": "Update"}]"#;
        for meta in [
            format!(r#"{{"managedFields": {mf}}}"#),
            format!(r#"{{"managedFields": {mf}, "name": "a", "namespace": "n"}}"#),
            format!(r#"{{"name": "a", "managedFields": {mf}, "namespace": "n"}}"#),
            format!(r#"{{"name": "a", "namespace": "n", "managedFields": {mf}}}"#),
            // Not the key: a label of that name, and a note that quotes it, stay.
            format!(
                r#"{{"name": "a", "labels": {{"managedFields": "x"}}, "annotations": {{"n": "\"managedFields\": []"}}, "managedFields": {mf}}}"#
            ),
        ] {
            let text = format!(r#"{{"metadata": {meta}, "spec": {{"nodeName": "w"}}}}"#);
            let o = KubeObject::from_list_item_json(&raw(&text), info).unwrap();
            let mut want: Value = serde_json::from_str(&text).unwrap();
            want["metadata"]
                .as_object_mut()
                .unwrap()
                .remove("managedFields");
            want["kind"] = json!("Pod");
            want["apiVersion"] = json!("v1");
            assert_eq!(o.value(), &want, "{text}");
            assert!(!o.has_managed_fields());
            assert!(
                !o.json().unwrap().contains(r#""managedFields":["#),
                "{text}"
            );
        }
        // Written with an escaped key, it is left to the reader to drop (and said to be there).
        let text = r#"{"metadata": {"name": "a", "managed\u0046ields": []}}"#;
        let o = KubeObject::from_list_item_json(&raw(text), info).unwrap();
        assert!(o.has_managed_fields());
        assert_eq!(o.value()["metadata"]["managedFields"], json!([]));
        // An object received whole keeps them, and says so.
        let received: KubeObject = serde_json::from_str(
            r#"{"kind": "Pod", "metadata": {"name": "a", "managedFields": []}}"#,
        )
        .unwrap();
        assert!(received.has_managed_fields());
    }
}
