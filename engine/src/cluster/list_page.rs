//! One page of a list, read item by item: a page of five hundred objects
//! parsed whole would hold all of them at once, at about ten times their
//! JSON in memory, while its reader keeps a fraction of each.

use std::fmt;

use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// Hands each item of the list page `text` to `each` as it is parsed, and
/// returns the token that reads the next page, if there is one.
pub(super) fn read_page(
    text: &str,
    each: &mut dyn FnMut(Value),
) -> Result<Option<String>, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let next = Page { each }.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(next.filter(|token| !token.is_empty()))
}

/// Of a list page's metadata, what reads the next page.
#[derive(Default, Deserialize)]
struct PageMeta {
    #[serde(rename = "continue", default)]
    continue_: Option<String>,
}

/// A page: its metadata read whole, its items handed on one by one.
struct Page<'f> {
    each: &'f mut dyn FnMut(Value),
}

impl<'de> DeserializeSeed<'de> for Page<'_> {
    type Value = Option<String>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Page<'_> {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let each = self.each;
        let mut next = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "metadata" => next = map.next_value::<PageMeta>()?.continue_,
                "items" => map.next_value_seed(Items { each: &mut *each })?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(next)
    }
}

/// A page's items, each handed on as soon as it is parsed.
struct Items<'f> {
    each: &'f mut dyn FnMut(Value),
}

impl<'de> DeserializeSeed<'de> for Items<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        // `items` is null in an empty list from some servers.
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for Items<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of objects")
    }

    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<(), A::Error> {
        while let Some(item) = items.next_element::<Value>()? {
            (self.each)(item);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read(text: &str) -> Result<(Vec<Value>, Option<String>), serde_json::Error> {
        let mut items = Vec::new();
        let next = read_page(text, &mut |item| items.push(item))?;
        Ok((items, next))
    }

    #[test]
    fn items_are_handed_on_in_order_with_the_next_page_token() {
        let text = json!({
            "kind": "ConfigMapList", "apiVersion": "v1",
            "metadata": {"resourceVersion": "9", "continue": "abc"},
            "items": [{"metadata": {"name": "a"}}, {"metadata": {"name": "b"}}],
        })
        .to_string();
        let (items, next) = read(&text).unwrap();
        let names: Vec<&Value> = items.iter().map(|i| &i["metadata"]["name"]).collect();
        assert_eq!(names, [&json!("a"), &json!("b")]);
        assert_eq!(next.as_deref(), Some("abc"));
    }

    #[test]
    fn the_last_page_has_no_token_whatever_the_key_order() {
        for text in [
            r#"{"items": [{"a": 1}], "metadata": {"continue": ""}}"#,
            r#"{"items": null, "metadata": {}}"#,
            r#"{"metadata": {"resourceVersion": "1"}}"#,
        ] {
            let (_, next) = read(text).unwrap();
            assert_eq!(next, None, "{text}");
        }
    }

    #[test]
    fn a_page_cut_short_is_an_error() {
        assert!(read(r#"{"items": [{"a": 1}, {"b""#).is_err());
        assert!(read(r#"{"items": [] } trailing"#).is_err());
        assert!(read(r#"[1, 2]"#).is_err());
    }
}
