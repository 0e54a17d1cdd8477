//! Znode paths: ZooKeeper's validation rule and the parent/name split every operation uses.
//!
//! `PathUtils.validatePath` works on Java's UTF-16 code units. A code point above U+FFFF is
//! a surrogate pair in Java, and surrogates (U+D800–U+DFFF) are rejected, so any such code
//! point is rejected here too: the verdict is the same for every string.

/// Why a path is not a valid znode path (the reason is for logs; clients only see
/// BADARGUMENTS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("path is empty")]
    Empty,
    #[error("path must start with '/'")]
    NotAbsolute,
    #[error("path must not end with '/'")]
    TrailingSlash,
    #[error("empty node name in path")]
    EmptyName,
    #[error("relative path component ('.' or '..')")]
    Relative,
    #[error("null character in path")]
    Nul,
    #[error("invalid character in path")]
    InvalidChar,
}

/// Checks `path` exactly as ZooKeeper's `PathUtils.validatePath` does.
pub fn validate_path(path: &str) -> Result<(), PathError> {
    let bytes = path.as_bytes();
    match bytes.first() {
        None => return Err(PathError::Empty),
        Some(b'/') => {}
        Some(_) => return Err(PathError::NotAbsolute),
    }
    if bytes.len() == 1 {
        return Ok(());
    }
    if bytes.last() == Some(&b'/') {
        return Err(PathError::TrailingSlash);
    }
    for component in path[1..].split('/') {
        if component.is_empty() {
            return Err(PathError::EmptyName);
        }
        if component == "." || component == ".." {
            return Err(PathError::Relative);
        }
        for c in component.chars() {
            if c == '\0' {
                return Err(PathError::Nul);
            }
            if is_forbidden_char(c) {
                return Err(PathError::InvalidChar);
            }
        }
    }
    Ok(())
}

fn is_forbidden_char(c: char) -> bool {
    matches!(c,
        '\u{0001}'..='\u{001f}'
        | '\u{007f}'..='\u{009f}'
        | '\u{e000}'..='\u{f8ff}'
        | '\u{fff0}'..='\u{ffff}')
        // Surrogate pairs in Java: every code point outside the BMP.
        || (c as u32) > 0xffff
}

/// Splits `path` at its last '/', as ZooKeeper does with `lastIndexOf('/')`: the parent of
/// `/a` is `""`, which the tree treats as an alias of the root. `None` if there is no '/'.
pub fn split_parent(path: &str) -> Option<(&str, &str)> {
    let i = path.rfind('/')?;
    Some((&path[..i], &path[i + 1..]))
}

/// The path under which watches on `parent` (as returned by [`split_parent`]) are kept.
pub(crate) fn watch_path(parent: &str) -> &str {
    if parent.is_empty() {
        "/"
    } else {
        parent
    }
}

/// The length of `path` in UTF-16 code units: ZooKeeper's `approximate_data_size` counts
/// `String.length()`.
pub(crate) fn utf16_len(path: &str) -> u64 {
    path.chars().map(|c| c.len_utf16() as u64).sum()
}

/// The reserved nodes present from the start; none of them can be deleted.
pub const RESERVED_PATHS: [&str; 4] = ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"];

/// `DataTree.isSpecialPath`.
pub(crate) fn is_reserved(path: &str) -> bool {
    RESERVED_PATHS.contains(&path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_and_plain_paths_are_valid() {
        for p in [
            "/",
            "/a",
            "/a/b",
            "/a.b",
            "/...",
            "/a/.b",
            "/a/b..",
            "/zookeeper",
            "/ü/日本",
        ] {
            assert_eq!(validate_path(p), Ok(()), "{p}");
        }
    }

    #[test]
    fn paths_rejected_like_zookeeper() {
        let cases = [
            ("", PathError::Empty),
            ("a", PathError::NotAbsolute),
            ("a/b", PathError::NotAbsolute),
            ("/a/", PathError::TrailingSlash),
            ("//", PathError::TrailingSlash),
            ("//a", PathError::EmptyName),
            ("/a//b", PathError::EmptyName),
            ("/.", PathError::Relative),
            ("/..", PathError::Relative),
            ("/a/./b", PathError::Relative),
            ("/a/../b", PathError::Relative),
            ("/a\0b", PathError::Nul),
            ("/a\u{1}", PathError::InvalidChar),
            ("/a\u{1f}", PathError::InvalidChar),
            ("/a\u{7f}", PathError::InvalidChar),
            ("/a\u{9f}", PathError::InvalidChar),
            ("/a\u{e000}", PathError::InvalidChar),
            ("/a\u{f8ff}", PathError::InvalidChar),
            ("/a\u{fff0}", PathError::InvalidChar),
            ("/a\u{fffd}", PathError::InvalidChar),
            ("/a\u{1f600}", PathError::InvalidChar),
        ];
        for (p, e) in cases {
            assert_eq!(validate_path(p), Err(e), "{p:?}");
        }
    }

    #[test]
    fn chars_just_outside_forbidden_ranges_are_valid() {
        for p in [
            "/a\u{20}",
            "/a\u{7e}",
            "/a\u{a0}",
            "/a\u{d7ff}",
            "/a\u{f900}",
            "/a\u{ffef}",
        ] {
            assert_eq!(validate_path(p), Ok(()), "{p:?}");
        }
    }

    #[test]
    fn parent_of_top_level_node_is_the_root_alias() {
        assert_eq!(split_parent("/a"), Some(("", "a")));
        assert_eq!(split_parent("/a/b"), Some(("/a", "b")));
        assert_eq!(split_parent("/"), Some(("", "")));
        assert_eq!(split_parent("a"), None);
        assert_eq!(watch_path(""), "/");
    }

    #[test]
    fn utf16_length_counts_surrogate_pairs_as_two() {
        assert_eq!(utf16_len("/ab"), 3);
        assert_eq!(utf16_len("/é"), 2);
        assert_eq!(utf16_len("/\u{1f600}"), 3);
    }
}
