//! The object store's behaviour, through its API and the files it leaves on disk.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use tokio::io::AsyncReadExt as _;

use super::*;

mod listing;

const MIB: u64 = 1 << 20;

fn open(dir: &Path) -> Arc<ObjectStore> {
    Arc::new(ObjectStore::open(dir, 64 * MIB).unwrap())
}

async fn put(store: &Arc<ObjectStore>, owner: &str, key: &str, body: &[u8]) -> ObjectMeta {
    try_put(store, owner, key, body, PutOptions::default())
        .await
        .unwrap()
}

/// Puts `body` in bucket `photos`, in chunks of 7 bytes.
async fn try_put(
    store: &Arc<ObjectStore>,
    owner: &str,
    key: &str,
    body: &[u8],
    options: PutOptions,
) -> Result<ObjectMeta, R2Error> {
    let mut pending: PendingPut = store.begin_put(owner, "photos", key, options)?;
    for chunk in body.chunks(7) {
        pending.write(chunk).await?;
    }
    pending.commit().await
}

async fn read(body: ObjectBody) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut body = body;
    body.read_to_end(&mut bytes).await.unwrap();
    bytes
}

/// The body of `key` (range `range`), or `None` when there is no such object.
async fn get(
    store: &ObjectStore,
    owner: &str,
    key: &str,
    range: Option<ByteRange>,
) -> Option<Vec<u8>> {
    match store.get(owner, "photos", key, range, None).unwrap() {
        GetOutcome::Found { body, .. } => Some(read(body).await),
        GetOutcome::NotFound => None,
        GetOutcome::NotModified { .. } => panic!("not modified without if-none-match"),
    }
}

/// The names of the blob files on disk.
fn blobs(dir: &Path) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for fan_out in std::fs::read_dir(dir.join("r2/objects")).unwrap() {
        for entry in std::fs::read_dir(fan_out.unwrap().path()).unwrap() {
            names.insert(entry.unwrap().file_name().into_string().unwrap());
        }
    }
    names
}

fn temp_files(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("r2/tmp")).unwrap().count()
}

fn keys(store: &ObjectStore, owner: &str) -> Vec<String> {
    let page = store.list(owner, "photos", ListOptions::default()).unwrap();
    page.objects.into_iter().map(|o| o.key).collect()
}

#[test]
fn the_store_and_its_handles_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send + Unpin>() {}
    send_sync::<ObjectStore>();
    send::<PendingPut>();
    send::<ObjectBody>();
}

#[tokio::test]
async fn put_then_get_returns_body_content_type_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let options = PutOptions {
        content_type: Some("text/plain".into()),
        custom_metadata: BTreeMap::from([("camera".into(), "x100".into())]),
    };
    let body = b"hello, object storage: more than one chunk of seven bytes";
    let meta = try_put(&store, "c1", "notes/a.txt", body, options)
        .await
        .unwrap();
    let sha256 = crate::store::sha256_hex(body);
    assert_eq!(meta.etag, sha256[..32]);
    assert_eq!(meta.size, body.len() as u64);
    assert_eq!(meta.content_type.as_deref(), Some("text/plain"));
    assert!(meta.uploaded_ms > 0);
    assert_eq!(blobs(dir.path()), BTreeSet::from([sha256.clone()]));
    assert!(
        dir.path()
            .join("r2/objects")
            .join(&sha256[..2])
            .join(&sha256)
            .is_file()
    );

    let head = store.head("c1", "photos", "notes/a.txt").unwrap().unwrap();
    assert_eq!(head, meta);
    match store
        .get("c1", "photos", "notes/a.txt", None, None)
        .unwrap()
    {
        GetOutcome::Found {
            meta: got,
            body: got_body,
            range,
        } => {
            assert_eq!(got, meta);
            assert_eq!(range, None);
            assert_eq!(read(got_body).await, body);
        }
        other => panic!("{other:?}"),
    }
    assert!(store.head("c1", "photos", "missing").unwrap().is_none());
    assert!(matches!(
        store.get("c1", "photos", "missing", None, None).unwrap(),
        GetOutcome::NotFound
    ));
    assert_eq!(store.used_bytes("c1").unwrap(), body.len() as u64);

    // Reopened, everything is still there.
    drop(store);
    let store = open(dir.path());
    assert_eq!(get(&store, "c1", "notes/a.txt", None).await.unwrap(), body);
    assert_eq!(
        store.head("c1", "photos", "notes/a.txt").unwrap().unwrap(),
        meta
    );
}

#[tokio::test]
async fn an_overwrite_frees_the_old_blob_and_its_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    put(&store, "c1", "k", b"the first body").await;
    put(&store, "c1", "other", b"12345").await;
    assert_eq!(store.used_bytes("c1").unwrap(), 19);
    put(&store, "c1", "k", b"second").await;
    assert_eq!(store.used_bytes("c1").unwrap(), 11);
    assert_eq!(get(&store, "c1", "k", None).await.unwrap(), b"second");
    assert_eq!(
        blobs(dir.path()),
        BTreeSet::from([
            crate::store::sha256_hex(b"second"),
            crate::store::sha256_hex(b"12345")
        ])
    );
}

#[tokio::test]
async fn identical_bodies_share_one_blob_until_the_last_key_goes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    put(&store, "c1", "a", b"same bytes").await;
    put(&store, "c1", "b", b"same bytes").await;
    put(&store, "c2", "a", b"same bytes").await;
    assert_eq!(blobs(dir.path()).len(), 1);
    assert_eq!(store.used_bytes("c1").unwrap(), 20);

    store.delete("c1", "photos", &["a".into()]).unwrap();
    assert_eq!(get(&store, "c1", "b", None).await.unwrap(), b"same bytes");
    // Overwriting a shared blob keeps it for the others.
    put(&store, "c1", "b", b"other bytes").await;
    assert_eq!(blobs(dir.path()).len(), 2);
    assert_eq!(get(&store, "c2", "a", None).await.unwrap(), b"same bytes");
    store.delete("c2", "photos", &["a".into()]).unwrap();
    store.delete("c1", "photos", &["b".into()]).unwrap();
    assert!(blobs(dir.path()).is_empty());
    assert_eq!(store.used_bytes("c1").unwrap(), 0);
}

#[tokio::test]
async fn two_owners_with_the_same_bucket_and_key_are_separate() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    put(&store, "c1", "k", b"one").await;
    put(&store, "c2", "k", b"two!").await;
    assert_eq!(get(&store, "c1", "k", None).await.unwrap(), b"one");
    assert_eq!(get(&store, "c2", "k", None).await.unwrap(), b"two!");
    assert_eq!(keys(&store, "c1"), ["k"]);
    assert!(keys(&store, "c3").is_empty());
    store.delete("c1", "photos", &["k".into()]).unwrap();
    assert_eq!(get(&store, "c1", "k", None).await, None);
    assert_eq!(get(&store, "c2", "k", None).await.unwrap(), b"two!");
    assert_eq!(store.used_bytes("c1").unwrap(), 0);
    assert_eq!(store.used_bytes("c2").unwrap(), 4);
}

#[tokio::test]
async fn ranges_serve_their_bytes_and_past_the_end_is_unsatisfiable() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    put(&store, "c1", "k", b"0123456789").await;
    let range = |offset, length| Some(ByteRange::Range { offset, length });
    let cases = [
        (range(3, None), &b"3456789"[..], (3, 7)),
        (range(3, Some(4)), b"3456", (3, 4)),
        (range(8, Some(100)), b"89", (8, 2)),
        (Some(ByteRange::Suffix(3)), b"789", (7, 3)),
        (Some(ByteRange::Suffix(50)), b"0123456789", (0, 10)),
    ];
    for (range, expected, served) in cases {
        match store.get("c1", "photos", "k", range, None).unwrap() {
            GetOutcome::Found {
                body, range: got, ..
            } => {
                assert_eq!(got, Some(served), "{range:?}");
                assert_eq!(read(body).await, expected, "{range:?}");
            }
            other => panic!("{other:?}"),
        }
    }
    for range in [
        range(10, None),
        range(11, Some(1)),
        Some(ByteRange::Suffix(0)),
    ] {
        assert!(matches!(
            store.get("c1", "photos", "k", range, None),
            Err(R2Error::RangeNotSatisfiable { size: 10 })
        ));
    }
}

#[tokio::test]
async fn if_none_match_answers_not_modified_only_for_the_etag() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let meta = put(&store, "c1", "k", b"body").await;
    let get = |tags: String| {
        store
            .get("c1", "photos", "k", Some(ByteRange::Suffix(1)), Some(&tags))
            .unwrap()
    };
    for tags in [
        meta.etag.clone(),
        format!("\"{}\"", meta.etag),
        format!("\"nope\", W/\"{}\"", meta.etag),
        "*".to_string(),
    ] {
        assert!(
            matches!(get(tags.clone()), GetOutcome::NotModified { meta: ref m } if *m == meta),
            "{tags}"
        );
    }
    for tags in ["\"0123\"".to_string(), meta.etag[..31].to_string()] {
        assert!(matches!(get(tags), GetOutcome::Found { .. }));
    }
}

#[tokio::test]
async fn delete_removes_many_keys_and_ignores_missing_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for i in 0..10 {
        put(
            &store,
            "c1",
            &format!("k{i}"),
            format!("body {i}").as_bytes(),
        )
        .await;
    }
    let doomed: Vec<String> = (0..8)
        .map(|i| format!("k{i}"))
        .chain(["never-there".into()])
        .collect();
    store.delete("c1", "photos", &doomed).unwrap();
    assert_eq!(keys(&store, "c1"), ["k8", "k9"]);
    assert_eq!(blobs(dir.path()).len(), 2);
    assert_eq!(store.used_bytes("c1").unwrap(), 12);

    let too_many: Vec<String> = (0..=MAX_DELETE_KEYS).map(|i| format!("k{i}")).collect();
    assert!(matches!(
        store.delete("c1", "photos", &too_many),
        Err(R2Error::TooManyKeys { limit: 1000 })
    ));
    assert_eq!(keys(&store, "c1"), ["k8", "k9"]);
}

#[tokio::test]
async fn a_put_over_the_quota_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(ObjectStore::open(dir.path(), 100).unwrap());
    put(&store, "c1", "first", &[1; 60]).await;

    // Stops at the chunk that crosses the quota, long before the body ends.
    let mut pending = store
        .begin_put("c1", "photos", "second", PutOptions::default())
        .unwrap();
    pending.write(&[2; 30]).await.unwrap();
    assert!(matches!(
        pending.write(&[2; 30]).await,
        Err(R2Error::QuotaExceeded { limit: 100 })
    ));
    assert!(
        pending.write(&[2; 1]).await.is_err(),
        "a failed put stays failed"
    );
    drop(pending);
    assert_eq!(temp_files(dir.path()), 0);
    assert_eq!(keys(&store, "c1"), ["first"]);
    assert_eq!(store.used_bytes("c1").unwrap(), 60);

    // Two puts that each fit but not together: the second commit fails.
    let mut a = store
        .begin_put("c1", "photos", "a", PutOptions::default())
        .unwrap();
    let mut b = store
        .begin_put("c1", "photos", "b", PutOptions::default())
        .unwrap();
    a.write(&[3; 30]).await.unwrap();
    b.write(&[4; 30]).await.unwrap();
    a.commit().await.unwrap();
    assert!(matches!(
        b.commit().await,
        Err(R2Error::QuotaExceeded { limit: 100 })
    ));
    assert_eq!(temp_files(dir.path()), 0);
    assert_eq!(blobs(dir.path()).len(), 2);
    assert_eq!(store.used_bytes("c1").unwrap(), 90);

    // Smaller puts pass, an overwrite counts only its new size, another owner is apart.
    put(&store, "c1", "small", &[5; 10]).await;
    assert!(matches!(
        try_put(&store, "c1", "more", &[6; 1], PutOptions::default()).await,
        Err(R2Error::QuotaExceeded { .. })
    ));
    put(&store, "c1", "first", &[6; 60]).await;
    put(&store, "c2", "first", &[7; 100]).await;
    assert_eq!(store.used_bytes("c1").unwrap(), 100);
}

#[tokio::test]
async fn invalid_keys_and_metadata_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let long = "k".repeat(MAX_KEY_BYTES + 1);
    for key in [long.as_str(), ""] {
        assert!(matches!(
            store.begin_put("c1", "photos", key, PutOptions::default()),
            Err(R2Error::InvalidKey(_))
        ));
        assert!(matches!(
            store.get("c1", "photos", key, None, None),
            Err(R2Error::InvalidKey(_))
        ));
    }
    put(&store, "c1", &"k".repeat(MAX_KEY_BYTES), b"longest key").await;

    let metadata = |bytes: usize| PutOptions {
        content_type: None,
        custom_metadata: BTreeMap::from([("k".into(), "v".repeat(bytes - 1))]),
    };
    assert!(matches!(
        store.begin_put("c1", "photos", "m", metadata(MAX_CUSTOM_METADATA_BYTES + 1)),
        Err(R2Error::InvalidMetadata(_))
    ));
    try_put(&store, "c1", "m", b"", metadata(MAX_CUSTOM_METADATA_BYTES))
        .await
        .unwrap();
    assert_eq!(temp_files(dir.path()), 0);
}

#[tokio::test]
async fn a_dropped_put_leaves_no_temp_file_and_no_object() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut pending = store
        .begin_put("c1", "photos", "k", PutOptions::default())
        .unwrap();
    pending.write(b"half a body").await.unwrap();
    assert_eq!(temp_files(dir.path()), 1);
    drop(pending);
    assert_eq!(temp_files(dir.path()), 0);
    assert!(blobs(dir.path()).is_empty());
    assert!(store.head("c1", "photos", "k").unwrap().is_none());
}

#[tokio::test]
async fn a_body_being_read_survives_the_delete_of_its_object() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    put(&store, "c1", "k", b"still readable").await;
    let GetOutcome::Found { body, .. } = store.get("c1", "photos", "k", None, None).unwrap() else {
        panic!("not found");
    };
    store.delete("c1", "photos", &["k".into()]).unwrap();
    assert!(blobs(dir.path()).is_empty());
    assert_eq!(read(body).await, b"still readable");
}

#[tokio::test]
async fn open_sweeps_temp_files_and_blobs_no_row_names() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    put(&store, "c1", "kept", b"kept").await;
    drop(store);
    let orphan = crate::store::sha256_hex(b"orphan");
    let objects = dir.path().join("r2/objects");
    std::fs::write(objects.join(&orphan[..2]).join(&orphan), b"orphan").unwrap();
    // A kept blob's name in the wrong fan-out directory is no blob either.
    let kept = crate::store::sha256_hex(b"kept");
    let elsewhere = if kept.starts_with("00") { "01" } else { "00" };
    std::fs::write(objects.join(elsewhere).join(&kept), b"kept").unwrap();
    std::fs::write(dir.path().join("r2/tmp/0123abcd"), b"partial").unwrap();
    std::fs::create_dir(dir.path().join("r2/tmp/junk")).unwrap();

    let store = open(dir.path());
    assert_eq!(temp_files(dir.path()), 0);
    assert_eq!(blobs(dir.path()), BTreeSet::from([kept]));
    assert_eq!(get(&store, "c1", "kept", None).await.unwrap(), b"kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_racing_the_delete_of_the_same_bytes_keeps_its_blob() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for round in 0..30 {
        let body = format!("round {round}");
        put(&store, "c1", "old", body.as_bytes()).await;
        let deleter = {
            let store = store.clone();
            tokio::task::spawn_blocking(move || store.delete("c1", "photos", &["old".into()]))
        };
        let putter = {
            let store = store.clone();
            let body = body.clone();
            tokio::spawn(async move { put(&store, "c1", "new", body.as_bytes()).await })
        };
        deleter.await.unwrap().unwrap();
        putter.await.unwrap();
        assert_eq!(
            get(&store, "c1", "new", None).await.unwrap(),
            body.as_bytes()
        );
        assert_eq!(blobs(dir.path()).len(), 1);
    }
}
