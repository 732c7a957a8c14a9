//! LEB128 varints for the storage encodings.

pub(crate) fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Reads a varint at `*pos`, advancing it; `None` when truncated or too long.
pub(crate) fn get_varint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut n = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*pos)?;
        *pos += 1;
        n |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(n);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_at_the_edges() {
        for n in [0, 1, 127, 128, 16_383, 16_384, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, n);
            let mut pos = 0;
            assert_eq!(get_varint(&out, &mut pos), Some(n));
            assert_eq!(pos, out.len());
        }
        assert_eq!(get_varint(&[0x80], &mut 0), None, "truncated");
        assert_eq!(get_varint(&[0xff; 11], &mut 0), None, "longer than a u64");
    }
}
