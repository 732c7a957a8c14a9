//! Increments: the arithmetic of [`crate::Op::Incr`], exact where it can
//! be and refused where it cannot, and Redis's reading of numbers in strings.

use crate::{Error, Key, Result, Value};

/// An integer as Redis reads one (`string2ll`): optional `-`, digits, no
/// `+`, no spaces, no leading zeros, no `-0`.
#[must_use]
pub fn redis_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let canonical = match digits.as_bytes() {
        [] => false,
        [b'0'] => digits.len() == s.len(),
        [first, ..] => *first != b'0' && digits.bytes().all(|b| b.is_ascii_digit()),
    };
    if canonical { s.parse().ok() } else { None }
}

/// The number a Redis string holds (see `Op::Incr::text`).
fn text_number(v: &Value, integer: bool) -> Option<serde_json::Number> {
    let Value::Json(serde_json::Value::String(s)) = v else {
        return None;
    };
    if let Some(i) = redis_int(s) {
        return Some(i.into());
    }
    if integer {
        return None;
    }
    s.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .and_then(serde_json::Number::from_f64)
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn add(
    store: &str,
    key: &Key,
    old: Option<&Value>,
    by: &serde_json::Number,
    int_only: bool,
    integer: bool,
    text: bool,
) -> Result<serde_json::Number> {
    let nan = || Error::NotANumber {
        store: store.to_owned(),
        key: key.to_string(),
    };
    let parsed;
    let zero = serde_json::Number::from(0);
    let cur = match old {
        None => &zero,
        Some(v) => match v.as_number() {
            Some(n) => n,
            None if text => {
                parsed = text_number(v, integer).ok_or_else(nan)?;
                &parsed
            }
            None => return Err(nan()),
        },
    };
    if integer && (cur.as_i64().is_none() || by.as_i64().is_none()) {
        return Err(Error::NotAnInteger {
            store: store.to_owned(),
            key: key.to_string(),
        });
    }
    // Two integers add exactly, never as a float that silently drops
    // digits. The sum may reach u64, except for Redis's INCR family
    // (`integer`) and int stores, which hold i64; past that range it is an
    // overflow and nothing is written.
    let whole = |n: &serde_json::Number| n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from));
    if let (Some(a), Some(b)) = (whole(cur), whole(by)) {
        let sum = a + b;
        let exact = i64::try_from(sum).map(serde_json::Number::from);
        let exact = if integer || int_only {
            exact.ok()
        } else {
            exact.or_else(|_| u64::try_from(sum).map(serde_json::Number::from)).ok()
        };
        return exact.ok_or_else(|| Error::Overflow {
            store: store.to_owned(),
            key: key.to_string(),
        });
    }
    if int_only {
        return Err(Error::InvalidValue {
            store: store.to_owned(),
            key: key.to_string(),
            reason: "an int store only takes integer increments".into(),
        });
    }
    // An integer past 2^53 has no exact float: adding a fraction to it
    // would silently change its other digits.
    let inexact = |n: &serde_json::Number| match (n.as_i64(), n.as_u64()) {
        (Some(i), _) => i.unsigned_abs() > 1 << 53,
        (None, Some(u)) => u > 1 << 53,
        _ => false,
    };
    if inexact(cur) || inexact(by) {
        return Err(Error::InvalidArgument(format!(
            "increment of key {:?} in store {store:?}: {cur} + {by} cannot be computed exactly \
             (integers past 2^53 only take integer increments)",
            key.to_string()
        )));
    }
    let (a, b) = (cur.as_f64().ok_or_else(nan)?, by.as_f64().ok_or_else(nan)?);
    crate::value::number_from_f64(a + b).ok_or_else(|| Error::Overflow {
        store: store.to_owned(),
        key: key.to_string(),
    })
}
