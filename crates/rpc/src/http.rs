//! HTTP-level pieces of the server: subscription ids and body draining.

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use jsonrpsee::core::BoxError;
use jsonrpsee::core::traits::IdProvider;
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};
use jsonrpsee::types::SubscriptionId;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// Subscription ids as geth writes them: `"0x"` + 32 hex digits. Clients (viem,
/// web3.py) expect a string; a JSON number is not recognised.
#[derive(Debug, Clone, Copy, Default)]
pub struct HexIdProvider;

impl IdProvider for HexIdProvider {
    fn next_id(&self) -> SubscriptionId<'static> {
        SubscriptionId::Str(format!("0x{:032x}", rand::random::<u128>()).into())
    }
}

/// Reads the whole request body (up to `limit` bytes) before the RPC layer handles
/// the request. The RPC layer may answer malformed input without reading all of it,
/// which would leave bytes on a keep-alive connection and break the client's next
/// request; a drained body keeps the connection usable. Bodies over the limit get 413
/// and `Connection: close`.
#[derive(Debug, Clone, Copy)]
pub struct DrainBodyLayer {
    pub limit: usize,
}

impl<S> Layer<S> for DrainBodyLayer {
    type Service = DrainBody<S>;
    fn layer(&self, inner: S) -> Self::Service {
        DrainBody {
            inner,
            limit: self.limit,
        }
    }
}

#[derive(Debug, Clone)]
pub struct DrainBody<S> {
    inner: S,
    limit: usize,
}

impl<S, B> Service<HttpRequest<B>> for DrainBody<S>
where
    S: Service<HttpRequest<HttpBody>, Response = HttpResponse<HttpBody>> + Clone + Send + 'static,
    S::Error: Into<BoxError> + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = HttpResponse<HttpBody>;
    type Error = BoxError;
    type Future =
        Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: HttpRequest<B>) -> Self::Future {
        // Take the service that was driven to readiness; leave a fresh clone behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let limit = self.limit;
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let bytes = match Limited::new(body, limit).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(_) => return Ok(too_large(limit)),
            };
            let request = HttpRequest::from_parts(parts, HttpBody::new(Full::new(bytes)));
            inner.call(request).await.map_err(Into::into)
        })
    }
}

fn too_large(limit: usize) -> HttpResponse<HttpBody> {
    let body = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{{\"code\":-32600,\"message\":\"request body exceeds {limit} bytes\"}}}}"
    );
    let mut response = HttpResponse::new(HttpBody::new(Full::new(Bytes::from(body))));
    *response.status_mut() = hyper::StatusCode::PAYLOAD_TOO_LARGE;
    let headers = response.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    headers.insert(
        hyper::header::CONNECTION,
        hyper::header::HeaderValue::from_static("close"),
    );
    response
}
