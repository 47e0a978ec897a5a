use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use bytes::{Bytes, BytesMut};
use heimdall_domain::JobId;
use heimdall_ports::{error_chain, Artifact, ArtifactReader, ArtifactStore, ArtifactWriter, ByteRange, StoreError};


/// S3's smallest part (all but the last part of a multipart upload).
pub const MIN_PART_BYTES: usize = 5 * 1024 * 1024;
const DEFAULT_PART_BYTES: usize = 8 * 1024 * 1024;

/// Artifacts as S3 objects: `<prefix>jobs/<job id>/stdout`, `stderr`, `result.json`. Writes
/// stream as a multipart upload, one part at a time (memory stays at one part per artifact);
/// an artifact smaller than a part is one `PutObject`. Reads stream the object's body.
#[derive(Clone)]
pub struct S3ArtifactStore {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
    part_bytes: usize,
}

fn unavailable(operation: &str, error: &(dyn std::error::Error + 'static)) -> StoreError {
    StoreError::Unavailable(format!("S3 {operation}: {}", error_chain(error)))
}

impl S3ArtifactStore {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self { client, bucket: bucket.into(), prefix: String::new(), part_bytes: DEFAULT_PART_BYTES }
    }

    /// Puts every key under `prefix` (e.g. `heimdall/`).
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets the multipart part size (at least [`MIN_PART_BYTES`]).
    pub fn with_part_bytes(mut self, part_bytes: usize) -> Self {
        self.part_bytes = part_bytes.max(MIN_PART_BYTES);
        self
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn key(&self, job: JobId, artifact: Artifact) -> String {
        format!("{}jobs/{job}/{}", self.prefix, artifact.file_name())
    }
}

#[async_trait]
impl ArtifactStore for S3ArtifactStore {
    async fn create(&self, job: JobId, artifact: Artifact) -> Result<Box<dyn ArtifactWriter>, StoreError> {
        Ok(Box::new(S3Writer {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: self.key(job, artifact),
            part_bytes: self.part_bytes,
            buffer: BytesMut::new(),
            upload_id: None,
            parts: Vec::new(),
            written: 0,
            unpublished: BytesMut::new(),
            published: 0,
        }))
    }

    async fn delete_all(&self, job: JobId) -> Result<(), StoreError> {
        let keys: Vec<String> = objects_under(&self.client, &self.bucket, &format!("{}jobs/{job}/", self.prefix))
            .await?
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        delete_keys(&self.client, &self.bucket, &keys).await
    }

    async fn open_range(&self, job: JobId, artifact: Artifact, range: ByteRange) -> Result<Option<ArtifactReader>, StoreError> {
        self.open_key(self.key(job, artifact), range).await
    }

    /// Copies each artifact to its attempt's key, then deletes the original.
    async fn archive_attempt(&self, job: JobId, attempt: u32) -> Result<(), StoreError> {
        for artifact in heimdall_ports::artifact_store::ARTIFACTS {
            let (from, to) = (self.key(job, artifact), self.archived_key(job, attempt, artifact));
            heimdall_ports::usage::record(|usage| usage.s3_puts += 1.0);
            let copied = self.client.copy_object().bucket(&self.bucket).copy_source(format!("{}/{from}", self.bucket)).key(&to).send().await;
            match copied {
                Ok(_) => {
                    self.client.delete_object().bucket(&self.bucket).key(&from).send().await.map_err(|e| unavailable("DeleteObject", &e))?;
                }
                // Never written: nothing to keep.
                Err(error) if error.raw_response().is_some_and(|response| response.status().as_u16() == 404) => {}
                Err(error) => return Err(unavailable("CopyObject", &error)),
            }
        }
        Ok(())
    }

    async fn open_archived(&self, job: JobId, attempt: u32, artifact: Artifact, range: ByteRange) -> Result<Option<ArtifactReader>, StoreError> {
        self.open_key(self.archived_key(job, attempt, artifact), range).await
    }
}

impl S3ArtifactStore {
    /// `<prefix>jobs/<job id>/attempt-<n>/<artifact>`: what an earlier attempt wrote.
    pub fn archived_key(&self, job: JobId, attempt: u32, artifact: Artifact) -> String {
        format!("{}jobs/{job}/attempt-{attempt}/{}", self.prefix, artifact.file_name())
    }

    /// `range` of the object `key`, or of its published pieces while it is written.
    async fn open_key(&self, key: String, range: ByteRange) -> Result<Option<ArtifactReader>, StoreError> {
        let header = match range {
            ByteRange::All => None,
            ByteRange::From(start) => Some(format!("bytes={start}-")),
            ByteRange::Between(start, end) => Some(format!("bytes={start}-{end}")),
            ByteRange::Last(count) => Some(format!("bytes=-{count}")),
        };
        heimdall_ports::usage::record(|usage| usage.s3_gets += 1.0);
        let result = self.client.get_object().bucket(&self.bucket).key(&key).set_range(header).send().await;
        let output = match result {
            Ok(output) => output,
            // Not finished: what the writer has published so far, if anything.
            Err(error) if error.as_service_error().is_some_and(|e| e.is_no_such_key()) => return self.open_live(&key, range).await,
            Err(error) if error.raw_response().is_some_and(|response| response.status().as_u16() == 416) => {
                heimdall_ports::usage::record(|usage| usage.s3_gets += 1.0);
                let head = self.client.head_object().bucket(&self.bucket).key(&key).send().await.map_err(|e| unavailable("HeadObject", &e))?;
                let total = head.content_length().and_then(|length| u64::try_from(length).ok()).unwrap_or(0);
                return Err(StoreError::RangeNotSatisfiable { total });
            }
            Err(error) => return Err(unavailable("GetObject", &error)),
        };
        let length = output.content_length().and_then(|length| u64::try_from(length).ok());
        // `Content-Range: bytes START-END/TOTAL` when a range was asked.
        let (start, total) = match output.content_range().and_then(parse_content_range) {
            Some((start, total)) => (start, Some(total)),
            None => (0, length),
        };
        Ok(Some(ArtifactReader { length, start, total, stream: body_stream(output.body) }))
    }
}

/// An object's body as a stream of chunks.
fn body_stream(body: ByteStream) -> BoxStream<'static, Result<Bytes, StoreError>> {
    Box::pin(futures::stream::unfold(Some(body), |body| async move {
        let mut body: ByteStream = body?;
        match body.try_next().await {
            Ok(Some(chunk)) => Some((Ok(chunk), Some(body))),
            Ok(None) => None,
            Err(error) => Some((Err(unavailable("GetObject body", &error)), None)),
        }
    }))
}

/// Where a running log's published pieces are: `<key>.live/<offset, 20 digits>`.
fn live_prefix(key: &str) -> String {
    format!("{key}.live/")
}

/// Every object under `prefix` (key, size).
async fn objects_under(client: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Result<Vec<(String, u64)>, StoreError> {
    let mut objects = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_continuation_token(token.take())
            .send()
            .await
            .map_err(|error| unavailable("ListObjectsV2", &error))?;
        for object in page.contents() {
            let Some(key) = object.key() else { continue };
            objects.push((key.to_owned(), object.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0)));
        }
        match page.next_continuation_token() {
            Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_owned()),
            _ => return Ok(objects),
        }
    }
}

/// Deletes `keys`, 1,000 a call (DeleteObjects' most).
async fn delete_keys(client: &aws_sdk_s3::Client, bucket: &str, keys: &[String]) -> Result<(), StoreError> {
    for batch in keys.chunks(1000) {
        let objects = batch.iter().filter_map(|key| ObjectIdentifier::builder().key(key).build().ok()).collect();
        let delete = Delete::builder().set_objects(Some(objects)).quiet(true).build().map_err(|error| unavailable("DeleteObjects", &error))?;
        client.delete_objects().bucket(bucket).delete(delete).send().await.map_err(|error| unavailable("DeleteObjects", &error))?;
    }
    Ok(())
}

/// The published pieces of `key` (offset, size, object key), in order.
async fn live_pieces(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<Vec<(u64, u64, String)>, StoreError> {
    let prefix = live_prefix(key);
    let mut pieces: Vec<(u64, u64, String)> = objects_under(client, bucket, &prefix)
        .await?
        .into_iter()
        .filter_map(|(piece_key, size)| Some((piece_key[prefix.len()..].parse::<u64>().ok()?, size, piece_key)))
        .collect();
    pieces.sort();
    Ok(pieces)
}

impl S3ArtifactStore {
    /// `range` of a log still being written, from its published pieces; `None` when none is.
    async fn open_live(&self, key: &str, range: ByteRange) -> Result<Option<ArtifactReader>, StoreError> {
        let pieces = live_pieces(&self.client, &self.bucket, key).await?;
        let Some((last_offset, last_size, _)) = pieces.last() else { return Ok(None) };
        let total = last_offset + last_size;
        let Some((start, end)) = range.resolve(total)? else { return Ok(Some(ArtifactReader::empty())) };
        // Each piece overlapping [start, end], as the bytes of it to read.
        let wanted: Vec<(String, u64, u64)> = pieces
            .into_iter()
            .filter(|(offset, size, _)| *size > 0 && *offset <= end && offset + size > start)
            .map(|(offset, size, piece_key)| (piece_key, start.max(offset) - offset, end.min(offset + size - 1) - offset))
            .collect();
        let client = self.client.clone();
        let bucket = self.bucket.clone();
        let stream = futures::stream::iter(wanted)
            .then(move |(piece_key, from, to)| {
                let request = client.get_object().bucket(&bucket).key(piece_key).range(format!("bytes={from}-{to}"));
                async move { request.send().await.map(|output| body_stream(output.body)).map_err(|error| unavailable("GetObject", &error)) }
            })
            .try_flatten();
        Ok(Some(ArtifactReader { length: Some(end - start + 1), start, total: Some(total), stream: Box::pin(stream) }))
    }
}

/// The start and total of `bytes START-END/TOTAL`.
fn parse_content_range(value: &str) -> Option<(u64, u64)> {
    let (span, total) = value.strip_prefix("bytes ")?.split_once('/')?;
    let (start, _) = span.split_once('-')?;
    Some((start.parse().ok()?, total.parse().ok()?))
}

struct S3Writer {
    client: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    part_bytes: usize,
    buffer: BytesMut,
    upload_id: Option<String>,
    parts: Vec<CompletedPart>,
    written: u64,
    /// Written since the last `publish`.
    unpublished: BytesMut,
    /// How many bytes the published pieces hold.
    published: u64,
}

impl S3Writer {
    async fn upload_part(&mut self, body: Bytes) -> Result<(), StoreError> {
        // The part, and the upload's creation or completion around it: about one request each.
        heimdall_ports::usage::record(|usage| usage.s3_puts += 1.0);
        let upload_id = match &self.upload_id {
            Some(id) => id.clone(),
            None => {
                let created = self
                    .client
                    .create_multipart_upload()
                    .bucket(&self.bucket)
                    .key(&self.key)
                    .send()
                    .await
                    .map_err(|error| unavailable("CreateMultipartUpload", &error))?;
                let id = created
                    .upload_id()
                    .ok_or_else(|| StoreError::Unavailable("S3 CreateMultipartUpload answered no upload id".into()))?
                    .to_owned();
                self.upload_id = Some(id.clone());
                id
            }
        };
        let part_number = self.parts.len() as i32 + 1;
        let uploaded = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&upload_id)
            .part_number(part_number)
            .body(ByteStream::from(body))
            .send()
            .await;
        match uploaded {
            Ok(part) => {
                self.parts.push(CompletedPart::builder().part_number(part_number).set_e_tag(part.e_tag).build());
                Ok(())
            }
            Err(error) => {
                self.abort().await;
                Err(unavailable("UploadPart", &error))
            }
        }
    }

    /// Best effort, once the whole object exists: its published pieces are no longer read.
    async fn delete_live_pieces(&self) {
        let pieces = match live_pieces(&self.client, &self.bucket, &self.key).await {
            Ok(pieces) => pieces,
            Err(error) => {
                tracing::warn!(key = %self.key, error.message = %error, "could not list a log's published pieces");
                return;
            }
        };
        let keys: Vec<String> = pieces.into_iter().map(|(_, _, key)| key).collect();
        if let Err(error) = delete_keys(&self.client, &self.bucket, &keys).await {
            tracing::warn!(key = %self.key, error.message = %error, "could not delete a log's published pieces; the bucket's lifecycle rule will");
        }
    }

    /// Best effort: an abandoned upload costs storage until a lifecycle rule removes it.
    async fn abort(&mut self) {
        if let Some(upload_id) = self.upload_id.take() {
            let aborted = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(&self.key)
                .upload_id(upload_id)
                .send()
                .await;
            if let Err(error) = aborted {
                tracing::warn!(key = %self.key, error.message = %error_chain(&error), "could not abort a multipart upload");
            }
        }
    }
}

#[async_trait]
impl ArtifactWriter for S3Writer {
    async fn write(&mut self, chunk: Bytes) -> Result<(), StoreError> {
        self.written += chunk.len() as u64;
        self.buffer.extend_from_slice(&chunk);
        self.unpublished.extend_from_slice(&chunk);
        while self.buffer.len() >= self.part_bytes {
            let part = self.buffer.split_to(self.part_bytes).freeze();
            self.upload_part(part).await?;
        }
        // A log nobody publishes still becomes readable a part at a time, and memory stays bounded.
        if self.unpublished.len() >= self.part_bytes {
            self.publish().await?;
        }
        Ok(())
    }

    /// Puts what was written since the last call as the next piece of the running log.
    async fn publish(&mut self) -> Result<(), StoreError> {
        if self.unpublished.is_empty() {
            return Ok(());
        }
        let piece = std::mem::take(&mut self.unpublished).freeze();
        let length = piece.len() as u64;
        heimdall_ports::usage::record(|usage| usage.s3_puts += 1.0);
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(format!("{}{:020}", live_prefix(&self.key), self.published))
            .body(ByteStream::from(piece))
            .send()
            .await
            .map_err(|error| unavailable("PutObject (live piece)", &error))?;
        self.published += length;
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<u64, StoreError> {
        let rest = std::mem::take(&mut self.buffer).freeze();
        let had_pieces = self.published > 0;
        if self.written == 0 && self.upload_id.is_none() && !had_pieces {
            // Nothing written: no object (a missing log reads as empty), one call fewer.
            return Ok(0);
        }
        if self.upload_id.is_none() {
            heimdall_ports::usage::record(|usage| usage.s3_puts += 1.0);
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(&self.key)
                .body(ByteStream::from(rest))
                .send()
                .await
                .map_err(|error| unavailable("PutObject", &error))?;
            if had_pieces {
                self.delete_live_pieces().await;
            }
            return Ok(self.written);
        }
        if !rest.is_empty() {
            self.upload_part(rest).await?;
        }
        let upload_id = self.upload_id.clone().expect("checked above");
        let completed = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(std::mem::take(&mut self.parts))).build())
            .send()
            .await;
        if let Err(error) = completed {
            self.abort().await;
            return Err(unavailable("CompleteMultipartUpload", &error));
        }
        if had_pieces {
            self.delete_live_pieces().await;
        }
        Ok(self.written)
    }
}
