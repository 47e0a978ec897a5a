//! What fires a trigger: an event in EventBridge's shape (S3 object-created notifications and
//! files in the local watch folder are put in that shape too, so one pattern language matches
//! them all), or a schedule's time.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde_json::{Value, json};

/// An event a trigger may answer.
#[derive(Debug, Clone, PartialEq)]
pub enum TriggerEvent {
    /// An event as EventBridge delivers it (`id`, `time`, `source`, `detail-type`, `detail`, …).
    Event(BusEvent),
    /// The schedule of the trigger named `trigger` came due at `time`.
    Scheduled { trigger: String, time: DateTime<Utc> },
}

/// An event in EventBridge's shape, with its id and time read out.
#[derive(Debug, Clone, PartialEq)]
pub struct BusEvent {
    pub id: String,
    pub time: DateTime<Utc>,
    pub body: Value,
}

impl BusEvent {
    /// Reads an EventBridge event; the message says which field is missing or malformed.
    pub fn parse(body: Value) -> Result<Self, String> {
        let id = body.get("id").and_then(Value::as_str).filter(|id| !id.is_empty()).ok_or("the event has no `id`")?;
        let time = match body.get("time") {
            Some(Value::String(text)) => DateTime::parse_from_rfc3339(text)
                .map(|time| time.with_timezone(&Utc))
                .map_err(|error| format!("the event's `time` `{text}` is not RFC 3339: {error}"))?,
            // Some emulators hand epoch seconds over.
            Some(Value::Number(seconds)) => seconds
                .as_f64()
                .and_then(|s| Utc.timestamp_millis_opt((s * 1000.0) as i64).single())
                .ok_or("the event's `time` is out of range")?,
            _ => return Err("the event has no `time`".into()),
        };
        for field in ["source", "detail-type"] {
            if !body.get(field).is_some_and(Value::is_string) {
                return Err(format!("the event has no `{field}`"));
            }
        }
        Ok(Self { id: id.to_owned(), time, body })
    }

    /// An S3 object-created event, in the shape S3 sends to EventBridge.
    pub fn object_created(id: String, time: DateTime<Utc>, bucket: &str, key: &str, size: u64) -> Self {
        let body = json!({
            "version": "0",
            "id": id,
            "detail-type": "Object Created",
            "source": "aws.s3",
            "time": time.to_rfc3339_opts(SecondsFormat::Secs, true),
            "resources": [format!("arn:aws:s3:::{bucket}")],
            "detail": {"version": "0", "bucket": {"name": bucket}, "object": {"key": key, "size": size}, "reason": "PutObject"}
        });
        Self { id, time, body }
    }

    /// The bucket, key and size when this is an S3 object-created event.
    pub fn created_object(&self) -> Option<(&str, &str, Option<u64>)> {
        if self.body.get("source")? != "aws.s3" || self.body.get("detail-type")? != "Object Created" {
            return None;
        }
        let detail = self.body.get("detail")?;
        let bucket = detail.pointer("/bucket/name")?.as_str()?;
        let key = detail.pointer("/object/key")?.as_str()?;
        Some((bucket, key, detail.pointer("/object/size").and_then(Value::as_u64)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_eventbridge_event_is_read_with_a_text_or_numeric_time() {
        let text = BusEvent::parse(json!({"id": "1", "time": "2026-11-25T02:00:00Z", "source": "s", "detail-type": "d"})).unwrap();
        assert_eq!(text.time.timestamp(), 1_795_572_000);
        let number = BusEvent::parse(json!({"id": "1", "time": 1_795_572_000.5, "source": "s", "detail-type": "d"})).unwrap();
        assert_eq!(number.time.timestamp_millis(), 1_795_572_000_500);
    }

    #[test]
    fn a_malformed_event_names_the_field() {
        assert!(BusEvent::parse(json!({"time": "2026-11-25T02:00:00Z"})).unwrap_err().contains("`id`"));
        assert!(BusEvent::parse(json!({"id": "1", "time": "yesterday"})).unwrap_err().contains("not RFC 3339"));
        assert!(BusEvent::parse(json!({"id": "1", "time": "2026-11-25T02:00:00Z"})).unwrap_err().contains("`source`"));
    }

    #[test]
    fn an_object_created_event_reads_back_its_object() {
        let event = BusEvent::object_created("e".into(), Utc::now(), "landing", "in/a.csv", 12);
        assert_eq!(event.created_object(), Some(("landing", "in/a.csv", Some(12))));
        assert_eq!(BusEvent::parse(event.body.clone()).unwrap().id, "e");
    }
}
