//! scripts/test's PostgreSQL bootstrap (scripts/lib/postgres.sh), run with
//! a deliberately unreachable probe port: it must start a throwaway
//! cluster from the local server binaries, serve a query, and remove the
//! cluster on exit (scripts/test-postgres-harness checks each step).

use std::process::Command;

#[test]
fn an_unreachable_server_gets_a_throwaway_cluster_that_is_removed() {
    let out = Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/test-postgres-harness"
    ))
    .env_remove("EXTENSOR_TEST_POSTGRES_URL")
    .output()
    .expect("run scripts/test-postgres-harness");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("starting a throwaway cluster"), "{text}");
    assert!(
        text.contains("\n42\n"),
        "the cluster answered a query: {text}"
    );
    assert!(text.ends_with("removed\n"), "{text}");
}
