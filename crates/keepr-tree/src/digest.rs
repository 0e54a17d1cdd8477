//! The `digest` authentication scheme (`DigestAuthenticationProvider`).
//!
//! A client authenticates with `user:password` in clear text; the identity it gains, and the
//! one ACLs name, is `user:base64(sha1("user:password"))`. Any well-formed credential
//! "succeeds": a wrong password only yields an identity that no ACL grants anything to.

use base64::Engine;
use keepr_wire::Id;
use sha1::{Digest, Sha1};

/// The scheme name.
pub const SCHEME: &str = "digest";

/// `user:base64(sha1(user_password))` for a `user:password` credential. The user is the part
/// before the first ':' (the whole string if there is none), as ZooKeeper computes it.
pub fn digest_id(user_password: &str) -> String {
    let user = user_password.split(':').next().unwrap_or_default();
    let hash = Sha1::digest(user_password.as_bytes());
    format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

/// The identities an `addAuth("digest", auth_data)` grants: the digest id, preceded by
/// `super:` when it equals the configured super digest (`superDigest`, itself a
/// `user:hash` string). Non-UTF-8 bytes are replaced, as Java's `new String(bytes)` does.
pub fn authenticate(auth_data: &[u8], super_digest: Option<&str>) -> Vec<Id> {
    let id = digest_id(&String::from_utf8_lossy(auth_data));
    let mut ids = Vec::with_capacity(2);
    if super_digest == Some(id.as_str()) {
        ids.push(Id {
            scheme: "super".into(),
            id: String::new(),
        });
    }
    ids.push(Id {
        scheme: SCHEME.into(),
        id,
    });
    ids
}

/// `isValid`: Java's `id.split(":").length == 2`, where trailing empty pieces are dropped, so
/// `user:` and `a:b:c` are invalid but `:hash` is valid.
pub(crate) fn is_valid(id: &str) -> bool {
    if !id.contains(':') {
        return false;
    }
    let mut parts: Vec<&str> = id.split(':').collect();
    while parts.last() == Some(&"") {
        parts.pop();
    }
    parts.len() == 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_id_matches_zookeepers_known_value() {
        // `DigestAuthenticationProvider.generateDigest("super:test")`, documented in the
        // ZooKeeper admin guide as the way to build a superDigest.
        assert_eq!(
            digest_id("super:test"),
            "super:D/InIHSb7yEEbrWz8b9l71RjZJU="
        );
        assert_eq!(digest_id("bob:secret"), "bob:fyVmFCwVbTJYrznoSu1koqYEYF0=");
    }

    #[test]
    fn digest_of_credential_without_colon_uses_whole_string_as_user() {
        assert!(digest_id("nocolon").starts_with("nocolon:"));
    }

    #[test]
    fn super_digest_adds_super_identity_first() {
        let ids = authenticate(b"super:test", Some("super:D/InIHSb7yEEbrWz8b9l71RjZJU="));
        assert_eq!(ids.len(), 2);
        assert_eq!(ids[0].scheme, "super");
        assert_eq!(ids[1].id, "super:D/InIHSb7yEEbrWz8b9l71RjZJU=");
        assert_eq!(authenticate(b"bob:pw", Some("super:x")).len(), 1);
    }

    #[test]
    fn digest_acl_id_validity_follows_java_split() {
        assert!(is_valid("user:hash"));
        assert!(is_valid(":hash"));
        assert!(is_valid("user:hash:"));
        assert!(!is_valid("user:"));
        assert!(!is_valid("user"));
        assert!(!is_valid(""));
        assert!(!is_valid(":"));
        assert!(!is_valid("a:b:c"));
        assert!(!is_valid("::a"));
    }
}
