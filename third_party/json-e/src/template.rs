//! A template parsed once and rendered many times.
//!
//! `render` converts its template and parses every expression in it on each call; for a
//! template rendered again and again (the same `.taskcluster.yml` for every cron job, one
//! hook for every message of a batch) that is most of the work. `Template::new` does both
//! once: it keeps the converted template, and the parsed form of every expression it can
//! find in it, keyed by where that expression's text lies in the template.
//!
//! Rendering is unchanged: `_render` asks the context for a parsed expression before
//! parsing one, and an expression not found (one in a position the walk below does not
//! know, or one that did not parse) is parsed then, as `render` would, with the same
//! result or error at the same point.

use crate::builtins::BUILTINS;
use crate::fromnow::now;
use crate::interpreter::{parse_all, parse_partial, Context, Node};
use crate::op_props::{parse_by, parse_each};
use crate::value::Value;
use anyhow::Result;
use serde_json::Value as SerdeValue;
use std::convert::TryInto;
use yoke::{Yoke, Yokeable};

/// A JSON-e template, converted and parsed once, to render with many contexts.
pub struct Template {
    // The parsed expressions borrow their text from the converted template they came
    // from; `Yoke` keeps the two together without copying the text.
    parsed: Yoke<Parsed<'static>, Box<Value>>,
}

impl Template {
    /// Convert `template` and parse the expressions in it.
    pub fn new(template: &SerdeValue) -> Template {
        let value: Box<Value> = Box::new(template.into());
        Template {
            parsed: Yoke::attach_to_cart(value, |value: &Value| {
                let mut parsed = Parsed::default();
                parsed.walk(value);
                parsed.entries.sort_unstable_by_key(|e| (e.at, e.len));
                // `$$k` and `&k[1..]` share their expressions' text
                parsed.entries.dedup_by_key(|e| (e.at, e.len));
                parsed
            }),
        }
    }

    /// Render this template with `context`, exactly as `render(template, context)` would.
    pub fn render(&self, context: &SerdeValue) -> Result<SerdeValue> {
        let template: &Value = self.parsed.backing_cart();
        let context = Context::from_serde_value(context, Some(&BUILTINS))?;
        let mut context = context.child_with_parsed(self.parsed.get());
        if context.get("now").is_none() {
            context.insert("now", Value::String(now()));
        }
        crate::render::render_value(template, &context)?.try_into()
    }

    /// How many expressions were parsed ahead (for tests and diagnostics).
    pub fn parsed_expressions(&self) -> usize {
        self.parsed.get().entries.len()
    }
}

/// One parsed expression: the text at `at..at + len` parses to `node`, leaving
/// `remainder` characters unparsed (for an interpolation, where `}` and the rest of the
/// string follow); `whole` if it was parsed to the end (`parse_all`).
struct Entry<'t> {
    at: usize,
    len: usize,
    whole: bool,
    remainder: usize,
    node: Node<'t>,
}

#[derive(Default, Yokeable)]
pub(crate) struct Parsed<'t> {
    entries: Vec<Entry<'t>>,
}

/// The key of a piece of template text: its address and length. Both are stable for the
/// life of the `Template`, whose converted template is never changed; equal keys are the
/// same bytes, so a hit is the same parse. (Empty text never parses, so never collides.)
fn key(s: &str) -> (usize, usize) {
    (s.as_ptr() as usize, s.len())
}

impl<'t> Parsed<'t> {
    fn find(&self, text: &str, whole: bool) -> Option<&Entry<'t>> {
        let k = key(text);
        let i = self.entries.binary_search_by_key(&k, |e| (e.at, e.len)).ok()?;
        // An expression parsed whole and as an interpolation from the same text would
        // share a key; the walk never records both, but check rather than assume.
        let e = &self.entries[i];
        (e.whole == whole).then_some(e)
    }

    /// The parse of `text` as a whole expression, if the walk made it.
    pub(crate) fn whole(&self, text: &str) -> Option<&Node<'t>> {
        self.find(text, true).map(|e| &e.node)
    }

    /// The parse of the expression at the start of `text` and what follows it, if the
    /// walk made it.
    pub(crate) fn partial<'s>(&self, text: &'s str) -> Option<(&Node<'t>, &'s str)> {
        self.find(text, false).map(|e| (&e.node, &text[text.len() - e.remainder..]))
    }

    fn record_whole(&mut self, text: &'t str) {
        if let Ok(node) = parse_all(text) {
            let (at, len) = key(text);
            self.entries.push(Entry { at, len, whole: true, remainder: 0, node });
        }
    }

    /// Record the `${..}` expressions of `source`, scanning as `interpolate` does.
    fn record_interpolations(&mut self, mut source: &'t str) {
        while let Some(offset) = source.find('$') {
            if source.get(offset..offset + 2) == Some("${") {
                let expr = &source[offset + 2..];
                match parse_partial(expr) {
                    Ok((node, remainder)) if remainder.starts_with('}') => {
                        let (at, len) = key(expr);
                        self.entries.push(Entry { at, len, whole: false, remainder: remainder.len(), node });
                        source = &remainder[1..];
                    }
                    // `interpolate` stops at an error; so does this scan
                    _ => return,
                }
            } else if source.get(offset..offset + 3) == Some("$${") {
                source = &source[offset + 2..];
            } else {
                source = &source[offset + 1..];
            }
        }
    }

    /// Parse what can be parsed ahead: every `${..}` in strings and keys, and the
    /// expressions of the operators that take one.
    fn walk(&mut self, value: &'t Value) {
        match value {
            Value::String(s) => self.record_interpolations(s),
            Value::Array(items) => items.iter().for_each(|v| self.walk(v)),
            Value::Object(o) => {
                for (k, v) in o.iter() {
                    self.record_interpolations(k);
                    if k.starts_with("$$") {
                        // rendered as `&k[1..]`, a different piece of text
                        self.record_interpolations(&k[1..]);
                    }
                    match (k.as_str(), v) {
                        ("$eval", Value::String(s)) | ("$if", Value::String(s)) => self.record_whole(s),
                        ("$switch", Value::Object(cases)) | ("$match", Value::Object(cases)) => {
                            for cond in cases.keys().filter(|c| *c != "$default") {
                                self.record_whole(cond);
                            }
                        }
                        _ => {}
                    }
                    if o.contains_key("$find") && parse_each(k).is_some() {
                        if let Value::String(s) = v {
                            self.record_whole(s);
                        }
                    }
                    if o.contains_key("$sort") && parse_by(k).is_some() {
                        if let Value::String(s) = v {
                            self.record_whole(s);
                        }
                    }
                    self.walk(v);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn same_as_render(template: SerdeValue, contexts: &[SerdeValue]) -> Template {
        let t = Template::new(&template);
        for c in contexts {
            let once = crate::render(&template, c).map_err(|e| e.to_string());
            // twice: a render must leave nothing behind for the next
            for _ in 0..2 {
                assert_eq!(t.render(c).map_err(|e| e.to_string()), once, "template {template} context {c}");
            }
        }
        t
    }

    #[test]
    fn parses_every_kind_of_expression_ahead() {
        let t = same_as_render(
            json!({
                "a": "${x} and ${x + 1} but $${not} ${'}'}",
                "${x}key": {"$eval": "x * 2"},
                "$$escaped ${x}": 1,
                "c": {"$if": "x > 1", "then": "big", "else": "small"},
                "d": {"$switch": {"x == 1": "one", "x == 2": "two", "$default": "many"}},
                "e": {"$match": {"x >= 1": "pos", "x < 1": "neg"}},
                "f": {"$find": [1, 2, 3], "each(v)": "v > x"},
                "g": {"$sort": [{"n": 3}, {"n": 1}], "by(v)": "v.n"},
                "h": {"$map": [1, 2], "each(v, i)": "${v + i + x}"}
            }),
            &[json!({"x": 1}), json!({"x": 2}), json!({"x": "s"}), json!({})],
        );
        assert_eq!(t.parsed_expressions(), 14);
        // and rendering found every one of them parsed
        assert_eq!(crate::render::fallback_parses(), 0);
    }

    #[test]
    fn errors_are_those_of_render() {
        same_as_render(json!({"a": "${x +}", "b": {"$eval": "(("}, "c": "${unterminated"}), &[json!({"x": 1})]);
        same_as_render(json!({"$if": "x ==", "then": 1}), &[json!({})]);
        same_as_render(json!({"$let": {"y": "${x}"}, "in": {"$eval": "y + z"}}), &[json!({"x": 1, "z": "q"})]);
    }

    #[test]
    fn now_is_per_render_unless_given() {
        let t = Template::new(&json!({"$fromNow": "1 day"}));
        assert_eq!(
            t.render(&json!({"now": "2017-01-19T16:27:20.974Z"})).unwrap(),
            json!("2017-01-20T16:27:20.974Z")
        );
        assert!(t.render(&json!({})).unwrap().is_string());
    }
}
