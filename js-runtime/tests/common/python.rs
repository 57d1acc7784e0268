//! The Python that runs the tests' tools (aiosmtpd, standardwebhooks,
//! schemathesis, openapi-python-client): `$EXTENSOR_PYTHON`, which
//! `scripts/test` sets to the project's `.venv/bin/python`, or else that
//! venv when it exists. Included with `#[path]` by every suite that needs
//! it. A test whose tool is missing fails, naming the fix; it never skips.
#![allow(dead_code)]

use std::path::PathBuf;

/// Environment variable naming the Python interpreter with the test tools.
pub const PYTHON_ENV: &str = "EXTENSOR_PYTHON";

/// The workspace root: the nearest ancestor of the crate with `Cargo.lock`.
pub fn workspace_root() -> PathBuf {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    crate_dir
        .ancestors()
        .find(|d| d.join("Cargo.lock").is_file())
        .unwrap_or(&crate_dir)
        .to_path_buf()
}

/// The interpreter, after checking that it can import every one of
/// `modules`; panics with how to install them otherwise.
pub fn python(modules: &[&str]) -> PathBuf {
    let python = std::env::var_os(PYTHON_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv/bin/python"));
    assert!(
        python.is_file(),
        "no test Python at {} (${PYTHON_ENV}): run `scripts/test`, which installs \
         scripts/requirements.txt into .venv/",
        python.display()
    );
    for module in modules {
        let ok = std::process::Command::new(&python)
            .args(["-c", &format!("import {module}")])
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "{} cannot import `{module}`: run `scripts/test`, which installs \
             scripts/requirements.txt into .venv/",
            python.display()
        );
    }
    python
}
