//! `pixstream certs dev` (SPEC.md §6 operations): the bundle it writes starts a node
//! as written — HTTPS on both client listeners, client certificates and bearer
//! tokens — and a PSP certificate pulls, the producer token posts, the auditor
//! token may not post.

use std::net::SocketAddr;

use pixstream::certs::bundle::{BundleSpec, write_bundle};
use pixstream::config::{Config, StartMode};
use reqwest::StatusCode;
use tokio_util::sync::CancellationToken;

use crate::harness::{ISPB, MULTI, assert_problem, https_client, message, pulled, start_path};

#[tokio::test]
async fn the_dev_bundle_starts_a_secured_node_as_written() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("certs");
    let data = dir.path().join("data");
    let cluster_toml = format!(
        "[storage]\ndata_dir = {:?}\nfsync = false\n[limits]\nlong_poll_wait_ms = 300\n[[nodes]]\nid = 1\npublic_addr = \"127.0.0.1:0\"\ninternal_addr = \"127.0.0.1:0\"\npeer_addr = \"127.0.0.1:0\"\n",
        data.display().to_string()
    );
    let bundle =
        write_bundle(&BundleSpec { out: out.clone(), cluster_toml: Some(cluster_toml), psps: vec![ISPB.to_owned()] })
            .expect("bundle");
    for private in ["ca.key", "node-1.key", "producer.token", &format!("psp-{ISPB}.key")] {
        let mode =
            std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(out.join(private)).expect("file").permissions());
        assert_eq!(mode & 0o077, 0, "{private} is readable by its owner only");
    }

    let config = Config::load(&bundle.config, 1, StartMode::Bootstrap).expect("cluster-tls.toml is valid");
    let shutdown = CancellationToken::new();
    let node = pixstream::server::start(config, shutdown.clone()).await.expect("the secured node starts");
    let (public, internal): (SocketAddr, SocketAddr) = (node.public_addr, node.internal_addr);
    let ca = std::fs::read_to_string(out.join("ca.pem")).expect("CA");
    let read = |name: &str| std::fs::read_to_string(out.join(name)).expect("bundle file");

    let producer = https_client(&ca, None);
    let post = |token: String| {
        producer
            .post(format!("https://{internal}/internal/v1/out/{ISPB}/msgs"))
            .bearer_auth(token.trim().to_owned())
            .header("content-type", "application/xml")
            .body(message(ISPB))
            .send()
    };
    assert_eq!(post(read("producer.token")).await.expect("answered").status(), StatusCode::CREATED);
    assert_problem(post(read("auditor.token")).await.expect("answered"), 403, "forbidden").await;

    let identity = pixstream::certs::IssuedCertificate {
        cert_pem: read(&format!("psp-{ISPB}.pem")),
        key_pem: read(&format!("psp-{ISPB}.key")),
        der: Vec::new(),
    };
    let psp = https_client(&ca, Some(&identity));
    let answer =
        psp.get(format!("https://{public}{}", start_path(ISPB))).header("accept", MULTI.expect("accept")).send();
    assert_eq!(pulled(answer.await.expect("answered")).await.messages.len(), 1, "the PSP certificate reads its ISPB");
    shutdown.cancel();
    node.stopped().await;
}
