//! Bearer tokens with roles scoped by store glob.

use std::path::Path;

/// What a token may do. Ordered: admin ⊃ write ⊃ read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Read keys, list, watch, read content.
    Read,
    /// Also write keys and content.
    Write,
    /// Also manage stores, backups and everything else.
    Admin,
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "read" => Ok(Role::Read),
            "write" => Ok(Role::Write),
            "admin" => Ok(Role::Admin),
            _ => Err(format!("unknown role {s:?} (use read, write or admin)")),
        }
    }
}

#[derive(Debug, Clone)]
struct Grant {
    token: String,
    role: Role,
    glob: String,
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// No token, or an unknown one (HTTP 401, RESP `-NOAUTH`).
    #[error("authentication required: missing or unknown token")]
    Unauthenticated,
    /// A valid token without the needed role or store scope (HTTP 403).
    #[error("token is not allowed to do this")]
    Forbidden,
}

/// The server's tokens; `Auth::open()` (no tokens) allows everything.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    grants: Option<Vec<Grant>>,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    role: Role,
    glob: String,
}

impl Principal {
    /// The caller when auth is off: admin on everything.
    #[must_use]
    pub fn anonymous_admin() -> Principal {
        Principal {
            role: Role::Admin,
            glob: "*".into(),
        }
    }

    /// Checks the caller may act with `need` on `store` (`None`: not store-scoped,
    /// which needs a token scoped to every store, `*`).
    ///
    /// # Errors
    /// [`Denied::Forbidden`].
    pub fn allow(&self, need: Role, store: Option<&str>) -> Result<(), Denied> {
        let scoped = match store {
            Some(s) => glob_match(&self.glob, s),
            None => self.glob == "*",
        };
        if self.role >= need && scoped {
            Ok(())
        } else {
            Err(Denied::Forbidden)
        }
    }
}

impl Auth {
    /// No tokens: every request is allowed.
    #[must_use]
    pub fn open() -> Auth {
        Auth { grants: None }
    }

    /// True when tokens are configured.
    #[must_use]
    pub fn enabled(&self) -> bool {
        self.grants.is_some()
    }

    /// Reads a token file.
    ///
    /// # Errors
    /// A message naming the file and line that is malformed.
    pub fn from_file(path: &Path) -> Result<Auth, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read token file {}: {e}", path.display()))?;
        Auth::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses token-file text.
    ///
    /// # Errors
    /// A message naming the malformed line.
    pub fn parse(text: &str) -> Result<Auth, String> {
        let mut grants = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let parts: Vec<&str> = line.split_whitespace().collect();
            let (token, role, glob) = match parts.as_slice() {
                [t, r] => (*t, *r, "*"),
                [t, r, g] => (*t, *r, *g),
                _ => return Err(format!("line {}: expected `TOKEN ROLE [STORE_GLOB]`", i + 1)),
            };
            let role = role.parse().map_err(|e| format!("line {}: {e}", i + 1))?;
            grants.push(Grant {
                token: token.to_owned(),
                role,
                glob: glob.to_owned(),
            });
        }
        if grants.is_empty() {
            return Err("no tokens in token file".into());
        }
        Ok(Auth { grants: Some(grants) })
    }

    /// Who presents `token`.
    ///
    /// # Errors
    /// [`Denied::Unauthenticated`] when tokens are on and `token` is missing or unknown.
    pub fn authenticate(&self, token: Option<&str>) -> Result<Principal, Denied> {
        let Some(grants) = &self.grants else {
            return Ok(Principal::anonymous_admin());
        };
        let token = token.ok_or(Denied::Unauthenticated)?;
        grants
            .iter()
            .find(|g| constant_time_eq(g.token.as_bytes(), token.as_bytes()))
            .map(|g| Principal {
                role: g.role,
                glob: g.glob.clone(),
            })
            .ok_or(Denied::Unauthenticated)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `*` matches any run of characters, `?` one character.
#[must_use]
pub fn glob_match(pattern: &str, s: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (pattern.chars().collect(), s.chars().collect());
    let (mut pi, mut si, mut star, mut mark) = (0, 0, None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*", "anything"));
        assert!(glob_match("app-*", "app-users"));
        assert!(!glob_match("app-*", "other"));
        assert!(glob_match("a?c", "abc"));
    }

    #[test]
    fn roles_and_scopes() {
        let auth = Auth::parse("r1 read\nw1 write app-*\n# comment\na1 admin\n").unwrap();
        assert_eq!(auth.authenticate(None), Err(Denied::Unauthenticated));
        assert_eq!(auth.authenticate(Some("nope")), Err(Denied::Unauthenticated));
        let w = auth.authenticate(Some("w1")).unwrap();
        assert!(w.allow(Role::Write, Some("app-x")).is_ok());
        assert_eq!(w.allow(Role::Write, Some("default")), Err(Denied::Forbidden));
        assert_eq!(w.allow(Role::Admin, Some("app-x")), Err(Denied::Forbidden));
        let r = auth.authenticate(Some("r1")).unwrap();
        assert_eq!(r.allow(Role::Write, Some("default")), Err(Denied::Forbidden));
        assert!(Auth::parse("tok superuser").is_err());
    }
}
