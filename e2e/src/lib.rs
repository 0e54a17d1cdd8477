//! `keepr-e2e`: the real Kubernetes that keepr's operator, chart and e2e tests run on.
//!
//! Kubernetes 1.20.2 built from Debian's source ([`kubernetes_build`]), with Debian's etcd,
//! containerd, runc and CNI plugins ([`packages`]), run in a network namespace of its own
//! ([`network`], [`layout`]): the control plane ([`control_plane`]), one containerd and
//! kubelet per node and kube-proxy ([`nodes`]), DNS and a volume provisioner ([`addons`]).
//! [`cluster`] brings it up and down; [`images`] builds keepr's images from the workspace
//! ([`oci`]) and loads them into every node; [`testkit`] is what the e2e tests use.

pub mod addons;
pub mod cluster;
pub mod control_plane;
pub mod host;
pub mod images;
pub mod kubernetes_build;
pub mod layout;
pub mod network;
pub mod nodes;
pub mod oci;
pub mod packages;
