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
//! | `{ exists: true }`          | is present (whatever its value, `null` included)          |
//! | `{ exists: false }`         | is absent                                                 |
//! | `{ contains: "s" }`         | is a string containing `s`, or an array with such a string |
//!
//! Three keys are groups rather than fields, at the top level of any filter
//! object (and so nestable), AND-ed with the object's other keys:
//!
//! | group                       | matches when …                                            |
//! |-----------------------------|-----------------------------------------------------------|
//! | `{ or: [f, …] }`            | at least one of the filters matches (`[]`: nothing does)  |
//! | `{ and: [f, …] }`           | every filter matches (`[]`: everything does)              |
//! | `{ not: f }`                | the filter does not match                                 |
//!
//! So a payload field named `or`, `and` or `not` cannot be selected on.
//! Groups nest at most [`MAX_GROUP_DEPTH`] deep.
//!
//! Equality never crosses types: `1` does not match `"1"`. A missing field
//! matches nothing but `{ exists: false }`, for `ne` and `nin` too: they
//! select among the points that have the field (as `gt` does), so
//! `{ k: { ne: x } }` is not `{ not: { k: x } }`, which also matches points
//! without `k`. `{ any: [] }` matches nothing; `{ all: [] }` matches every
//! point that has the field. `contains` compares bytes, case-sensitively;
//! `""` matches every string field (and every array holding a string).
//!
//! Every clause is a pure function of one point's payload, so a filter's
//! matches can be kept as a bitmap and updated point by point (see
//! `matches.rs`), groups included.

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
    Exists(bool),
    Contains(String),
}

impl Condition {
    /// `field` is `None` when the payload has no such key.
    fn matches(&self, field: Option<&Value>) -> bool {
        let Some(field) = field else {
            return matches!(self, Condition::Exists(false));
        };
        match self {
            Condition::Equals(s) => s.found_in(field),
            Condition::Range(r) => r.matches(field),
            Condition::Any(list) => list.iter().any(|s| s.found_in(field)),
            Condition::All(list) => list.iter().all(|s| s.found_in(field)),
            Condition::NotEquals(s) => !s.found_in(field),
            Condition::NoneOf(list) => !list.iter().any(|s| s.found_in(field)),
            Condition::Exists(present) => *present,
            Condition::Contains(needle) => {
                let holds = |v: &Value| v.as_str().is_some_and(|s| s.contains(needle.as_str()));
                match field {
                    Value::Array(items) => items.iter().any(holds),
                    scalar => holds(scalar),
                }
            }
        }
    }
}

/// Deepest nesting of `or` / `and` / `not` groups: a filter's evaluation
/// recurses once per level, and no real query needs more.
pub const MAX_GROUP_DEPTH: usize = 32;

#[derive(Debug, Clone, PartialEq)]
enum Clause {
    Field(String, Condition),
    Or(Vec<Filter>),
    And(Vec<Filter>),
    Not(Box<Filter>),
}

impl Clause {
    fn matches(&self, payload: &Map<String, Value>) -> bool {
        match self {
            Clause::Field(field, condition) => condition.matches(payload.get(field)),
            Clause::Or(members) => members.iter().any(|f| f.matches(payload)),
            Clause::And(members) => members.iter().all(|f| f.matches(payload)),
            Clause::Not(inner) => !inner.matches(payload),
        }
    }
}

/// A parsed, validated filter. The empty filter matches everything.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Filter {
    clauses: Vec<Clause>,
}

impl Filter {
    /// Whether this is the filter with no clause, which matches every point
    /// (an empty `or` group is a clause, matching none).
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
        match value {
            Value::Null => Ok(Filter::default()),
            other => parse_filter(other, "", 0),
        }
    }

    pub fn matches(&self, payload: &Map<String, Value>) -> bool {
        self.clauses.iter().all(|clause| clause.matches(payload))
    }
}

/// `path` locates `value` in the whole filter (`""` at the top, then
/// `or[1].not` and so on), for the error message.
fn parse_filter(value: &Value, path: &str, depth: usize) -> Result<Filter> {
    let object = match value {
        Value::Object(o) => o,
        other => {
            return Err(Error::InvalidFilter {
                reason: format!(
                    "{}a filter must be an object, got {}",
                    at(path),
                    json_type(other)
                ),
            })
        }
    };
    let clauses = object
        .iter()
        .map(|(key, clause)| parse_clause(key, clause, path, depth))
        .collect::<Result<Vec<_>>>()?;
    Ok(Filter { clauses })
}

fn at(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("at {path}: ")
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn parse_clause(key: &str, value: &Value, path: &str, depth: usize) -> Result<Clause> {
    if !matches!(key, "or" | "and" | "not") {
        let context = format!("{}field {key:?}", at(path));
        return Ok(Clause::Field(
            key.to_owned(),
            parse_condition(&context, value)?,
        ));
    }
    let here = join(path, key);
    if depth >= MAX_GROUP_DEPTH {
        return Err(Error::InvalidFilter {
            reason: format!("at {here}: groups nest at most {MAX_GROUP_DEPTH} levels deep"),
        });
    }
    if key == "not" {
        return Ok(Clause::Not(Box::new(parse_filter(
            value,
            &here,
            depth + 1,
        )?)));
    }
    let Value::Array(items) = value else {
        return Err(Error::InvalidFilter {
            reason: format!(
                "at {here}: '{key}' takes an array of filters, got {}",
                json_type(value)
            ),
        });
    };
    if items.len() > MAX_LIST_LEN {
        return Err(Error::InvalidFilter {
            reason: format!(
                "at {here}: '{key}' has {} filters, the limit is {MAX_LIST_LEN}",
                items.len()
            ),
        });
    }
    let members = items
        .iter()
        .enumerate()
        .map(|(i, item)| parse_filter(item, &format!("{here}[{i}]"), depth + 1))
        .collect::<Result<Vec<_>>>()?;
    Ok(if key == "or" {
        Clause::Or(members)
    } else {
        Clause::And(members)
    })
}

fn parse_condition(context: &str, clause: &Value) -> Result<Condition> {
    match clause {
        Value::String(_) | Value::Number(_) | Value::Bool(_) => {
            Ok(Condition::Equals(Scalar::from_json(clause, context)?))
        }
        Value::Object(ops) => parse_operator_object(context, ops),
        Value::Array(_) => Err(Error::InvalidFilter {
            reason: format!(
                "{context}: an array is not a clause; use {{ any: [...] }} or {{ all: [...] }}"
            ),
        }),
        Value::Null => Err(Error::InvalidFilter {
            reason: format!(
                "{context}: null is not a clause; use {{ exists: false }} for a missing field"
            ),
        }),
    }
}

const OPERATORS: &str = "gte, gt, lte, lt, any, all, ne, nin, exists or contains";

fn parse_operator_object(context: &str, ops: &Map<String, Value>) -> Result<Condition> {
    let invalid = |reason: String| Error::InvalidFilter {
        reason: format!("{context}: {reason}"),
    };
    if ops.is_empty() {
        return Err(invalid(format!(
            "an empty object is not a clause; use {OPERATORS}"
        )));
    }
    for single in ["ne", "exists", "contains"] {
        let Some(value) = ops.get(single) else {
            continue;
        };
        if ops.len() != 1 {
            return Err(invalid(format!(
                "'{single}' must stand alone in its clause"
            )));
        }
        return match single {
            "ne" => Ok(Condition::NotEquals(Scalar::from_json(
                value,
                &format!("{context} 'ne'"),
            )?)),
            "exists" => match value {
                Value::Bool(b) => Ok(Condition::Exists(*b)),
                other => Err(invalid(format!(
                    "'exists' takes true or false, got {}",
                    json_type(other)
                ))),
            },
            _ => match value {
                Value::String(s) => Ok(Condition::Contains(s.clone())),
                other => Err(invalid(format!(
                    "'contains' takes a string, got {}",
                    json_type(other)
                ))),
            },
        };
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
        let slot = match op.as_str() {
            "gte" => &mut range.gte,
            "gt" => &mut range.gt,
            "lte" => &mut range.lte,
            "lt" => &mut range.lt,
            other => {
                return Err(invalid(format!(
                    "unknown operator {other:?}; expected {OPERATORS}"
                )))
            }
        };
        let number = bound
            .as_f64()
            .filter(|_| bound.is_number())
            .ok_or_else(|| invalid(format!("'{op}' takes a number, got {}", json_type(bound))))?;
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
    fn exists_tests_presence_whatever_the_value() {
        for present in [json!(null), json!(0), json!(""), json!([]), json!({"x": 1})] {
            assert!(check(json!({"k": {"exists": true}}), json!({"k": present})));
            assert!(!check(
                json!({"k": {"exists": false}}),
                json!({"k": present})
            ));
        }
        assert!(!check(json!({"k": {"exists": true}}), json!({"j": 1})));
        assert!(check(json!({"k": {"exists": false}}), json!({"j": 1})));
        // Absent is not AND-ed away: the only clause that a missing field meets.
        assert!(check(
            json!({"k": {"exists": false}, "j": 1}),
            json!({"j": 1})
        ));
    }

    #[test]
    fn contains_finds_substrings_of_strings_and_of_array_elements() {
        let f = json!({"t": {"contains": "ell"}});
        assert!(check(f.clone(), json!({"t": "hello"})));
        assert!(!check(f.clone(), json!({"t": "HELLO"})));
        assert!(!check(f.clone(), json!({"t": "help"})));
        assert!(check(f.clone(), json!({"t": ["x", "bell"]})));
        assert!(!check(f.clone(), json!({"t": ["el", "l"]})));
        // Only strings are searched: not numbers, nor nested objects.
        assert!(!check(json!({"t": {"contains": "1"}}), json!({"t": 12})));
        assert!(!check(f.clone(), json!({"t": {"s": "hello"}})));
        assert!(!check(f, json!({})));
        assert!(check(json!({"t": {"contains": "é"}}), json!({"t": "café"})));
        assert!(check(json!({"t": {"contains": ""}}), json!({"t": ""})));
        assert!(!check(json!({"t": {"contains": ""}}), json!({"t": [1]})));
    }

    #[test]
    fn or_and_not_groups_combine_whole_filters() {
        let either = json!({"or": [{"k": "a"}, {"n": {"gte": 5}}]});
        assert!(check(either.clone(), json!({"k": "a", "n": 1})));
        assert!(check(either.clone(), json!({"k": "b", "n": 7})));
        assert!(check(either.clone(), json!({"n": 5})));
        assert!(!check(either.clone(), json!({"k": "b", "n": 4})));
        assert!(!check(json!({"or": []}), json!({"k": "a"})));
        assert!(check(json!({"and": []}), json!({"k": "a"})));
        // A member's own keys are AND-ed; the group is AND-ed with its siblings.
        let mixed = json!({"kind": "doc", "or": [{"k": "a", "n": 1}, {"k": "b"}]});
        assert!(check(
            mixed.clone(),
            json!({"kind": "doc", "k": "a", "n": 1})
        ));
        assert!(!check(
            mixed.clone(),
            json!({"kind": "doc", "k": "a", "n": 2})
        ));
        assert!(check(mixed.clone(), json!({"kind": "doc", "k": "b"})));
        assert!(!check(mixed, json!({"kind": "img", "k": "b"})));
        // `not` also matches points without the field, unlike `ne`.
        assert!(check(json!({"not": {"k": "a"}}), json!({})));
        assert!(!check(json!({"k": {"ne": "a"}}), json!({})));
        assert!(!check(json!({"not": {"k": "a"}}), json!({"k": ["b", "a"]})));
        assert!(check(json!({"not": {"k": "a"}}), json!({"k": "b"})));
        assert!(!check(json!({"not": {}}), json!({"k": "b"})));
        // Two conditions on one key, through `and` (one object cannot repeat a key).
        let both = json!({"and": [{"n": {"gt": 1}}, {"n": {"ne": 3}}]});
        assert!(check(both.clone(), json!({"n": 2})));
        assert!(!check(both, json!({"n": 3})));
        // Nested: not (a or b) and exists c.
        let nested = json!({"not": {"or": [{"k": "a"}, {"k": "b"}]}, "c": {"exists": true}});
        assert!(check(nested.clone(), json!({"k": "z", "c": null})));
        assert!(!check(nested.clone(), json!({"k": "b", "c": 1})));
        assert!(!check(nested, json!({"k": "z"})));
        // The deepest nesting accepted: 32 `not`s, an even count, cancel out.
        let mut deep = json!({"k": "a"});
        for _ in 0..MAX_GROUP_DEPTH {
            deep = json!({ "not": deep });
        }
        assert!(check(deep.clone(), json!({"k": "a"})));
        assert!(!check(deep, json!({"k": "b"})));
    }

    #[test]
    fn an_empty_or_is_a_clause_and_not_the_empty_filter() {
        assert!(!Filter::from_json(&json!({"or": []})).unwrap().is_empty());
        assert!(!Filter::from_json(&json!({"not": {}})).unwrap().is_empty());
        assert_ne!(
            Filter::from_json(&json!({"or": [{"k": 1}]})).unwrap(),
            Filter::from_json(&json!({"not": {"k": 1}})).unwrap()
        );
    }

    #[test]
    fn bad_groups_and_operators_are_rejected_naming_where() {
        let reason = |bad: Value| match Filter::from_json(&bad).unwrap_err() {
            Error::InvalidFilter { reason } => reason,
            other => panic!("{bad}: {other:?}"),
        };
        for (bad, says) in [
            (
                json!({"or": {"k": 1}}),
                "at or: 'or' takes an array of filters, got an object",
            ),
            (json!({"and": "x"}), "at and: 'and' takes an array"),
            (
                json!({"or": [{"k": 1}, 3]}),
                "at or[1]: a filter must be an object, got a number",
            ),
            (
                json!({"or": [{"k": 1}, null]}),
                "at or[1]: a filter must be an object, got null",
            ),
            (
                json!({"not": [{"k": 1}]}),
                "at not: a filter must be an object, got an array",
            ),
            (
                json!({"not": {"or": [{"k": {"between": 1}}]}}),
                "at not.or[0]: field \"k\": unknown operator \"between\"",
            ),
            (
                json!({"k": {"exists": "yes"}}),
                "'exists' takes true or false, got a string",
            ),
            (json!({"k": {"exists": true, "ne": 1}}), "must stand alone"),
            (
                json!({"k": {"contains": 1}}),
                "'contains' takes a string, got a number",
            ),
            (
                json!({"k": {"contains": ["a"]}}),
                "'contains' takes a string, got an array",
            ),
            (
                json!({"k": {"contains": "a", "any": ["a"]}}),
                "must stand alone",
            ),
            (json!({"k": {"like": "a"}}), "unknown operator \"like\""),
        ] {
            let got = reason(bad.clone());
            assert!(got.contains(says), "{bad}: {got}");
        }
        let mut deep = json!({"k": 1});
        for _ in 0..=MAX_GROUP_DEPTH {
            deep = json!({"not": deep});
        }
        assert!(reason(deep).contains("at most 32 levels"));
        let mut deep = json!({"k": 1});
        for _ in 0..=MAX_GROUP_DEPTH {
            deep = json!({"or": [deep]});
        }
        let got = reason(deep);
        assert!(got.starts_with("at or[0].or[0]"), "{got}");
        assert_eq!(
            Filter::from_json(&json!({"or": 1})).unwrap_err().code(),
            1007
        );
    }

    #[test]
    fn null_and_empty_object_match_everything() {
        assert!(Filter::from_json(&Value::Null).unwrap().is_empty());
        assert!(check(json!({}), json!({"a": 1})));
    }
}
