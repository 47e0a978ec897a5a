//! Writes a result artifact (`{"columns":[…],"data":[…]}`) a partition at a time.
//!
//! A Snowflake result can be far larger than memory; its partitions are not. So the JSON is
//! written as it arrives: the head with the columns, then each partition's rows as one chunk,
//! then the closing brackets. Only the partition in hand is ever held.

use bytes::Bytes;
use heimdall_domain::{JobId, ResultColumn};
use heimdall_ports::{Artifact, ArtifactStore, ArtifactWriter, PluginError};
use serde_json::Value;

pub(crate) struct ResultStream {
    writer: Box<dyn ArtifactWriter>,
    width: usize,
    rows: u64,
}

fn encoding_error(error: serde_json::Error) -> PluginError {
    PluginError::Unavailable(format!("could not encode the result: {error}"))
}

impl ResultStream {
    /// Starts (or restarts, when `finalize` is retried) the job's result.
    pub async fn start(store: &dyn ArtifactStore, job: JobId, columns: &[ResultColumn]) -> Result<Self, PluginError> {
        let mut head = br#"{"columns":"#.to_vec();
        serde_json::to_writer(&mut head, columns).map_err(encoding_error)?;
        head.extend_from_slice(br#","data":["#);
        let mut writer = store.create(job, Artifact::Result).await?;
        writer.write(Bytes::from(head)).await?;
        Ok(Self { writer, width: columns.len(), rows: 0 })
    }

    /// Appends one partition's rows; every row must have one value per column.
    pub async fn write_rows(&mut self, rows: &[Vec<Value>], partition: usize) -> Result<(), PluginError> {
        let mut chunk = Vec::new();
        for (index, row) in rows.iter().enumerate() {
            if row.len() != self.width {
                return Err(PluginError::JobFailed {
                    message: format!(
                        "Snowflake answered row {index} of result partition {partition} with {} values for {} columns",
                        row.len(),
                        self.width
                    ),
                    exit_code: None,
                });
            }
            if self.rows > 0 {
                chunk.push(b',');
            }
            serde_json::to_writer(&mut chunk, row).map_err(encoding_error)?;
            self.rows += 1;
        }
        if !chunk.is_empty() {
            self.writer.write(Bytes::from(chunk)).await?;
        }
        Ok(())
    }

    /// Closes the JSON and the artifact; answers how many rows it holds.
    pub async fn finish(mut self) -> Result<u64, PluginError> {
        self.writer.write(Bytes::from_static(b"]}")).await?;
        self.writer.finish().await?;
        Ok(self.rows)
    }
}

#[cfg(test)]
mod tests {
    use heimdall_adapters_local::FsArtifactStore;
    use heimdall_domain::JobResult;
    use serde_json::json;

    use super::*;

    fn columns() -> Vec<ResultColumn> {
        vec![
            ResultColumn { name: "ID".into(), column_type: "fixed".into() },
            ResultColumn { name: "NAME".into(), column_type: "text".into() },
        ]
    }

    async fn read(store: &FsArtifactStore, job: JobId) -> JobResult {
        let bytes = store.open(job, Artifact::Result).await.unwrap().unwrap().read_all().await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn partitions_written_one_after_another_read_back_as_one_result() {
        // GIVEN a result stream
        let dir = tempfile::tempdir().unwrap();
        let store = FsArtifactStore::new(dir.path());
        let job = JobId::new();
        let mut stream = ResultStream::start(&store, job, &columns()).await.unwrap();
        // WHEN partitions arrive, one of them empty
        stream.write_rows(&[vec![json!("1"), json!("a")]], 0).await.unwrap();
        stream.write_rows(&[], 1).await.unwrap();
        stream.write_rows(&[vec![json!("2"), Value::Null], vec![json!("3"), json!("c")]], 2).await.unwrap();
        // THEN the result holds every row in order, cell values as Snowflake sent them
        assert_eq!(stream.finish().await.unwrap(), 3);
        let result = read(&store, job).await;
        assert_eq!(result.columns, columns());
        assert_eq!(
            result.data,
            vec![vec![json!("1"), json!("a")], vec![json!("2"), Value::Null], vec![json!("3"), json!("c")]]
        );
    }

    #[tokio::test]
    async fn an_empty_result_is_still_a_valid_result() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsArtifactStore::new(dir.path());
        let job = JobId::new();
        let stream = ResultStream::start(&store, job, &columns()).await.unwrap();
        assert_eq!(stream.finish().await.unwrap(), 0);
        assert_eq!(read(&store, job).await.data, Vec::<Vec<Value>>::new());
    }

    #[tokio::test]
    async fn a_row_of_the_wrong_width_fails_the_job_saying_where() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsArtifactStore::new(dir.path());
        let mut stream = ResultStream::start(&store, JobId::new(), &columns()).await.unwrap();
        let error = stream.write_rows(&[vec![json!("1")]], 4).await.unwrap_err();
        assert!(error.to_string().contains("row 0 of result partition 4 with 1 values for 2 columns"), "{error}");
    }
}
