//! What one member is told at start: who it is, where it listens, who its peers are, and the
//! few knobs ZooKeeper users expect (tick time, session timeout bounds, the 4lw whitelist,
//! jute.maxbuffer). The command line in the `keepr` binary fills this in; tests build it
//! directly.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use crate::address;

/// Four-letter words enabled when none are configured: the cheap, read-only ones.
pub const DEFAULT_FOUR_LETTER_WORDS: &[&str] =
    &["ruok", "srvr", "stat", "mntr", "conf", "envi", "isro"];

/// Every four-letter word keepr answers.
pub const ALL_FOUR_LETTER_WORDS: &[&str] = &[
    "ruok", "srvr", "stat", "mntr", "conf", "envi", "isro", "cons", "wchs",
];

/// ZooKeeper's `jute.maxbuffer` default: the largest frame either side accepts.
pub const DEFAULT_MAX_FRAME: usize = 0xfffff;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("--initial-members: {0:?} is not of the form ID=HOST:PORT")]
    BadMember(String),
    #[error("--initial-members: member id {0} appears twice")]
    DuplicateMember(u64),
    #[error("--initial-members does not list this member's id {0}")]
    SelfNotListed(u64),
    #[error("--super-digest: {0:?} is not of the form USER:BASE64SHA1")]
    BadSuperDigest(String),
    #[error("unknown four-letter word {0:?}; known: {known}", known = ALL_FOUR_LETTER_WORDS.join(","))]
    UnknownFourLetterWord(String),
    #[error("--join and --initial-members exclude each other: join an existing ensemble, or bootstrap a new one")]
    JoinAndBootstrap,
    #[error("give --initial-members to bootstrap an ensemble or --join to join one")]
    NoMembers,
    #[error("node id must be between 1 and 254 (ZooKeeper's server id range), got {0}")]
    BadNodeId(u64),
    #[error("session timeout bounds: min {min:?} must not exceed max {max:?}")]
    BadSessionBounds { min: Duration, max: Duration },
    #[error("--{flag}: {source}")]
    BadAddress {
        flag: &'static str,
        source: address::AddressError,
    },
    #[error(
        "other members would dial {0}, which means every interface: give --advertise-peer \
         HOST:PORT, the address (e.g. the pod's DNS name) they reach this member at"
    )]
    AdvertiseUnspecified(String),
    #[error(
        "--advertise-peer {advertised} differs from this member's entry in --initial-members \
         ({listed}): the ensemble dials the listed address, so give the same one"
    )]
    AdvertiseMismatch { advertised: String, listed: String },
    #[error(
        "host name {0:?} does not end in -ORDINAL (a StatefulSet pod's name, e.g. keepr-0), \
         or the ordinal is above 253; give --id instead"
    )]
    BadHostname(String),
}

#[derive(Debug, Clone)]
pub struct Config {
    /// This member's node id (ZooKeeper's `myid`).
    pub id: u64,
    pub data_dir: PathBuf,
    /// Listen addresses (`HOST:PORT`).
    pub zk_addr: String,
    pub grpc_addr: String,
    pub peer_addr: String,
    pub http_addr: String,
    /// The ensemble at first start: node id → peer address. Ignored once the data directory
    /// holds a cluster.
    pub initial_members: BTreeMap<u64, String>,
    /// `user:base64(sha1(user:password))`; a client that authenticates as this user bypasses
    /// every ACL, as with ZooKeeper's `superDigest`.
    pub super_digest: Option<String>,
    /// ZooKeeper's tickTime: the unit of session timeouts and of expiry bucketing.
    pub tick: Duration,
    pub min_session_timeout: Duration,
    pub max_session_timeout: Duration,
    pub four_letter_words: BTreeSet<String>,
    /// `jute.maxbuffer`.
    pub max_frame: usize,
    /// Snapshot after this many log entries since the last one.
    pub snapshot_every: u64,
    /// Peer addresses of members of an existing ensemble to announce this member to, instead
    /// of bootstrapping one (`--join`); the member waits to be added.
    pub join: Vec<String>,
    /// The peer address other members reach this one at, when it differs from the listen
    /// address (default: this member's entry in `initial_members`, else `peer_addr`).
    pub advertise_peer: Option<String>,
    /// Mixed into the cluster id of a statically bootstrapped ensemble, so that two
    /// ensembles with the same member list do not take each other's members.
    pub cluster_token: String,
    /// How often the leader looks for empty containers and expired TTL nodes to delete
    /// (ZooKeeper's `znode.container.checkIntervalMs`).
    pub reap_interval: Duration,
}

impl Config {
    /// A config with ZooKeeper's defaults (tickTime 2000 ms as in zoo_sample.cfg, sessions
    /// between 2 and 20 ticks) for a single member.
    pub fn new(id: u64, data_dir: PathBuf) -> Config {
        let tick = Duration::from_millis(2000);
        Config {
            id,
            data_dir,
            zk_addr: "127.0.0.1:2181".into(),
            grpc_addr: "127.0.0.1:7070".into(),
            peer_addr: "127.0.0.1:7071".into(),
            http_addr: "127.0.0.1:9090".into(),
            initial_members: BTreeMap::from([(id, "127.0.0.1:7071".to_string())]),
            super_digest: None,
            tick,
            min_session_timeout: tick * 2,
            max_session_timeout: tick * 20,
            four_letter_words: DEFAULT_FOUR_LETTER_WORDS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            max_frame: DEFAULT_MAX_FRAME,
            snapshot_every: 100_000,
            join: Vec::new(),
            advertise_peer: None,
            cluster_token: "keepr".into(),
            reap_interval: Duration::from_secs(60),
        }
    }

    /// Checks what cannot be expressed in the types.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.id == 0 || self.id > 254 {
            return Err(ConfigError::BadNodeId(self.id));
        }
        if !self.join.is_empty() && !self.initial_members.is_empty() {
            return Err(ConfigError::JoinAndBootstrap);
        }
        if self.join.is_empty() && self.initial_members.is_empty() {
            return Err(ConfigError::NoMembers);
        }
        if !self.initial_members.is_empty() && !self.initial_members.contains_key(&self.id) {
            return Err(ConfigError::SelfNotListed(self.id));
        }
        for (flag, addr) in [
            ("zk", &self.zk_addr),
            ("grpc", &self.grpc_addr),
            ("peer", &self.peer_addr),
            ("http", &self.http_addr),
        ] {
            check_address(flag, addr)?;
        }
        for addr in &self.join {
            check_address("join", addr)?;
        }
        for addr in self.initial_members.values() {
            check_address("initial-members", addr)?;
        }
        if let Some(a) = &self.advertise_peer {
            check_address("advertise-peer", a)?;
            if let Some(listed) = self.initial_members.get(&self.id).filter(|l| *l != a) {
                return Err(ConfigError::AdvertiseMismatch {
                    advertised: a.clone(),
                    listed: listed.clone(),
                });
            }
        }
        let advertised = self.advertised_peer();
        if check_address("advertise-peer", &advertised)?.is_unspecified() {
            return Err(ConfigError::AdvertiseUnspecified(advertised));
        }
        if let Some(d) = &self.super_digest {
            parse_super_digest(d)?;
        }
        for w in &self.four_letter_words {
            if !ALL_FOUR_LETTER_WORDS.contains(&w.as_str()) && w != "*" {
                return Err(ConfigError::UnknownFourLetterWord(w.clone()));
            }
        }
        if self.min_session_timeout > self.max_session_timeout {
            return Err(ConfigError::BadSessionBounds {
                min: self.min_session_timeout,
                max: self.max_session_timeout,
            });
        }
        Ok(())
    }

    /// The peer address this member tells others to use.
    pub fn advertised_peer(&self) -> String {
        self.advertise_peer
            .clone()
            .or_else(|| self.initial_members.get(&self.id).cloned())
            .unwrap_or_else(|| self.peer_addr.clone())
    }

    /// Whether the 4lw whitelist lets `word` through (`*` enables all).
    pub fn four_letter_word_enabled(&self, word: &str) -> bool {
        self.four_letter_words.contains("*") || self.four_letter_words.contains(word)
    }
}

fn check_address<'a>(
    flag: &'static str,
    addr: &'a str,
) -> Result<address::HostPort<'a>, ConfigError> {
    address::parse(addr).map_err(|source| ConfigError::BadAddress { flag, source })
}

/// Parses `1=host:port,2=host:port` (hosts may be names; they are resolved at each connect).
pub fn parse_members(s: &str) -> Result<BTreeMap<u64, String>, ConfigError> {
    let mut members = BTreeMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, addr) = part
            .split_once('=')
            .ok_or_else(|| ConfigError::BadMember(part.to_string()))?;
        let id: u64 = id
            .trim()
            .parse()
            .map_err(|_| ConfigError::BadMember(part.to_string()))?;
        let addr = addr.trim();
        if address::parse(addr).is_err() {
            return Err(ConfigError::BadMember(part.to_string()));
        }
        if members.insert(id, addr.to_string()).is_some() {
            return Err(ConfigError::DuplicateMember(id));
        }
    }
    Ok(members)
}

/// Parses `--join`'s `host:port,host:port`.
pub fn parse_join(s: &str) -> Result<Vec<String>, ConfigError> {
    s.split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(|a| check_address("join", a).map(|_| a.to_string()))
        .collect()
}

/// The member id of a StatefulSet pod, from its host name `NAME-ORDINAL` (a pod's host name
/// is its name): ordinal + 1, as ZooKeeper's myids start at 1. A fully qualified name
/// counts by its first label. Pod `keepr-0` is member 1, `keepr-2` member 3.
pub fn id_from_hostname(hostname: &str) -> Result<u64, ConfigError> {
    let bad = || ConfigError::BadHostname(hostname.to_string());
    let name = hostname.split('.').next().unwrap_or_default();
    let (prefix, ordinal) = name.rsplit_once('-').ok_or_else(bad)?;
    if prefix.is_empty() || ordinal.is_empty() || !ordinal.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let ordinal: u64 = ordinal.parse().map_err(|_| bad())?;
    if ordinal > 253 {
        return Err(bad());
    }
    Ok(ordinal + 1)
}

/// Splits `user:digest` and checks the digest is a base64 SHA-1 (28 characters).
pub fn parse_super_digest(s: &str) -> Result<(&str, &str), ConfigError> {
    match s.split_once(':') {
        Some((user, digest))
            if !user.is_empty()
                && digest.len() == 28
                && digest
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=') =>
        {
            Ok((user, digest))
        }
        _ => Err(ConfigError::BadSuperDigest(s.to_string())),
    }
}

/// Parses a comma-separated 4lw whitelist.
pub fn parse_four_letter_words(s: &str) -> BTreeSet<String> {
    s.split(',')
        .map(|w| w.trim().to_ascii_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_parse_ids_and_addresses() {
        let m = parse_members("1=127.0.0.1:7071, 2=host-b:7072").unwrap();
        assert_eq!(m[&1], "127.0.0.1:7071");
        assert_eq!(m[&2], "host-b:7072");
    }

    #[test]
    fn members_reject_missing_port_and_duplicates() {
        assert!(matches!(
            parse_members("1=host"),
            Err(ConfigError::BadMember(_))
        ));
        assert!(matches!(
            parse_members("x=h:1"),
            Err(ConfigError::BadMember(_))
        ));
        assert_eq!(
            parse_members("1=a:1,1=b:2"),
            Err(ConfigError::DuplicateMember(1))
        );
    }

    #[test]
    fn members_and_join_take_host_names() {
        let m = parse_members(
            "1=ens-0.ens-peer.default.svc.cluster.local:7071,2=ens-1.ens-peer:7071,3=[::1]:7071",
        )
        .unwrap();
        assert_eq!(m[&1], "ens-0.ens-peer.default.svc.cluster.local:7071");
        assert_eq!(m[&3], "[::1]:7071");
        assert_eq!(
            parse_join(" ens-0.ens-peer:7071, ens-1.ens-peer:7071 ,").unwrap(),
            ["ens-0.ens-peer:7071", "ens-1.ens-peer:7071"]
        );
        assert!(matches!(
            parse_join("ens-0.ens-peer"),
            Err(ConfigError::BadAddress { flag: "join", .. })
        ));
        assert!(matches!(
            parse_members("1=http://a:1"),
            Err(ConfigError::BadMember(_))
        ));
    }

    #[test]
    fn id_comes_from_a_pods_ordinal() {
        assert_eq!(id_from_hostname("keepr-0"), Ok(1));
        assert_eq!(id_from_hostname("my-ensemble-2"), Ok(3));
        assert_eq!(
            id_from_hostname("ens-10.ens-peer.default.svc.cluster.local"),
            Ok(11)
        );
        assert_eq!(id_from_hostname("ens-253"), Ok(254));
        for bad in [
            "ens-254", "keepr", "keepr-", "-3", "keepr-x1", "keepr-+1", "", "ens-1x",
        ] {
            assert!(
                matches!(id_from_hostname(bad), Err(ConfigError::BadHostname(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn listening_everywhere_needs_an_advertised_address() {
        let mut c = Config::new(1, "/tmp/x".into());
        c.peer_addr = "0.0.0.0:7071".into();
        c.initial_members.clear();
        c.join = vec!["ens-0.ens-peer:7071".into()];
        assert_eq!(
            c.validate(),
            Err(ConfigError::AdvertiseUnspecified("0.0.0.0:7071".into()))
        );
        c.advertise_peer = Some("ens-1.ens-peer:7071".into());
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.advertised_peer(), "ens-1.ens-peer:7071");

        // Bootstrapping, this member's entry in the list is what the others dial.
        let mut c = Config::new(1, "/tmp/x".into());
        c.peer_addr = "0.0.0.0:7071".into();
        c.initial_members = parse_members("1=ens-0.ens-peer:7071,2=ens-1.ens-peer:7071").unwrap();
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.advertised_peer(), "ens-0.ens-peer:7071");
        c.advertise_peer = Some("ens-9.ens-peer:7071".into());
        assert!(matches!(
            c.validate(),
            Err(ConfigError::AdvertiseMismatch { .. })
        ));
        c.initial_members = parse_members("1=0.0.0.0:7071").unwrap();
        c.advertise_peer = None;
        assert!(matches!(
            c.validate(),
            Err(ConfigError::AdvertiseUnspecified(_))
        ));
    }

    #[test]
    fn listen_addresses_are_checked() {
        let mut c = Config::new(1, "/tmp/x".into());
        c.zk_addr = "0.0.0.0".into();
        assert!(matches!(
            c.validate(),
            Err(ConfigError::BadAddress { flag: "zk", .. })
        ));
    }

    #[test]
    fn super_digest_must_be_user_and_base64_sha1() {
        assert!(parse_super_digest("super:D/InIHSb7yEEbrWz8b9l71RjZJU=").is_ok());
        assert!(parse_super_digest("super:short").is_err());
        assert!(parse_super_digest(":D/InIHSb7yEEbrWz8b9l71RjZJU=").is_err());
    }

    #[test]
    fn validate_rejects_member_list_without_self_and_unknown_words() {
        let mut c = Config::new(2, "/tmp/x".into());
        c.initial_members = parse_members("1=a:1").unwrap();
        assert_eq!(c.validate(), Err(ConfigError::SelfNotListed(2)));
        let mut c = Config::new(1, "/tmp/x".into());
        c.four_letter_words = parse_four_letter_words("ruok,kill");
        assert!(matches!(
            c.validate(),
            Err(ConfigError::UnknownFourLetterWord(w)) if w == "kill"
        ));
    }

    #[test]
    fn default_whitelist_has_cheap_read_only_words_only() {
        let c = Config::new(1, "/tmp/x".into());
        for w in ["ruok", "srvr", "stat", "mntr", "conf", "envi", "isro"] {
            assert!(c.four_letter_word_enabled(w), "{w}");
        }
        assert!(!c.four_letter_word_enabled("cons"));
        assert!(!c.four_letter_word_enabled("wchs"));
    }
}
