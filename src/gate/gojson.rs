//! The parts of Go's `encoding/json` that decide what an exec body means to the daemon.
//!
//! Go matches an object key to a struct field by exact name first, then
//! case-insensitively with `bytes.EqualFold`, which folds Unicode as well as
//! ASCII: `ſ` (U+017F) matches `s` and the Kelvin sign (U+212A) matches `k`.
//! Keys apply in document order, so the last duplicate wins, and `null` leaves a
//! bool or string field as it was. The decoders built on this module walk each
//! object entry by entry (serde's `MapAccess`) to keep those rules; a
//! `serde_json::Value` would already have merged duplicates.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// Whether a decoded JSON key selects the field named `field` (ASCII) in Go.
pub fn key_matches(key: &str, field: &str) -> bool {
    let mut key_chars = key.chars().map(fold);
    let mut field_chars = field.chars().map(fold);
    loop {
        match (key_chars.next(), field_chars.next()) {
            (None, None) => return true,
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
    }
}

/// The representative of `c`'s case-fold orbit as Go's `foldRune` picks it
/// (the smallest rune), for every rune whose orbit holds an ASCII letter.
/// Other non-ASCII runes stay as they are: they cannot match an ASCII name.
fn fold(c: char) -> char {
    match c {
        'a'..='z' => c.to_ascii_uppercase(),
        '\u{017F}' => 'S', // LATIN SMALL LETTER LONG S: s, S, ſ
        '\u{212A}' => 'K', // KELVIN SIGN: k, K, K
        _ => c,
    }
}

/// A Go `*[2]uint` such as `ConsoleSize`: `null` is absent, a shorter array
/// leaves zeros, a longer one is cut, each `null` element stays zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct UintPair(pub [u64; 2]);

impl<'de> serde::Deserialize<'de> for UintPair {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PairVisitor;
        impl<'de> Visitor<'de> for PairVisitor {
            type Value = UintPair;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of unsigned integers")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<UintPair, A::Error> {
                let mut pair = [0u64; 2];
                let mut index = 0;
                while let Some(value) = seq.next_element::<Option<u64>>()? {
                    if let (Some(slot), Some(value)) = (pair.get_mut(index), value) {
                        *slot = value;
                    }
                    index += 1;
                }
                Ok(UintPair(pair))
            }
        }
        deserializer.deserialize_seq(PairVisitor)
    }
}

/// Reads the current entry's value into a bool or string field: `null` leaves
/// the field as it was, as Go does; a wrong type is an error.
pub fn keep_unless_null<'de, A, T>(map: &mut A, field: &mut T) -> Result<(), A::Error>
where
    A: MapAccess<'de>,
    T: Deserialize<'de>,
{
    if let Some(value) = map.next_value::<Option<T>>()? {
        *field = value;
    }
    Ok(())
}

/// Most ignored keys a record lists; a body can hold thousands, a record should not.
const MAX_IGNORED: usize = 32;
/// Longest ignored key a record keeps, in characters.
const MAX_IGNORED_KEY: usize = 128;

/// Keys the daemon's decoder would skip because no field matches them. Go
/// ignores them, so execgate does too; since only the canonical body is
/// forwarded, they never reach the daemon. They are kept for the audit trail.
///
/// Serializes as a list of the keys, ending with `"… N more"` when it was cut.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ignored {
    /// The first [`MAX_IGNORED`] keys, in document order, each cut to [`MAX_IGNORED_KEY`] characters.
    pub keys: Vec<String>,
    /// How many keys were ignored in all (duplicates counted).
    pub total: usize,
}

impl Ignored {
    /// Skips the current entry's value, which must still be valid JSON (Go
    /// checks its syntax), and notes its key.
    pub fn skip<'de, A: MapAccess<'de>>(&mut self, map: &mut A, key: &str) -> Result<(), A::Error> {
        map.next_value::<de::IgnoredAny>()?;
        self.note(key);
        Ok(())
    }

    /// Notes a key whose value was read but is not forwarded.
    pub fn note(&mut self, key: &str) {
        self.total += 1;
        if self.keys.len() < MAX_IGNORED {
            self.keys.push(key.chars().take(MAX_IGNORED_KEY).collect());
        }
    }

    /// Whether nothing was ignored.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }
}

impl serde::Serialize for Ignored {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let more = self.total - self.keys.len();
        let mut seq = serializer.serialize_seq(Some(self.keys.len() + usize::from(more > 0)))?;
        for key in &self.keys {
            seq.serialize_element(key)?;
        }
        if more > 0 {
            seq.serialize_element(&format!("… {more} more"))?;
        }
        seq.end()
    }
}

/// A decoded body and the keys its decoder ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decoded<T> {
    /// What the daemon will read.
    pub value: T,
    /// What it will not.
    pub ignored: Ignored,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_fold_like_go_equal_fold() {
        assert!(key_matches("User", "User"));
        assert!(key_matches("user", "User"));
        assert!(key_matches("USER", "User"));
        assert!(key_matches("uſer", "User"), "long s folds to s");
        assert!(key_matches("\u{212A}ill", "Kill"), "Kelvin sign folds to k");
        assert!(!key_matches("Usr", "User"));
        assert!(!key_matches("Users", "User"));
        assert!(!key_matches("Üser", "User"));
        assert!(!key_matches("ıser", "Iser"), "dotless i is its own orbit in Go");
        assert!(!key_matches("", "User"));
    }

    #[test]
    fn uint_pairs_read_like_go_arrays() {
        let read = |text: &str| serde_json::from_str::<UintPair>(text).map(|p| p.0);
        assert_eq!(read("[24, 80]").ok(), Some([24, 80]));
        assert_eq!(read("[24]").ok(), Some([24, 0]));
        assert_eq!(read("[24, 80, 3]").ok(), Some([24, 80]));
        assert_eq!(read("[null, 80]").ok(), Some([0, 80]));
        assert!(read("[-1, 80]").is_err());
        assert!(read("[1.5, 80]").is_err());
        assert!(read("\"24x80\"").is_err());
    }
}
