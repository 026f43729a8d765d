//! docs/openapi/{public,internal}.yaml against the routers: every route the policy
//! layer knows (`context::Route`) is an operation of the files and every operation
//! is such a route; and every operation, requested on a live node, is matched by a
//! registered route (the fallback answers outside the route layers, so a request
//! it answered is missing from `pixstream_requests_total`).

use std::collections::BTreeSet;

use http::Method;
use pixstream::context::Route;
use wire::paths;

use crate::harness::*;

const PUBLIC: &str = include_str!("../../docs/openapi/public.yaml");
const INTERNAL: &str = include_str!("../../docs/openapi/internal.yaml");

/// (METHOD, path template) of every operation of an OpenAPI file: the methods
/// (indent 4) under each path key (indent 2, starting with `/`) of `paths`.
fn operations(file: &str) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    let mut path: Option<String> = None;
    for line in file.lines() {
        let indent = line.len() - line.trim_start().len();
        let key = line.trim().strip_suffix(':');
        match (indent, key) {
            (2, Some(key)) if key.starts_with('/') => path = Some(key.to_owned()),
            (0 | 2, _) if !line.trim().is_empty() => path = None,
            (4, Some(method)) if ["get", "put", "post", "delete"].contains(&method) => {
                if let Some(path) = &path {
                    out.insert((method.to_uppercase(), path.clone()));
                }
            }
            _ => {}
        }
    }
    out
}

/// Every endpoint of `route`. No wildcard: a new route does not compile until it
/// is listed here — and then needs its operation in the OpenAPI files.
fn endpoints(route: Route) -> Vec<(Method, &'static str)> {
    match route {
        Route::StreamStart => vec![(Method::GET, paths::STREAM_START)],
        Route::StreamNext => vec![(Method::GET, paths::STREAM_NEXT)],
        Route::StreamClose => vec![(Method::DELETE, paths::STREAM_NEXT)],
        Route::Append => vec![(Method::POST, paths::APPEND)],
        Route::AuditExport => vec![(Method::GET, paths::AUDIT_EXPORT), (Method::GET, paths::CLUSTER_AUDIT_EXPORT)],
        Route::AuditSeal => vec![(Method::POST, paths::AUDIT_SEAL), (Method::POST, paths::CLUSTER_AUDIT_SEAL)],
        Route::ClusterMembers => vec![(Method::POST, paths::CLUSTER_MEMBERS)],
        Route::TenantsList => vec![(Method::GET, paths::TENANTS)],
        Route::TenantShow => vec![(Method::GET, paths::TENANT)],
        Route::TenantSet => vec![(Method::PUT, paths::TENANT)],
        Route::TenantDelete => vec![(Method::DELETE, paths::TENANT)],
        Route::TenantStreamClose => vec![(Method::DELETE, paths::TENANT_STREAM)],
        Route::TenantCursor => vec![(Method::POST, paths::TENANT_CURSOR)],
        Route::TenantReplay => vec![(Method::POST, paths::TENANT_REPLAYS)],
        Route::NodeBackup => vec![(Method::POST, paths::NODE_BACKUP)],
        Route::ClusterStatus => vec![(Method::GET, paths::CLUSTER_STATUS)],
        Route::ClusterShard => vec![(Method::GET, paths::CLUSTER_SHARD)],
        Route::ShardLeader => vec![(Method::POST, paths::CLUSTER_SHARD_LEADER)],
        Route::Healthz => vec![(Method::GET, paths::HEALTHZ)],
        Route::Readyz => vec![(Method::GET, paths::READYZ)],
        Route::Metrics => vec![(Method::GET, paths::METRICS)],
        Route::Other => vec![],
    }
}

const ROUTES: [Route; 22] = [
    Route::StreamStart,
    Route::StreamNext,
    Route::StreamClose,
    Route::Append,
    Route::AuditExport,
    Route::AuditSeal,
    Route::ClusterMembers,
    Route::TenantsList,
    Route::TenantShow,
    Route::TenantSet,
    Route::TenantDelete,
    Route::TenantStreamClose,
    Route::TenantCursor,
    Route::TenantReplay,
    Route::NodeBackup,
    Route::ClusterStatus,
    Route::ClusterShard,
    Route::ShardLeader,
    Route::Healthz,
    Route::Readyz,
    Route::Metrics,
    Route::Other,
];

#[test]
fn the_openapi_files_list_every_route_and_only_routes() {
    let documented: BTreeSet<(String, String)> = operations(PUBLIC).into_iter().chain(operations(INTERNAL)).collect();
    let routed: BTreeSet<(String, String)> = ROUTES
        .iter()
        .flat_map(|route| endpoints(*route))
        .map(|(method, template)| {
            assert_eq!(Route::of(&method, template), routes_of(&method, template), "{method} {template}");
            (method.to_string(), template.to_owned())
        })
        .collect();
    let missing: Vec<_> = routed.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&routed).collect();
    assert!(missing.is_empty(), "routes missing from docs/openapi: {missing:?}");
    assert!(unknown.is_empty(), "operations in docs/openapi that are no route: {unknown:?}");
    assert!(
        operations(PUBLIC).iter().all(|(_, path)| path.starts_with("/api/")),
        "public.yaml holds the public routes"
    );
}

/// The route `endpoints` lists `(method, template)` under.
fn routes_of(method: &Method, template: &str) -> Route {
    *ROUTES.iter().find(|r| endpoints(**r).iter().any(|(m, t)| m == method && *t == template)).expect("listed")
}

#[tokio::test]
async fn every_documented_operation_is_served_by_a_registered_route() {
    let node = TestNode::start(|f| f.limits.long_poll_wait_ms = timing::QUICK_POLL_MS).await;
    node.append(ISPB, &messages(ISPB, 1)).await;
    let mut requested = 0;
    for (method, template) in operations(PUBLIC).into_iter().chain(operations(INTERNAL)) {
        requested += 1;
        let path = template
            .replace("{ispb}", ISPB)
            .replace("{token}", "AAAA")
            .replace("{shard}", "0")
            .replace("{stream}", "1");
        let base = if path.starts_with("/api/") { &node.public } else { &node.internal };
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let answer =
            node.client.request(method.clone(), format!("{base}{path}")).body("{}").send().await.expect("answered");
        assert_ne!(answer.status(), reqwest::StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
    }
    let text = node.client.get(format!("{}{}", node.internal, wire::paths::METRICS)).send().await.expect("metrics");
    let text = text.text().await.expect("body");
    let counted: Vec<&str> = text.lines().filter(|l| l.starts_with("pixstream_requests_total{")).collect();
    let other: Vec<&&str> = counted.iter().filter(|l| l.contains("route=\"other\"")).collect();
    assert!(other.is_empty(), "documented operations whose route the policy layer does not know: {other:?}");
    // The fallback answers outside the route layers: a request it answered is not counted.
    let total: f64 = counted.iter().filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum();
    assert_eq!(
        total as usize,
        1 + requested,
        "every documented operation (and the one append) was routed: {counted:#?}"
    );
    node.stop().await;
}
