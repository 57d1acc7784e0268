//! Plugin bundles in the PostgreSQL store: stored once by digest, shared by
//! every instance on the database, verified on every read (a row altered
//! with SQL is reported, never returned), hostile digests refused.

mod support;

use extensor_core::Error;
use extensor_core::bundles::{BundleBlobs, STORED_BUNDLE_BYTES_MAX};
use extensor_core::store::EventStore;
use support::TestStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundles_are_shared_by_every_instance_and_verified() {
    let a = TestStore::fresh().await;
    let b = TestStore::open_on(a.db.clone()).await;
    let digest = a.store.bundles().put(b"zip bytes".to_vec()).await.unwrap();
    assert!(digest.starts_with("sha256:") && digest.len() == 7 + 64);
    assert_eq!(
        a.store.bundles().put(b"zip bytes".to_vec()).await.unwrap(),
        digest
    );
    assert_eq!(b.store.bundles().get(&digest).await.unwrap(), b"zip bytes");
    let psql = a.psql().await;
    let rows: i64 = psql
        .query_one("SELECT count(*) FROM bundles", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 1, "stored once");
    psql.execute("UPDATE bundles SET bytes = 'evil'::bytea", &[])
        .await
        .unwrap();
    let err = b.store.bundles().get(&digest).await.unwrap_err();
    assert!(matches!(err, Error::BundleDigest { .. }), "{err:?}");
    assert!(err.to_string().contains("altered or corrupted"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_digests_and_oversized_bundles_are_refused() {
    let store = TestStore::fresh().await;
    let bundles = store.store.bundles();
    for bad in [
        "sha256:../../etc/passwd".to_owned(),
        "md5:abc".to_owned(),
        "sha256:'; DROP TABLE events; --".to_owned(),
        format!("sha256:{}", "A".repeat(64)),
    ] {
        let err = bundles.get(&bad).await.unwrap_err();
        assert!(matches!(err, Error::BundleDigest { .. }), "{bad}: {err:?}");
    }
    let missing = format!("sha256:{}", "a".repeat(64));
    let err = bundles.get(&missing).await.unwrap_err();
    assert!(err.to_string().contains("no bundle"), "{err}");
    let err = bundles
        .put(vec![0u8; STORED_BUNDLE_BYTES_MAX + 1])
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::BundleIo { .. }) && err.to_string().contains("limit"),
        "{err}"
    );
    assert_eq!(store.head_position().await.unwrap(), 0);
}
