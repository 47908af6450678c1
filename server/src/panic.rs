//! [`CatchPanicLayer`]: a tower layer that turns a panic in a handler into
//! an `INTERNAL` gRPC status for that one call, so that no request can take
//! the server down or leave its client hanging.
//!
//! It catches panics both while the inner service builds its response
//! future and while that future runs (where tonic runs every handler's
//! `async fn`). Work a handler moves to a spawned task (stream producers)
//! is isolated by tokio instead: a panicking task ends only its stream.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::task::{Context, Poll};

use futures::FutureExt as _;
use futures::future::BoxFuture;
use tonic::Status;

/// Wraps a service with [`CatchPanic`].
#[derive(Debug, Clone, Copy, Default)]
pub struct CatchPanicLayer;

impl<S> tower::Layer<S> for CatchPanicLayer {
    type Service = CatchPanic<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CatchPanic { inner }
    }
}

/// The service [`CatchPanicLayer`] produces.
#[derive(Debug, Clone)]
pub struct CatchPanic<S> {
    inner: S,
}

impl<S, B> tower::Service<http::Request<B>> for CatchPanic<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path().to_string();
        let future = match catch_unwind(AssertUnwindSafe(|| self.inner.call(request))) {
            Ok(future) => future,
            Err(payload) => {
                let response = panic_response(&path, payload.as_ref());
                return Box::pin(async move { Ok(response) });
            }
        };
        Box::pin(async move {
            match AssertUnwindSafe(future).catch_unwind().await {
                Ok(result) => result,
                Err(payload) => Ok(panic_response(&path, payload.as_ref())),
            }
        })
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(text) = payload.downcast_ref::<&'static str>() {
        text
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text
    } else {
        "non-string panic payload"
    }
}

fn panic_response(path: &str, payload: &(dyn Any + Send)) -> http::Response<tonic::body::Body> {
    tracing::error!(
        method = path,
        panic = panic_message(payload),
        "handler panicked"
    );
    Status::internal("internal error while handling the request").into_http()
}

#[cfg(test)]
mod tests {
    use std::future::Ready;

    use tower::{Layer as _, Service as _};

    use super::*;

    /// A service that panics in `call` or in its future, as asked.
    #[derive(Clone)]
    struct Panicking {
        in_future: bool,
    }

    impl tower::Service<http::Request<()>> for Panicking {
        type Response = http::Response<tonic::body::Body>;
        type Error = std::convert::Infallible;
        type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: http::Request<()>) -> Self::Future {
            if !self.in_future {
                panic!("boom in call");
            }
            Box::pin(async {
                let ready: Ready<()> = std::future::ready(());
                ready.await;
                panic!("boom in future")
            })
        }
    }

    fn grpc_status(response: &http::Response<tonic::body::Body>) -> Option<&str> {
        response
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
    }

    #[tokio::test]
    async fn a_panic_becomes_an_internal_status() {
        for in_future in [false, true] {
            let mut service = CatchPanicLayer.layer(Panicking { in_future });
            let request = http::Request::builder()
                .uri("/portolan.v1.PortRegistryService/LookupPort")
                .body(())
                .unwrap();
            let response = service.call(request).await.unwrap();
            assert_eq!(grpc_status(&response), Some("13"), "in_future={in_future}");
        }
    }
}
