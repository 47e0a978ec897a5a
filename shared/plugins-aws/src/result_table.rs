use heimdall_domain::{JobResult, ResultColumn};
use serde_json::Value;

/// Rows of named fields → a result table whose columns are the union of the names, in the
/// order first seen; a row without a field has null there. A column's type is the first
/// non-null type seen (`NULL` if none).
#[derive(Debug, Default)]
pub struct ResultTable {
    columns: Vec<ResultColumn>,
    rows: Vec<Vec<(usize, Value)>>,
}

impl ResultTable {
    pub fn push_row(&mut self, fields: impl IntoIterator<Item = (String, Value, &'static str)>) {
        let mut row = Vec::new();
        for (name, value, type_name) in fields {
            let index = match self.columns.iter().position(|c| c.name == name) {
                Some(index) => index,
                None => {
                    self.columns.push(ResultColumn { name, column_type: "NULL".into() });
                    self.columns.len() - 1
                }
            };
            if self.columns[index].column_type == "NULL" && !value.is_null() {
                self.columns[index].column_type = type_name.to_owned();
            }
            row.push((index, value));
        }
        self.rows.push(row);
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn into_result(self) -> JobResult {
        let width = self.columns.len();
        let data = self
            .rows
            .into_iter()
            .map(|cells| {
                let mut row = vec![Value::Null; width];
                for (index, value) in cells {
                    row[index] = value;
                }
                row
            })
            .collect();
        JobResult { columns: self.columns, data }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn columns_are_the_union_of_fields_in_first_seen_order() {
        let mut table = ResultTable::default();
        table.push_row([("id".into(), json!("a"), "S"), ("n".into(), Value::Null, "NULL")]);
        table.push_row([("n".into(), json!(2), "N"), ("extra".into(), json!(true), "BOOL")]);
        let result = table.into_result();
        let columns: Vec<(&str, &str)> = result.columns.iter().map(|c| (c.name.as_str(), c.column_type.as_str())).collect();
        assert_eq!(columns, [("id", "S"), ("n", "N"), ("extra", "BOOL")]);
        assert_eq!(result.data, vec![vec![json!("a"), Value::Null, Value::Null], vec![Value::Null, json!(2), json!(true)]]);
    }
}
