//! Serving with a graceful shutdown: on the shutdown signal the server stops accepting
//! connections, reports itself not ready, lets in-flight requests finish, and gives up on them
//! after the drain timeout so a stuck client cannot hold the process forever.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::readiness::Readiness;

/// Serves `router` on `listener` until `shutdown` completes, then drains for at most
/// `drain_timeout`. Returns whether every in-flight request finished in time.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    readiness: Readiness,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain_timeout: Duration,
) -> std::io::Result<bool> {
    let (draining_sender, mut draining) = watch::channel(false);
    let signal = async move {
        shutdown.await;
        readiness.start_draining();
        tracing::info!("shutdown requested; draining in-flight requests");
        let _ = draining_sender.send(true);
    };
    let server = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(signal);
    let server = std::pin::pin!(server.into_future());
    let deadline = async move {
        let _ = draining.wait_for(|draining| *draining).await;
        tokio::time::sleep(drain_timeout).await;
    };
    tokio::select! {
        result = server => result.map(|()| true),
        () = deadline => {
            tracing::warn!(timeout_ms = drain_timeout.as_millis() as u64, "drain timed out; closing remaining connections");
            Ok(false)
        }
    }
}
