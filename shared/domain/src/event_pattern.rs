//! EventBridge event patterns, so a trigger matches an event the way an EventBridge rule would
//! (the same pattern is deployed as the rule and checked again by the `events` function, which
//! receives every trigger's events on one queue).
//!
//! A pattern is an object whose leaves are arrays of accepted values: literals (string, number,
//! boolean, null) or one-key filters: `prefix`, `suffix`, `equals-ignore-case`, `anything-but`,
//! `exists`, `numeric`. An event field that is an array matches when any element does.
//! See <https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns.html>.

use serde_json::{Map, Value};

/// Checks a pattern's shape; the message names the field path and what is wrong.
pub fn validate(pattern: &Value) -> Result<(), String> {
    let Value::Object(fields) = pattern else {
        return Err("an event pattern must be an object, e.g. {source: [aws.s3]}".into());
    };
    if fields.is_empty() {
        return Err("an event pattern must name at least one field".into());
    }
    validate_object(fields, "event_pattern")
}

fn validate_object(fields: &Map<String, Value>, at: &str) -> Result<(), String> {
    for (name, value) in fields {
        let here = format!("{at}.{name}");
        match value {
            Value::Object(nested) => validate_object(nested, &here)?,
            Value::Array(accepted) if !accepted.is_empty() => {
                for filter in accepted {
                    validate_filter(filter, &here)?;
                }
            }
            _ => return Err(format!("`{here}`: give a list of accepted values, e.g. [\"value\"] or [{{prefix: \"in/\"}}]")),
        }
    }
    Ok(())
}

fn validate_filter(filter: &Value, at: &str) -> Result<(), String> {
    let Value::Object(operator) = filter else { return Ok(()) };
    let mut entries = operator.iter();
    let (Some((name, argument)), None) = (entries.next(), entries.next()) else {
        return Err(format!("`{at}`: a filter object has exactly one key, e.g. {{prefix: \"in/\"}}"));
    };
    let ok = match name.as_str() {
        "prefix" | "suffix" | "equals-ignore-case" => argument.is_string(),
        "exists" => argument.is_boolean(),
        "anything-but" => match argument {
            Value::Array(values) => values.iter().all(|v| v.is_string() || v.is_number()),
            Value::Object(inner) => inner.len() == 1 && inner.get("prefix").is_some_and(Value::is_string),
            other => other.is_string() || other.is_number(),
        },
        "numeric" => numeric_bounds(argument).is_some(),
        other => {
            return Err(format!(
                "`{at}`: unknown filter `{other}`; use prefix, suffix, equals-ignore-case, anything-but, exists or numeric"
            ));
        }
    };
    if ok { Ok(()) } else { Err(format!("`{at}`: filter `{name}` has an argument of the wrong type: {argument}")) }
}

/// Whether `event` matches `pattern` (a pattern that passed [`validate`]).
pub fn matches(pattern: &Value, event: &Value) -> bool {
    let Value::Object(fields) = pattern else { return false };
    fields.iter().all(|(name, expected)| {
        let actual = event.get(name);
        match expected {
            Value::Object(_) => actual.is_some_and(|nested| matches(expected, nested)),
            Value::Array(accepted) => accepted.iter().any(|filter| filter_matches(filter, actual)),
            _ => false,
        }
    })
}

fn filter_matches(filter: &Value, actual: Option<&Value>) -> bool {
    if let Value::Object(operator) = filter
        && let Some((name, argument)) = operator.iter().next()
    {
        if name == "exists" {
            return argument.as_bool() == Some(actual.is_some());
        }
        let Some(actual) = actual else { return false };
        return any_scalar(actual, &|value| operator_matches(name, argument, value));
    }
    actual.is_some_and(|actual| any_scalar(actual, &|value| value == filter))
}

/// Applies `test` to a scalar, or to each element of an array.
fn any_scalar(actual: &Value, test: &dyn Fn(&Value) -> bool) -> bool {
    match actual {
        Value::Array(items) => items.iter().any(test),
        scalar => test(scalar),
    }
}

fn operator_matches(name: &str, argument: &Value, value: &Value) -> bool {
    let text = value.as_str();
    match name {
        "prefix" => text.zip(argument.as_str()).is_some_and(|(t, p)| t.starts_with(p)),
        "suffix" => text.zip(argument.as_str()).is_some_and(|(t, s)| t.ends_with(s)),
        "equals-ignore-case" => text.zip(argument.as_str()).is_some_and(|(t, e)| t.eq_ignore_ascii_case(e)),
        "anything-but" => match argument {
            Value::Array(excluded) => !excluded.contains(value),
            Value::Object(inner) => {
                let prefix = inner.get("prefix").and_then(Value::as_str).unwrap_or_default();
                text.is_some_and(|t| !t.starts_with(prefix))
            }
            single => single != value,
        },
        "numeric" => value.as_f64().zip(numeric_bounds(argument)).is_some_and(|(number, bounds)| {
            bounds.iter().all(|(op, bound)| match *op {
                "<" => number < *bound,
                "<=" => number <= *bound,
                "=" => number == *bound,
                ">=" => number >= *bound,
                ">" => number > *bound,
                _ => false,
            })
        }),
        _ => false,
    }
}

/// `[">", 0, "<=", 5]` as (operator, bound) pairs.
fn numeric_bounds(argument: &Value) -> Option<Vec<(&str, f64)>> {
    let items = argument.as_array()?;
    if items.is_empty() || items.len() % 2 != 0 {
        return None;
    }
    items
        .chunks(2)
        .map(|pair| {
            let op = pair[0].as_str().filter(|op| ["<", "<=", "=", ">=", ">"].contains(op))?;
            Some((op, pair[1].as_f64()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object_created(key: &str, size: u64) -> Value {
        json!({
            "id": "e1", "source": "aws.s3", "detail-type": "Object Created",
            "resources": ["arn:aws:s3:::landing"],
            "detail": {"bucket": {"name": "landing"}, "object": {"key": key, "size": size}}
        })
    }

    #[test]
    fn literals_nested_fields_and_string_filters_match_like_eventbridge() {
        let pattern = json!({
            "source": ["aws.s3"],
            "detail": {"bucket": {"name": ["landing", "other"]}, "object": {"key": [{"prefix": "in/"}]}}
        });
        validate(&pattern).unwrap();
        assert!(matches(&pattern, &object_created("in/a.csv", 1)));
        assert!(!matches(&pattern, &object_created("out/a.csv", 1)));
        assert!(!matches(&json!({"source": ["aws.ec2"]}), &object_created("in/a.csv", 1)));
        assert!(matches(&json!({"detail": {"object": {"key": [{"suffix": ".csv"}]}}}), &object_created("x.csv", 1)));
        assert!(matches(&json!({"detail-type": [{"equals-ignore-case": "object created"}]}), &object_created("x", 1)));
    }

    #[test]
    fn an_array_field_matches_when_any_element_does() {
        assert!(matches(&json!({"resources": ["arn:aws:s3:::landing"]}), &object_created("x", 1)));
        assert!(!matches(&json!({"resources": ["arn:aws:s3:::elsewhere"]}), &object_created("x", 1)));
    }

    #[test]
    fn exists_anything_but_and_numeric_filters() {
        let event = object_created("in/a.csv", 2048);
        assert!(matches(&json!({"detail": {"object": {"size": [{"numeric": [">", 1024, "<=", 4096]}]}}}), &event));
        assert!(!matches(&json!({"detail": {"object": {"size": [{"numeric": ["<", 1024]}]}}}), &event));
        assert!(matches(&json!({"detail": {"object": {"etag": [{"exists": false}]}}}), &event));
        assert!(!matches(&json!({"detail": {"object": {"key": [{"exists": false}]}}}), &event));
        assert!(matches(&json!({"detail": {"object": {"key": [{"anything-but": {"prefix": "tmp/"}}]}}}), &event));
        assert!(!matches(&json!({"source": [{"anything-but": ["aws.s3", "aws.ec2"]}]}), &event));
    }

    #[test]
    fn malformed_patterns_are_refused_with_the_field_path() {
        assert!(validate(&json!({"source": "aws.s3"})).unwrap_err().contains("`event_pattern.source`: give a list"));
        assert!(validate(&json!({"detail": {"key": [{"startswith": "x"}]}})).unwrap_err().contains("unknown filter `startswith`"));
        assert!(validate(&json!({"detail": {"size": [{"numeric": [">"]}]}})).unwrap_err().contains("filter `numeric`"));
        assert!(validate(&json!([])).unwrap_err().contains("must be an object"));
        assert!(validate(&json!({})).unwrap_err().contains("at least one field"));
    }
}
