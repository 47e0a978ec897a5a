use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;
use heimdall_domain::JobId;
use heimdall_ports::{Artifact, ArtifactReader, ArtifactStore, ArtifactWriter, ByteRange, StoreError};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio_util::io::ReaderStream;

const READ_CHUNK_BYTES: usize = 64 * 1024;

/// Artifacts as files: `<root>/<job id>/stdout`, `stderr`, `result.json`. Logs are written in
/// place so they can be followed while the job runs; a result appears whole (written aside,
/// then renamed) so a reader never sees half of one.
pub struct FsArtifactStore {
    root: PathBuf,
}

impl FsArtifactStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn path(&self, job: JobId, artifact: Artifact) -> PathBuf {
        self.root.join(job.to_string()).join(artifact.file_name())
    }

    /// `<root>/<job>/attempt-<n>/<artifact>`: what an earlier attempt wrote.
    fn archived_path(&self, job: JobId, attempt: u32, artifact: Artifact) -> PathBuf {
        self.root.join(job.to_string()).join(format!("attempt-{attempt}")).join(artifact.file_name())
    }
}

fn unavailable(action: &str, path: &Path, error: std::io::Error) -> StoreError {
    StoreError::Unavailable(format!("could not {action} {}: {error}", path.display()))
}

#[async_trait]
impl ArtifactStore for FsArtifactStore {
    async fn create(&self, job: JobId, artifact: Artifact) -> Result<Box<dyn ArtifactWriter>, StoreError> {
        let final_path = self.path(job, artifact);
        let folder = final_path.parent().expect("artifact paths have a job folder");
        tokio::fs::create_dir_all(folder)
            .await
            .map_err(|e| unavailable("create", folder, e))?;
        let write_path = match artifact {
            Artifact::Result => final_path.with_extension("json.partial"),
            Artifact::Stdout | Artifact::Stderr => final_path.clone(),
        };
        let file = tokio::fs::File::create(&write_path)
            .await
            .map_err(|e| unavailable("create", &write_path, e))?;
        Ok(Box::new(FileWriter { file, write_path, final_path, written: 0 }))
    }

    async fn open_range(&self, job: JobId, artifact: Artifact, range: ByteRange) -> Result<Option<ArtifactReader>, StoreError> {
        open_file(self.path(job, artifact), range).await
    }

    async fn archive_attempt(&self, job: JobId, attempt: u32) -> Result<(), StoreError> {
        for artifact in heimdall_ports::artifact_store::ARTIFACTS {
            let (from, to) = (self.path(job, artifact), self.archived_path(job, attempt, artifact));
            let folder = to.parent().expect("archived paths have a folder");
            tokio::fs::create_dir_all(folder).await.map_err(|e| unavailable("create", folder, e))?;
            match tokio::fs::rename(&from, &to).await {
                Err(error) if error.kind() != ErrorKind::NotFound => return Err(unavailable("archive", &from, error)),
                _ => {}
            }
        }
        Ok(())
    }

    async fn open_archived(&self, job: JobId, attempt: u32, artifact: Artifact, range: ByteRange) -> Result<Option<ArtifactReader>, StoreError> {
        open_file(self.archived_path(job, attempt, artifact), range).await
    }

    async fn delete_all(&self, job: JobId) -> Result<(), StoreError> {
        let folder = self.root.join(job.to_string());
        match tokio::fs::remove_dir_all(&folder).await {
            Err(error) if error.kind() != ErrorKind::NotFound => Err(unavailable("delete", &folder, error)),
            _ => Ok(()),
        }
    }
}

/// `range` of the file at `path`; `None` when it does not exist.
async fn open_file(path: PathBuf, range: ByteRange) -> Result<Option<ArtifactReader>, StoreError> {
    let mut file = match tokio::fs::File::open(&path).await {
        Ok(file) => file,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(unavailable("open", &path, error)),
    };
    // A log still being written may grow after this: the answer is what existed now.
    let total = file.metadata().await.map_err(|error| unavailable("stat", &path, error))?.len();
    let Some((start, end)) = range.resolve(total)? else {
        return Ok(Some(ArtifactReader::empty()));
    };
    file.seek(std::io::SeekFrom::Start(start)).await.map_err(|error| unavailable("seek", &path, error))?;
    let length = end - start + 1;
    let stream = ReaderStream::with_capacity(file.take(length), READ_CHUNK_BYTES).map_err(move |error| unavailable("read", &path, error));
    Ok(Some(ArtifactReader { length: Some(length), start, total: Some(total), stream: Box::pin(stream) }))
}

struct FileWriter {
    file: tokio::fs::File,
    write_path: PathBuf,
    final_path: PathBuf,
    written: u64,
}

#[async_trait]
impl ArtifactWriter for FileWriter {
    async fn write(&mut self, chunk: Bytes) -> Result<(), StoreError> {
        self.file
            .write_all(&chunk)
            .await
            .map_err(|e| unavailable("write", &self.write_path, e))?;
        self.written += chunk.len() as u64;
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<u64, StoreError> {
        // No fsync: like the job database (SQLite WAL, synchronous=NORMAL), artifacts survive a
        // crash of the process, not of the machine; an fsync per job cost an eighth of the
        // sync path's CPU time (docs/BENCHMARKS.md).
        self.file.flush().await.map_err(|e| unavailable("flush", &self.write_path, e))?;
        if self.written == 0 {
            // Nothing written: no artifact (a missing log reads as empty), as on S3.
            tokio::fs::remove_file(&self.write_path).await.map_err(|e| unavailable("remove", &self.write_path, e))?;
            return Ok(0);
        }
        if self.write_path != self.final_path {
            tokio::fs::rename(&self.write_path, &self.final_path)
                .await
                .map_err(|e| unavailable("rename", &self.write_path, e))?;
        }
        Ok(self.written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;


    #[tokio::test]
    async fn a_log_is_readable_while_it_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsArtifactStore::new(dir.path());
        let job = JobId::new();
        let mut writer = store.create(job, Artifact::Stderr).await.unwrap();
        writer.write(Bytes::from_static(b"partial")).await.unwrap();
        let reader = store.open(job, Artifact::Stderr).await.unwrap().unwrap();
        assert_eq!(reader.read_all().await.unwrap(), b"partial");
    }

}
