//! The supervision tree against the real SQLite store in a tempdir.

use std::sync::Arc;

use extensor_actors::Error;
use extensor_actors::supervision::{ActorStatus, RestartPolicy, StatusBoard, call};
use extensor_actors::tenant_supervisor::{
    ChildKey, Handle, TenantSupervisor, TenantSupervisorArgs, TenantSupervisorMsg, TreeConfig,
};
use extensor_core::aggregate::{Loaded, SnapshotPolicy};
use extensor_core::event::{EventMeta, Principal, StreamId};
use extensor_core::ids::{InstallationId, TenantId, TokenId};
use extensor_core::installation::PluginInstallation;
use extensor_core::role::Role;
use extensor_core::store::EventStore;
use extensor_core::store::sqlite::{OpenMode, SqliteConfig, SqliteStore};
use extensor_core::tenant::{IssueToken, Tenant, TenantCommand};
use ractor::{Actor, ActorRef};

const TIMEOUT_MS: u64 = 5_000;

struct Tree {
    tenant: TenantId,
    board: StatusBoard,
    sup: ActorRef<TenantSupervisorMsg>,
}

fn open_store(dir: &tempfile::TempDir) -> Arc<dyn EventStore> {
    let config = SqliteConfig {
        data_dir: dir.path().to_path_buf(),
        mode: OpenMode::CreateIfMissing,
        store_bytes_max: None,
    };
    Arc::new(SqliteStore::open(config).expect("open store"))
}

fn fast_policy(failures_max: u32) -> RestartPolicy {
    RestartPolicy {
        backoff_initial_ms: 1,
        backoff_max_ms: 4,
        failures_max,
        window_ms: 60_000,
    }
}

async fn tree(store: Arc<dyn EventStore>, tenant: &TenantId, policy: RestartPolicy) -> Tree {
    tree_passivating(store, tenant, policy, None).await
}

async fn tree_passivating(
    store: Arc<dyn EventStore>,
    tenant: &TenantId,
    policy: RestartPolicy,
    passivate_idle_ms: Option<u64>,
) -> Tree {
    let board = StatusBoard::default();
    let config = TreeConfig {
        store,
        board: board.clone(),
        policy,
        snapshots: SnapshotPolicy::DEFAULT,
        mailbox_messages_max: 100,
        passivate_idle_ms,
        services: Vec::new(),
        ownership: extensor_actors::ownership::Ownership::default(),
    };
    let args = TenantSupervisorArgs {
        tenant: tenant.clone(),
        config,
    };
    let (sup, _) = Actor::spawn(None, TenantSupervisor, args)
        .await
        .expect("spawn supervisor");
    Tree {
        tenant: tenant.clone(),
        board,
        sup,
    }
}

impl Tree {
    async fn tenant(&self) -> Result<Handle<Tenant>, Error> {
        call(
            "/tenants",
            &self.sup,
            |reply| TenantSupervisorMsg::TenantHandle { reply },
            TIMEOUT_MS,
        )
        .await?
    }

    async fn installation(&self, id: &InstallationId) -> Result<Handle<PluginInstallation>, Error> {
        let build = |reply| TenantSupervisorMsg::InstallationHandle {
            id: id.clone(),
            reply,
        };
        call("/tenants", &self.sup, build, TIMEOUT_MS).await?
    }

    /// Queries the tenant, asking for a fresh handle when the one it got
    /// passivated in between (what any caller of a passivating tree does).
    async fn query_tenant(&self) -> Loaded<Tenant> {
        const ATTEMPTS_MAX: usize = 100;
        for _ in 0..ATTEMPTS_MAX {
            match self.tenant().await.expect("tenant").query(TIMEOUT_MS).await {
                Ok(loaded) => return loaded,
                Err(Error::Stopped { .. }) => continue,
                Err(e) => panic!("query: {e}"),
            }
        }
        panic!("tenant passivated {ATTEMPTS_MAX} times in a row");
    }

    fn path(&self, key: &ChildKey) -> String {
        match key {
            ChildKey::Tenant => format!("/tenants/{}/tenant", self.tenant),
            ChildKey::Installation(id) => format!("/tenants/{}/installations/{id}", self.tenant),
            ChildKey::Service(name) => format!("/tenants/{}/{name}", self.tenant),
        }
    }

    /// Panics the child and waits until the supervisor has dealt with it.
    async fn crash(
        &self,
        key: &ChildKey,
        panic: impl FnOnce() -> Result<(), Error>,
        restarts: u32,
    ) -> ActorStatus {
        panic().expect("send panic");
        let settled = |i: &extensor_actors::ActorInfo| {
            i.status == ActorStatus::Failed
                || (i.status == ActorStatus::Running && i.restarts == restarts)
        };
        self.board
            .wait_until(&self.path(key), settled, TIMEOUT_MS)
            .await
            .expect("restart or failure recorded")
            .status
    }
}

fn meta(tenant: &TenantId) -> EventMeta {
    EventMeta::new(Some(tenant.clone()), Principal::system())
}

async fn create(handle: &Handle<Tenant>, tenant: &TenantId) -> Loaded<Tenant> {
    let command = TenantCommand::Create {
        tenant_id: tenant.clone(),
        slug: "acme".parse().expect("slug"),
        name: "Acme".into(),
    };
    handle
        .execute(command, meta(tenant), TIMEOUT_MS)
        .await
        .expect("create tenant")
}

fn issue(n: usize) -> TenantCommand {
    TenantCommand::IssueToken(IssueToken {
        token_id: TokenId::generate(),
        name: format!("token-{n}"),
        role: Role::Admin,
        token_hash: format!("sha256:{:064x}", n),
        issued_at: chrono::Utc::now(),
        expires_at: None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_child_is_restarted_with_identical_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tenant = TenantId::generate();
    let tree = tree(open_store(&dir), &tenant, fast_policy(5)).await;
    let handle = tree.tenant().await.expect("tenant handle");
    create(&handle, &tenant).await;
    let rename = TenantCommand::Rename {
        name: "Acme Corp".into(),
    };
    handle
        .execute(rename, meta(&tenant), TIMEOUT_MS)
        .await
        .expect("rename");
    let before = handle.query(TIMEOUT_MS).await.expect("query");

    let status = tree.crash(&ChildKey::Tenant, || handle.panic(), 1).await;
    assert_eq!(status, ActorStatus::Running);
    assert!(matches!(
        handle.query(TIMEOUT_MS).await,
        Err(Error::Stopped { .. })
    ));
    let after = tree
        .tenant()
        .await
        .expect("fresh handle")
        .query(TIMEOUT_MS)
        .await
        .expect("query");
    assert_eq!(after.state, before.state);
    assert_eq!(after.revision, before.revision);
    let info = tree
        .board
        .get(&tree.path(&ChildKey::Tenant))
        .expect("record");
    assert_eq!(info.restarts, 1);
    assert!(info.last_error.is_some_and(|e| e.contains("fault drill")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loop_marks_only_that_installation_failed_until_an_operator_restarts_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tenant = TenantId::generate();
    let tree = tree(open_store(&dir), &tenant, fast_policy(2)).await;
    let (bad, good) = (InstallationId::generate(), InstallationId::generate());
    let key = ChildKey::Installation(bad.clone());
    let good_handle = tree.installation(&good).await.expect("sibling");

    for restarts in 1..=2 {
        let h = tree.installation(&bad).await.expect("handle");
        assert_eq!(
            tree.crash(&key, || h.panic(), restarts).await,
            ActorStatus::Running
        );
    }
    let h = tree.installation(&bad).await.expect("handle");
    assert_eq!(tree.crash(&key, || h.panic(), 3).await, ActorStatus::Failed);
    assert!(matches!(
        tree.installation(&bad).await,
        Err(Error::Failed { .. })
    ));

    // Siblings and the tenant keep serving.
    good_handle
        .query(TIMEOUT_MS)
        .await
        .expect("sibling still serves");
    tree.tenant()
        .await
        .expect("tenant")
        .query(TIMEOUT_MS)
        .await
        .expect("tenant serves");
    let snapshot = tree.board.snapshot();
    let failed: Vec<_> = snapshot
        .actors
        .iter()
        .filter(|a| a.status == ActorStatus::Failed)
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].path, tree.path(&key));

    let build = |reply| TenantSupervisorMsg::OperatorRestart {
        key: key.clone(),
        reply,
    };
    call("/tenants", &tree.sup, build, TIMEOUT_MS)
        .await
        .expect("call")
        .expect("restart");
    tree.installation(&bad)
        .await
        .expect("handle")
        .query(TIMEOUT_MS)
        .await
        .expect("serves again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_on_one_stream_lose_and_duplicate_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_store(&dir);
    let tenant = TenantId::generate();
    // Two trees on one store: two processes serving the same tenant.
    let (a, b) = (
        tree(store.clone(), &tenant, fast_policy(5)).await,
        tree(store.clone(), &tenant, fast_policy(5)).await,
    );
    let (ha, hb) = (a.tenant().await.expect("a"), b.tenant().await.expect("b"));
    create(&ha, &tenant).await;
    const WRITES_PER_WRITER: usize = 10;
    let writer = |h: Handle<Tenant>, offset: usize| {
        let tenant = tenant.clone();
        tokio::spawn(async move {
            for n in 0..WRITES_PER_WRITER {
                h.execute(issue(offset + n), meta(&tenant), TIMEOUT_MS)
                    .await
                    .expect("issue");
            }
        })
    };
    let (ja, jb) = (writer(ha.clone(), 0), writer(hb.clone(), 100));
    ja.await.expect("writer a");
    jb.await.expect("writer b");

    let events = store
        .read_stream(StreamId::tenant(&tenant), 0, 1_000)
        .await
        .expect("read");
    assert_eq!(events.len(), 1 + 2 * WRITES_PER_WRITER);
    let state = hb
        .execute(
            TenantCommand::Rename {
                name: "Acme".into(),
            },
            meta(&tenant),
            TIMEOUT_MS,
        )
        .await
        .expect("no-op");
    assert_eq!(state.state.tokens.len(), 2 * WRITES_PER_WRITER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_tree_on_the_same_store_has_the_same_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_store(&dir);
    let tenant = TenantId::generate();
    let first = tree(store.clone(), &tenant, fast_policy(5)).await;
    let handle = first.tenant().await.expect("tenant");
    create(&handle, &tenant).await;
    for n in 0..3 {
        handle
            .execute(issue(n), meta(&tenant), TIMEOUT_MS)
            .await
            .expect("issue");
    }
    let before = handle.query(TIMEOUT_MS).await.expect("query");
    first
        .sup
        .stop_and_wait(None, None)
        .await
        .expect("stop tree");

    let second = tree(store, &tenant, fast_policy(5)).await;
    let after = second
        .tenant()
        .await
        .expect("tenant")
        .query(TIMEOUT_MS)
        .await
        .expect("query");
    assert_eq!(after.state, before.state);
    assert_eq!(after.revision, before.revision);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_root_serves_tenants_separately_and_snapshots_the_tree() {
    use extensor_actors::root::{Root, RootMsg};
    let dir = tempfile::tempdir().expect("tempdir");
    let board = StatusBoard::default();
    let config = TreeConfig {
        store: open_store(&dir),
        board: board.clone(),
        policy: fast_policy(0),
        snapshots: SnapshotPolicy::DEFAULT,
        mailbox_messages_max: 100,
        passivate_idle_ms: None,
        services: Vec::new(),
        ownership: extensor_actors::ownership::Ownership::default(),
    };
    let (root, _) = Actor::spawn(None, Root, config).await.expect("spawn root");
    let (t1, t2) = (TenantId::generate(), TenantId::generate());
    let sup = |tenant: TenantId| {
        let build = |reply| RootMsg::Tenant { tenant, reply };
        call("/", &root, build, TIMEOUT_MS)
    };
    let s1 = sup(t1.clone()).await.expect("call").expect("tenant 1");
    let s2 = sup(t2.clone()).await.expect("call").expect("tenant 2");
    let again = sup(t1.clone())
        .await
        .expect("call")
        .expect("tenant 1 again");
    assert_eq!(again.get_id(), s1.get_id(), "one supervisor per tenant");

    let tree1 = Tree {
        tenant: t1.clone(),
        board: board.clone(),
        sup: s1,
    };
    let tree2 = Tree {
        tenant: t2.clone(),
        board: board.clone(),
        sup: s2,
    };
    let id = InstallationId::generate();
    let h = tree1.installation(&id).await.expect("installation");
    create(&tree2.tenant().await.expect("tenant 2"), &t2).await;
    // failures_max 0: the first panic marks the installation failed.
    let key = ChildKey::Installation(id.clone());
    assert_eq!(
        tree1.crash(&key, || h.panic(), 1).await,
        ActorStatus::Failed
    );
    tree2
        .tenant()
        .await
        .expect("tenant 2")
        .query(TIMEOUT_MS)
        .await
        .expect("other tenant serves");

    let snapshot = call("/", &root, |reply| RootMsg::Snapshot { reply }, TIMEOUT_MS)
        .await
        .expect("snapshot");
    let paths: Vec<_> = snapshot
        .actors
        .iter()
        .map(|a| (a.path.clone(), a.status))
        .collect();
    assert!(paths.contains(&(format!("/tenants/{t1}"), ActorStatus::Running)));
    assert!(paths.contains(&(format!("/tenants/{t2}"), ActorStatus::Running)));
    assert!(paths.contains(&(tree1.path(&key), ActorStatus::Failed)));
    assert!(paths.contains(&(tree2.path(&ChildKey::Tenant), ActorStatus::Running)));
    let json = serde_json::to_value(&snapshot).expect("serialisable");
    assert_eq!(json["actors"].as_array().map(Vec::len), Some(4));
    let restart = |reply| RootMsg::RestartActor {
        tenant: t1.clone(),
        key: key.clone(),
        reply,
    };
    call("/", &root, restart, TIMEOUT_MS)
        .await
        .expect("call")
        .expect("operator restart");
    tree1
        .installation(&id)
        .await
        .expect("handle")
        .query(TIMEOUT_MS)
        .await
        .expect("serves again");
    root.stop_and_wait(None, None).await.expect("stop root");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_actor_passivates_and_its_next_request_restarts_it_with_its_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tenant = TenantId::generate();
    let store = open_store(&dir);
    // Written by a tree that never passivates, so the write cannot race
    // the idle timer on a slow machine.
    let writer = tree(store.clone(), &tenant, fast_policy(0)).await;
    let before = create(&writer.tenant().await.expect("tenant"), &tenant).await;
    let tree = tree_passivating(store, &tenant, fast_policy(0), Some(20)).await;
    let path = tree.path(&ChildKey::Tenant);
    let first = tree.query_tenant().await;
    assert_eq!(first.state, before.state);
    let passivated = |i: &extensor_actors::ActorInfo| i.status == ActorStatus::Passivated;
    tree.board
        .wait_until(&path, passivated, TIMEOUT_MS)
        .await
        .expect("passivated");

    let after = tree.query_tenant().await;
    assert_eq!(after.state, before.state);
    assert_eq!(after.revision, before.revision);
    let info = tree.board.get(&path).expect("record");
    assert_eq!(info.restarts, 0, "passivation is not a failure");
    assert!(info.last_error.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_stops_and_resumes_a_tenant() {
    use extensor_actors::root::{Root, RootMsg};
    let dir = tempfile::tempdir().expect("tempdir");
    let board = StatusBoard::default();
    let config = TreeConfig {
        store: open_store(&dir),
        board: board.clone(),
        policy: fast_policy(5),
        snapshots: SnapshotPolicy::DEFAULT,
        mailbox_messages_max: 100,
        passivate_idle_ms: None,
        services: Vec::new(),
        ownership: extensor_actors::ownership::Ownership::default(),
    };
    let (root, _) = Actor::spawn(None, Root, config).await.expect("spawn root");
    let tenant = TenantId::generate();
    let sup = |tenant: TenantId| {
        let build = |reply| RootMsg::Tenant { tenant, reply };
        call("/", &root, build, TIMEOUT_MS)
    };
    let tree = Tree {
        tenant: tenant.clone(),
        board: board.clone(),
        sup: sup(tenant.clone())
            .await
            .expect("call")
            .expect("supervisor"),
    };
    let handle = tree.tenant().await.expect("tenant");
    let before = create(&handle, &tenant).await;

    let stop = |reply| RootMsg::StopTenant {
        tenant: tenant.clone(),
        reply,
    };
    call("/", &root, stop, TIMEOUT_MS).await.expect("stop");
    assert!(matches!(
        handle.query(TIMEOUT_MS).await,
        Err(Error::Stopped { .. })
    ));
    assert!(matches!(
        sup(tenant.clone()).await.expect("call"),
        Err(Error::Stopped { .. })
    ));
    let info = board.get(&format!("/tenants/{tenant}")).expect("record");
    assert_eq!(info.status, ActorStatus::Stopped);

    let resume = |reply| RootMsg::ResumeTenant {
        tenant: tenant.clone(),
        reply,
    };
    call("/", &root, resume, TIMEOUT_MS).await.expect("resume");
    let tree = Tree {
        sup: sup(tenant.clone())
            .await
            .expect("call")
            .expect("supervisor again"),
        ..tree
    };
    let after = tree
        .tenant()
        .await
        .expect("tenant")
        .query(TIMEOUT_MS)
        .await
        .expect("query");
    assert_eq!(after.state, before.state);
    assert_eq!(after.revision, before.revision);
    root.stop_and_wait(None, None).await.expect("stop root");
}

/// A service whose first start panics inside its supervisor's handler (the
/// supervisor itself fails); later starts decline without failing it.
struct CrashOnce(Arc<std::sync::atomic::AtomicBool>);

impl extensor_actors::tenant_supervisor::TenantService for CrashOnce {
    fn name(&self) -> &'static str {
        "crash_once"
    }

    fn spawn(
        &self,
        tenant: TenantId,
        _supervisor: ractor::ActorCell,
    ) -> futures::future::BoxFuture<'static, Result<ractor::ActorCell, Error>> {
        if !self.0.swap(true, std::sync::atomic::Ordering::SeqCst) {
            panic!("fault drill: the supervisor of {tenant} fails");
        }
        Box::pin(async move {
            Err(Error::Spawn {
                actor: format!("/tenants/{tenant}/crash_once"),
                reason: "declined after the drill".into(),
            })
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_restarts_a_failed_tenant_supervisor() {
    use extensor_actors::root::{Root, RootMsg};
    let dir = tempfile::tempdir().expect("tempdir");
    let board = StatusBoard::default();
    let config = TreeConfig {
        store: open_store(&dir),
        board: board.clone(),
        policy: fast_policy(0),
        snapshots: SnapshotPolicy::DEFAULT,
        mailbox_messages_max: 100,
        passivate_idle_ms: None,
        services: vec![Arc::new(CrashOnce(Arc::default()))],
        ownership: extensor_actors::ownership::Ownership::default(),
    };
    let (root, _) = Actor::spawn(None, Root, config).await.expect("spawn root");
    let tenant = TenantId::generate();
    let path = format!("/tenants/{tenant}");
    let t = tenant.clone();
    call(
        "/",
        &root,
        |reply| RootMsg::Tenant { tenant: t, reply },
        TIMEOUT_MS,
    )
    .await
    .expect("call")
    .expect("supervisor started");
    let failed = board
        .wait_until(&path, |i| i.status == ActorStatus::Failed, TIMEOUT_MS)
        .await
        .expect("the supervisor is marked failed");
    assert!(
        failed
            .last_error
            .unwrap_or_default()
            .contains("fault drill")
    );
    let t = tenant.clone();
    let refused = call(
        "/",
        &root,
        |reply| RootMsg::Tenant { tenant: t, reply },
        TIMEOUT_MS,
    )
    .await
    .expect("call");
    assert!(matches!(refused, Err(Error::Failed { .. })), "{refused:?}");
    let t = tenant.clone();
    call(
        "/",
        &root,
        |reply| RootMsg::RestartTenant { tenant: t, reply },
        TIMEOUT_MS,
    )
    .await
    .expect("call")
    .expect("operator restart");
    let info = board.get(&path).expect("on the board");
    assert_eq!((info.status, info.restarts), (ActorStatus::Running, 1));
    let t = tenant.clone();
    call(
        "/",
        &root,
        |reply| RootMsg::Tenant { tenant: t, reply },
        TIMEOUT_MS,
    )
    .await
    .expect("call")
    .expect("serves again");
    root.stop_and_wait(None, None).await.expect("stop root");
}

/// A service actor that takes its time to stop: its `post_stop` says it
/// began ([`SlowStop::stopping`]) and then waits for the test to let it go.
struct SlowStop {
    tenant: TenantId,
    stopping: Arc<tokio::sync::Notify>,
    release: Arc<tokio::sync::Notify>,
}

struct SlowStopActor;

impl Actor for SlowStopActor {
    type Msg = ();
    type State = (Arc<tokio::sync::Notify>, Arc<tokio::sync::Notify>);
    type Arguments = (Arc<tokio::sync::Notify>, Arc<tokio::sync::Notify>);

    async fn pre_start(
        &self,
        _myself: ActorRef<()>,
        args: Self::Arguments,
    ) -> Result<Self::State, ractor::ActorProcessingErr> {
        Ok(args)
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<()>,
        (stopping, release): &mut Self::State,
    ) -> Result<(), ractor::ActorProcessingErr> {
        stopping.notify_one();
        release.notified().await;
        Ok(())
    }
}

impl extensor_actors::tenant_supervisor::TenantService for SlowStop {
    fn name(&self) -> &'static str {
        "slow_stop"
    }

    fn wanted_at_start(&self, tenant: &TenantId) -> bool {
        tenant == &self.tenant
    }

    fn spawn(
        &self,
        _tenant: TenantId,
        supervisor: ractor::ActorCell,
    ) -> futures::future::BoxFuture<'static, Result<ractor::ActorCell, Error>> {
        let args = (self.stopping.clone(), self.release.clone());
        Box::pin(async move {
            let (actor, _) = Actor::spawn_linked(None, SlowStopActor, args, supervisor)
                .await
                .map_err(|e| Error::Spawn {
                    actor: "slow_stop".into(),
                    reason: e.to_string(),
                })?;
            Ok(actor.get_cell())
        })
    }
}

/// The root does not wait inside its handler while a tenant's subtree
/// stops: with one tenant's service stuck in its stop, another tenant's
/// supervisor is still handed out at once, and the operator's stop is
/// answered only once the slow subtree is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_root_answers_other_calls_while_a_tenant_is_slow_to_stop() {
    use extensor_actors::root::{Root, RootMsg};
    let dir = tempfile::tempdir().expect("tempdir");
    let (slow, other) = (TenantId::generate(), TenantId::generate());
    let service = SlowStop {
        tenant: slow.clone(),
        stopping: Arc::default(),
        release: Arc::default(),
    };
    let (stopping, release) = (service.stopping.clone(), service.release.clone());
    let board = StatusBoard::default();
    let config = TreeConfig {
        store: open_store(&dir),
        board: board.clone(),
        policy: fast_policy(5),
        snapshots: SnapshotPolicy::DEFAULT,
        mailbox_messages_max: 100,
        passivate_idle_ms: None,
        services: vec![Arc::new(service)],
        ownership: extensor_actors::ownership::Ownership::default(),
    };
    let (root, _) = Actor::spawn(None, Root, config).await.expect("spawn root");
    let sup = |tenant: TenantId, timeout_ms| {
        let root = root.clone();
        async move {
            let build = |reply| RootMsg::Tenant { tenant, reply };
            call("/", &root, build, timeout_ms).await
        }
    };
    sup(slow.clone(), TIMEOUT_MS)
        .await
        .expect("call")
        .expect("slow tenant started");
    board
        .wait_until(
            &format!("/tenants/{slow}/slow_stop"),
            |i| i.status == ActorStatus::Running,
            TIMEOUT_MS,
        )
        .await
        .expect("its slow service runs");

    let (r, t) = (root.clone(), slow.clone());
    let stop = tokio::spawn(async move {
        let build = |reply| RootMsg::StopTenant { tenant: t, reply };
        call("/", &r, build, 3 * TIMEOUT_MS).await
    });
    tokio::time::timeout(
        std::time::Duration::from_millis(TIMEOUT_MS),
        stopping.notified(),
    )
    .await
    .expect("the slow service began to stop");
    // Well under the 5 s a tenant stop may take: the root is not waiting.
    let prompt_ms = 1_000;
    sup(other.clone(), prompt_ms)
        .await
        .expect("the root answers while the other tenant stops")
        .expect("other tenant started");
    call("/", &root, |reply| RootMsg::Snapshot { reply }, prompt_ms)
        .await
        .expect("the ops tree is answered while the other tenant stops");
    assert!(
        !stop.is_finished(),
        "the stop was answered while the tenant's service was still stopping"
    );

    release.notify_one();
    stop.await.expect("join").expect("the stop is answered");
    let info = board.get(&format!("/tenants/{slow}")).expect("record");
    assert_eq!(info.status, ActorStatus::Stopped);
    assert!(matches!(
        sup(slow.clone(), TIMEOUT_MS).await.expect("call"),
        Err(Error::Stopped { .. })
    ));
    root.stop_and_wait(None, None).await.expect("stop root");
}
