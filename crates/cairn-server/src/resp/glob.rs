//! Redis glob patterns (`KEYS`, `SCAN MATCH`, `PSUBSCRIBE`): `*`, `?`,
//! `[abc]`, `[^a-z]`, and `\` to escape.
//!
//! Matching backtracks only to the most recent `*`, so it runs in
//! O(pattern × subject) time even for adversarial patterns like `*a*a*a*b`.

/// One pattern element that matches exactly one byte, or a star.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Star,
    Any,
    Byte(u8),
    Class { negate: bool, items: Vec<(u8, u8)> },
}

fn compile(p: &[u8]) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            b'*' => {
                if out.last() != Some(&Tok::Star) {
                    out.push(Tok::Star);
                }
            }
            b'?' => out.push(Tok::Any),
            b'\\' if i + 1 < p.len() => {
                i += 1;
                out.push(Tok::Byte(p[i]));
            }
            b'[' => {
                let mut j = i + 1;
                let negate = p.get(j) == Some(&b'^');
                if negate {
                    j += 1;
                }
                let mut items = Vec::new();
                while j < p.len() && p[j] != b']' {
                    if p[j] == b'\\' && j + 1 < p.len() {
                        j += 1;
                        items.push((p[j], p[j]));
                    } else if j + 2 < p.len() && p[j + 1] == b'-' && p[j + 2] != b']' {
                        let (a, b) = (p[j], p[j + 2]);
                        items.push((a.min(b), a.max(b)));
                        j += 2;
                    } else {
                        items.push((p[j], p[j]));
                    }
                    j += 1;
                }
                // Like Redis, an unterminated class runs to the end of the pattern.
                i = j;
                out.push(Tok::Class { negate, items });
            }
            c => out.push(Tok::Byte(c)),
        }
        i += 1;
    }
    out
}

fn one(t: &Tok, c: u8) -> bool {
    match t {
        Tok::Star => true,
        Tok::Any => true,
        Tok::Byte(b) => *b == c,
        Tok::Class { negate, items } => items.iter().any(|(a, b)| (*a..=*b).contains(&c)) != *negate,
    }
}

/// A compiled pattern.
#[derive(Debug, Clone)]
pub struct Glob {
    toks: Vec<Tok>,
    literal_prefix: Vec<u8>,
}

impl Glob {
    /// Compiles a pattern.
    #[must_use]
    pub fn new(pattern: &[u8]) -> Glob {
        let toks = compile(pattern);
        let literal_prefix = toks
            .iter()
            .map_while(|t| match t {
                Tok::Byte(b) => Some(*b),
                _ => None,
            })
            .collect();
        Glob { toks, literal_prefix }
    }

    /// True when the pattern is `*` (everything matches).
    #[must_use]
    pub fn is_all(&self) -> bool {
        self.toks == [Tok::Star]
    }

    /// The bytes every match starts with (used to narrow a key scan).
    #[must_use]
    pub fn literal_prefix(&self) -> &[u8] {
        &self.literal_prefix
    }

    /// True when `s` matches.
    #[must_use]
    pub fn matches(&self, s: &[u8]) -> bool {
        let t = &self.toks;
        let (mut ti, mut si) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while si < s.len() {
            if ti < t.len() && t[ti] == Tok::Star {
                star = Some((ti, si));
                ti += 1;
            } else if ti < t.len() && one(&t[ti], s[si]) {
                ti += 1;
                si += 1;
            } else if let Some((st, ss)) = star {
                ti = st + 1;
                si = ss + 1;
                star = Some((st, ss + 1));
            } else {
                return false;
            }
        }
        while ti < t.len() && t[ti] == Tok::Star {
            ti += 1;
        }
        ti == t.len()
    }
}

/// One-shot match.
#[must_use]
pub fn glob_match(pattern: &[u8], s: &[u8]) -> bool {
    Glob::new(pattern).matches(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_patterns() {
        assert!(glob_match(b"*", b""));
        assert!(glob_match(b"h?llo", b"hello"));
        assert!(!glob_match(b"h?llo", b"hllo"));
        assert!(glob_match(b"h*llo", b"heeeello"));
        assert!(glob_match(b"h[ae]llo", b"hallo"));
        assert!(!glob_match(b"h[ae]llo", b"hillo"));
        assert!(glob_match(b"h[^e]llo", b"hallo"));
        assert!(!glob_match(b"h[^e]llo", b"hello"));
        assert!(glob_match(b"h[a-b]llo", b"hbllo"));
        assert!(glob_match(b"h\\*llo", b"h*llo"));
        assert!(!glob_match(b"h\\*llo", b"hello"));
        assert!(glob_match(b"__keyspace@0__:*", b"__keyspace@0__:foo"));
        assert!(glob_match(b"*a*a*a*b", b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab"));
        assert!(!glob_match(b"*a*a*a*b", &[b'a'; 5000]));
        assert_eq!(Glob::new(b"user:*:x").literal_prefix(), b"user:");
        assert!(Glob::new(b"**").is_all());
    }
}
