//! The pack's shape, checked on the parsed tree before the typed read: every
//! wrong type, unknown field, missing field and unknown word is reported at
//! once, each at its own path, and the tree is repaired (the bad value
//! replaced by a neutral one) so that the value checks can still run on the
//! rest. Mirrors the serde types in `model::pack` field by field; a test
//! keeps the two in step.

use crate::model::{Said, API_FAMILIES};
use serde_json::{Map, Value};

/// What a value must be.
pub enum Shape {
    Text,
    Number,
    /// A whole number ≥ 0.
    Count,
    Bool,
    /// One of these words.
    Word(&'static [&'static str]),
    /// A table of named entries of one shape.
    Table(&'static str, Box<Shape>),
    /// Fields: (name, shape, required).
    Record(&'static str, Vec<(&'static str, Shape, bool)>),
}

/// A problem found in the shape: its path, what is wrong, what was expected.
#[derive(Debug, Clone, PartialEq)]
pub struct ShapeIssue {
    pub path: String,
    pub message: Said,
    pub expected: Said,
}

fn price() -> Shape {
    Shape::Record(
        "a price",
        vec![
            ("currency", Shape::Word(&["USD", "CNY"]), true),
            ("input", Shape::Number, true),
            ("output", Shape::Number, true),
            ("cache_read", Shape::Number, false),
            ("source", Shape::Text, true),
            ("verified", Shape::Text, true),
        ],
    )
}

fn provider() -> Shape {
    Shape::Record(
        "a provider",
        vec![
            ("display_name", Shape::Text, true),
            ("native_platform", Shape::Text, false),
            ("api_family", Shape::Word(API_FAMILIES), false),
            ("base_url", Shape::Text, true),
            ("native_base_url", Shape::Text, false),
            ("smoke_model", Shape::Text, true),
            ("low_balance", Shape::Number, false),
            (
                "models",
                Shape::Table(
                    "models",
                    Box::new(Shape::Record(
                        "a model",
                        vec![("upstream", Shape::Text, false), ("price", price(), true)],
                    )),
                ),
                true,
            ),
            (
                "channel",
                Shape::Record(
                    "a channel policy",
                    vec![
                        ("billing_model_source", Shape::Text, false),
                        ("restrict_models", Shape::Bool, false),
                    ],
                ),
                false,
            ),
            (
                "group",
                Shape::Record(
                    "a group template",
                    vec![
                        ("name", Shape::Text, false),
                        ("rate_multiplier", Shape::Number, false),
                        ("daily_limit_usd", Shape::Number, false),
                        ("weekly_limit_usd", Shape::Number, false),
                        ("monthly_limit_usd", Shape::Number, false),
                        ("validity_days", Shape::Count, false),
                        ("exclusive", Shape::Bool, false),
                    ],
                ),
                false,
            ),
            (
                "access",
                Shape::Record(
                    "access defaults",
                    vec![
                        ("mode", Shape::Word(&["self_service", "subscription"]), true),
                        ("balance_usd", Shape::Number, false),
                    ],
                ),
                false,
            ),
        ],
    )
}

/// The shape of a whole pack.
pub fn pack() -> Shape {
    Shape::Record(
        "a pack",
        vec![
            ("schema", Shape::Count, true),
            ("id", Shape::Text, true),
            ("name", Shape::Text, true),
            ("description", Shape::Text, false),
            (
                "exchange_rate",
                Shape::Record(
                    "an exchange rate",
                    vec![
                        ("cny_per_usd", Shape::Number, true),
                        ("source", Shape::Text, true),
                        ("date", Shape::Text, true),
                    ],
                ),
                false,
            ),
            (
                "providers",
                Shape::Table("providers", Box::new(provider())),
                true,
            ),
        ],
    )
}

/// What a value is, for a message: its kind and, when short, itself.
fn describe(v: &Value) -> Said {
    match v {
        Value::Null => Said::new("is.empty", &[]),
        Value::Bool(b) => Said::new("is.bool", &[("value", b)]),
        Value::Number(n) => Said::new("is.number", &[("value", n)]),
        Value::String(s) if s.chars().count() <= 40 => Said::new("is.text", &[("value", s)]),
        Value::String(_) => Said::new("is.long_text", &[]),
        Value::Array(_) => Said::new("is.list", &[]),
        Value::Object(_) => Said::new("is.table", &[]),
    }
}

/// "one of: a, b, c".
pub(super) fn one_of(words: &[&str]) -> Said {
    Said::new("want.one_of", &[("words", &words.join(", "))])
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// A value of `shape` that passes the type check (for repair).
fn neutral(shape: &Shape) -> Value {
    match shape {
        Shape::Text => Value::String(String::new()),
        Shape::Number | Shape::Count => Value::from(0),
        Shape::Bool => Value::Bool(false),
        Shape::Word(words) => Value::String(words.first().copied().unwrap_or_default().into()),
        Shape::Table(..) => Value::Object(Map::new()),
        Shape::Record(_, fields) => Value::Object(
            fields
                .iter()
                .filter(|(_, _, required)| *required)
                .map(|(k, s, _)| (k.to_string(), neutral(s)))
                .collect(),
        ),
    }
}

/// Checks `v` against `shape` at `path`, repairing it in place; every
/// problem goes to `out`.
pub fn check(v: &mut Value, shape: &Shape, path: &str, out: &mut Vec<ShapeIssue>) {
    let mut bad = |message: Said, expected: Said| {
        out.push(ShapeIssue {
            path: if path.is_empty() {
                "(file)".into()
            } else {
                path.to_string()
            },
            message,
            expected,
        })
    };
    match shape {
        Shape::Text => {
            if !v.is_string() {
                // A number or yes/no where a text belongs reads fine as text.
                match v {
                    Value::Number(n) => *v = Value::String(n.to_string()),
                    Value::Bool(b) => *v = Value::String(b.to_string()),
                    _ => {
                        bad(describe(v), Said::new("want.text", &[]));
                        *v = neutral(shape);
                    }
                }
            }
        }
        Shape::Number => {
            if !v.is_number() {
                bad(describe(v), Said::new("want.number", &[]));
                *v = neutral(shape);
            }
        }
        Shape::Count => {
            if v.as_u64().is_none_or(|n| n > u32::MAX as u64) {
                bad(describe(v), Said::new("want.count", &[]));
                *v = neutral(shape);
            }
        }
        Shape::Bool => {
            if !v.is_boolean() {
                bad(describe(v), Said::new("want.bool", &[]));
                *v = neutral(shape);
            }
        }
        Shape::Word(words) => {
            if !v.as_str().is_some_and(|s| words.contains(&s)) {
                bad(describe(v), one_of(words));
                *v = neutral(shape);
            }
        }
        Shape::Table(what, inner) => {
            let Some(map) = v.as_object_mut() else {
                bad(describe(v), Said::new("want.table", &[("what_en", what)]));
                *v = neutral(shape);
                return;
            };
            for (k, item) in map.iter_mut() {
                check(item, inner, &join(path, k), out);
            }
        }
        Shape::Record(what, fields) => {
            let Some(map) = v.as_object_mut() else {
                bad(describe(v), Said::new("want.record", &[("what_en", what)]));
                *v = neutral(shape);
                return;
            };
            let names: Vec<&str> = fields.iter().map(|(k, _, _)| *k).collect();
            let unknown: Vec<String> = map
                .keys()
                .filter(|k| !names.contains(&k.as_str()))
                .cloned()
                .collect();
            for k in unknown {
                map.remove(&k);
                out.push(ShapeIssue {
                    path: join(path, &k),
                    message: Said::new("pack.not_a_field", &[("what_en", what)]),
                    expected: one_of(&names),
                });
            }
            for (k, s, required) in fields {
                match map.get_mut(*k) {
                    // An empty optional field (`cache_read:`) is as absent.
                    Some(Value::Null) if !required => {
                        map.remove(*k);
                    }
                    Some(item) => check(item, s, &join(path, k), out),
                    None if *required => {
                        out.push(ShapeIssue {
                            path: join(path, k),
                            message: Said::new("pack.missing", &[]),
                            expected: Said::new("want.needed", &[("what_en", what)]),
                        });
                        map.insert(k.to_string(), neutral(s));
                    }
                    None => {}
                }
            }
        }
    }
}
