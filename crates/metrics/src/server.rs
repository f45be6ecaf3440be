//! A minimal HTTP/1 server for `GET /metrics`.

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The OpenMetrics text format (Prometheus negotiates and reads it).
const CONTENT_TYPE_OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A connection is closed after this long, whatever it is doing (scrapes take
/// milliseconds; this bounds idle or slow clients).
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);

/// Binds `addr` and returns the bound address and the server future, which serves
/// `GET /metrics` until dropped. `refresh` runs before each scrape to set the gauges
/// read from the node's state.
pub async fn serve(
    addr: SocketAddr,
    refresh: Arc<dyn Fn() + Send + Sync>,
) -> std::io::Result<(SocketAddr, impl Future<Output = ()> + Send + 'static)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let server = async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::debug!(error = %e, "metrics: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let refresh = refresh.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let refresh = refresh.clone();
                    async move { Ok::<_, Infallible>(respond(&req, &*refresh)) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service);
                match tokio::time::timeout(CONNECTION_TIMEOUT, conn).await {
                    Ok(Ok(())) | Err(_) => {}
                    Ok(Err(e)) => tracing::debug!(error = %e, "metrics: connection error"),
                }
            });
        }
    };
    Ok((bound, server))
}

fn respond(req: &Request<Incoming>, refresh: &(dyn Fn() + Send + Sync)) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (req.method(), req.uri().path()) {
        (&Method::GET | &Method::HEAD, "/metrics") => {
            refresh();
            (
                StatusCode::OK,
                CONTENT_TYPE_OPENMETRICS,
                crate::metrics().encode(),
            )
        }
        (_, "/metrics") => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n".to_string(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "metrics are at /metrics\n".to_string(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert(CONTENT_TYPE, value);
    }
    if status == StatusCode::METHOD_NOT_ALLOWED
        && let Ok(value) = "GET".parse()
    {
        response.headers_mut().insert(ALLOW, value);
    }
    response
}
