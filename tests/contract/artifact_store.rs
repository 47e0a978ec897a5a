//! The `ArtifactStore` contract, on `FsArtifactStore` (local) and `S3ArtifactStore` (aws). How a
//! log is read while it is written differs (a file at once, S3 once a piece is published) and
//! is tested beside each adapter, as are S3's multipart uploads.

use std::sync::Arc;

use bytes::Bytes;
use heimdall_adapters_aws::{S3ArtifactStore, s3_client};
use heimdall_adapters_local::FsArtifactStore;
use heimdall_domain::JobId;
use heimdall_ports::artifact_store::write_whole;
use heimdall_ports::{Artifact, ArtifactStore, ByteRange, StoreError};
use heimdall_tests::emulator::emulator;

use crate::contract;

/// The store, and whatever must live as long as it (a temp dir).
type Store = (Arc<dyn ArtifactStore>, Option<tempfile::TempDir>);

async fn local() -> Store {
    let dir = tempfile::tempdir().unwrap();
    (Arc::new(FsArtifactStore::new(dir.path().join("jobs"))), Some(dir))
}

async fn aws() -> Store {
    let config = emulator().sdk_config().await;
    let client = s3_client(&config);
    let bucket = format!("artifacts-{}", JobId::new());
    client.create_bucket().bucket(&bucket).send().await.unwrap();
    (Arc::new(S3ArtifactStore::new(client, bucket).with_prefix("heimdall/")), None)
}

contract!(
    a_log_written_in_chunks_reads_back_whole_with_its_length,
    a_missing_artifact_is_none_and_an_empty_one_leaves_none,
    a_result_is_invisible_until_finished,
    byte_ranges_read_the_tail_a_span_or_from_an_offset_and_past_the_end_is_refused,
    an_attempts_output_is_kept_aside_and_read_by_attempt,
    deleting_a_jobs_artifacts_removes_all_of_them_and_nothing_else,
);

async fn a_log_written_in_chunks_reads_back_whole_with_its_length((store, _dir): Store) {
    let job = JobId::new();
    let mut writer = store.create(job, Artifact::Stdout).await.unwrap();
    writer.write(Bytes::from_static(b"hello ")).await.unwrap();
    writer.write(Bytes::from_static(b"world\n")).await.unwrap();
    assert_eq!(writer.finish().await.unwrap(), 12);
    let reader = store.open(job, Artifact::Stdout).await.unwrap().unwrap();
    assert_eq!(reader.length, Some(12));
    assert_eq!(reader.read_all().await.unwrap(), b"hello world\n");
}

async fn a_missing_artifact_is_none_and_an_empty_one_leaves_none((store, _dir): Store) {
    assert!(store.open(JobId::new(), Artifact::Result).await.unwrap().is_none());
    let job = JobId::new();
    assert_eq!(store.create(job, Artifact::Stdout).await.unwrap().finish().await.unwrap(), 0);
    // No object for no output (one write fewer per silent log); readers take none as empty.
    assert!(store.open(job, Artifact::Stdout).await.unwrap().is_none());
}

async fn a_result_is_invisible_until_finished((store, _dir): Store) {
    let job = JobId::new();
    let mut writer = store.create(job, Artifact::Result).await.unwrap();
    writer.write(Bytes::from_static(b"{\"columns\":")).await.unwrap();
    assert!(store.open(job, Artifact::Result).await.unwrap().is_none());
    writer.write(Bytes::from_static(b"[],\"data\":[]}")).await.unwrap();
    writer.finish().await.unwrap();
    let reader = store.open(job, Artifact::Result).await.unwrap().unwrap();
    assert_eq!(reader.read_all().await.unwrap(), b"{\"columns\":[],\"data\":[]}");
}

async fn byte_ranges_read_the_tail_a_span_or_from_an_offset_and_past_the_end_is_refused((store, _dir): Store) {
    let job = JobId::new();
    write_whole(&*store, job, Artifact::Stdout, Bytes::from_static(b"0123456789")).await.unwrap();
    for (range, expected, start) in [
        (ByteRange::Last(3), &b"789"[..], 7),
        (ByteRange::From(4), &b"456789"[..], 4),
        (ByteRange::Between(2, 4), &b"234"[..], 2),
    ] {
        let reader = store.open_range(job, Artifact::Stdout, range).await.unwrap().unwrap();
        assert_eq!((reader.start, reader.total), (start, Some(10)), "{range:?}");
        assert_eq!(reader.read_all().await.unwrap(), expected, "{range:?}");
    }
    let past_the_end = store.open_range(job, Artifact::Stdout, ByteRange::From(10)).await;
    assert!(matches!(past_the_end, Err(StoreError::RangeNotSatisfiable { total: 10 })), "{:?}", past_the_end.err());
}

async fn an_attempts_output_is_kept_aside_and_read_by_attempt((store, _dir): Store) {
    let job = JobId::new();
    write(&*store, job, Artifact::Stdout, "first try\n").await;
    write(&*store, job, Artifact::Stderr, "it broke\n").await;
    store.archive_attempt(job, 1).await.unwrap();
    // The next attempt starts with nothing written, and writes its own.
    assert!(store.open(job, Artifact::Stdout).await.unwrap().is_none());
    write(&*store, job, Artifact::Stdout, "second try\n").await;

    let read = |attempt: u32, artifact: Artifact| {
        let store = Arc::clone(&store);
        async move { store.open_archived(job, attempt, artifact, ByteRange::All).await.unwrap() }
    };
    assert_eq!(read(1, Artifact::Stdout).await.unwrap().read_all().await.unwrap(), b"first try\n");
    assert_eq!(read(1, Artifact::Stderr).await.unwrap().read_all().await.unwrap(), b"it broke\n");
    assert!(read(1, Artifact::Result).await.is_none(), "attempt 1 wrote no result");
    let tail = store.open_archived(job, 1, Artifact::Stdout, ByteRange::Last(4)).await.unwrap().unwrap();
    assert_eq!(tail.read_all().await.unwrap(), b"try\n");
    assert_eq!(store.open(job, Artifact::Stdout).await.unwrap().unwrap().read_all().await.unwrap(), b"second try\n");
    // Nothing written is fine to keep aside too.
    store.archive_attempt(JobId::new(), 1).await.unwrap();
}

async fn write(store: &dyn ArtifactStore, job: JobId, artifact: Artifact, text: &'static str) {
    let mut writer = store.create(job, artifact).await.unwrap();
    writer.write(Bytes::from_static(text.as_bytes())).await.unwrap();
    writer.finish().await.unwrap();
}

async fn deleting_a_jobs_artifacts_removes_all_of_them_and_nothing_else((store, _dir): Store) {
    let (gone, kept) = (JobId::new(), JobId::new());
    write(&*store, gone, Artifact::Stdout, "out\n").await;
    write(&*store, gone, Artifact::Stderr, "err\n").await;
    write(&*store, gone, Artifact::Result, r#"{"columns":[],"data":[]}"#).await;
    write(&*store, kept, Artifact::Stdout, "kept\n").await;
    // A log still being written (on S3: published pieces beside the object to be).
    let mut live = store.create(gone, Artifact::Stdout).await.unwrap();
    live.write(Bytes::from_static(b"partial")).await.unwrap();

    store.delete_all(gone).await.unwrap();
    for artifact in [Artifact::Stdout, Artifact::Stderr, Artifact::Result] {
        assert!(store.open(gone, artifact).await.unwrap().is_none(), "{artifact} of the deleted job");
    }
    let reader = store.open(kept, Artifact::Stdout).await.unwrap().expect("the other job's log");
    assert_eq!(reader.read_all().await.unwrap(), b"kept\n");
    store.delete_all(gone).await.unwrap();
    store.delete_all(JobId::new()).await.unwrap();
}
