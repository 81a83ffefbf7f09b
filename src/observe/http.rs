//! The HTTP server: `/healthz`, `/metrics`, the status page `/` and its
//! JSON, `/api/v1/topics`, `/api/v1/groups` and `/api/v1/clients`. One more
//! task of the broker (axum on the broker's runtime), reading the same
//! catalog, coordinators and metrics. Its connections are served apart from
//! the Kafka listener's, so nothing sent to this port disturbs Kafka clients.
//! It also takes faults and takes test-cluster nodes down
//! ([`super::control`]).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Json};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::metrics::Metrics;
use super::view;
use crate::catalog::Catalog;
use crate::group::Coordinator;
use crate::session::Clients;
use crate::shutdown::stopped;

/// The status page: one file, no external resources.
const PAGE: &str = include_str!("page.html");

/// What the handlers read.
#[derive(Debug, Clone)]
pub(crate) struct Shared {
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) groups: Arc<Coordinator>,
    pub(crate) clients: Arc<Clients>,
    pub(crate) metrics: Arc<Metrics>,
    /// Faults and the nodes of a test cluster (`None` for a single broker).
    pub(crate) control: Option<Arc<crate::broker::Control>>,
}

/// Serves `listener` until `shutdown` turns true.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Shared,
    mut shutdown: watch::Receiver<bool>,
) {
    let control = shared.control.clone();
    let mut app = Router::new()
        .route("/", get(page))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/v1/topics", get(topics))
        .route("/api/v1/groups", get(groups))
        .route("/api/v1/clients", get(clients))
        .with_state(shared);
    if let Some(control) = control {
        let faults = Router::new()
            .route(
                "/api/v1/faults",
                post(super::control::inject).delete(super::control::clear),
            )
            .route("/api/v1/brokers/{id}/{action}", post(super::control::node))
            .with_state(control);
        app = app.merge(faults);
    }
    let stop = async move { stopped(&mut shutdown).await };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
    {
        tracing::warn!(error = %e, "the HTTP server stopped");
    }
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

/// 200 while the broker serves (the server starts once Kafka clients can connect).
async fn healthz() -> &'static str {
    "ok\n"
}

async fn metrics(State(s): State<Shared>) -> Result<impl IntoResponse, StatusCode> {
    let text = blocking(move || s.metrics.render()).await?;
    let kind = "text/plain; version=0.0.4; charset=utf-8";
    Ok(([(header::CONTENT_TYPE, kind)], text))
}

async fn topics(State(s): State<Shared>) -> Result<Json<Vec<view::TopicView>>, StatusCode> {
    Ok(Json(blocking(move || view::topics(&s.catalog)).await?))
}

async fn groups(State(s): State<Shared>) -> Result<Json<Vec<view::GroupView>>, StatusCode> {
    Ok(Json(
        blocking(move || view::groups(&s.catalog, &s.groups)).await?,
    ))
}

async fn clients(State(s): State<Shared>) -> Json<Vec<crate::session::ClientInfo>> {
    Json(s.clients.list())
}

/// Runs `f` (which takes the partitions' locks) off the async workers;
/// 503 when the broker is stopping and the task was cancelled.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, StatusCode> {
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => Ok(value),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(StatusCode::SERVICE_UNAVAILABLE),
    }
}
