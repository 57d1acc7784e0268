//! This server as one node of several on a shared store: its settings
//! ([`ClusterSettings`]), what it knows of itself ([`NodeState`]), the
//! cluster view of `GET /api/ops/cluster` ([`ClusterView`], served by
//! `ops.rs`), and the gate that answers every API call and plugin route
//! `503 node_fenced` while the node is fenced ([`fenced_gate`]).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use extensor_actors::cluster::{
    ClusterNode, HEARTBEAT_INTERVAL_MS, LeaseSettings, NodeSelf, TENANTS_LISTED_PER_NODE_MAX,
};
use extensor_core::cluster::Cluster;
use extensor_core::ids::NodeId;
use poem::{Endpoint, IntoResponse, Request, Response};
use poem_openapi::Object;

use crate::error::ApiError;
use crate::state::AppState;

/// A shared store's registry and leases, and the lease TTL (the takeover
/// bound). `None` in `ServerConfig::cluster`: the only node.
#[derive(Clone)]
pub struct ClusterSettings {
    pub cluster: Arc<dyn Cluster>,
    pub lease: LeaseSettings,
}

/// The node this server is.
pub struct NodeState {
    pub me: NodeSelf,
    /// The registry and leases; `None` on the embedded store.
    pub node: Option<ClusterNode>,
    pub lease: Option<LeaseSettings>,
}

impl NodeState {
    /// The embedded store's one node: not registered anywhere.
    pub fn single(address: String) -> Self {
        Self {
            me: NodeSelf {
                id: NodeId::generate(),
                address,
                started_at: Utc::now(),
            },
            node: None,
            lease: None,
        }
    }
}

/// A tenant a node owns.
#[derive(Object)]
pub struct OwnedTenant {
    pub id: String,
    /// Its slug, if this node's directory knows it yet.
    pub slug: Option<String>,
}

/// One node of the cluster.
#[derive(Object)]
pub struct NodeView {
    /// `node_…`, generated at each start.
    pub id: String,
    /// Where its API listens.
    pub address: String,
    pub started_at: DateTime<Utc>,
    pub last_heartbeat: DateTime<Utc>,
    /// Its registration has not expired (by the store's clock).
    pub live: bool,
    /// Whether it is the node answering this request.
    pub this_node: bool,
    /// How many tenants' leases it holds.
    pub tenants_owned: u64,
    /// The tenants it holds, at most 1,000 (by id).
    pub tenants: Vec<OwnedTenant>,
}

/// The cluster as this node sees it.
#[derive(Object)]
pub struct ClusterView {
    /// The node answering.
    pub node: String,
    /// `shared` (several nodes divide tenants by leases in the shared
    /// store) or `single` (the embedded store: this node owns every tenant).
    pub mode: String,
    /// How long a lease outlives its last renewal (the takeover bound,
    /// less one heartbeat); absent on a single node.
    pub lease_ttl_ms: Option<u64>,
    pub heartbeat_interval_ms: Option<u64>,
    /// Live nodes first, at most 256.
    pub nodes: Vec<NodeView>,
}

/// `GET /api/ops/cluster`.
pub async fn view(state: &AppState) -> Result<ClusterView, ApiError> {
    let me = &state.node.me;
    let slug = |id: &str| {
        id.parse()
            .ok()
            .and_then(|t| state.directory.tenant(&t))
            .map(|t| t.slug)
    };
    let owned = |id: String| OwnedTenant {
        slug: slug(&id),
        id,
    };
    let Some(node) = &state.node.node else {
        let all = state.directory.tenants();
        return Ok(ClusterView {
            node: me.id.to_string(),
            mode: "single".into(),
            lease_ttl_ms: None,
            heartbeat_interval_ms: None,
            nodes: vec![NodeView {
                id: me.id.to_string(),
                address: me.address.clone(),
                started_at: me.started_at,
                last_heartbeat: Utc::now(),
                live: true,
                this_node: true,
                tenants_owned: all.len() as u64,
                tenants: all
                    .into_iter()
                    .take(TENANTS_LISTED_PER_NODE_MAX)
                    .map(|t| owned(t.id.to_string()))
                    .collect(),
            }],
        });
    };
    let nodes = extensor_actors::cluster::view(node.cluster().as_ref())
        .await
        .map_err(ApiError::from)?;
    Ok(ClusterView {
        node: me.id.to_string(),
        mode: "shared".into(),
        lease_ttl_ms: state.node.lease.map(|l| l.ttl_ms),
        heartbeat_interval_ms: Some(HEARTBEAT_INTERVAL_MS),
        nodes: nodes
            .into_iter()
            .map(|n| NodeView {
                this_node: n.id == me.id,
                id: n.id.to_string(),
                address: n.address,
                started_at: n.started_at,
                last_heartbeat: n.last_heartbeat,
                live: n.live,
                tenants_owned: n.tenants_owned,
                tenants: n
                    .tenants
                    .into_iter()
                    .map(|t| owned(t.to_string()))
                    .collect(),
            })
            .collect(),
    })
}

/// Paths a fenced node still answers: static documents that read no state.
fn answers_while_fenced(path: &str) -> bool {
    ["/openapi.yaml", "/openapi.json", "/docs", "/console"]
        .iter()
        .any(|p| path == *p || path.starts_with(&format!("{p}/")))
}

/// While the node is fenced (it could not renew its leases; another node
/// may own its tenants now) every API call and plugin route answers
/// `503 node_fenced` rather than serving from a node that may be stale.
pub async fn fenced_gate<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    let fenced = req
        .data::<Arc<AppState>>()
        .is_some_and(|s| s.engine.ownership().fenced());
    if fenced && !answers_while_fenced(req.uri().path()) {
        let detail = "this node cannot reach the store to renew its tenant leases; \
                      it serves nothing until it can (another node takes its tenants)";
        return Ok(ApiError::unavailable("node_fenced", detail).into_response());
    }
    next.call(req).await.map(IntoResponse::into_response)
}
