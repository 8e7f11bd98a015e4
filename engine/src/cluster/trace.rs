//! One debug line per API request: method, path (with its query), status
//! and latency. Headers and bodies are never logged, so neither credentials
//! (they travel in headers) nor a Secret's data (in bodies) can show up.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use http::{Request, Response};

/// Target of the request lines: `ECHO_IAC_LOG=echo_iac::api=debug` shows
/// only them.
pub(crate) const TARGET: &str = "echo_iac::api";

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TraceLayer;

impl<S> tower::Layer<S> for TraceLayer {
    type Service = Trace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Trace { inner }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Trace<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> tower::Service<Request<ReqBody>> for Trace<S>
where
    S: tower::Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: std::fmt::Display,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        if !tracing::enabled!(target: TARGET, tracing::Level::DEBUG) {
            return Box::pin(self.inner.call(request));
        }
        let method = request.method().clone();
        let path = request
            .uri()
            .path_and_query()
            .map_or_else(|| request.uri().path().to_string(), ToString::to_string);
        let start = Instant::now();
        let response = self.inner.call(request);
        Box::pin(async move {
            let result = response.await;
            let ms = start.elapsed().as_secs_f64() * 1000.0;
            match &result {
                Ok(response) => tracing::debug!(
                    target: TARGET,
                    "{method} {path} {} {ms:.1}ms",
                    response.status().as_u16()
                ),
                Err(error) => {
                    tracing::debug!(target: TARGET, "{method} {path} failed after {ms:.1}ms: {error}")
                }
            }
            result
        })
    }
}
