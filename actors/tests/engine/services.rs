//! Host services wired to real components: read models over the tenant's
//! events, email through the outbox to a real SMTP server, files.

use std::time::Duration;

use extensor_actors::Engine;
use extensor_core::event::StreamId;
use extensor_core::role::Role;
use extensor_js::host::mail::{SmtpConfig, SmtpTls};
use serde_json::json;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_query_reads_the_tenants_own_events() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(dir.path()).await;
    let tenant = new_tenant(&engine, "acme").await;
    let other = new_tenant(&engine, "globex").await;
    let js = "import { route } from 'extensor:sdk';
        route('GET', '/orders', async (_r, ctx) => ctx.db.query(
          \"SELECT count(*) AS n, sum(json_extract(data, '$.amount')) AS total FROM events WHERE type = ?\",
          ['order.created']));";
    let m = json!({"permissions": ["db.read"], "routes": [{"method": "GET", "path": "/orders"}]});
    install(&engine, &tenant, plugin("report", "1.0.0", m.clone(), js)).await;
    install(&engine, &other, plugin("report", "1.0.0", m, js)).await;
    for amount in [5, 7] {
        engine
            .publish(
                &tenant,
                "order.created",
                json!({"amount": amount}),
                None,
                admin(),
            )
            .await
            .unwrap();
    }
    engine
        .publish(
            &other,
            "order.created",
            json!({"amount": 1000}),
            None,
            admin(),
        )
        .await
        .unwrap();
    let request = extensor_actors::engine::RouteRequest {
        method: "GET".into(),
        path: "/orders".into(),
        caller: Some(Role::Viewer),
        ..Default::default()
    };
    let r = engine
        .route(&tenant, "report", request.clone())
        .await
        .unwrap();
    assert_eq!(r.body, json!([{"n": 2, "total": 12}]));
    // Published after the first query: the projection catches up.
    engine
        .publish(
            &tenant,
            "order.created",
            json!({"amount": 1}),
            None,
            admin(),
        )
        .await
        .unwrap();
    let r = engine
        .route(&tenant, "report", request.clone())
        .await
        .unwrap();
    assert_eq!(r.body, json!([{"n": 3, "total": 13}]));
    let r = engine.route(&other, "report", request).await.unwrap();
    assert_eq!(r.body, json!([{"n": 1, "total": 1000}]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hook_email_goes_through_the_outbox_to_smtp() {
    let server = crate::aiosmtpd::Smtp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), open_store(dir.path()));
    config.smtp = Some(SmtpConfig {
        host: "127.0.0.1".into(),
        port: server.port,
        from: "extensor@example.com".into(),
        credentials: None,
        tls: SmtpTls::None,
    });
    let engine = Engine::start(config).await.unwrap();
    let tenant = new_tenant(&engine, "acme").await;
    let js = "import { hook } from 'extensor:sdk';
        hook('auth.user.created', async (e, ctx) => {
          await ctx.files.write('count.txt', '1');
          return ctx.email.send({ to: e.data.email, subject: 'Welcome ' + e.data.name, text: 'Hi' });
        });";
    let m = json!({"events": ["auth.user.created"], "permissions": ["send_email", "files.write"]});
    let id = install(&engine, &tenant, plugin("welcome", "1.0.0", m, js)).await;
    engine
        .publish(
            &tenant,
            "auth.user.created",
            json!({"email": "ada@example.com", "name": "Ada"}),
            None,
            admin(),
        )
        .await
        .unwrap();
    let records = hook_records(engine.store(), &id, 1).await;
    let outbox_id = records[0].1.outcome.clone().unwrap();
    // The outbox records the message, then its delivery.
    let outbox = StreamId::new("outbox", tenant.as_str()).unwrap();
    let mut sent = false;
    for _ in 0..200 {
        let events = engine
            .store()
            .read_stream(outbox.clone(), 0, 10)
            .await
            .unwrap();
        if events.iter().any(|e| e.event_type == "email.sent") {
            assert_eq!(events[0].event_type, "email.queued");
            assert_eq!(json!(events[0].event_id.to_string()), outbox_id);
            sent = true;
            break;
        }
        assert!(
            !events.iter().any(|e| e.event_type == "email.failed"),
            "{events:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(sent, "email.sent recorded");
    let mail = server.messages();
    assert_eq!(mail.len(), 1);
    assert!(mail[0].contains("Subject: Welcome Ada"), "{}", mail[0]);
    assert!(mail[0].contains("ada@example.com"));
    // Uninstall removes the installation's files.
    let files = dir
        .path()
        .join("files")
        .join(tenant.as_str())
        .join(id.as_str());
    assert!(files.join("count.txt").exists());
    engine.uninstall(&tenant, &id, admin()).await.unwrap();
    assert!(!files.exists());
    engine.shutdown(Duration::from_secs(5)).await;
}
