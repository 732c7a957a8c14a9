//! Scans over raw JSON text, run before it is parsed: nesting deeper than
//! a limit (a hostile document must not make the parser recurse without
//! bound) and integers too wide for 64 bits (serde_json reads
//! `123456789012345678901234567890` as the nearest `f64` without a word, so
//! the value stored would differ from the one sent). Front ends refuse both.

/// The bytes of `json` outside string literals (the quotes are left out
/// too), with their offsets.
fn outside_strings(json: &[u8]) -> impl Iterator<Item = (usize, u8)> + '_ {
    let (mut in_str, mut escaped) = (false, false);
    json.iter().enumerate().filter_map(move |(i, &b)| {
        if in_str {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            None
        } else if b == b'"' {
            in_str = true;
            None
        } else {
            Some((i, b))
        }
    })
}

/// The depth reached once nesting passes `max` levels of arrays and
/// objects, if it does.
#[must_use]
pub fn depth_over(json: &[u8], max: usize) -> Option<usize> {
    // Fast path: fewer opening brackets in all (strings included) than the
    // limit cannot nest past it.
    if json.iter().filter(|&&b| b == b'[' || b == b'{').count() <= max {
        return None;
    }
    let mut depth = 0usize;
    for (_, b) in outside_strings(json) {
        match b {
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return Some(depth);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// The first integer literal outside strings that fits neither `i64` nor
/// `u64`, if any. Literals with a fraction or exponent are decimals and pass.
#[must_use]
pub fn wide_integer(json: &[u8]) -> Option<&str> {
    // Fast path: every integer of up to 18 digits fits in an i64, so a
    // document without a run of 19 digits (strings included) has none too
    // wide. Most documents take this path in one tight pass.
    if longest_digit_run(json) < 19 {
        return None;
    }
    let number = |b: u8| matches!(b, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9');
    // A token is a run of number bytes at consecutive offsets.
    let mut token: Option<(usize, usize)> = None;
    let end = std::iter::once((json.len(), b' '));
    for (i, b) in outside_strings(json).chain(end) {
        match token {
            Some((start, last)) if number(b) && i == last + 1 => token = Some((start, i)),
            _ => {
                if let Some((start, last)) = token.take() {
                    let tok = std::str::from_utf8(&json[start..=last]).unwrap_or_default();
                    let integer = !tok.contains(['.', 'e', 'E']) && tok.bytes().any(|c| c.is_ascii_digit());
                    if integer && tok.parse::<i64>().is_err() && tok.parse::<u64>().is_err() {
                        return Some(tok);
                    }
                }
                if number(b) {
                    token = Some((i, i));
                }
            }
        }
    }
    None
}

fn longest_digit_run(json: &[u8]) -> usize {
    let (mut run, mut longest) = (0usize, 0usize);
    for &b in json {
        if b.is_ascii_digit() {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    longest
}

/// The message for [`wide_integer`]'s find.
#[must_use]
pub fn wide_integer_message(tok: &str) -> String {
    let shown: String = tok.chars().take(40).collect();
    let more = if tok.len() > 40 { "..." } else { "" };
    format!(
        "integer {shown}{more} does not fit in 64 bits and would not be stored exactly; send it as a string, or as a decimal (e.g. 1.5e30) to store it approximately"
    )
}

#[cfg(test)]
mod tests {
    use super::{depth_over, wide_integer};

    #[test]
    fn depth_counts_brackets_outside_strings() {
        assert_eq!(depth_over(b"[[[1]]]", 3), None);
        assert_eq!(depth_over(b"[[[[1]]]]", 3), Some(4));
        assert_eq!(depth_over(br#"{"a":"[[[[[[","b":[]}"#, 2), None);
        assert_eq!(depth_over(br#"["\"[[[[", [[[]]]]"#, 3), Some(4));
        assert_eq!(depth_over(b"[][][][][]", 1), None, "siblings do not nest");
        assert_eq!(depth_over(br#"{"a":"\"[[[[","b":[[1]]}"#, 2), Some(3));
    }

    #[test]
    fn finds_only_integers_outside_64_bits_and_outside_strings() {
        assert_eq!(
            wide_integer(b"123456789012345678901234567890"),
            Some("123456789012345678901234567890")
        );
        assert_eq!(
            wide_integer(br#"{"a":[1,-99999999999999999999]}"#),
            Some("-99999999999999999999")
        );
        assert_eq!(wide_integer(b"18446744073709551615"), None, "u64::MAX fits");
        assert_eq!(wide_integer(b"18446744073709551616"), Some("18446744073709551616"));
        assert_eq!(wide_integer(b"-9223372036854775808"), None, "i64::MIN fits");
        assert_eq!(wide_integer(b"-9223372036854775809"), Some("-9223372036854775809"));
        assert_eq!(wide_integer(b"1.5e300"), None);
        assert_eq!(wide_integer(b"123456789012345678901234567890.0"), None, "a decimal");
        assert_eq!(
            wide_integer(br#"{"n":"123456789012345678901234567890"}"#),
            None,
            "inside a string"
        );
        assert_eq!(
            wide_integer(br#"["\"", 123456789012345678901234567890]"#),
            Some("123456789012345678901234567890")
        );
        assert_eq!(wide_integer(b"[true, null, -0, 0]"), None);
        assert_eq!(wide_integer(b"[1,2]"), None, "separate tokens");
        assert_eq!(wide_integer(b"-999999999999999999"), None, "18 digits: the fast path");
        assert_eq!(
            wide_integer(b"-9999999999999999999"),
            Some("-9999999999999999999"),
            "19 digits below i64::MIN"
        );
        assert_eq!(wide_integer(b"9999999999999999999"), None, "19 digits within u64");
    }
}
