use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A job's result: a table of named, typed columns and rows (Heimdall's result shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobResult {
    pub columns: Vec<ResultColumn>,
    /// Rows, each with one value (any JSON) per column.
    pub data: Vec<Vec<Value>>,
}

/// One column of a result: its name and the source's type name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ResultColumn {
    pub name: String,
    #[serde(rename = "type")]
    pub column_type: String,
}

impl JobResult {
    /// A one-column, one-row result of strings.
    pub fn single_string(column: &str, value: impl Into<String>) -> Self {
        Self {
            columns: vec![ResultColumn { name: column.to_owned(), column_type: "string".to_owned() }],
            data: vec![vec![Value::String(value.into())]],
        }
    }

    /// Checks every row has one value per column.
    pub fn validate(&self) -> Result<(), String> {
        let width = self.columns.len();
        match self.data.iter().position(|row| row.len() != width) {
            Some(index) => Err(format!(
                "result row {index} has {} values but there are {width} columns",
                self.data[index].len()
            )),
            None => Ok(()),
        }
    }
}
