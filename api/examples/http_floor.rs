//! The HTTP floor of the plugin-route benchmark (`benches/route_peers.sh`,
//! docs/BENCHMARKS.md): poem alone, on the server's allocator and tokio's
//! default multi-thread runtime, answering the same JSON as the plugin route
//! and the peers. No middleware, no engine, no JS: what any request to
//! Extensor costs at the least, measured in the same run as the rest.
//!
//!     cargo run --release -p extensor-api --example http_floor -- 127.0.0.1:18083

use poem::listener::TcpListener;
use poem::{Response, Route, Server, handler};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Where it listens unless the first argument says otherwise.
const LISTEN_DEFAULT: &str = "127.0.0.1:18083";

#[handler]
fn hello() -> Response {
    Response::builder()
        .content_type("application/json")
        .body(r#"{"hello":"world"}"#)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| LISTEN_DEFAULT.to_owned());
    Server::new(TcpListener::bind(listen))
        .run(Route::new().at("/", hello))
        .await
}
