//! The in-process test harness, re-exported here as the tests use it: nodes and
//! clusters started from validated configs on temp dirs, a client that sees the wire
//! as a PSP does, message builders, and independent checks of what the server
//! answers (RFC 7807 problems, `multipart/mixed` bodies parsed by `mailparse`,
//! header formats).
//!
//! Layout: `node` (TestNode), `cluster` (TestCluster, Member), `client` (the `Api`
//! client and request helpers), `messages` (participants, envelopes, producer
//! bodies), `answers` (producer outcomes and pull answers), `multipart` (the
//! independent multipart reader), `netns` (network namespaces for real processes),
//! `problems` (RFC 7807), `secure` (a dev CA, certificates, access files, HTTPS
//! clients), `prometheus` (a real Prometheus evaluating the shipped alerts), `process`
//! (the real binary as a child process, and clusters of them), `timing` (named
//! presets and wait budgets), `traffic` (a producer and pullers running through
//! failures), `selftest` (the checks shown broken inputs).

#![allow(dead_code)]

mod answers;
mod client;
mod cluster;
mod messages;
mod multipart;
mod netns;
mod node;
mod problems;
mod process;
mod prometheus;
mod secure;
mod selftest;
pub mod timing;
mod traffic;

pub use answers::*;
pub use client::*;
pub use cluster::TestCluster;
pub use messages::*;
pub use multipart::*;
pub use netns::Mesh;
pub use node::{TestNode, Transport};
pub use problems::*;
pub use process::{NodeAddrs, ProcessCluster, ServeProcess, free_port, run_cli};
pub use prometheus::Prometheus;
pub use secure::*;
pub use traffic::*;
