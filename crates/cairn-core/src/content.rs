//! Content addressing: hash algorithms and hash parsing.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use sha1::Digest as _;

/// A content hash algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// SHA-256 (default): 64 hex digits.
    #[default]
    Sha256,
    /// SHA-1 (the seed's): 40 hex digits.
    Sha1,
}

impl Algorithm {
    /// Lowercase name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha1 => "sha1",
        }
    }

    /// Digest length in bytes.
    #[must_use]
    pub fn digest_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 32,
            Algorithm::Sha1 => 20,
        }
    }

    /// Hashes `data`.
    #[must_use]
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Algorithm::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Algorithm::Sha1 => sha1::Sha1::digest(data).to_vec(),
        }
    }
}

impl std::str::FromStr for Algorithm {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "sha256" | "sha-256" => Ok(Algorithm::Sha256),
            "sha1" | "sha-1" => Ok(Algorithm::Sha1),
            _ => Err(Error::InvalidArgument(format!(
                "unknown hash algorithm {s:?}: use \"sha256\" or \"sha1\""
            ))),
        }
    }
}

/// A parsed content hash.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContentHash {
    /// The algorithm, known from the length.
    pub algorithm: Algorithm,
    /// The digest bytes.
    pub digest: Vec<u8>,
}

impl ContentHash {
    /// Parses 40 (SHA-1) or 64 (SHA-256) hex digits.
    ///
    /// # Errors
    /// [`Error::InvalidHash`] for anything else.
    pub fn parse(hex_str: &str) -> Result<ContentHash> {
        let bad = || Error::InvalidHash {
            hash: hex_str.chars().take(80).collect(),
        };
        let algorithm = match hex_str.len() {
            40 => Algorithm::Sha1,
            64 => Algorithm::Sha256,
            _ => return Err(bad()),
        };
        let digest = hex::decode(hex_str).map_err(|_| bad())?;
        Ok(ContentHash { algorithm, digest })
    }

    /// Lowercase hex.
    #[must_use]
    pub fn to_hex(&self) -> String {
        hex::encode(&self.digest)
    }

    /// The storage key: algorithm tag + digest.
    pub(crate) fn storage_key(&self) -> Vec<u8> {
        let mut k = Vec::with_capacity(1 + self.digest.len());
        k.push(match self.algorithm {
            Algorithm::Sha256 => 2,
            Algorithm::Sha1 => 1,
        });
        k.extend_from_slice(&self.digest);
        k
    }

    /// Hash of `data`.
    #[must_use]
    pub fn of(algorithm: Algorithm, data: &[u8]) -> ContentHash {
        ContentHash {
            algorithm,
            digest: algorithm.digest(data),
        }
    }
}

/// The result of storing content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContentInfo {
    /// Hex digest.
    pub hash: String,
    /// Algorithm.
    pub algorithm: Algorithm,
    /// Size in bytes.
    pub size: u64,
    /// False when identical content was already stored (dedup).
    pub stored: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        assert_eq!(
            ContentHash::of(Algorithm::Sha256, b"abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            ContentHash::of(Algorithm::Sha1, b"abc").to_hex(),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
    }

    #[test]
    fn parse_by_length() {
        assert_eq!(
            ContentHash::parse("a9993e364706816aba3e25717850c26c9cd0d89d")
                .unwrap()
                .algorithm,
            Algorithm::Sha1
        );
        assert!(ContentHash::parse("abc").is_err());
        assert!(ContentHash::parse(&"zz".repeat(20)).is_err());
    }
}
