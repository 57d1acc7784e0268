//! The suite every [`FileBackend`] passes, so the limits and checks of
//! `ctx.files` are the same whichever backend holds the bytes.
//!
//! A backend's test file implements [`Backend`] and invokes
//! [`files_conformance_tests!`], which expands to one `#[tokio::test]` per
//! check (the pattern of `store::conformance`).

use std::sync::Arc;

use futures::future::BoxFuture;

use super::{
    FILE_NAME_BYTES_MAX, FILE_PATH_BYTES_MAX, FILE_READ_BYTES_MAX, FILE_WRITE_BYTES_MAX,
    FILES_COUNT_MAX, FileBackend, FileOwner, Files, FilesUsage,
};
use crate::error::Error;

/// How a check gets storage.
pub trait Backend: Send + Sync {
    type Handle: FileBackend + Clone;
    /// A handle on fresh, empty storage.
    fn fresh(&self) -> BoxFuture<'_, Self::Handle>;
    /// Another handle on the same storage (for a server-backed store: its
    /// own connections, as another node would have).
    fn another<'a>(&'a self, handle: &'a Self::Handle) -> BoxFuture<'a, Self::Handle>;
    /// Stores `bytes` as `path` straight in the storage, past every check:
    /// what an operator's edit or an older version could leave there.
    fn plant<'a>(
        &'a self,
        handle: &'a Self::Handle,
        owner: FileOwner<'a>,
        path: &'a str,
        bytes: Vec<u8>,
    ) -> BoxFuture<'a, ()>;
    /// Stores `count` one-byte files `bulk/<i>` the same way.
    fn plant_many<'a>(
        &'a self,
        handle: &'a Self::Handle,
        owner: FileOwner<'a>,
        count: usize,
    ) -> BoxFuture<'a, ()>;
}

/// Expands to one test per check, run against `$backend`.
#[macro_export]
macro_rules! files_conformance_tests {
    ($backend:expr) => {
        $crate::files_conformance_tests!(@each $backend;
            write_read_list_delete, hostile_paths_and_ids_refused, installations_are_apart,
            a_name_is_a_file_or_a_directory, quota_counts_bytes_and_replacements,
            file_count_is_bounded, one_call_is_bounded_in_bytes,
            concurrent_writers_never_pass_the_quota, handles_share_files);
    };
    (@each $backend:expr; $($check:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                $crate::files::conformance::$check(&$backend).await;
            }
        )*
    };
}

const A: FileOwner<'static> = FileOwner {
    tenant: "ten_a",
    installation: "ins_a",
};
const B: FileOwner<'static> = FileOwner {
    tenant: "ten_a",
    installation: "ins_b",
};

fn front<H: FileBackend>(handle: H) -> Files {
    Files::new(Arc::new(handle))
}

/// Writes, overwrites, nested names, listing, deleting.
pub async fn write_read_list_delete<B: Backend>(b: &B) {
    let files = front(b.fresh().await);
    assert_eq!(files.read(A, "none.txt").await.unwrap(), None);
    assert_eq!(files.list(A).await.unwrap(), Vec::<String>::new());
    files.write(A, "b.txt", b"first").await.unwrap();
    files.write(A, "b.txt", b"second").await.unwrap();
    files.write(A, "reports/2024.csv", b"x,y").await.unwrap();
    files.write(A, "a//c/./d", b"").await.unwrap();
    assert_eq!(files.read(A, "b.txt").await.unwrap().unwrap(), b"second");
    assert_eq!(files.read(A, "a/c/d").await.unwrap().unwrap(), b"");
    assert_eq!(
        files.list(A).await.unwrap(),
        ["a/c/d", "b.txt", "reports/2024.csv"]
    );
    assert_eq!(
        files.usage(A).await.unwrap(),
        FilesUsage { bytes: 9, files: 3 }
    );
    assert!(files.delete(A, "b.txt").await.unwrap());
    assert!(!files.delete(A, "b.txt").await.unwrap());
    assert_eq!(files.read(A, "b.txt").await.unwrap(), None);
    assert_eq!(files.list(A).await.unwrap(), ["a/c/d", "reports/2024.csv"]);
}

/// Hostile paths and ids are refused with a clear error and change nothing.
pub async fn hostile_paths_and_ids_refused<B: Backend>(b: &B) {
    let files = front(b.fresh().await);
    let long = "x".repeat(FILE_PATH_BYTES_MAX + 1);
    let long_name = format!("d/{}", "x".repeat(FILE_NAME_BYTES_MAX + 1));
    for rel in [
        "",
        "..",
        "../x",
        "a/../../b",
        "/etc/passwd",
        "./a",
        "a\\b",
        "a\0b",
        ".",
        &long,
        &long_name,
    ] {
        let err = files.write(A, rel, b"x").await.unwrap_err();
        assert!(matches!(err, Error::FilePath { .. }), "{rel:?}: {err}");
        let err = files.read(A, rel).await.unwrap_err();
        assert!(matches!(err, Error::FilePath { .. }), "{rel:?}: {err}");
        let err = files.delete(A, rel).await.unwrap_err();
        assert!(matches!(err, Error::FilePath { .. }), "{rel:?}: {err}");
    }
    // The longest path: 255-byte names up to 512 bytes in all.
    let name = "y".repeat(FILE_NAME_BYTES_MAX);
    let longest = format!(
        "{name}/{name}/{}",
        "z".repeat(FILE_PATH_BYTES_MAX - 2 * 256)
    );
    assert_eq!(longest.len(), FILE_PATH_BYTES_MAX);
    files.write(A, &longest, b"ok").await.unwrap();
    assert_eq!(files.read(A, &longest).await.unwrap().unwrap(), b"ok");
    for id in ["", "..", "a/b", "ten_a/../ins_b", "a b", "x%"] {
        let owner = FileOwner {
            tenant: "ten_a",
            installation: id,
        };
        let err = files.write(owner, "f", b"x").await.unwrap_err();
        assert!(matches!(err, Error::InvalidId { .. }), "{id:?}: {err}");
        assert!(files.list(owner).await.is_err(), "{id:?}");
        let swapped = FileOwner {
            tenant: id,
            installation: "ins_a",
        };
        assert!(files.read(swapped, "f").await.is_err(), "{id:?}");
    }
    assert_eq!(files.usage(A).await.unwrap().files, 1);
}

/// One installation never sees another's files; removing one leaves the
/// other.
pub async fn installations_are_apart<B: Backend>(b: &B) {
    let files = front(b.fresh().await);
    files.write(A, "same.txt", b"of a").await.unwrap();
    files.write(B, "same.txt", b"of b!").await.unwrap();
    files.write(B, "only-b", b"b").await.unwrap();
    assert_eq!(files.read(A, "same.txt").await.unwrap().unwrap(), b"of a");
    assert_eq!(files.list(A).await.unwrap(), ["same.txt"]);
    assert_eq!(files.read(A, "only-b").await.unwrap(), None);
    assert_eq!(
        files.usage(B).await.unwrap(),
        FilesUsage { bytes: 6, files: 2 }
    );
    files.remove_all(B).await.unwrap();
    assert_eq!(files.list(B).await.unwrap(), Vec::<String>::new());
    assert_eq!(files.read(A, "same.txt").await.unwrap().unwrap(), b"of a");
    files.remove_all(B).await.unwrap();
}

/// `a` cannot be a file while `a/…` holds files, on any backend.
pub async fn a_name_is_a_file_or_a_directory<B: Backend>(b: &B) {
    let files = front(b.fresh().await);
    files.write(A, "a", b"file").await.unwrap();
    let err = files.write(A, "a/b", b"x").await.unwrap_err();
    assert!(matches!(err, Error::FilePath { .. }), "{err}");
    files.write(A, "d/e/f", b"x").await.unwrap();
    for rel in ["d", "d/e"] {
        let err = files.write(A, rel, b"x").await.unwrap_err();
        assert!(matches!(err, Error::FilePath { .. }), "{rel}: {err}");
        let err = files.read(A, rel).await.unwrap_err();
        assert!(matches!(err, Error::FilePath { .. }), "{rel}: {err}");
        let err = files.delete(A, rel).await.unwrap_err();
        assert!(matches!(err, Error::FilePath { .. }), "{rel}: {err}");
    }
    assert_eq!(files.read(A, "a").await.unwrap().unwrap(), b"file");
    assert_eq!(files.list(A).await.unwrap(), ["a", "d/e/f"]);
}

/// The byte quota counts every file; an overwrite counts its new size only.
pub async fn quota_counts_bytes_and_replacements<B: Backend>(b: &B) {
    let files = front(b.fresh().await).with_quota_bytes(100);
    files.write(A, "a", &[b'a'; 60]).await.unwrap();
    files.write(A, "b", &[b'b'; 40]).await.unwrap();
    let err = files.write(A, "c", b"c").await.unwrap_err();
    assert!(matches!(err, Error::FileQuota { .. }), "{err}");
    assert!(err.to_string().contains("quota is 100"), "{err}");
    // Replacing 60 bytes with 59 fits; with 61 does not.
    files.write(A, "a", &[b'A'; 59]).await.unwrap();
    let err = files.write(A, "a", &[b'A'; 62]).await.unwrap_err();
    assert!(matches!(err, Error::FileQuota { .. }), "{err}");
    // The quota is per installation.
    files.write(B, "c", &[b'c'; 100]).await.unwrap();
    assert_eq!(
        files.usage(A).await.unwrap(),
        FilesUsage {
            bytes: 99,
            files: 2
        }
    );
    assert!(files.delete(A, "b").await.unwrap());
    files.write(A, "c", &[b'c'; 41]).await.unwrap();
}

/// At most [`FILES_COUNT_MAX`] files; replacing one of them still works.
pub async fn file_count_is_bounded<B: Backend>(b: &B) {
    let handle = b.fresh().await;
    b.plant_many(&handle, A, FILES_COUNT_MAX - 1).await;
    let files = front(handle);
    files.write(A, "last", b"x").await.unwrap();
    let err = files.write(A, "one-more", b"x").await.unwrap_err();
    assert!(matches!(err, Error::FileQuota { .. }), "{err}");
    assert!(err.to_string().contains("files"), "{err}");
    files.write(A, "last", b"yy").await.unwrap();
    files.write(A, "bulk/0", b"z").await.unwrap();
    files.write(B, "other", b"x").await.unwrap();
    assert_eq!(files.usage(A).await.unwrap().files, FILES_COUNT_MAX);
}

/// One write is capped; a stored file over the read cap is refused rather
/// than read whole, and one exactly at it is read.
pub async fn one_call_is_bounded_in_bytes<B: Backend>(b: &B) {
    let handle = b.fresh().await;
    let files = front(handle.clone()).with_quota_bytes(64 * 1024 * 1024);
    let big = vec![b'y'; FILE_WRITE_BYTES_MAX + 1];
    let err = files.write(A, "big.txt", &big).await.unwrap_err();
    assert!(
        matches!(
            &err,
            Error::FileTooBig {
                limit: "FILE_WRITE_BYTES_MAX",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(files.usage(A).await.unwrap(), FilesUsage::default());
    files.write(A, "r.txt", b"small").await.unwrap();
    b.plant(&handle, A, "r.txt", vec![b'z'; FILE_READ_BYTES_MAX + 1])
        .await;
    let err = files.read(A, "r.txt").await.unwrap_err();
    assert!(
        matches!(
            &err,
            Error::FileTooBig {
                limit: "FILE_READ_BYTES_MAX",
                ..
            }
        ),
        "{err}"
    );
    b.plant(&handle, A, "r.txt", vec![b'z'; FILE_READ_BYTES_MAX])
        .await;
    let read = files.read(A, "r.txt").await.unwrap().unwrap();
    assert_eq!(read.len(), FILE_READ_BYTES_MAX);
}

/// 64 tasks, half on each of two handles, each write a distinct 1 KiB file
/// against a 10 KiB quota at once: exactly 10 fit, and the quota holds.
pub async fn concurrent_writers_never_pass_the_quota<B: Backend>(b: &B) {
    let first = b.fresh().await;
    let second = b.another(&first).await;
    let fronts = [
        front(first).with_quota_bytes(10 * 1024),
        front(second).with_quota_bytes(10 * 1024),
    ];
    let barrier = Arc::new(tokio::sync::Barrier::new(64));
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let (files, barrier) = (fronts[i % 2].clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                files.write(A, &format!("f{i}.txt"), &[b'x'; 1024]).await
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.expect("writer task") {
            Ok(()) => ok += 1,
            Err(Error::FileQuota { .. }) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    let usage = fronts[0].usage(A).await.unwrap();
    assert_eq!((ok, usage.files, usage.bytes), (10, 10, 10 * 1024));
}

/// What one handle writes or deletes, another on the same storage sees at
/// once (two nodes on one shared store serve the same installation).
pub async fn handles_share_files<B: Backend>(b: &B) {
    let first = b.fresh().await;
    let second = b.another(&first).await;
    let (one, two) = (front(first), front(second));
    one.write(A, "shared/report.csv", b"1,2,3").await.unwrap();
    assert_eq!(
        two.read(A, "shared/report.csv").await.unwrap().unwrap(),
        b"1,2,3"
    );
    two.write(A, "shared/report.csv", b"4,5").await.unwrap();
    two.write(A, "from-two", b"2").await.unwrap();
    assert_eq!(
        one.read(A, "shared/report.csv").await.unwrap().unwrap(),
        b"4,5"
    );
    assert_eq!(
        one.list(A).await.unwrap(),
        ["from-two", "shared/report.csv"]
    );
    assert!(one.delete(A, "from-two").await.unwrap());
    assert_eq!(two.read(A, "from-two").await.unwrap(), None);
    assert_eq!(
        two.usage(A).await.unwrap(),
        FilesUsage { bytes: 3, files: 1 }
    );
}
