//! Output for people: aligned tables and CSV, from rows of text.

use serde_json::Value;

/// Columns padded to their widest cell, a header row first.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        padded.join("  ").trim_end().to_owned() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// RFC 4180: fields with a comma, quote or line break are quoted, quotes doubled.
pub fn csv(header: &[String], rows: &[Vec<String>]) -> String {
    let field = |text: &str| {
        if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.to_owned() }
    };
    let line = |cells: &[String]| cells.iter().map(|c| field(c)).collect::<Vec<_>>().join(",") + "\r\n";
    let mut out = line(header);
    for row in rows {
        out.push_str(&line(row));
    }
    out
}

/// A JSON value as a cell: strings bare, null empty, the rest as JSON.
pub fn cell(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Epoch seconds as UTC `YYYY-MM-DD HH:MM:SS`.
pub fn time(value: &Value) -> String {
    value
        .as_i64()
        .and_then(|seconds| chrono::DateTime::from_timestamp(seconds, 0))
        .map(|time| time.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_table_aligns_its_columns() {
        let rows = vec![vec!["1".to_owned(), "SUCCEEDED".to_owned()], vec!["22".to_owned(), "FAILED".to_owned()]];
        assert_eq!(table(&["ID", "STATUS"], &rows), "ID  STATUS\n1   SUCCEEDED\n22  FAILED\n");
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let rows = vec![vec!["a,b".to_owned(), "say \"hi\"".to_owned(), "plain".to_owned()]];
        assert_eq!(csv(&["x".into(), "y".into(), "z".into()], &rows), "x,y,z\r\n\"a,b\",\"say \"\"hi\"\"\",plain\r\n");
    }

    #[test]
    fn cells_and_times_read_as_people_expect() {
        assert_eq!(cell(&json!("text")), "text");
        assert_eq!(cell(&json!(null)), "");
        assert_eq!(cell(&json!(1.5)), "1.5");
        assert_eq!(time(&json!(1_795_572_000)), "2026-11-25 02:00:00");
    }
}
