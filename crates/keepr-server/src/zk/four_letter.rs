//! Four-letter words: plain-text status answers for monitoring tools, in ZooKeeper's formats.
//!
//! Tools parse these outputs (`zkServer.sh status` reads `Mode:` from `srvr`, kazoo reads the
//! server version from `envi`, exporters read `mntr`), so the layout follows ZooKeeper's
//! `ServerStats`, `StatCommand`, `MonitorCommand` and `EnvCommand` exactly. The version we
//! claim is the ZooKeeper release whose protocol keepr speaks.

use std::fmt::Write;

use keepr_wire::four_letter::FourLetterWord;

use super::backend::{Backend, Mode};
use crate::state::ConnInfo;

/// The ZooKeeper release whose client protocol keepr implements.
pub const ZOOKEEPER_VERSION: &str = "3.8.4";

/// `zookeeper.version` as `envi` and `srvr` print it.
pub fn full_version() -> String {
    format!(
        "{ZOOKEEPER_VERSION}-keepr-{}, built on keepr {}",
        env!("CARGO_PKG_VERSION"),
        env!("CARGO_PKG_VERSION")
    )
}

/// The text answer to `word`; the caller writes it and closes the connection.
pub fn answer(backend: &dyn Backend, word: FourLetterWord) -> String {
    let Some(name) = word.name() else {
        // telnet's close sequence: nothing to say.
        return String::new();
    };
    if !backend.settings().four_letter_word_enabled(name) {
        return format!("{name} is not executed because it is not in the whitelist.\n");
    }
    match word {
        FourLetterWord::Ruok => "imok".to_string(),
        FourLetterWord::Isro => if backend.read_only() { "ro" } else { "rw" }.to_string(),
        FourLetterWord::Srvr => srvr(backend, false),
        FourLetterWord::Stat => srvr(backend, true),
        FourLetterWord::Mntr => mntr(backend),
        FourLetterWord::Conf => conf(backend),
        FourLetterWord::Envi => envi(),
        FourLetterWord::Cons => cons(backend),
        FourLetterWord::Wchs => wchs(backend),
        _ => format!("{name} is not executed because it is not in the whitelist.\n"),
    }
}

fn srvr(backend: &dyn Backend, with_clients: bool) -> String {
    let shared = backend.shared();
    let (min, avg, max) = shared.stats.latency_ms();
    let conns = shared.watches.lock().connections();
    let (zxid, nodes) = {
        let st = shared.tree.read();
        (st.applied_index(), st.tree.node_count())
    };
    let m = &shared.metrics;
    let mut s = String::new();
    let _ = writeln!(s, "Zookeeper version: {}", full_version());
    if with_clients {
        s.push_str("Clients:\n");
        for c in &conns {
            let _ = writeln!(
                s,
                " {}[1](queued=0,recved={},sent={})",
                slash_addr(c),
                c.received_count(),
                c.sent_count()
            );
        }
        s.push('\n');
    }
    let _ = writeln!(
        s,
        "Latency min/avg/max: {}/{:.4}/{}",
        min.round(),
        avg,
        max.round()
    );
    let _ = writeln!(s, "Received: {}", m.packets_received.get());
    let _ = writeln!(
        s,
        "Sent: {}",
        m.packets_sent.get() + conns.iter().map(|c| c.sent_count()).sum::<u64>()
    );
    let _ = writeln!(s, "Connections: {}", conns.len());
    let _ = writeln!(s, "Outstanding: {}", m.proposals_in_flight.get());
    let _ = writeln!(s, "Zxid: {zxid:#x}");
    let _ = writeln!(s, "Mode: {}", backend.mode().as_str());
    let _ = writeln!(s, "Node count: {nodes}");
    s
}

fn slash_addr(c: &ConnInfo) -> String {
    format!("/{}", c.peer)
}

fn mntr(backend: &dyn Backend) -> String {
    let shared = backend.shared();
    let (min, avg, max) = shared.stats.latency_ms();
    let tree_metrics = shared.tree.read().tree.metrics();
    let (conns, watch_count) = {
        let w = shared.watches.lock();
        (w.connection_count(), w.manager.watch_count())
    };
    let (open_fds, max_fds) = crate::metrics::file_descriptors();
    let m = &shared.metrics;
    let state = match backend.mode() {
        Mode::Standalone => "standalone",
        Mode::Leader => "leader",
        Mode::Follower => "follower",
        Mode::Looking => "looking",
    };
    let rows: Vec<(&str, String)> = vec![
        ("version", full_version()),
        ("server_state", state.to_string()),
        ("avg_latency", format!("{avg:.4}")),
        ("max_latency", format!("{}", max.round())),
        ("min_latency", format!("{}", min.round())),
        ("packets_received", m.packets_received.get().to_string()),
        ("packets_sent", m.packets_sent.get().to_string()),
        ("num_alive_connections", conns.to_string()),
        (
            "outstanding_requests",
            m.proposals_in_flight.get().to_string(),
        ),
        ("znode_count", tree_metrics.znode_count.to_string()),
        ("watch_count", watch_count.to_string()),
        (
            "ephemerals_count",
            tree_metrics.ephemerals_count.to_string(),
        ),
        (
            "approximate_data_size",
            tree_metrics.approximate_data_size.to_string(),
        ),
        ("global_sessions", tree_metrics.global_sessions.to_string()),
        ("local_sessions", "0".to_string()),
        ("open_file_descriptor_count", open_fds.to_string()),
        ("max_file_descriptor_count", max_fds.to_string()),
        ("uptime", backend.shared().metrics.uptime_ms().to_string()),
    ];
    let mut s = String::new();
    for (k, v) in rows {
        let _ = writeln!(s, "zk_{k}\t{v}");
    }
    s
}

fn conf(backend: &dyn Backend) -> String {
    let st = backend.settings();
    let port = st
        .client_addr
        .rsplit_once(':')
        .map(|(_, p)| p.to_string())
        .unwrap_or_default();
    let address = st
        .client_addr
        .rsplit_once(':')
        .map(|(h, _)| h.to_string())
        .unwrap_or_default();
    let mut s = String::new();
    let _ = writeln!(s, "clientPort={port}");
    let _ = writeln!(s, "clientPortAddress={address}");
    let _ = writeln!(s, "secureClientPort=-1");
    let _ = writeln!(s, "dataDir={}", st.data_dir);
    let _ = writeln!(s, "dataDirSize={}", dir_size(&st.data_dir));
    let _ = writeln!(s, "dataLogDir={}", st.data_dir);
    let _ = writeln!(s, "dataLogSize={}", dir_size(&st.data_dir));
    let _ = writeln!(s, "tickTime={}", st.tick.as_millis());
    let _ = writeln!(s, "maxClientCnxns=0");
    let _ = writeln!(
        s,
        "minSessionTimeout={}",
        st.min_session_timeout.as_millis()
    );
    let _ = writeln!(
        s,
        "maxSessionTimeout={}",
        st.max_session_timeout.as_millis()
    );
    let _ = writeln!(s, "clientPortListenBacklog=-1");
    let _ = writeln!(s, "serverId={}", st.node_id);
    s
}

fn dir_size(dir: &str) -> u64 {
    fn walk(p: &std::path::Path) -> u64 {
        match std::fs::read_dir(p) {
            Ok(entries) => entries
                .filter_map(|e| e.ok())
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => walk(&e.path()),
                    _ => e.metadata().map(|m| m.len()).unwrap_or(0),
                })
                .sum(),
            Err(_) => 0,
        }
    }
    walk(std::path::Path::new(dir))
}

fn envi() -> String {
    let mut s = String::from("Environment:\n");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let cwd = std::env::current_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    let _ = writeln!(s, "zookeeper.version={}", full_version());
    let _ = writeln!(s, "host.name={host}");
    let _ = writeln!(s, "java.version=none (keepr is written in Rust)");
    let _ = writeln!(s, "os.name={}", std::env::consts::OS);
    let _ = writeln!(s, "os.arch={}", std::env::consts::ARCH);
    let _ = writeln!(s, "user.dir={cwd}");
    s
}

fn cons(backend: &dyn Backend) -> String {
    let conns = backend.shared().watches.lock().connections();
    let mut s = String::new();
    for c in conns {
        let est = c
            .established
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let _ = writeln!(
            s,
            " {}[1](queued=0,recved={},sent={},sid={:#x},est={},to={})",
            slash_addr(&c),
            c.received_count(),
            c.sent_count(),
            c.session(),
            est,
            c.timeout_ms()
        );
    }
    s.push('\n');
    s
}

fn wchs(backend: &dyn Backend) -> String {
    let w = backend.shared().watches.lock();
    let sum = w.manager.summary();
    format!(
        "{} connections watching {} paths\nTotal watches:{}\n",
        sum.connections, sum.paths, sum.watches
    )
}
