//! daily-kpi (TypeScript): a daily job computes KPIs with ctx.db.query over
//! the tenant's events in a real SQLite read model, emits kpi.daily and
//! writes a CSV with the real file store; routes serve the results.

use std::sync::Arc;

use extensor_js::host::db::{EVENTS_READ_MODEL_DDL, SqliteReadModels};
use extensor_js::host::files::FileStore;
use extensor_js::{HostServices, Installation};
use serde_json::{Value, json};

use crate::support::*;

struct World {
    ins: Installation,
    events: Arc<MemEvents>,
    files: tempfile::TempDir,
    _db: tempfile::TempDir,
}

/// Events of three days; only 2026-11-23's count for the job run on the 24th.
const EVENTS: &[(&str, &str, &str)] = &[
    (
        "2026-11-22T23:59:59.999Z",
        "auth.user.created",
        r#"{"user":{"email":"early@x.com"}}"#,
    ),
    (
        "2026-11-23T00:00:00.000Z",
        "auth.user.created",
        r#"{"user":{"email":"a@x.com"}}"#,
    ),
    (
        "2026-11-23T08:30:00.000Z",
        "auth.user.created",
        r#"{"user":{"email":"b@x.com"}}"#,
    ),
    (
        "2026-11-23T09:00:00.000Z",
        "build.completed",
        r#"{"status":"success"}"#,
    ),
    (
        "2026-11-23T09:10:00.000Z",
        "build.completed",
        r#"{"status":"failed"}"#,
    ),
    (
        "2026-11-23T09:20:00.000Z",
        "build.completed",
        r#"{"status":"success"}"#,
    ),
    (
        "2026-11-23T09:30:00.000Z",
        "build.completed",
        r#"{"status":"success"}"#,
    ),
    (
        "2026-11-23T12:00:00.000Z",
        "order.paid",
        r#"{"amount_cents":1500}"#,
    ),
    (
        "2026-11-23T18:00:00.000Z",
        "order.paid",
        r#"{"amount_cents":2550}"#,
    ),
    ("2026-11-23T23:59:59.999Z", "page.viewed", r#"{"path":"/"}"#),
    (
        "2026-11-24T00:00:00.000Z",
        "order.paid",
        r#"{"amount_cents":99900}"#,
    ),
];

async fn world() -> World {
    let db = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(db.path().join("ten_examples.sqlite")).unwrap();
    conn.execute_batch(EVENTS_READ_MODEL_DDL).unwrap();
    for (i, (time, kind, data)) in EVENTS.iter().enumerate() {
        conn.execute(
            "INSERT INTO events(position, revision, id, type, time, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            rusqlite::params![i as i64 + 1, i as i64, format!("evt_{i}"), kind, time, data],
        )
        .unwrap();
    }
    let files = tempfile::tempdir().unwrap();
    let events = Arc::new(MemEvents::default());
    let services = HostServices {
        db: Some(Arc::new(SqliteReadModels::new(db.path()))),
        files: Some(Arc::new(FileStore::new(files.path()))),
        events: Some(events.clone()),
        ..HostServices::default()
    };
    let plugin = validate(&example_bundle("daily-kpi")).await;
    World {
        ins: sandbox().install(plugin, scope(), services),
        events,
        files,
        _db: db,
    }
}

fn get(pattern: &str, path: &str, params: Value) -> extensor_js::Invocation {
    route("GET", pattern, path, params, Value::Null)
}

#[tokio::test]
async fn the_daily_job_computes_emits_and_writes_the_csv() {
    let w = world().await;
    let latest = w
        .ins
        .invoke(get("/latest", "/latest", json!({})))
        .await
        .unwrap();
    assert_eq!(latest.value["status"], json!(404), "nothing computed yet");

    let out = w
        .ins
        .invoke(job(
            "compute_daily_kpis",
            json!({"scheduled_for": "2026-11-24T05:00:00.000Z"}),
        ))
        .await
        .unwrap();
    let expected = json!({
        "day": "2026-11-23",
        "events_total": 9,
        "signups": 2,
        "builds": 4,
        "build_failures": 1,
        "build_success_rate": 0.75,
        "orders": 2,
        "revenue_cents": 4050,
        "top_event_types": "build.completed:4 auth.user.created:2 order.paid:2",
    });
    let mut value = out.value.clone();
    assert_eq!(value["event_id"], json!("evt_emitted_1"));
    value.as_object_mut().unwrap().remove("event_id");
    assert_eq!(value, expected);

    let emitted = w.events.0.lock().unwrap().clone();
    assert_eq!(emitted.len(), 1);
    assert_eq!(emitted[0].event_type, "kpi.daily");
    assert_eq!(emitted[0].data, expected);

    let csv_path = w
        .files
        .path()
        .join("ten_examples/ins_examples/kpi/2026-11-23.csv");
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    assert_eq!(
        csv,
        "day,events_total,signups,builds,build_failures,build_success_rate,orders,revenue_cents,top_event_types\n\
         2026-11-23,9,2,4,1,0.75,2,4050,build.completed:4 auth.user.created:2 order.paid:2\n"
    );

    let latest = w
        .ins
        .invoke(get("/latest", "/latest", json!({})))
        .await
        .unwrap();
    assert_eq!(latest.value, json!({"status": 200, "body": expected}));
    let day = w
        .ins
        .invoke(get(
            "/days/:day",
            "/days/2026-11-23",
            json!({"day": "2026-11-23"}),
        ))
        .await
        .unwrap();
    assert_eq!(day.value["status"], json!(200));
    assert_eq!(day.value["headers"]["content-type"], json!("text/csv"));
    assert_eq!(day.value["body"], json!(csv));
}

#[tokio::test]
async fn run_now_for_an_empty_day_and_bad_days() {
    let w = world().await;
    let out = w
        .ins
        .invoke(job("compute_daily_kpis", json!({"day": "2025-01-01"})))
        .await
        .unwrap();
    assert_eq!(out.value["events_total"], json!(0));
    assert_eq!(out.value["build_success_rate"], Value::Null);
    assert_eq!(out.value["top_event_types"], json!(""));

    let err = w
        .ins
        .invoke(job("compute_daily_kpis", json!({"day": "2025-13-45"})))
        .await
        .unwrap_err();
    assert!(
        thrown_message(&err).contains("day must be YYYY-MM-DD"),
        "{err:?}"
    );

    for (path, status) in [("/days/yesterday", 400), ("/days/2030-01-01", 404)] {
        let day = path.trim_start_matches("/days/");
        let out = w
            .ins
            .invoke(get("/days/:day", path, json!({"day": day})))
            .await
            .unwrap();
        assert_eq!(out.value["status"], json!(status), "{path}");
    }
}
