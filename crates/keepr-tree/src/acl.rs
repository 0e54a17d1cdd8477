//! ACL validation (`PrepRequestProcessor.fixupACL`), permission checks
//! (`ZooKeeperServer.checkACL`) and getACL's masking of digests.
//!
//! The authentication providers are ZooKeeper's defaults, `ip` and `digest`. An identity with
//! scheme `super` bypasses every check. Any other scheme in an ACL is invalid, and any other
//! scheme among a caller's identities matches nothing, exactly as in a ZooKeeper server with
//! no extra `zookeeper.authProvider.*` configured.

use std::borrow::Cow;

use keepr_wire::codes::perms;
use keepr_wire::{Acl, ErrorCode, Id};

use crate::{digest, ip};

/// The scheme of the identity that bypasses every ACL check.
pub const SUPER_SCHEME: &str = "super";

/// `world:anyone`.
pub fn anyone() -> Id {
    Id {
        scheme: "world".into(),
        id: "anyone".into(),
    }
}

/// `ZooDefs.Ids.OPEN_ACL_UNSAFE`: everyone may do everything.
pub fn open_acl_unsafe() -> Vec<Acl> {
    vec![Acl {
        perms: perms::ALL,
        id: anyone(),
    }]
}

/// `ZooDefs.Ids.READ_ACL_UNSAFE`: everyone may read.
pub fn read_acl_unsafe() -> Vec<Acl> {
    vec![Acl {
        perms: perms::READ,
        id: anyone(),
    }]
}

/// `ZooDefs.Ids.CREATOR_ALL_ACL`: everything for the creator's authenticated identities.
pub fn creator_all_acl() -> Vec<Acl> {
    vec![Acl {
        perms: perms::ALL,
        id: Id {
            scheme: "auth".into(),
            id: String::new(),
        },
    }]
}

fn is_anyone(id: &Id) -> bool {
    id.scheme == "world" && id.id == "anyone"
}

/// Validates an ACL from create/setACL and expands `auth` entries into the caller's
/// authenticated identities. Duplicates are removed first (and only then: an expansion that
/// repeats another entry is kept, as ZooKeeper keeps it).
///
/// The common case, an ACL that is already valid, unique and without `auth` entries, comes
/// back borrowed: creating a node then copies nothing.
pub fn fixup_acl<'a>(acl: &'a [Acl], auth: &[Id]) -> Result<Cow<'a, [Acl]>, ErrorCode> {
    let as_is = !acl.is_empty()
        && acl
            .iter()
            .enumerate()
            .all(|(i, a)| (is_anyone(&a.id) || scheme_accepts(&a.id)) && !acl[..i].contains(a));
    if as_is {
        return Ok(Cow::Borrowed(acl));
    }
    let mut unique: Vec<&Acl> = Vec::with_capacity(acl.len());
    for a in acl {
        if !unique.contains(&a) {
            unique.push(a);
        }
    }
    if unique.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut out = Vec::with_capacity(unique.len());
    for a in unique {
        if is_anyone(&a.id) {
            out.push(a.clone());
        } else if a.id.scheme == "auth" {
            let before = out.len();
            // Only digest identities are "authenticated"; ip ones are not, and super has no
            // provider at all.
            for id in auth.iter().filter(|id| id.scheme == digest::SCHEME) {
                out.push(Acl {
                    perms: a.perms,
                    id: id.clone(),
                });
            }
            if out.len() == before {
                return Err(ErrorCode::InvalidAcl);
            }
        } else if scheme_accepts(&a.id) {
            out.push(a.clone());
        } else {
            return Err(ErrorCode::InvalidAcl);
        }
    }
    Ok(Cow::Owned(out))
}

fn scheme_accepts(id: &Id) -> bool {
    match id.scheme.as_str() {
        digest::SCHEME => digest::is_valid(&id.id),
        ip::SCHEME => ip::is_valid(&id.id),
        _ => false,
    }
}

/// Whether identities `auth` hold any of the permission bits `perm` on a node with `acl`.
/// An empty ACL grants everything; a `super` identity passes every check.
pub fn check_acl(acl: &[Acl], perm: i32, auth: &[Id]) -> bool {
    if acl.is_empty() || auth.iter().any(|id| id.scheme == SUPER_SCHEME) {
        return true;
    }
    acl.iter().any(|a| {
        if a.perms & perm == 0 {
            return false;
        }
        if is_anyone(&a.id) {
            return true;
        }
        let matcher: fn(&str, &str) -> bool = match a.id.scheme.as_str() {
            digest::SCHEME => |id, expr| id == expr,
            ip::SCHEME => ip::matches,
            _ => return false,
        };
        auth.iter()
            .any(|id| id.scheme == a.id.scheme && matcher(&id.id, &a.id.id))
    })
}

/// `check_acl` as an operation result: NOAUTH when denied.
pub(crate) fn require(acl: &[Acl], perm: i32, auth: &[Id]) -> Result<(), ErrorCode> {
    if check_acl(acl, perm, auth) {
        Ok(())
    } else {
        Err(ErrorCode::NoAuth)
    }
}

/// What getACL returns to a caller without ADMIN: every digest id with its hash replaced by
/// `x`. ZooKeeper does this with `replaceAll(":.*", ":x")`, whose `.` stops at line
/// terminators; this reproduces that rule rather than approximating it.
pub fn mask_digests(acl: &[Acl]) -> Vec<Acl> {
    acl.iter()
        .map(|a| {
            if a.id.scheme == digest::SCHEME {
                Acl {
                    perms: a.perms,
                    id: Id {
                        scheme: a.id.scheme.clone(),
                        id: mask_after_colons(&a.id.id),
                    },
                }
            } else {
                a.clone()
            }
        })
        .collect()
}

fn mask_after_colons(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    let mut masking = false;
    for c in id.chars() {
        let line_end = matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}');
        if masking && !line_end {
            continue;
        }
        masking = false;
        if c == ':' {
            out.push_str(":x");
            masking = true;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(scheme: &str, id: &str) -> Id {
        Id {
            scheme: scheme.into(),
            id: id.into(),
        }
    }
    fn acl(perms: i32, scheme: &str, i: &str) -> Acl {
        Acl {
            perms,
            id: id(scheme, i),
        }
    }

    #[test]
    fn empty_acl_is_invalid() {
        assert_eq!(fixup_acl(&[], &[]), Err(ErrorCode::InvalidAcl));
    }

    #[test]
    fn duplicate_entries_are_removed_keeping_first_order() {
        let a = acl(perms::READ, "world", "anyone");
        let b = acl(perms::ALL, "ip", "10.0.0.0/8");
        let fixed = fixup_acl(&[a.clone(), b.clone(), a.clone()], &[])
            .unwrap()
            .into_owned();
        assert_eq!(fixed, vec![a, b]);
    }

    #[test]
    fn auth_scheme_expands_to_every_digest_identity_but_not_ip() {
        let auth = [
            id("ip", "127.0.0.1"),
            id("digest", "bob:h1"),
            id("digest", "amy:h2"),
        ];
        let fixed = fixup_acl(&creator_all_acl(), &auth).unwrap().into_owned();
        assert_eq!(
            fixed,
            vec![
                acl(perms::ALL, "digest", "bob:h1"),
                acl(perms::ALL, "digest", "amy:h2")
            ]
        );
    }

    #[test]
    fn auth_scheme_without_authenticated_identity_is_invalid_acl() {
        let auth = [id("ip", "127.0.0.1"), id("super", "")];
        assert_eq!(
            fixup_acl(&creator_all_acl(), &auth),
            Err(ErrorCode::InvalidAcl)
        );
    }

    #[test]
    fn unknown_schemes_and_malformed_ids_are_invalid_acl() {
        for bad in [
            acl(perms::ALL, "world", "someone"),
            acl(perms::ALL, "super", ""),
            acl(perms::ALL, "sasl", "bob"),
            acl(perms::ALL, "digest", "bob"),
            acl(perms::ALL, "ip", "not-an-ip"),
        ] {
            assert_eq!(
                fixup_acl(std::slice::from_ref(&bad), &[]),
                Err(ErrorCode::InvalidAcl),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn permission_bits_are_not_validated_like_zookeeper() {
        assert!(fixup_acl(&[acl(0, "world", "anyone")], &[]).is_ok());
        assert!(fixup_acl(&[acl(0x7fff, "world", "anyone")], &[]).is_ok());
    }

    #[test]
    fn world_anyone_grants_only_its_bits() {
        let a = read_acl_unsafe();
        assert!(check_acl(&a, perms::READ, &[]));
        assert!(!check_acl(&a, perms::WRITE, &[]));
        assert!(check_acl(&a, perms::READ | perms::ADMIN, &[]));
    }

    #[test]
    fn digest_acl_needs_the_exact_digest_identity() {
        let a = [acl(perms::ALL, "digest", "bob:h1")];
        assert!(check_acl(&a, perms::READ, &[id("digest", "bob:h1")]));
        assert!(!check_acl(&a, perms::READ, &[id("digest", "bob:h2")]));
        assert!(!check_acl(&a, perms::READ, &[id("ip", "bob:h1")]));
    }

    #[test]
    fn ip_acl_matches_connection_address_in_network() {
        let a = [acl(perms::READ, "ip", "127.0.0.0/8")];
        assert!(check_acl(&a, perms::READ, &[id("ip", "127.0.0.1")]));
        assert!(!check_acl(&a, perms::READ, &[id("ip", "10.0.0.1")]));
    }

    #[test]
    fn super_identity_bypasses_every_check() {
        let a = [acl(perms::READ, "digest", "bob:h1")];
        assert!(check_acl(&a, perms::ADMIN, &[id("super", "")]));
    }

    #[test]
    fn empty_stored_acl_grants_everything() {
        assert!(check_acl(&[], perms::ADMIN, &[]));
    }

    #[test]
    fn digest_ids_are_masked_after_first_colon() {
        let masked = mask_digests(&[acl(1, "digest", "bob:abc=="), acl(1, "ip", "1.2.3.4")]);
        assert_eq!(masked[0].id.id, "bob:x");
        assert_eq!(masked[1].id.id, "1.2.3.4");
    }

    #[test]
    fn digest_masking_stops_at_line_terminators_like_java_regex() {
        assert_eq!(mask_after_colons("a:b:c"), "a:x");
        assert_eq!(mask_after_colons("a:b\nc:d"), "a:x\nc:x");
        assert_eq!(mask_after_colons("nocolon"), "nocolon");
        assert_eq!(mask_after_colons("a:"), "a:x");
    }
}
