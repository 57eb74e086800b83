//! Graceful shutdown over a real socket: in-flight requests finish, new ones are refused, and
//! a request slower than the drain timeout does not hold the process.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use hearth_server::Readiness;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

async fn slow_server(
    delay: Duration,
    drain_timeout: Duration,
) -> (
    std::net::SocketAddr,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<bool>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let router = Router::new().route(
        "/slow",
        get(move || async move {
            tokio::time::sleep(delay).await;
            "finished"
        }),
    );
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(hearth_server::serve(
        listener,
        router,
        Readiness::default(),
        async move {
            let _ = stopped.await;
        },
        drain_timeout,
    ));
    (address, stop, server)
}

async fn start_request(address: std::net::SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    stream
        .write_all(b"GET /slow HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n")
        .await
        .expect("write");
    stream
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let (address, stop, server) =
        slow_server(Duration::from_millis(400), Duration::from_secs(10)).await;
    let mut stream = start_request(address).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.send(()).expect("server running");

    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("finished"), "{response}");
    let drained = server.await.expect("join").expect("serve");
    assert!(drained, "every request finished within the drain timeout");

    assert!(
        TcpStream::connect(address).await.is_err(),
        "the listener is closed after shutdown"
    );
}

#[tokio::test]
async fn a_request_slower_than_the_drain_timeout_does_not_hold_shutdown() {
    let (address, stop, server) =
        slow_server(Duration::from_secs(30), Duration::from_millis(200)).await;
    let _stream = start_request(address).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.send(()).expect("server running");
    let drained = tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("shutdown finished within the drain timeout")
        .expect("join")
        .expect("serve");
    assert!(!drained, "the slow request was cut off");
}
