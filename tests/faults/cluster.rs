//! Several nodes of a world on one PostgreSQL store (`tests/cluster.rs`,
//! `benches/cluster.rs`): the settings every node shares, the cluster view
//! of `GET /api/ops/cluster`, and waiting for the tenant's lease to settle
//! on the node rendezvous hashing gives it.

use std::time::{Duration, Instant};

use extensor_core::cluster::owner_of;
use extensor_core::ids::{NodeId, TenantId};
use serde_json::Value;

use super::node::ADMIN;

/// How long [`settle`] waits before failing.
pub const SETTLE_WAIT: Duration = Duration::from_secs(60);

/// A 64-byte platform key every node shares, so secrets sealed by one
/// decrypt on another (base64 of bytes 0..64).
pub const SECRET_KEY: &str =
    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==";

pub fn cluster_env(store_url: &str, lease_ttl_ms: u64) -> Vec<(String, String)> {
    vec![
        ("EXTENSOR_STORE_URL".into(), store_url.into()),
        ("EXTENSOR_SECRET_KEY".into(), SECRET_KEY.into()),
        (
            "EXTENSOR_CLUSTER_LEASE_TTL_MS".into(),
            lease_ttl_ms.to_string(),
        ),
    ]
}

/// `GET /api/ops/cluster` on `base`, as the platform admin.
pub async fn cluster_view(base: &str) -> Result<Value, String> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let resp = http
        .get(format!("{base}/api/ops/cluster"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!("{status} {body}"));
    }
    Ok(body)
}

/// The live nodes of a view, and which of them lists `tenant`.
pub fn live_and_owners(view: &Value, tenant: &str) -> (Vec<(String, String)>, Vec<String>) {
    let nodes = view["nodes"].as_array().cloned().unwrap_or_default();
    let live: Vec<(String, String)> = nodes
        .iter()
        .filter(|n| n["live"] == true)
        .map(|n| {
            let id = n["id"].as_str().unwrap_or_default().to_owned();
            let address = n["address"].as_str().unwrap_or_default().to_owned();
            (id, address)
        })
        .collect();
    let owners = nodes
        .iter()
        .filter(|n| {
            n["tenants"]
                .as_array()
                .is_some_and(|ts| ts.iter().any(|t| t["id"] == tenant))
        })
        .map(|n| n["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    (live, owners)
}

/// Waits until `expected_live` nodes are live and the tenant is held by
/// exactly the one rendezvous says should own it; returns its address.
pub async fn settle(base: &str, tenant: &str, expected_live: usize) -> String {
    let deadline = Instant::now() + SETTLE_WAIT;
    let tenant_id: TenantId = tenant.parse().unwrap();
    loop {
        let last = cluster_view(base).await;
        if let Ok(view) = &last {
            let (live, owners) = live_and_owners(view, tenant);
            let ids: Vec<NodeId> = live.iter().map(|(id, _)| id.parse().unwrap()).collect();
            let winner = owner_of(&tenant_id, &ids).map(ToString::to_string);
            if live.len() == expected_live && owners.len() == 1 && winner.as_ref() == owners.first()
            {
                let (_, address) = live
                    .iter()
                    .find(|(id, _)| Some(id) == winner.as_ref())
                    .unwrap();
                return format!("http://{address}");
            }
        }
        assert!(
            Instant::now() < deadline,
            "the cluster never settled with {expected_live} live nodes: {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
