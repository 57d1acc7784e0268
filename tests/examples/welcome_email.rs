//! welcome-email: a hook that renders a template from a secret and sends it
//! through ctx.email, delivered over real SMTP; GET /ping and POST /send-test.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use extensor_js::{HostServices, Installation};
use serde_json::json;

use crate::support::*;

const TEMPLATE: &str = "Subject: Hello {{first_name}} from {{app_name}}\n\nDear {{first_name}},\nyour login is {{email}}.\n";

async fn installed(smtp: &Smtp, secrets: &[(&str, &str)]) -> (Installation, Arc<SmtpOutbox>) {
    let outbox = Arc::new(SmtpOutbox {
        mailer: smtp.mailer(),
        sent: Mutex::default(),
    });
    let secrets: HashMap<String, String> = secrets
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let plugin = validate(&example_bundle("welcome-email")).await;
    let services = HostServices {
        secrets: Some(Arc::new(MemSecrets(secrets))),
        outbox: Some(outbox.clone()),
        ..HostServices::default()
    };
    (sandbox().install(plugin, scope(), services), outbox)
}

#[tokio::test]
async fn new_user_gets_the_template_from_the_secret_over_smtp() {
    let smtp = Smtp::start().await;
    let (ins, outbox) = installed(
        &smtp,
        &[("WELCOME_EMAIL_TEMPLATE", TEMPLATE), ("APP_NAME", "Acme")],
    )
    .await;
    let out = ins
        .invoke(hook(
            "auth.user.created",
            json!({"user": {"email": "ada@example.com", "first_name": "Ada"}}),
        ))
        .await
        .unwrap();
    assert_eq!(out.value["sent"], json!(true));
    assert_eq!(out.value["subject"], json!("Hello Ada from Acme"));
    assert_eq!(out.value["message_id"], json!("msg_1"));
    let mail = smtp.delivered(1).await;
    assert!(
        mail[0].contains("Subject: Hello Ada from Acme"),
        "{}",
        mail[0]
    );
    assert!(mail[0].contains("To: ada@example.com"), "{}", mail[0]);
    assert!(mail[0].contains("Dear Ada,"), "{}", mail[0]);
    assert!(
        mail[0].contains("your login is ada@example.com."),
        "{}",
        mail[0]
    );
    assert!(
        out.logs
            .iter()
            .any(|l| l.message.contains("welcome email queued msg_1"))
    );

    // An event without an address sends nothing and says why.
    let out = ins
        .invoke(hook(
            "auth.user.created",
            json!({"user": {"first_name": "Bob"}}),
        ))
        .await
        .unwrap();
    assert_eq!(out.value["sent"], json!(false));
    assert_eq!(outbox.sent.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn default_template_when_no_secret_and_bad_template_fails_clearly() {
    let smtp = Smtp::start().await;
    let (ins, _) = installed(&smtp, &[]).await;
    let out = ins
        .invoke(hook(
            "auth.user.created",
            json!({"user": {"email": "cy@example.com"}}),
        ))
        .await
        .unwrap();
    assert_eq!(out.value["subject"], json!("Welcome to our app, there!"));
    let mail = smtp.delivered(1).await;
    assert!(mail[0].contains("Hi there,"), "{}", mail[0]);

    let (ins, outbox) = installed(&smtp, &[("WELCOME_EMAIL_TEMPLATE", "no subject line")]).await;
    let err = ins
        .invoke(hook(
            "auth.user.created",
            json!({"user": {"email": "cy@example.com"}}),
        ))
        .await
        .unwrap_err();
    assert!(
        thrown_message(&err).contains("first line must be `Subject: …`"),
        "{err:?}"
    );
    assert!(outbox.sent.lock().unwrap().is_empty());
}

#[tokio::test]
async fn ping_and_send_test_routes() {
    let smtp = Smtp::start().await;
    let (ins, outbox) = installed(&smtp, &[("WELCOME_EMAIL_TEMPLATE", TEMPLATE)]).await;
    let out = ins
        .invoke(route("GET", "/ping", "/ping", json!({}), json!(null)))
        .await
        .unwrap();
    assert_eq!(
        out.value,
        json!({"status": "ok", "plugin": "welcome-email"})
    );

    let out = ins
        .invoke(route(
            "POST",
            "/send-test",
            "/send-test",
            json!({}),
            json!({"email": "qa@example.com", "first_name": "Quinn"}),
        ))
        .await
        .unwrap();
    assert_eq!(out.value["status"], json!(202));
    assert_eq!(out.value["body"]["sent"], json!(true));
    let mail = smtp.delivered(1).await;
    assert!(
        mail[0].contains("Subject: [test] Hello Quinn from our app"),
        "{}",
        mail[0]
    );
    assert!(mail[0].contains("To: qa@example.com"), "{}", mail[0]);

    for bad in [
        json!(null),
        json!({"email": 5}),
        json!("qa@example.com"),
        json!({"email": "nobody"}),
    ] {
        let out = ins
            .invoke(route(
                "POST",
                "/send-test",
                "/send-test",
                json!({}),
                bad.clone(),
            ))
            .await
            .unwrap();
        assert_eq!(out.value["status"], json!(400), "{bad}");
    }
    assert_eq!(outbox.sent.lock().unwrap().len(), 1);
}
