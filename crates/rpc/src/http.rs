//! HTTP-level pieces of the server: subscription ids, body draining and the JSON-RPC
//! envelope check of HTTP requests ([`crate::envelope`]).

use crate::envelope::{self, Plan};
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
///
/// A JSON POST body then passes the envelope check ([`crate::envelope::plan`]): what
/// is no valid request is answered here, notifications get an empty body, and only
/// valid calls reach jsonrpsee (batches of at most `max_batch`).
#[derive(Debug, Clone, Copy)]
pub struct DrainBodyLayer {
    pub limit: usize,
    pub max_batch: usize,
}

impl<S> Layer<S> for DrainBodyLayer {
    type Service = DrainBody<S>;
    fn layer(&self, inner: S) -> Self::Service {
        DrainBody {
            inner,
            limit: self.limit,
            max_batch: self.max_batch,
        }
    }
}

#[derive(Debug, Clone)]
pub struct DrainBody<S> {
    inner: S,
    limit: usize,
    max_batch: usize,
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
        let max_batch = self.max_batch;
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            let bytes = match Limited::new(body, limit).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(_) => return Ok(too_large(limit)),
            };
            if parts.method != hyper::Method::POST || !is_json(&parts.headers) {
                let request = HttpRequest::from_parts(parts, HttpBody::new(Full::new(bytes)));
                return inner.call(request).await.map_err(Into::into);
            }
            let (body, fix, silent) = match envelope::plan(&bytes, max_batch) {
                Plan::Answer(answer) => return Ok(json_response(answer)),
                Plan::Forward => (trim_start(bytes), None, false),
                Plan::ForwardSilently => (trim_start(bytes), None, true),
                Plan::Rewrite { body, fix } => (Bytes::from(body), Some(fix), false),
            };
            set_length(&mut parts.headers, body.len());
            let request = HttpRequest::from_parts(parts, HttpBody::new(Full::new(body)));
            let response = inner.call(request).await.map_err(Into::into)?;
            if !silent && fix.is_none() {
                return Ok(response);
            }
            let (mut parts, body) = response.into_parts();
            let answer = match fix {
                Some(fix) => {
                    let bytes = body.collect().await?.to_bytes();
                    envelope::repair(&fix, &bytes).map(Bytes::from)
                }
                None => None,
            };
            let answer = answer.unwrap_or_default();
            set_length(&mut parts.headers, answer.len());
            Ok(HttpResponse::from_parts(
                parts,
                HttpBody::new(Full::new(answer)),
            ))
        })
    }
}

/// Whether jsonrpsee takes the body for JSON-RPC (its own content-type check).
fn is_json(headers: &hyper::HeaderMap) -> bool {
    jsonrpsee::server::http::is_json(headers.get(hyper::header::CONTENT_TYPE))
}

/// The body without leading whitespace (jsonrpsee looks for `{` or `[` in the first
/// 128 bytes only).
fn trim_start(bytes: Bytes) -> Bytes {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    bytes.slice(start..)
}

fn set_length(headers: &mut hyper::HeaderMap, len: usize) {
    headers.remove(hyper::header::TRANSFER_ENCODING);
    headers.insert(
        hyper::header::CONTENT_LENGTH,
        hyper::header::HeaderValue::from(len),
    );
}

fn json_response(body: String) -> HttpResponse<HttpBody> {
    let mut response = HttpResponse::new(HttpBody::new(Full::new(Bytes::from(body))));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
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
