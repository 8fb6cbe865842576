//! Plumbing both simulators share: serving one accepted connection over TLS or plain HTTP/1.1,
//! and waiting for SIGINT/SIGTERM.

use std::future::Future;

use hyper::body::{Body, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Serves one connection on its own task: the TLS handshake (when `tls` is set), then HTTP/1.1
/// with `handler` for every request. Failures end only this connection (logged at debug).
pub fn spawn_connection<F, Fut, B, E>(tcp: TcpStream, tls: Option<tokio_rustls::TlsAcceptor>, handler: F)
where
    F: Fn(Request<Incoming>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Response<B>, E>> + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
    E: Into<BoxError>,
{
    let _ = tcp.set_nodelay(true);
    tokio::spawn(async move {
        let svc = hyper::service::service_fn(handler);
        let builder = hyper::server::conn::http1::Builder::new();
        let res = match tls {
            Some(acc) => match acc.accept(tcp).await {
                Ok(s) => builder.serve_connection(TokioIo::new(s), svc).await,
                Err(e) => {
                    tracing::debug!("TLS handshake failed: {e}");
                    return;
                }
            },
            None => builder.serve_connection(TokioIo::new(tcp), svc).await,
        };
        if let Err(e) = res {
            tracing::debug!("connection ended: {e}");
        }
    });
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() -> Result<(), String> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).map_err(|e| e.to_string())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    Ok(())
}
