//! The router in process, without a socket: `app(state)` answers requests whose verified
//! peer is put in by hand, as the TLS listener does per connection.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;
use vigo_server::daemon::{self, DataDir, Limits, Peer};

use crate::fixture::TempDir;

fn app() -> (TempDir, axum::Router) {
    let dir = TempDir::new("app");
    let data = dir.0.join("data");
    daemon::init::init(&data, "localhost").unwrap();
    let example = crate::serverkit::example();
    let (config, diags) = vigo_server::config::load(
        &example.join("config"),
        &vigo_server::secrets::FileProvider::new(&example.join("secrets")),
    );
    assert!(diags.is_empty());
    let state = daemon::state(&DataDir(data), config, None, Limits::default()).unwrap();
    (dir, daemon::routes::app(state))
}

async fn call(app: &axum::Router, name: Option<&str>, method: &str, path: &str) -> StatusCode {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .body(Body::from("{}"))
        .unwrap();
    req.extensions_mut().insert(Peer {
        name: name.map(Arc::from),
        addr: "127.0.0.1:1".parse().unwrap(),
    });
    app.clone().oneshot(req).await.unwrap().status()
}

#[tokio::test]
async fn routes_check_the_peer_before_anything_else() {
    let (_dir, app) = app();
    let cases = [
        (None, "POST", "/v1/checkin", StatusCode::UNAUTHORIZED),
        (None, "GET", "/v1/admin/stats", StatusCode::UNAUTHORIZED),
        (
            Some("web01.prod"),
            "GET",
            "/v1/admin/stats",
            StatusCode::FORBIDDEN,
        ),
        (Some("vigo-admin"), "GET", "/v1/admin/stats", StatusCode::OK),
        (Some("vigo-admin"), "GET", "/v1/admin/nodes", StatusCode::OK),
        (
            Some("vigo-admin"),
            "POST",
            "/v1/admin/nodes/nosuch/revoke",
            StatusCode::NOT_FOUND,
        ),
        (
            Some("web01.prod"),
            "POST",
            "/v1/checkin",
            StatusCode::UNAUTHORIZED,
        ),
        (None, "POST", "/v1/admin/publish", StatusCode::UNAUTHORIZED),
        (
            Some("web01.prod"),
            "POST",
            "/v1/admin/publish",
            StatusCode::FORBIDDEN,
        ),
        // Built from a config in memory, this state has no directory to publish from.
        (
            Some("vigo-admin"),
            "POST",
            "/v1/admin/publish",
            StatusCode::CONFLICT,
        ),
        (
            Some("web01.prod"),
            "GET",
            "/v1/admin/publishes",
            StatusCode::FORBIDDEN,
        ),
        (
            Some("vigo-admin"),
            "GET",
            "/v1/admin/publishes",
            StatusCode::OK,
        ),
        (
            Some("web01.prod"),
            "GET",
            "/v1/admin/nodes/web01.prod/trace",
            StatusCode::FORBIDDEN,
        ),
        (
            Some("vigo-admin"),
            "GET",
            "/v1/admin/nodes/nosuch/trace",
            StatusCode::NOT_FOUND,
        ),
        (None, "POST", "/v1/enroll", StatusCode::BAD_REQUEST),
        (None, "GET", "/v1/nosuch", StatusCode::NOT_FOUND),
    ];
    for (name, method, path, want) in cases {
        assert_eq!(
            call(&app, name, method, path).await,
            want,
            "{name:?} {method} {path}"
        );
    }
}
