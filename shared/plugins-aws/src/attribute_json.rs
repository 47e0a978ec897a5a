//! DynamoDB attribute values ↔ plain JSON, so jobs write keys and values as ordinary JSON and
//! results read as ordinary JSON.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Map, Number, Value};

/// JSON → attribute: strings S, numbers N, booleans BOOL, null NULL, arrays L, objects M.
pub fn to_attribute(value: &Value) -> AttributeValue {
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Array(items) => AttributeValue::L(items.iter().map(to_attribute).collect()),
        Value::Object(map) => AttributeValue::M(map.iter().map(|(k, v)| (k.clone(), to_attribute(v))).collect()),
    }
}

/// A JSON object → an item or key.
pub fn to_item(object: &Map<String, Value>) -> HashMap<String, AttributeValue> {
    object.iter().map(|(k, v)| (k.clone(), to_attribute(v))).collect()
}

/// Attribute → JSON, and the DynamoDB type name (`S`, `N`, `BOOL`, `M`, …) for result columns.
pub fn to_json(value: &AttributeValue) -> (Value, &'static str) {
    match value {
        AttributeValue::S(s) => (Value::String(s.clone()), "S"),
        AttributeValue::N(n) => (number(n), "N"),
        AttributeValue::Bool(b) => (Value::Bool(*b), "BOOL"),
        AttributeValue::Null(_) => (Value::Null, "NULL"),
        AttributeValue::B(blob) => (Value::String(base64_of(blob)), "B"),
        AttributeValue::Ss(items) => (Value::Array(items.iter().cloned().map(Value::String).collect()), "SS"),
        AttributeValue::Ns(items) => (Value::Array(items.iter().map(|n| number(n)).collect()), "NS"),
        AttributeValue::Bs(items) => (Value::Array(items.iter().map(|b| Value::String(base64_of(b))).collect()), "BS"),
        AttributeValue::L(items) => (Value::Array(items.iter().map(|v| to_json(v).0).collect()), "L"),
        AttributeValue::M(map) => (Value::Object(map.iter().map(|(k, v)| (k.clone(), to_json(v).0)).collect()), "M"),
        _ => (Value::Null, "UNKNOWN"),
    }
}

/// DynamoDB numbers are decimal strings of up to 38 digits: a JSON number when it fits one
/// exactly, the string otherwise (never a rounded float).
fn number(text: &str) -> Value {
    if let Ok(integer) = text.parse::<i64>() {
        return Value::Number(integer.into());
    }
    match text.parse::<f64>().ok().and_then(Number::from_f64) {
        Some(float) if float.to_string() == text => Value::Number(float),
        _ => Value::String(text.to_owned()),
    }
}

fn base64_of(blob: &Blob) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(blob.as_ref())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn json_round_trips_through_attributes() {
        let value = json!({"s": "x", "n": 42, "f": 1.5, "b": true, "z": null, "l": [1, "two"], "m": {"k": "v"}});
        assert_eq!(to_json(&to_attribute(&value)).0, value);
    }

    #[test]
    fn numbers_too_precise_for_json_stay_exact_strings() {
        assert_eq!(to_json(&AttributeValue::N("12345678901234567890123".into())).0, json!("12345678901234567890123"));
        assert_eq!(to_json(&AttributeValue::N("0.1".into())).0, json!(0.1));
    }

    #[test]
    fn binary_reads_as_base64() {
        assert_eq!(to_json(&AttributeValue::B(Blob::new(b"hello".to_vec()))), (json!("aGVsbG8="), "B"));
    }
}
