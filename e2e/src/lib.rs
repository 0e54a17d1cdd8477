//! `keepr-e2e`: the real Kubernetes that keepr's operator, chart and e2e tests run on.
//!
//! - [`addons`]: cluster DNS and the volume provisioner (kube-rs watchers).

pub mod addons;
