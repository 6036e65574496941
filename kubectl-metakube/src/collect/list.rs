//! A Kubernetes List as JSON text — a dump's list file or a page of the API server's list
//! answer — read into the objects the plugin sends, without building value trees for them.

use std::fmt;
use std::marker::PhantomData;

use metakube_shared::snapshot::strip_secret_values;
use metakube_shared::{KindInfo, KubeObject};
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::error::Category;
use serde_json::value::RawValue;
use serde_json::Value;

/// A List as read: its kind, its items as the text they are in, and its metadata (where the
/// next page starts).
#[derive(Deserialize)]
pub struct ListText<'a> {
    #[serde(default)]
    kind: Option<Value>,
    #[serde(default, borrow)]
    items: Option<Items<'a>>,
    #[serde(default)]
    metadata: Option<Value>,
}

impl<'a> ListText<'a> {
    /// Reads a List's text; the error says why it is not one.
    pub fn read(text: &'a str) -> Result<ListText<'a>, String> {
        serde_json::from_str(text).map_err(|e| match e.classify() {
            Category::Data => format!("not a Kubernetes List ({e})"),
            _ => format!("not valid JSON ({e}); the file may be truncated"),
        })
    }

    /// The list's own kind (`PodList`, `List`), when it says one.
    pub fn kind(&self) -> Option<&str> {
        self.kind.as_ref().and_then(Value::as_str)
    }

    /// Whether it has no `items` at all, or `"items": null` (how Go writes an empty list's nil
    /// slice).
    pub fn lacks_items(&self) -> bool {
        self.items.is_none()
    }

    /// Its items, each the text it is in the list (taken: a second call finds none).
    pub fn items(&mut self) -> Result<Vec<&'a RawValue>, String> {
        match self.items.take() {
            Some(Items::Array(items)) => Ok(items),
            _ => Err("not a Kubernetes List (no \"items\" array)".to_string()),
        }
    }

    /// The continue token of a list page, when more pages follow (`limit`/`continue`).
    pub fn next_page(&self) -> Option<String> {
        continue_token(self.metadata.as_ref()?)
    }
}

/// The continue token of a list answer's metadata, if more pages follow.
pub fn continue_token(metadata: &Value) -> Option<String> {
    metadata
        .get("continue")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

/// A List's `items`: an array's elements as the text they are in the list (read in the same
/// pass as the list), or something that is not an array.
enum Items<'a> {
    Array(Vec<&'a RawValue>),
    NotAnArray,
}

impl<'de: 'a, 'a> Deserialize<'de> for Items<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Items<'a>, D::Error> {
        d.deserialize_any(ItemsVisitor(PhantomData))
    }
}

struct ItemsVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for ItemsVisitor<'a> {
    type Value = Items<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a List's items")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Items<'a>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element::<&'de RawValue>()? {
            items.push(item);
        }
        Ok(Items::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Items<'a>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Items::NotAnArray)
    }

    fn visit_str<E>(self, _: &str) -> Result<Items<'a>, E> {
        Ok(Items::NotAnArray)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Items<'a>, E> {
        Ok(Items::NotAnArray)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Items<'a>, E> {
        Ok(Items::NotAnArray)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Items<'a>, E> {
        Ok(Items::NotAnArray)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Items<'a>, E> {
        Ok(Items::NotAnArray)
    }

    fn visit_unit<E>(self) -> Result<Items<'a>, E> {
        Ok(Items::NotAnArray)
    }
}

/// One item of a List of `info`'s kind as the plugin sends it: its compact text with kind and
/// apiVersion filled in and managedFields left out ([`KubeObject::from_list_item_json`]). An
/// object with something left to remove — a Secret's values, a Node's image list, managedFields
/// written with an escaped key — is edited as a value ([`strip_noise`]).
pub fn object_of_item(item: &RawValue, info: &KindInfo) -> Result<KubeObject, String> {
    let mut o = KubeObject::from_list_item_json(item, info)
        .map_err(|e| format!("a {} item is not valid JSON ({e})", info.kind))?;
    // By the list's kind and the item's own: a generic List may hold Secrets among other
    // kinds, and an item of secrets.json is a Secret whatever its kind field says.
    if info.kind == "Secret" || o.kind() == "Secret" {
        strip_secret_values(o.value_mut());
    }
    if o.has_managed_fields() || o.kind() == "Node" {
        strip_noise(o.value_mut());
    }
    Ok(o)
}

/// Drops what never helps a diagnosis and only costs bytes: managedFields, node image lists.
pub fn strip_noise(o: &mut Value) {
    if let Some(m) = o.pointer_mut("/metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    }
    if o.get("kind").and_then(Value::as_str) == Some("Node") {
        if let Some(s) = o.pointer_mut("/status").and_then(Value::as_object_mut) {
            s.remove("images");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_says_where_the_next_starts() {
        let page = r#"{"kind": "PodList", "apiVersion": "v1",
            "metadata": {"resourceVersion": "9", "continue": "eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ"},
            "items": [{"metadata": {"name": "a", "managedFields": [{"manager": "kubelet"}]}}]}"#;
        let mut l = ListText::read(page).unwrap();
        assert_eq!(l.kind(), Some("PodList"));
        assert_eq!(
            l.next_page().as_deref(),
            Some("eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ")
        );
        let items = l.items().unwrap();
        let o = object_of_item(items[0], KindInfo::lookup("Pod").unwrap()).unwrap();
        assert!(o.json().is_some(), "kept as text");
        assert!(!o.has_managed_fields());
        assert_eq!((o.kind(), o.name()), ("Pod", "a"));
        assert!(ListText::read(r#"{"items": null}"#).unwrap().lacks_items());
        assert!(ListText::read(r#"{"kind": "PodList"}"#)
            .unwrap()
            .lacks_items());
        assert!(!ListText::read(r#"{"items": {}}"#).unwrap().lacks_items());
        for last in [
            r#"{"metadata": {"continue": ""}, "items": []}"#,
            r#"{"metadata": {}, "items": []}"#,
            r#"{"items": []}"#,
        ] {
            assert_eq!(ListText::read(last).unwrap().next_page(), None, "{last}");
        }
    }
}
