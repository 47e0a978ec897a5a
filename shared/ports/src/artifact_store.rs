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
    async fn open(&self, job: JobId, artifact: Artifact) -> Result<Option<ArtifactReader>, StoreError> {
        self.open_range(job, artifact, ByteRange::All).await
    }

    /// Reads `range` of what has been written so far (`RangeNotSatisfiable` when it starts past
    /// the end); `None` when the artifact was never created.
    async fn open_range(&self, job: JobId, artifact: Artifact, range: ByteRange) -> Result<Option<ArtifactReader>, StoreError>;

    /// Deletes every artifact of `job` (retention), earlier attempts' included; none is fine.
    async fn delete_all(&self, job: JobId) -> Result<(), StoreError>;

    /// Keeps what attempt `attempt` of `job` wrote (stdout, stderr, result) aside as that
    /// attempt's, before the next attempt writes afresh; nothing written is fine.
    async fn archive_attempt(&self, job: JobId, attempt: u32) -> Result<(), StoreError>;

    /// `range` of what attempt `attempt` wrote, kept by [`ArtifactStore::archive_attempt`];
    /// `None` when it wrote none of it.
    async fn open_archived(&self, job: JobId, attempt: u32, artifact: Artifact, range: ByteRange) -> Result<Option<ArtifactReader>, StoreError>;
}

/// Every artifact kind.
pub const ARTIFACTS: [Artifact; 3] = [Artifact::Stdout, Artifact::Stderr, Artifact::Result];

/// Which bytes of an artifact to read (HTTP's single byte ranges).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    All,
    /// From this offset to the end.
    From(u64),
    /// From the first offset to the second, inclusive (clipped to the end).
    Between(u64, u64),
    /// The last this many bytes.
    Last(u64),
}

impl ByteRange {
    /// The first and last offsets (inclusive) this range means in `total` bytes; `None` for an
    /// empty answer (`All` of nothing). Errors when nothing of it exists.
    pub fn resolve(self, total: u64) -> Result<Option<(u64, u64)>, StoreError> {
        let unsatisfiable = StoreError::RangeNotSatisfiable { total };
        match self {
            ByteRange::All if total == 0 => Ok(None),
            ByteRange::All => Ok(Some((0, total - 1))),
            ByteRange::From(start) | ByteRange::Between(start, _) if start >= total => Err(unsatisfiable),
            ByteRange::From(start) => Ok(Some((start, total - 1))),
            ByteRange::Between(start, end) if end < start => Err(unsatisfiable),
            ByteRange::Between(start, end) => Ok(Some((start, end.min(total - 1)))),
            ByteRange::Last(count) if count == 0 || total == 0 => Err(unsatisfiable),
            ByteRange::Last(count) => Ok(Some((total.saturating_sub(count), total - 1))),
        }
    }

    /// Parses an HTTP `Range` header of one byte range (`bytes=0-99`, `bytes=100-`,
    /// `bytes=-500`); `None` for anything else, which HTTP lets a server ignore.
    pub fn from_header(value: &str) -> Option<Self> {
        let spec = value.trim().strip_prefix("bytes=")?;
        if spec.contains(',') {
            return None;
        }
        let (start, end) = spec.split_once('-')?;
        let number = |text: &str| text.trim().parse::<u64>().ok();
        match (start.trim().is_empty(), end.trim().is_empty()) {
            (true, false) => Some(ByteRange::Last(number(end)?)),
            (false, true) => Some(ByteRange::From(number(start)?)),
            (false, false) => Some(ByteRange::Between(number(start)?, number(end)?)),
            (true, true) => None,
        }
    }
}

/// An artifact being written. Chunks become visible to readers no later than `finish`.
#[async_trait]
pub trait ArtifactWriter: Send {
    async fn write(&mut self, chunk: Bytes) -> Result<(), StoreError>;

    /// Makes everything written so far readable, for a reader following a running job. Stores
    /// whose writes are readable at once (files) have nothing to do.
    async fn publish(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Completes the artifact and returns its size in bytes.
    async fn finish(self: Box<Self>) -> Result<u64, StoreError>;
}

/// An artifact being read: how many bytes the stream holds when known up front, where they
/// start, the artifact's whole size when known, and the bytes.
pub struct ArtifactReader {
    pub length: Option<u64>,
    /// The offset of the first byte of `stream` in the artifact.
    pub start: u64,
    /// The artifact's size, whatever part is read.
    pub total: Option<u64>,
    pub stream: BoxStream<'static, Result<Bytes, StoreError>>,
}

impl ArtifactReader {
    /// Reads the rest into memory: for small artifacts (a result to answer inline, tests).
    pub async fn read_all(self) -> Result<Vec<u8>, StoreError> {
        use futures::TryStreamExt;
        let chunks: Vec<Bytes> = self.stream.try_collect().await?;
        Ok(chunks.concat())
    }

    /// `bytes`, whole: an artifact kept elsewhere than the store (a result in the job's record).
    pub fn whole(bytes: Bytes) -> Self {
        let length = bytes.len() as u64;
        Self { length: Some(length), start: 0, total: Some(length), stream: Box::pin(futures::stream::once(async move { Ok(bytes) })) }
    }

    /// Nothing: an artifact never written, read as empty.
    pub fn empty() -> Self {
        Self { length: Some(0), start: 0, total: Some(0), stream: Box::pin(futures::stream::empty()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_resolve_like_http_byte_ranges() {
        assert_eq!(ByteRange::All.resolve(10).unwrap(), Some((0, 9)));
        assert_eq!(ByteRange::All.resolve(0).unwrap(), None);
        assert_eq!(ByteRange::From(4).resolve(10).unwrap(), Some((4, 9)));
        assert_eq!(ByteRange::Between(2, 100).resolve(10).unwrap(), Some((2, 9)));
        assert_eq!(ByteRange::Last(3).resolve(10).unwrap(), Some((7, 9)));
        assert_eq!(ByteRange::Last(30).resolve(10).unwrap(), Some((0, 9)));
        for unsatisfiable in [ByteRange::From(10), ByteRange::Between(5, 4), ByteRange::Last(0)] {
            assert!(matches!(unsatisfiable.resolve(10), Err(StoreError::RangeNotSatisfiable { total: 10 })), "{unsatisfiable:?}");
        }
    }

    #[test]
    fn one_byte_range_headers_are_read_and_others_ignored() {
        assert_eq!(ByteRange::from_header("bytes=0-99"), Some(ByteRange::Between(0, 99)));
        assert_eq!(ByteRange::from_header("bytes=100-"), Some(ByteRange::From(100)));
        assert_eq!(ByteRange::from_header("bytes=-500"), Some(ByteRange::Last(500)));
        for ignored in ["bytes=0-1,5-6", "items=0-1", "bytes=-", "bytes=a-b"] {
            assert_eq!(ByteRange::from_header(ignored), None, "{ignored}");
        }
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
