//! The `http` port: `/metrics` for Prometheus, `/healthz` (the process answers) and `/readyz`
//! (this member serves consistent data: it knows a leader and has applied what it committed),
//! the two probes Kubernetes needs.

use std::future::Future;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use crate::metrics::{Metrics, Snapshot};

/// What the HTTP endpoints ask of the member.
pub trait MemberStatus: Send + Sync + 'static {
    fn metrics_snapshot(&self) -> Snapshot;
    /// `Ok` when the member serves consistent data, else why not.
    fn readiness(&self) -> Result<(), String>;
}

#[derive(Clone)]
struct AppState {
    status: Arc<dyn MemberStatus>,
    metrics: Arc<Metrics>,
}

pub fn router(status: Arc<dyn MemberStatus>, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_page))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(AppState { status, metrics })
}

async fn metrics_page(State(s): State<AppState>) -> impl IntoResponse {
    let body = s.metrics.render(&s.status.metrics_snapshot());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}

async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    match s.status.readiness() {
        Ok(()) => (StatusCode::OK, "ready\n".to_string()),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
    }
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    status: Arc<dyn MemberStatus>,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(status, metrics))
        .with_graceful_shutdown(shutdown)
        .await
}
