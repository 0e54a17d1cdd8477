//! The cluster's network: one namespace it owns, a veth pair into it, and routes.
//!
//! Inside the namespace, node addresses sit on a port-less bridge ([`NODE_BRIDGE`]): an
//! address there is local to the namespace and reaches nothing else (this kernel has no
//! `dummy` link type). Each node's CNI bridge gives its pods a /24. The host routes the node,
//! pod and service ranges through the veth, and holds an `unreachable` route for each range
//! beneath it (higher metric), for the cluster's whole life: if the namespace vanishes, its
//! veth goes with it and the fallback keeps those packets from following the default route
//! off the machine. Inside the namespace the pod range gets an `unreachable` fallback too;
//! the service range is routed into the node bridge instead, because an `unreachable` route
//! makes the kernel refuse a local connect to a cluster IP before kube-proxy's DNAT rewrites
//! it (checked on this machine).
//!
//! Deleting the namespace removes every link, route and iptables rule the cluster made in
//! it (kube-proxy's and the kubelets' chains are in its tables, not the host's).

use std::path::Path;

use crate::host::{self, ip_ns, sh, sh_quiet, Result};
use crate::layout::*;

/// Whether the cluster's namespace exists.
pub fn netns_exists() -> bool {
    Path::new(&format!("/run/netns/{NETNS}")).exists()
}

/// Creates the namespace, links and routes (idempotent: present parts are kept).
pub fn up(nodes: u32) -> Result<()> {
    if !netns_exists() {
        sh("ip", ["netns", "add", NETNS])?;
    }
    ip_ns(&["link", "set", "lo", "up"])?;
    if !link_exists(HOST_LINK) {
        sh(
            "ip",
            [
                "link", "add", HOST_LINK, "type", "veth", "peer", "name", NS_LINK, "netns", NETNS,
            ],
        )?;
        sh(
            "ip",
            [
                "addr",
                "add",
                &format!("{HOST_LINK_ADDR}/30"),
                "dev",
                HOST_LINK,
            ],
        )?;
        ip_ns(&["addr", "add", &format!("{NS_LINK_ADDR}/30"), "dev", NS_LINK])?;
    }
    sh("ip", ["link", "set", HOST_LINK, "up"])?;
    ip_ns(&["link", "set", NS_LINK, "up"])?;
    if ip_ns(&["link", "show", NODE_BRIDGE]).is_err() {
        ip_ns(&["link", "add", NODE_BRIDGE, "type", "bridge"])?;
    }
    ip_ns(&["link", "set", NODE_BRIDGE, "up"])?;
    let have = ip_ns(&["-4", "-o", "addr", "show", "dev", NODE_BRIDGE])?;
    for n in 1..=nodes {
        let addr = format!("{}/32", node_ip(n));
        if !have.split_whitespace().any(|w| w == addr) {
            ip_ns(&["addr", "add", &addr, "dev", NODE_BRIDGE])?;
        }
    }
    ip_ns(&["route", "replace", SERVICE_NET, "dev", NODE_BRIDGE])?;
    ip_ns(&["route", "replace", "unreachable", POD_NET])?;
    for net in ROUTED_NETS {
        sh("ip", ["route", "replace", net, "via", NS_LINK_ADDR])?;
        sh(
            "ip",
            [
                "route",
                "replace",
                "unreachable",
                net,
                "metric",
                &UNREACHABLE_METRIC.to_string(),
            ],
        )?;
    }
    // Pods on different nodes reach each other through the namespace's routing.
    host::run(host::in_netns("sysctl").args(["-q", "-w", "net.ipv4.ip_forward=1"]))?;
    Ok(())
}

fn link_exists(name: &str) -> bool {
    sh("ip", ["link", "show", name]).is_ok()
}

/// Removes the namespace (and with it everything inside), the host's veth end and routes.
pub fn down() {
    if netns_exists() {
        sh_quiet("ip", ["netns", "delete", NETNS]);
    }
    if link_exists(HOST_LINK) {
        sh_quiet("ip", ["link", "delete", HOST_LINK]);
    }
    for net in ROUTED_NETS {
        sh_quiet("ip", ["route", "delete", net, "via", NS_LINK_ADDR]);
        sh_quiet(
            "ip",
            [
                "route",
                "delete",
                "unreachable",
                net,
                "metric",
                &UNREACHABLE_METRIC.to_string(),
            ],
        );
    }
}

/// What of the network is left on the host: our namespace, links with our prefix, routes
/// into our ranges.
pub fn leftovers() -> Vec<String> {
    let mut out = Vec::new();
    if netns_exists() {
        out.push(format!("network namespace {NETNS}"));
    }
    if let Ok(links) = sh("ip", ["-o", "link", "show"]) {
        for l in links.lines() {
            if let Some(name) = l.split(": ").nth(1) {
                let name = name.split('@').next().unwrap_or(name);
                if name.starts_with(LINK_PREFIX) {
                    out.push(format!("link {name}"));
                }
            }
        }
    }
    if let Ok(routes) = sh("ip", ["route", "show", "table", "all"]) {
        for r in routes.lines() {
            if ROUTED_NETS
                .iter()
                .any(|n| r.split_whitespace().any(|w| w == *n))
            {
                out.push(format!("route {r}"));
            }
        }
    }
    out
}
