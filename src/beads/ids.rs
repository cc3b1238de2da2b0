//! Beads-compatible ids: `<prefix>-<base36 hash>` with an adaptive length, and `<parent>.<n>`
//! for children.

use sha2::{Digest, Sha256};

/// Shortest and longest hash part.
pub const MIN_LEN: usize = 3;
pub const MAX_LEN: usize = 8;
/// The largest acceptable birthday-collision probability when choosing a length.
const MAX_COLLISION_PROBABILITY: f64 = 0.25;
/// Children nest at most this deep (`gt-abc.1.2.3`).
pub const MAX_DEPTH: usize = 3;

const BASE36: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// The hash length for a prefix that will hold `count` top-level beads: the shortest length
/// whose birthday-collision probability `1 - exp(-n(n-1) / 2N)` with `N = 36^len` is at most
/// 0.25.
pub fn adaptive_len(count: u64) -> usize {
    let n = count as f64;
    for len in MIN_LEN..=MAX_LEN {
        let space = 36f64.powi(len as i32);
        let p = 1.0 - (-(n * (n - 1.0)) / (2.0 * space)).exp();
        if p <= MAX_COLLISION_PROBABILITY {
            return len;
        }
    }
    MAX_LEN
}

/// The candidate id for one attempt: SHA-256 of `title|description|creator|nanos|nonce`,
/// rendered as `len` base-36 digits.
pub fn hash_id(
    prefix: &str,
    title: &str,
    description: &str,
    creator: &str,
    created_ns: i64,
    nonce: u32,
    len: usize,
) -> String {
    let mut h = Sha256::new();
    h.update(title.as_bytes());
    h.update(b"|");
    h.update(description.as_bytes());
    h.update(b"|");
    h.update(creator.as_bytes());
    h.update(b"|");
    h.update(created_ns.to_string().as_bytes());
    h.update(b"|");
    h.update(nonce.to_string().as_bytes());
    let digest = h.finalize();
    let mut v = u64::from_be_bytes([
        digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7],
    ]);
    let len = len.clamp(MIN_LEN, MAX_LEN);
    let mut digits = vec![b'0'; len];
    for slot in digits.iter_mut().rev() {
        *slot = BASE36[(v % 36) as usize];
        v /= 36;
    }
    // Safe: only ASCII digits and letters were written.
    format!("{prefix}-{}", String::from_utf8_lossy(&digits))
}

/// The prefix of an id: everything before the last `-` of its top-level part.
pub fn prefix_of(id: &str) -> &str {
    let top = id.split('.').next().unwrap_or(id);
    match top.rfind('-') {
        Some(i) => &top[..i],
        None => "",
    }
}

/// How many levels below a top-level bead this id is (`gt-a` 0, `gt-a.1` 1, ...).
pub fn depth(id: &str) -> usize {
    id.matches('.').count()
}

/// The parent of a child id (`gt-a.1.2` -> `gt-a.1`), if it is a child whose last segment is
/// a number.
pub fn parent_of(id: &str) -> Option<(&str, u64)> {
    let (parent, n) = id.rsplit_once('.')?;
    let n: u64 = n.parse().ok()?;
    Some((parent, n))
}

/// Checks that an id has the shape `<prefix>-<alnum>[.<n>]*`. Used on input from users and
/// files so that garbage never becomes a key.
pub fn is_valid(id: &str) -> bool {
    let mut parts = id.split('.');
    let top = parts.next().unwrap_or("");
    let Some(dash) = top.rfind('-') else {
        return false;
    };
    let (prefix, hash) = (&top[..dash], &top[dash + 1..]);
    let prefix_ok = !prefix.is_empty()
        && prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    let hash_ok = !hash.is_empty() && hash.chars().all(|c| c.is_ascii_alphanumeric());
    prefix_ok && hash_ok && parts.all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_grows_with_the_number_of_beads() {
        assert_eq!(adaptive_len(0), 3);
        assert_eq!(adaptive_len(1), 3);
        assert_eq!(adaptive_len(100), 3);
        // 36^3 = 46656: p(165) = 1 - exp(-165*164/93312) = 0.252 > 0.25
        assert_eq!(adaptive_len(164), 3);
        assert_eq!(adaptive_len(165), 4);
        assert_eq!(adaptive_len(1_000), 5);
        assert_eq!(adaptive_len(10_000), 6);
        assert_eq!(adaptive_len(100_000), 7);
        assert_eq!(adaptive_len(1_000_000), 8);
        assert_eq!(adaptive_len(100_000_000), 8);
        // Monotone.
        let mut last = 0;
        for n in (0..2_000_000).step_by(997) {
            let l = adaptive_len(n);
            assert!(l >= last);
            last = l;
        }
    }

    #[test]
    fn hash_ids_have_the_asked_length_and_change_with_the_nonce() {
        let a = hash_id(
            "gt",
            "Fix it",
            "desc",
            "nux",
            1_700_000_000_000_000_000,
            0,
            4,
        );
        let b = hash_id(
            "gt",
            "Fix it",
            "desc",
            "nux",
            1_700_000_000_000_000_000,
            1,
            4,
        );
        assert_eq!(a.len(), "gt-".len() + 4);
        assert!(a.starts_with("gt-"));
        assert_ne!(a, b);
        // Deterministic for the same inputs.
        assert_eq!(
            a,
            hash_id(
                "gt",
                "Fix it",
                "desc",
                "nux",
                1_700_000_000_000_000_000,
                0,
                4
            )
        );
        let long = hash_id("my-proj", "t", "", "", 5, 0, 8);
        assert!(long.starts_with("my-proj-") && long.len() == "my-proj-".len() + 8);
        assert!(is_valid(&long));
    }

    #[test]
    fn prefixes_depths_and_parents() {
        assert_eq!(prefix_of("gt-a3f"), "gt");
        assert_eq!(prefix_of("my-proj-a3f.2.1"), "my-proj");
        assert_eq!(depth("gt-a3f"), 0);
        assert_eq!(depth("gt-a3f.1.12"), 2);
        assert_eq!(parent_of("gt-a3f.1.12"), Some(("gt-a3f.1", 12)));
        assert_eq!(parent_of("gt-a3f"), None);
        assert!(is_valid("gt-a3f.1.2"));
        assert!(!is_valid("gt-"));
        assert!(!is_valid("nodash"));
        assert!(!is_valid("gt-a3f.x"));
        assert!(!is_valid("gt-a3f..1"));
        assert!(!is_valid("gt-a b"));
    }
}
