//! The audit query, state-at and chain verification over HTTP, scoped to
//! the caller's tenant.

mod common;

use common::{Server, expect_problem, json_of};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn events_query_pages_filters_and_stays_in_the_tenant() {
    let s = Server::start().await;
    let (acme_id, owner) = s.tenant("acme").await;
    let (globex_id, _) = s.tenant("globex").await;
    let (_, viewer) = s.token("acme", &owner, "viewer").await;
    let get = |path: String| {
        s.req(Method::GET, &path, Some(&viewer), Some("acme"))
            .send()
    };
    let (status, page) = json_of(get("/api/events".into()).await.unwrap()).await;
    assert_eq!(status, 200, "{page}");
    let events = page["events"].as_array().unwrap();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert!(
        types.contains(&"tenant.created") && types.contains(&"tenant.token_issued"),
        "{types:?}"
    );
    assert!(
        events.iter().all(|e| e["tenant"] == acme_id.as_str()),
        "another tenant's event leaked"
    );
    assert!(!page.to_string().contains(&globex_id));
    // Paging: one at a time follows next_after without gaps or repeats.
    let mut after = 0;
    let mut seen = Vec::new();
    loop {
        let (_, p) = json_of(
            get(format!("/api/events?limit=1&after={after}"))
                .await
                .unwrap(),
        )
        .await;
        let evs = p["events"].as_array().unwrap();
        if evs.is_empty() {
            assert_eq!(p["next_after"], after);
            break;
        }
        seen.push(evs[0]["position"].as_u64().unwrap());
        after = p["next_after"].as_u64().unwrap();
    }
    let all: Vec<u64> = events
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert_eq!(seen, all);
    let (_, p) = json_of(get("/api/events?type=tenant.token".into()).await.unwrap()).await;
    assert!(
        p["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["type"] == "tenant.token_issued")
    );
    let (_, p) = json_of(
        get("/api/events?to=2000-01-01T00:00:00Z".into())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(p["events"].as_array().unwrap().len(), 0);
    let (_, p) = json_of(
        get(format!("/api/events?stream=tenant-{acme_id}"))
            .await
            .unwrap(),
    )
    .await;
    let on_stream = events
        .iter()
        .filter(|e| e["stream"] == format!("tenant-{acme_id}").as_str());
    assert_eq!(p["events"].as_array().unwrap().len(), on_stream.count());
    for (query, code, status) in [
        ("limit=0", "validation_failed", 422),
        ("limit=5000", "validation_failed", 422),
        ("stream=Not%20A%20Stream", "validation_failed", 422),
        ("from=yesterday", "invalid_request", 400),
        ("after=-1", "invalid_request", 400),
    ] {
        let r = get(format!("/api/events?{query}")).await.unwrap();
        expect_problem(r, status, code).await;
    }
    s.stop().await;
}

/// `order=desc` reads the newest events first and pages back with
/// `before`/`next_before`, within the tenant and its filters; the pages,
/// joined, are the oldest-first listing reversed.
#[tokio::test]
async fn events_newest_first_page_back_with_a_cursor() {
    let s = Server::start().await;
    let (acme_id, owner) = s.tenant("acme").await;
    let (_, globex) = s.tenant("globex").await;
    let mut published = Vec::new();
    for n in 0..25 {
        for (token, slug) in [(&owner, "acme"), (&globex, "globex")] {
            let r = s
                .req(Method::POST, "/api/events", Some(token), Some(slug))
                .json(&json!({"event_type": "order.placed", "event_data": {"n": n}}))
                .send()
                .await
                .unwrap();
            let (status, e) = json_of(r).await;
            assert_eq!(status, 201, "{e}");
            if slug == "acme" {
                published.push(e["position"].as_u64().unwrap());
            }
        }
    }
    let get = |query: String| {
        let req = s.req(
            Method::GET,
            &format!("/api/events?{query}"),
            Some(&owner),
            None,
        );
        async move {
            let r = req.send().await.unwrap();
            let (status, page) = json_of(r).await;
            assert_eq!(status, 200, "{query}: {page}");
            page
        }
    };
    let positions = |page: &serde_json::Value| -> Vec<u64> {
        page["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["position"].as_u64().unwrap())
            .collect()
    };
    let first = get("order=desc&limit=10".into()).await;
    let newest = positions(&first);
    assert_eq!(
        newest[..],
        published.iter().rev().take(10).copied().collect::<Vec<_>>()[..]
    );
    assert!(
        first["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["tenant"] == acme_id.as_str())
    );
    assert_eq!(first["next_before"], newest[9]);
    assert!(
        first["next_after"].as_u64().unwrap() >= newest[0],
        "{first}"
    );
    // Page back to the start: the whole tenant log, reversed.
    let mut all = newest;
    let mut before = first["next_before"].as_u64();
    while let Some(b) = before {
        let page = get(format!("order=desc&limit=10&before={b}")).await;
        all.extend(positions(&page));
        before = page["next_before"].as_u64();
    }
    let forward = positions(&get("limit=1000".into()).await);
    assert_eq!(all, forward.iter().rev().copied().collect::<Vec<_>>());
    // Bounds and filters hold in both orders.
    let (lo, hi) = (published[5], published[20]);
    let window = positions(&get(format!("order=desc&after={lo}&before={hi}&limit=1000")).await);
    assert_eq!(
        window,
        published[6..20].iter().rev().copied().collect::<Vec<_>>()
    );
    let window = positions(&get(format!("after={lo}&before={hi}&limit=1000")).await);
    assert_eq!(window, published[6..20]);
    let typed = get("order=desc&type=order.&limit=3".into()).await;
    assert_eq!(
        positions(&typed),
        published.iter().rev().take(3).copied().collect::<Vec<_>>()
    );
    let beyond = get(format!("order=desc&before={}", u64::MAX)).await;
    assert_eq!(
        positions(&beyond)[0],
        published[24],
        "a cursor past the head"
    );
    let empty = get("order=desc&before=1".into()).await;
    assert_eq!(
        (positions(&empty).len(), &empty["next_before"]),
        (0, &serde_json::Value::Null)
    );
    s.stop().await;
}

/// Malformed `order` and `before` are refused with a problem naming them.
#[tokio::test]
async fn events_order_and_cursor_refuse_malformed_input() {
    let s = Server::start().await;
    let (_, owner) = s.tenant("acme").await;
    for (query, status, code, names) in [
        ("order=sideways", 400, "invalid_request", "order"),
        ("order=DESC", 400, "invalid_request", "order"),
        ("order=", 400, "invalid_request", "order"),
        ("order=desc&before=0", 422, "validation_failed", "before"),
        ("order=desc&before=-1", 400, "invalid_request", "before"),
        (
            "order=desc&before=18446744073709551616",
            400,
            "invalid_request",
            "before",
        ),
        ("order=desc&before=1e3", 400, "invalid_request", "before"),
        ("before=0", 422, "validation_failed", "before"),
        ("order=desc&limit=1001", 422, "validation_failed", "limit"),
        ("order=desc&after=-5", 400, "invalid_request", "after"),
    ] {
        let r = s
            .req(
                Method::GET,
                &format!("/api/events?{query}"),
                Some(&owner),
                None,
            )
            .send()
            .await
            .unwrap();
        let problem = expect_problem(r, status, code).await;
        assert!(
            problem.to_string().contains(names),
            "{query}: the problem does not name `{names}`: {problem}"
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn state_at_a_position_and_chain_verification() {
    let s = Server::start().await;
    let (acme_id, owner) = s.tenant("acme").await;
    let (globex_id, _) = s.tenant("globex").await;
    let path = format!("/api/audit/state/tenant/{acme_id}");
    let get = |p: String| s.req(Method::GET, &p, Some(&owner), Some("acme")).send();
    let (_, now) = json_of(get(path.clone()).await.unwrap()).await;
    assert_eq!(
        now["state"]["tokens"].as_object().unwrap().len(),
        1,
        "{now}"
    );
    s.token("acme", &owner, "viewer").await;
    let (_, later) = json_of(get(path.clone()).await.unwrap()).await;
    assert_eq!(later["state"]["tokens"].as_object().unwrap().len(), 2);
    let at = now["position"].as_u64().unwrap();
    let (status, then) = json_of(get(format!("{path}?at={at}")).await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(
        then["state"]["tokens"].as_object().unwrap().len(),
        1,
        "{then}"
    );
    assert_eq!(then["position"], at);
    let r = get(format!("/api/audit/state/tenant/{globex_id}"))
        .await
        .unwrap();
    expect_problem(r, 404, "tenant_not_found").await;
    let r = get("/api/audit/state/installation/ins_01HZZZZZZZZZZZZZZZZZZZZZZZ".into())
        .await
        .unwrap();
    expect_problem(r, 404, "installation_not_found").await;
    let r = get(format!("{path}?at=last-tuesday")).await.unwrap();
    expect_problem(r, 422, "validation_failed").await;
    let r = get(format!("/api/audit/state/widget/{acme_id}"))
        .await
        .unwrap();
    expect_problem(r, 400, "invalid_request").await;
    let (status, report) = json_of(get("/api/audit/verify".into()).await.unwrap()).await;
    assert_eq!(status, 200);
    assert!(report["first_break"].is_null(), "{report}");
    assert_eq!(report["complete"], true, "{report}");
    // acme's own events only: slug reserved, created, owner and viewer tokens.
    assert_eq!(report["tenant_events_verified"], 4, "{report}");
    s.stop().await;
}

/// `GET /api/audit/verify` reports the caller's tenant only, walks at most
/// `VERIFY_EVENTS_PER_CALL_MAX` events per call and goes on from where the
/// last call stopped: 25,000 events take two calls, not one walk each.
#[tokio::test]
async fn chain_verification_is_per_tenant_bounded_and_incremental() {
    use extensor_core::event::{EventMeta, NewEvent, Principal, StreamId};
    use extensor_core::store::sqlite::{OpenMode, SqliteConfig, SqliteStore};
    use extensor_core::store::{EventStore, ExpectedRevision};
    let s = Server::start().await;
    let (_, acme) = s.tenant("acme").await;
    let (globex_id, _) = s.tenant("globex").await;
    let dir = s.stop().await;
    let store = SqliteStore::open(SqliteConfig::new(
        dir.path().join("data"),
        OpenMode::CreateIfMissing,
    ))
    .unwrap();
    let globex: extensor_core::ids::TenantId = globex_id.parse().unwrap();
    for batch in 0..25 {
        let events = (0..1_000)
            .map(|n| {
                let meta = EventMeta::new(Some(globex.clone()), Principal::system());
                NewEvent::new("order.created", 1, meta, &json!({"n": batch * 1_000 + n})).unwrap()
            })
            .collect();
        store
            .append(
                StreamId::business_events(&globex),
                ExpectedRevision::Any,
                events,
            )
            .await
            .unwrap();
    }
    store.close().await;
    let s = Server::start_in(dir, |_| {}).await;
    let verify = || async {
        let r = s
            .req(Method::GET, "/api/audit/verify", Some(&acme), Some("acme"))
            .send()
            .await
            .unwrap();
        let (status, body) = json_of(r).await;
        assert_eq!(status, 200, "{body}");
        body
    };
    let first = verify().await;
    assert_eq!(first["complete"], false, "bounded: {first}");
    assert!(first["first_break"].is_null(), "{first}");
    let second = verify().await;
    assert_eq!(second["complete"], true, "went on from the first: {second}");
    // No other tenant's count: globex's 25,000 events are not acme's.
    // (acme's slug reservation, creation and owner token).
    assert_eq!(second["tenant_events_verified"], 3, "{second}");
    assert_eq!(second.as_object().unwrap().len(), 3, "{second}");
    s.stop().await;
}
