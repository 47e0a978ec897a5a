//! What only the S3 artifact store does (its keys, multipart uploads, published pieces of a
//! running log); what every artifact store does is the contract in `tests/contract/`.

use bytes::Bytes;
use heimdall_adapters_aws::{S3ArtifactStore, s3_client};
use heimdall_domain::JobId;
use heimdall_ports::{Artifact, ArtifactStore};
use heimdall_tests::emulator::emulator;

use crate::support::unique;

async fn store() -> S3ArtifactStore {
    let config = emulator().sdk_config().await;
    let client = s3_client(&config);
    let bucket = unique("artifacts");
    client.create_bucket().bucket(&bucket).send().await.unwrap();
    S3ArtifactStore::new(client, bucket).with_prefix("heimdall/")
}


#[tokio::test]
async fn a_jobs_artifacts_are_objects_under_its_prefix_an_earlier_attempts_beside_them() {
    let store = store().await;
    let job = JobId::new();
    heimdall_ports::artifact_store::write_whole(&store, job, Artifact::Stdout, Bytes::from_static(b"first\n")).await.unwrap();
    store.archive_attempt(job, 1).await.unwrap();
    assert_eq!(store.key(job, Artifact::Stdout), format!("heimdall/jobs/{job}/stdout"));
    assert_eq!(store.archived_key(job, 1, Artifact::Stdout), format!("heimdall/jobs/{job}/attempt-1/stdout"));
    let config = emulator().sdk_config().await;
    let listed = s3_client(&config).list_objects_v2().bucket(store.bucket()).prefix(format!("heimdall/jobs/{job}/")).send().await.unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, [store.archived_key(job, 1, Artifact::Stdout).as_str()]);
}

#[tokio::test]
async fn a_log_larger_than_one_part_goes_up_in_parts_and_reads_back_byte_for_byte() {
    let store = store().await.with_part_bytes(5 * 1024 * 1024);
    let job = JobId::new();
    // 12 MiB + 7 bytes in 64 KiB chunks: two full 5 MiB parts and a last, smaller one.
    let total = 12 * 1024 * 1024 + 7;
    let pattern: Vec<u8> = (0..total).map(|i| (i % 251) as u8).collect();
    let mut writer = store.create(job, Artifact::Stderr).await.unwrap();
    for chunk in pattern.chunks(64 * 1024) {
        writer.write(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    assert_eq!(writer.finish().await.unwrap(), total as u64);

    let reader = store.open(job, Artifact::Stderr).await.unwrap().unwrap();
    assert_eq!(reader.length, Some(total as u64));
    assert!(reader.read_all().await.unwrap() == pattern, "the object differs from what was written");
}

#[tokio::test]
async fn a_log_is_readable_while_it_is_written_once_published_and_whole_at_the_end() {
    use heimdall_ports::ByteRange;
    let store = store().await;
    let job = JobId::new();
    let mut writer = store.create(job, Artifact::Stdout).await.unwrap();
    writer.write(Bytes::from_static(b"hello ")).await.unwrap();
    // Written but not published: nothing to read yet.
    assert!(store.open(job, Artifact::Stdout).await.unwrap().is_none());

    writer.publish().await.unwrap();
    let reader = store.open(job, Artifact::Stdout).await.unwrap().unwrap();
    assert_eq!((reader.total, reader.length), (Some(6), Some(6)));
    assert_eq!(reader.read_all().await.unwrap(), b"hello ");

    writer.write(Bytes::from_static(b"world")).await.unwrap();
    writer.publish().await.unwrap();
    // A follower asks from where it was; a range across the two pieces reads across them.
    let followed = store.open_range(job, Artifact::Stdout, ByteRange::From(6)).await.unwrap().unwrap();
    assert_eq!((followed.start, followed.total), (6, Some(11)));
    assert_eq!(followed.read_all().await.unwrap(), b"world");
    let across = store.open_range(job, Artifact::Stdout, ByteRange::Between(4, 7)).await.unwrap().unwrap();
    assert_eq!(across.read_all().await.unwrap(), b"o wo");
    assert!(store.open_range(job, Artifact::Stdout, ByteRange::From(11)).await.is_err(), "nothing past the end");

    assert_eq!(writer.finish().await.unwrap(), 11);
    assert_eq!(store.open(job, Artifact::Stdout).await.unwrap().unwrap().read_all().await.unwrap(), b"hello world");
    // The pieces are gone once the whole object exists.
    let config = emulator().sdk_config().await;
    let listed = s3_client(&config).list_objects_v2().bucket(store.bucket()).prefix(format!("{}.live/", store.key(job, Artifact::Stdout))).send().await.unwrap();
    assert!(listed.contents().is_empty(), "{:?}", listed.contents());
}
