//! pixstream integration tests: one binary, nodes started in-process (and, for the
//! crash test, the real `pixstream` binary), asserting the PSP and producer contract
//! of SPEC.md §2 and §3 over HTTP.

mod admin_tenants;
mod audit;
mod backup;
mod bench;
mod certs_dev;
mod cluster;
mod cluster_admin;
mod cluster_process;
mod concurrency;
mod documents;
mod errors;
mod expiry;
mod harness;
mod incidents;
mod internal_auth;
mod key_rotation;
mod leader_churn;
mod limits;
mod logs;
mod membership;
mod metrics;
mod openapi;
mod peer_tls;
mod produce;
mod pull;
mod replay;
mod restart;
mod retention;
mod retry;
mod scenarios;
mod tls;
mod tokens;
mod top;
