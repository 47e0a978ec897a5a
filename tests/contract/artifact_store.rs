//! The `ArtifactStore` contract, on `FsArtifactStore` (local) and `S3ArtifactStore` (aws).

use std::sync::Arc;

use bytes::Bytes;
use heimdall_adapters_aws::{S3ArtifactStore, s3_client};
use heimdall_adapters_local::FsArtifactStore;
use heimdall_domain::JobId;
use heimdall_ports::{Artifact, ArtifactStore};
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

contract!(deleting_a_jobs_artifacts_removes_all_of_them_and_nothing_else);

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
