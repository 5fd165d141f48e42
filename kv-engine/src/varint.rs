//! LEB128 unsigned varints: 7 bits per byte, low bits first, high bit set on
//! every byte but the last. At most 10 bytes for a `u64`.

/// Appends `v` to `out`.
pub fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a varint from the front of `buf`: the value and the bytes used, or
/// `None` when `buf` ends first or the varint is longer than 10 bytes or
/// overflows a `u64`.
pub fn get(buf: &[u8]) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for (i, &b) in buf.iter().enumerate().take(10) {
        let bits = u64::from(b & 0x7f);
        if i == 9 && b > 1 {
            return None;
        }
        v |= bits << (7 * i);
        if b < 0x80 {
            return Some((v, i + 1));
        }
    }
    None
}

/// Encoded length of `v`.
pub fn len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_edges() {
        for v in [
            0,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u32::MAX as u64,
            u64::MAX - 1,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put(&mut out, v);
            assert_eq!(out.len(), len(v), "{v}");
            assert_eq!(get(&out), Some((v, out.len())), "{v}");
            assert_eq!(get(&out[..out.len() - 1]), None, "truncated {v}");
        }
    }

    #[test]
    fn rejects_overlong_and_overflow() {
        assert_eq!(get(&[0x80; 11]), None);
        let mut over = vec![0xff; 9];
        over.push(0x02);
        assert_eq!(get(&over), None);
    }
}
