//! The HTTP server: bind, serve, and shut down gracefully.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use extensor_core::store::EventStore;
use extensor_core::store::sqlite::{SqliteConfig, SqliteStore};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{EndpointExt, Route, Server, get};

use crate::ApiError;

/// In-flight requests get this long to finish after a shutdown signal.
pub const SHUTDOWN_GRACE_MS: u64 = 10_000;

pub struct ServerConfig {
    /// `host:port`; port 0 picks a free port (tests).
    pub listen: String,
    pub store: SqliteConfig,
}

/// Opens the store, binds, calls `on_listening` with the bound address, and
/// serves until `shutdown` resolves. Then it stops accepting, lets in-flight
/// requests finish (up to [`SHUTDOWN_GRACE_MS`]) and closes the store so
/// every acknowledged append is durable before it returns.
pub async fn serve(
    config: ServerConfig,
    on_listening: impl FnOnce(SocketAddr),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ApiError> {
    let store = SqliteStore::open(config.store)?;
    let acceptor = TcpListener::bind(config.listen.clone())
        .into_acceptor()
        .await
        .map_err(|source| ApiError::Bind {
            addr: config.listen.clone(),
            source,
        })?;
    if let Some(addr) = acceptor
        .local_addr()
        .first()
        .and_then(|a| a.as_socket_addr().copied())
    {
        on_listening(addr);
    }
    let shared: Arc<dyn EventStore> = Arc::new(store.clone());
    let app = Route::new()
        .at("/healthz", get(crate::health::healthz))
        .data(shared);
    let result = Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(
            app,
            shutdown,
            Some(Duration::from_millis(SHUTDOWN_GRACE_MS)),
        )
        .await;
    store.close().await;
    result.map_err(ApiError::Serve)
}
