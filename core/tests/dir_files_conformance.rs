//! The data directory's `ctx.files` backend against the shared files
//! conformance suite (the PostgreSQL one runs the same suite).

use std::sync::{Arc, Mutex};

use extensor_core::files::FileOwner;
use extensor_core::files::conformance::Backend;
use extensor_core::files::dir::DirFiles;
use futures::FutureExt;
use futures::future::BoxFuture;

/// Each fresh root lives in its own temporary directory, kept alive until
/// the test process ends.
struct Dir {
    roots: Mutex<Vec<Arc<tempfile::TempDir>>>,
}

impl Backend for Dir {
    type Handle = DirFiles;

    fn fresh(&self) -> BoxFuture<'_, DirFiles> {
        async move {
            let root = Arc::new(tempfile::tempdir().expect("tempdir"));
            let files = DirFiles::new(root.path());
            self.roots.lock().expect("roots").push(root);
            files
        }
        .boxed()
    }

    fn another<'a>(&'a self, handle: &'a DirFiles) -> BoxFuture<'a, DirFiles> {
        std::future::ready(DirFiles::new(handle.root())).boxed()
    }

    fn plant<'a>(
        &'a self,
        handle: &'a DirFiles,
        owner: FileOwner<'a>,
        path: &'a str,
        bytes: Vec<u8>,
    ) -> BoxFuture<'a, ()> {
        let place = handle.dir(owner).join(path);
        std::fs::create_dir_all(place.parent().expect("a parent")).expect("mkdir");
        std::fs::write(place, bytes).expect("plant");
        std::future::ready(()).boxed()
    }

    fn plant_many<'a>(
        &'a self,
        handle: &'a DirFiles,
        owner: FileOwner<'a>,
        count: usize,
    ) -> BoxFuture<'a, ()> {
        let bulk = handle.dir(owner).join("bulk");
        std::fs::create_dir_all(&bulk).expect("mkdir");
        for i in 0..count {
            std::fs::write(bulk.join(i.to_string()), b"b").expect("plant");
        }
        std::future::ready(()).boxed()
    }
}

static BACKEND: Dir = Dir {
    roots: Mutex::new(Vec::new()),
};

extensor_core::files_conformance_tests!(BACKEND);
