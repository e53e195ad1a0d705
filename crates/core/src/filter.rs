//! Payload filters for `search` and `list`.
//!
//! A filter is a JSON object; every key names a top-level payload field and
//! every clause must hold (AND). A clause is one of:
//!
//! | clause                      | matches when the field …                                  |
//! |-----------------------------|-----------------------------------------------------------|
//! | `"x"`, `3`, `true`          | equals the value, or is an array holding it               |
//! | `{ gte, gt, lte, lt }`      | is a number within all given bounds (or an array with one) |
//! | `{ any: [v, …] }`           | equals one of the values, or is an array sharing one      |
//! | `{ all: [v, …] }`           | is an array holding every value (a scalar: equals each)   |
//! | `{ ne: v }`                 | is present and neither equals the value nor holds it      |
//! | `{ nin: [v, …] }`           | is present and neither equals nor holds any of the values |
//!
//! Equality never crosses types: `1` does not match `"1"`. A missing field
//! matches nothing, for `ne` and `nin` too: they select among the points
//! that have the field (as `gt` does), so `{ ne: x }` is not `not { eq: x }`. `{ any: [] }` matches nothing; `{ all: [] }` matches every
//! point that has the field.

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Longest list accepted in `any` / `all`.
pub const MAX_LIST_LEN: usize = 10_000;

#[derive(Debug, Clone, PartialEq)]
enum Scalar {
    Str(String),
    Num(f64),
    Bool(bool),
}

impl Scalar {
    fn from_json(value: &Value, context: &str) -> Result<Self> {
        match value {
            Value::String(s) => Ok(Scalar::Str(s.clone())),
            Value::Number(n) => n
                .as_f64()
                .map(Scalar::Num)
                .ok_or_else(|| Error::InvalidFilter {
                    reason: format!("{context}: number {n} is out of range"),
                }),
            Value::Bool(b) => Ok(Scalar::Bool(*b)),
            other => Err(Error::InvalidFilter {
                reason: format!(
                    "{context}: expected a string, number or boolean, got {}",
                    json_type(other)
                ),
            }),
        }
    }

    fn equals(&self, value: &Value) -> bool {
        match (self, value) {
            (Scalar::Str(a), Value::String(b)) => a == b,
            (Scalar::Num(a), Value::Number(b)) => b.as_f64() == Some(*a),
            (Scalar::Bool(a), Value::Bool(b)) => a == b,
            _ => false,
        }
    }

    /// The field equals this scalar, or is an array with an element equal to it.
    fn found_in(&self, field: &Value) -> bool {
        match field {
            Value::Array(items) => items.iter().any(|item| self.equals(item)),
            scalar => self.equals(scalar),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Range {
    gte: Option<f64>,
    gt: Option<f64>,
    lte: Option<f64>,
    lt: Option<f64>,
}

impl Range {
    fn contains(&self, x: f64) -> bool {
        self.gte.is_none_or(|b| x >= b)
            && self.gt.is_none_or(|b| x > b)
            && self.lte.is_none_or(|b| x <= b)
            && self.lt.is_none_or(|b| x < b)
    }

    fn matches(&self, field: &Value) -> bool {
        let number_in_range = |v: &Value| v.as_f64().is_some_and(|x| self.contains(x));
        match field {
            Value::Array(items) => items.iter().any(number_in_range),
            scalar => number_in_range(scalar),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Condition {
    Equals(Scalar),
    Range(Range),
    Any(Vec<Scalar>),
    All(Vec<Scalar>),
    NotEquals(Scalar),
    NoneOf(Vec<Scalar>),
}

impl Condition {
    fn matches(&self, field: &Value) -> bool {
        match self {
            Condition::Equals(s) => s.found_in(field),
            Condition::Range(r) => r.matches(field),
            Condition::Any(list) => list.iter().any(|s| s.found_in(field)),
            Condition::All(list) => list.iter().all(|s| s.found_in(field)),
            Condition::NotEquals(s) => !s.found_in(field),
            Condition::NoneOf(list) => !list.iter().any(|s| s.found_in(field)),
        }
    }
}

/// A parsed, validated filter. The empty filter matches everything.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Filter {
    clauses: Vec<(String, Condition)>,
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        self.clauses.is_empty()
    }

    /// Parses a filter from its JSON text.
    pub fn parse(text: &str) -> Result<Self> {
        let value: Value = serde_json::from_str(text).map_err(|e| Error::InvalidFilter {
            reason: format!("not valid JSON: {e}"),
        })?;
        Self::from_json(&value)
    }

    pub fn from_json(value: &Value) -> Result<Self> {
        let object = match value {
            Value::Object(o) => o,
            Value::Null => return Ok(Filter::default()),
            other => {
                return Err(Error::InvalidFilter {
                    reason: format!("a filter must be an object, got {}", json_type(other)),
                })
            }
        };
        let clauses = object
            .iter()
            .map(|(field, clause)| Ok((field.clone(), parse_condition(field, clause)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Filter { clauses })
    }

    pub fn matches(&self, payload: &Map<String, Value>) -> bool {
        self.clauses.iter().all(|(field, condition)| {
            payload
                .get(field)
                .is_some_and(|value| condition.matches(value))
        })
    }
}

fn parse_condition(field: &str, clause: &Value) -> Result<Condition> {
    let context = format!("field {field:?}");
    match clause {
        Value::String(_) | Value::Number(_) | Value::Bool(_) => {
            Ok(Condition::Equals(Scalar::from_json(clause, &context)?))
        }
        Value::Object(ops) => parse_operator_object(&context, ops),
        Value::Array(_) => Err(Error::InvalidFilter {
            reason: format!(
                "{context}: an array is not a clause; use {{ any: [...] }} or {{ all: [...] }}"
            ),
        }),
        Value::Null => Err(Error::InvalidFilter {
            reason: format!("{context}: null is not a clause"),
        }),
    }
}

fn parse_operator_object(context: &str, ops: &Map<String, Value>) -> Result<Condition> {
    let invalid = |reason: String| Error::InvalidFilter {
        reason: format!("{context}: {reason}"),
    };
    if ops.is_empty() {
        return Err(invalid(
            "an empty object is not a clause; use gte/gt/lte/lt, any, all, ne or nin".into(),
        ));
    }
    if let Some(value) = ops.get("ne") {
        if ops.len() != 1 {
            return Err(invalid("'ne' must stand alone in its clause".into()));
        }
        return Ok(Condition::NotEquals(Scalar::from_json(
            value,
            &format!("{context} 'ne'"),
        )?));
    }
    let is_list_op = |k: &str| k == "any" || k == "all" || k == "nin";
    if ops.keys().any(|k| is_list_op(k)) {
        if ops.len() != 1 {
            return Err(invalid(
                "'any', 'all' and 'nin' must stand alone in their clause".into(),
            ));
        }
        let (op, list) = ops.iter().next().expect("one key checked above");
        let Value::Array(items) = list else {
            return Err(invalid(format!(
                "'{op}' takes an array, got {}",
                json_type(list)
            )));
        };
        if items.len() > MAX_LIST_LEN {
            return Err(invalid(format!(
                "'{op}' has {} values, the limit is {MAX_LIST_LEN}",
                items.len()
            )));
        }
        let scalars = items
            .iter()
            .map(|item| Scalar::from_json(item, &format!("{context} '{op}'")))
            .collect::<Result<Vec<_>>>()?;
        return Ok(match op.as_str() {
            "any" => Condition::Any(scalars),
            "all" => Condition::All(scalars),
            _ => Condition::NoneOf(scalars),
        });
    }
    let mut range = Range {
        gte: None,
        gt: None,
        lte: None,
        lt: None,
    };
    for (op, bound) in ops {
        let number = bound
            .as_f64()
            .filter(|_| bound.is_number())
            .ok_or_else(|| invalid(format!("'{op}' takes a number, got {}", json_type(bound))))?;
        let slot = match op.as_str() {
            "gte" => &mut range.gte,
            "gt" => &mut range.gt,
            "lte" => &mut range.lte,
            "lt" => &mut range.lt,
            other => {
                return Err(invalid(format!(
                    "unknown operator {other:?}; expected gte, gt, lte, lt, any, all, ne or nin"
                )))
            }
        };
        *slot = Some(number);
    }
    Ok(Condition::Range(range))
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::payload;
    use serde_json::json;

    fn check(filter: Value, point: Value) -> bool {
        Filter::from_json(&filter).unwrap().matches(&payload(point))
    }

    #[test]
    fn equality_matches_scalars_and_array_members_without_crossing_types() {
        assert!(check(json!({"kind": "doc"}), json!({"kind": "doc"})));
        assert!(!check(json!({"kind": "doc"}), json!({"kind": "img"})));
        assert!(check(json!({"n": 1}), json!({"n": 1.0})));
        assert!(!check(json!({"n": 1}), json!({"n": "1"})));
        assert!(check(json!({"ok": true}), json!({"ok": true})));
        assert!(!check(json!({"ok": true}), json!({"ok": 1})));
        assert!(check(json!({"tags": "a"}), json!({"tags": ["b", "a"]})));
        assert!(!check(json!({"kind": "doc"}), json!({})));
    }

    #[test]
    fn ranges_apply_every_bound() {
        let f = json!({"year": {"gte": 2000, "lt": 2010}});
        assert!(check(f.clone(), json!({"year": 2000})));
        assert!(check(f.clone(), json!({"year": 2009.5})));
        assert!(!check(f.clone(), json!({"year": 2010})));
        assert!(!check(f.clone(), json!({"year": "2005"})));
        assert!(check(f.clone(), json!({"year": [1990, 2005]})));
        assert!(check(json!({"x": {"gt": 1, "lte": 2}}), json!({"x": 2})));
        assert!(!check(json!({"x": {"gt": 1}}), json!({"x": 1})));
    }

    #[test]
    fn any_and_all_work_on_scalars_and_arrays() {
        assert!(check(json!({"c": {"any": ["a", "b"]}}), json!({"c": "b"})));
        assert!(!check(json!({"c": {"any": ["a", "b"]}}), json!({"c": "z"})));
        assert!(check(json!({"c": {"any": [1, 2]}}), json!({"c": [5, 2]})));
        assert!(!check(json!({"c": {"any": []}}), json!({"c": "a"})));
        assert!(check(
            json!({"t": {"all": ["a", "b"]}}),
            json!({"t": ["b", "c", "a"]})
        ));
        assert!(!check(
            json!({"t": {"all": ["a", "b"]}}),
            json!({"t": ["a"]})
        ));
        assert!(check(json!({"t": {"all": ["a"]}}), json!({"t": "a"})));
        assert!(check(json!({"t": {"all": []}}), json!({"t": 1})));
        assert!(!check(json!({"t": {"all": []}}), json!({})));
    }

    #[test]
    fn ne_and_nin_select_among_points_that_have_the_field() {
        assert!(check(json!({"k": {"ne": "a"}}), json!({"k": "b"})));
        assert!(!check(json!({"k": {"ne": "a"}}), json!({"k": "a"})));
        assert!(!check(json!({"k": {"ne": "a"}}), json!({"k": ["b", "a"]})));
        assert!(check(json!({"k": {"ne": "a"}}), json!({"k": ["b", "c"]})));
        // Types never cross: 1 is not "1", so it is not equal to it.
        assert!(check(json!({"k": {"ne": 1}}), json!({"k": "1"})));
        assert!(!check(json!({"k": {"ne": "a"}}), json!({})));
        assert!(check(json!({"k": {"nin": ["a", "b"]}}), json!({"k": "c"})));
        assert!(!check(json!({"k": {"nin": ["a", "b"]}}), json!({"k": "b"})));
        assert!(!check(
            json!({"k": {"nin": ["a", "b"]}}),
            json!({"k": ["c", "a"]})
        ));
        assert!(check(json!({"k": {"nin": []}}), json!({"k": "a"})));
        assert!(!check(json!({"k": {"nin": ["a"]}}), json!({})));
        let both = json!({"k": {"ne": "a"}, "n": {"nin": [1, 2]}});
        assert!(check(both.clone(), json!({"k": "b", "n": 3})));
        assert!(!check(both, json!({"k": "b", "n": 2})));
    }

    #[test]
    fn clauses_combine_with_and() {
        let f = json!({"kind": "doc", "year": {"gte": 2000}});
        assert!(check(f.clone(), json!({"kind": "doc", "year": 2001})));
        assert!(!check(f.clone(), json!({"kind": "doc", "year": 1999})));
        assert!(!check(f, json!({"kind": "img", "year": 2001})));
    }

    #[test]
    fn malformed_filters_are_rejected_with_a_reason() {
        for bad in [
            json!([1]),
            json!("x"),
            json!({"a": null}),
            json!({"a": [1, 2]}),
            json!({"a": {}}),
            json!({"a": {"gte": "1"}}),
            json!({"a": {"between": 1}}),
            json!({"a": {"any": "x"}}),
            json!({"a": {"any": [null]}}),
            json!({"a": {"any": [{"x": 1}]}}),
            json!({"a": {"any": [1], "gte": 1}}),
            json!({"a": {"ne": [1]}}),
            json!({"a": {"ne": null}}),
            json!({"a": {"ne": 1, "gte": 1}}),
            json!({"a": {"nin": "x"}}),
            json!({"a": {"nin": [1], "any": [1]}}),
        ] {
            let err = Filter::from_json(&bad).unwrap_err();
            assert_eq!(err.code(), 1007, "{bad}");
        }
        assert_eq!(Filter::parse("{").unwrap_err().code(), 1007);
    }

    #[test]
    fn null_and_empty_object_match_everything() {
        assert!(Filter::from_json(&Value::Null).unwrap().is_empty());
        assert!(check(json!({}), json!({"a": 1})));
    }
}
