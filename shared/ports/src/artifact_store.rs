use std::fmt;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use heimdall_domain::JobId;

use crate::errors::StoreError;

/// The files a job leaves behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Artifact {
    Stdout,
    Stderr,
    /// The result table as JSON (`{"columns": …, "data": …}`).
    Result,
}

impl Artifact {
    /// The file (or object) name under the job's folder (or key prefix).
    pub fn file_name(self) -> &'static str {
        match self {
            Artifact::Stdout => "stdout",
            Artifact::Stderr => "stderr",
            Artifact::Result => "result.json",
        }
    }
}

impl fmt::Display for Artifact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.file_name())
    }
}

/// A job's stdout, stderr and result: written as streams while the job runs (never held whole
/// in memory), read back as streams.
#[async_trait]
pub trait ArtifactStore: Send + Sync {
    /// Starts (or restarts, truncating) the artifact.
    async fn create(&self, job: JobId, artifact: Artifact) -> Result<Box<dyn ArtifactWriter>, StoreError>;

    /// Reads what has been written so far; `None` when the artifact was never created.
    async fn open(&self, job: JobId, artifact: Artifact) -> Result<Option<ArtifactReader>, StoreError>;
}

/// An artifact being written. Chunks become visible to readers no later than `finish`.
#[async_trait]
pub trait ArtifactWriter: Send {
    async fn write(&mut self, chunk: Bytes) -> Result<(), StoreError>;

    /// Completes the artifact and returns its size in bytes.
    async fn finish(self: Box<Self>) -> Result<u64, StoreError>;
}

/// An artifact being read: its size when known up front, and its bytes.
pub struct ArtifactReader {
    pub length: Option<u64>,
    pub stream: BoxStream<'static, Result<Bytes, StoreError>>,
}

impl ArtifactReader {
    /// Reads the rest into memory: for small artifacts (a result to answer inline, tests).
    pub async fn read_all(self) -> Result<Vec<u8>, StoreError> {
        use futures::TryStreamExt;
        let chunks: Vec<Bytes> = self.stream.try_collect().await?;
        Ok(chunks.concat())
    }
}

/// Writes a whole small artifact (a result, a message) in one call.
pub async fn write_whole(
    store: &dyn ArtifactStore,
    job: JobId,
    artifact: Artifact,
    bytes: Bytes,
) -> Result<u64, StoreError> {
    let mut writer = store.create(job, artifact).await?;
    writer.write(bytes).await?;
    writer.finish().await
}
