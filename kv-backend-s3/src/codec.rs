//! The order-preserving name encoding of keys and namespaces.
//!
//! [`encode`] writes the UTF-8 bytes of a name as big-endian base64 without
//! padding, over an alphabet sorted in ASCII order:
//!
//! ```text
//! -0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz
//! ```
//!
//! so that:
//!
//! - **order is kept**: `a < b` by bytes exactly when `encode(a) < encode(b)`.
//!   The bits of a name are cut into 6-bit digits from the most significant
//!   end (the last digit padded with zero bits) and each digit is one
//!   character whose ASCII code grows with the digit; comparing encodings
//!   character by character compares the bit strings, and a prefix (shorter
//!   name) gives a shorter encoding whose last digit is no greater;
//! - **it is injective**: `n` bytes always give `ceil(8n / 6)` characters,
//!   a different count for every `n`;
//! - **every encoding is a valid object name part**: no `/`, no character
//!   that `object_store` percent-encodes or that S3 advises against, and
//!   nothing a file system treats specially (no `.` file names).
//!
//! Keys may hold `/`, `%`, `+`, `:`, `@`, `#`, `?`, `\`, `*` or any
//! non-ASCII character; none of them survive into the object name.

use kv_core::Error;

/// The 64 digit characters, in ASCII (and digit) order.
const ALPHABET: &[u8; 64] = b"-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";

/// Digit value of each ASCII byte; 255 = not a digit.
const DIGITS: [u8; 256] = {
    let mut table = [255u8; 256];
    let mut i = 0;
    while i < 64 {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Number of characters [`encode`] writes for `bytes` input bytes.
pub const fn encoded_len(bytes: usize) -> usize {
    (bytes * 8).div_ceil(6)
}

/// The largest number of input bytes whose encoding fits in `chars`
/// characters.
pub const fn max_decoded_len(chars: usize) -> usize {
    chars * 6 / 8
}

/// Encodes `name`'s UTF-8 bytes (see the [module docs](self)).
pub fn encode(name: &str) -> String {
    let bytes = name.as_bytes();
    let mut out = String::with_capacity(encoded_len(bytes.len()));
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            out.push(char::from(ALPHABET[((acc >> bits) & 0x3f) as usize]));
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((acc << (6 - bits)) & 0x3f) as usize]));
    }
    out
}

/// Decodes what [`encode`] wrote. Anything else (a character outside the
/// alphabet, an impossible length, non-zero padding bits, bytes that are
/// not UTF-8) is [`Error::Corruption`] naming `location`.
pub fn decode(encoded: &str, location: &str) -> Result<String, Error> {
    let corrupt = |reason: String| Error::Corruption {
        location: location.to_owned(),
        reason,
    };
    // 4 characters hold 3 bytes; a remainder of 1 character is impossible.
    if encoded.len() % 4 == 1 {
        return Err(corrupt(format!(
            "encoded name {encoded:?} has an impossible length {}",
            encoded.len()
        )));
    }
    let mut out = Vec::with_capacity(max_decoded_len(encoded.len()));
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for (i, c) in encoded.bytes().enumerate() {
        let digit = DIGITS[usize::from(c)];
        if digit == 255 {
            return Err(corrupt(format!(
                "encoded name {encoded:?} has a character outside the alphabet at {i}"
            )));
        }
        acc = (acc << 6) | u32::from(digit);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
        acc &= (1 << bits) - 1;
    }
    if acc != 0 {
        return Err(corrupt(format!(
            "encoded name {encoded:?} has non-zero padding bits"
        )));
    }
    String::from_utf8(out).map_err(|_| corrupt(format!("encoded name {encoded:?} is not UTF-8")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use proptest::prelude::*;

    #[test]
    fn alphabet_is_sorted_and_path_safe() {
        assert!(ALPHABET.windows(2).all(|w| w[0] < w[1]));
        for &c in ALPHABET {
            let s = char::from(c).to_string();
            let part = object_store::path::PathPart::from(s.as_str());
            assert_eq!(part.as_ref(), s, "{s} would be percent-encoded");
        }
    }

    #[test]
    fn known_values() {
        assert_eq!(encode(""), "");
        assert_eq!(encode("\0"), "--");
        assert_eq!(encode("\0\0"), "---");
        assert_eq!(encode("\0\0\0"), "----");
        assert_eq!(encode("a"), "NF");
        for s in ["", "a", "ab", "abc", "abcd", "ключ", "a/b%c+d:e@f#g?h\\i*j"] {
            assert_eq!(encode(s).len(), encoded_len(s.len()));
            assert_eq!(decode(&encode(s), "t").unwrap(), s);
        }
    }

    #[test]
    fn garbage_is_corruption() {
        for bad in ["N", "NG", "N/", "N.", "abcde", "!!"] {
            assert!(
                matches!(decode(bad, "loc"), Err(Error::Corruption { location, .. }) if location == "loc"),
                "{bad}"
            );
        }
        // Valid digits that spell bytes which are not UTF-8.
        let not_utf8 = {
            let mut s = String::new();
            // 0xFF 0xFF 0xFF = 24 one-bits = four 'z'.
            s.push_str("zzzz");
            s
        };
        assert!(decode(&not_utf8, "x").is_err());
    }

    /// Names built from the characters that are unsafe in object paths or
    /// URLs, plain ASCII and non-ASCII.
    fn names() -> impl Strategy<Value = String> {
        let pieces = prop_oneof![
            Just("/".to_owned()),
            Just("%".to_owned()),
            Just("+".to_owned()),
            Just(":".to_owned()),
            Just("@".to_owned()),
            Just("#".to_owned()),
            Just("?".to_owned()),
            Just("\\".to_owned()),
            Just("*".to_owned()),
            Just(".".to_owned()),
            Just("-".to_owned()),
            Just("~".to_owned()),
            Just("é".to_owned()),
            Just("日本".to_owned()),
            Just("🔑".to_owned()),
            "[a-zA-Z0-9]{1,3}",
            any::<char>().prop_map(|c| c.to_string()),
        ];
        prop::collection::vec(pieces, 0..40).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn round_trips(name in names()) {
            let e = encode(&name);
            prop_assert_eq!(e.len(), encoded_len(name.len()));
            prop_assert!(e.bytes().all(|c| DIGITS[usize::from(c)] != 255));
            prop_assert_eq!(decode(&e, "t").unwrap(), name);
        }

        #[test]
        fn keeps_byte_order(a in names(), b in names()) {
            prop_assert_eq!(a.as_bytes().cmp(b.as_bytes()), encode(&a).cmp(&encode(&b)));
        }

        #[test]
        fn keeps_order_of_prefixes(a in names(), tail in names()) {
            let b = format!("{a}{tail}");
            prop_assert_eq!(a.cmp(&b), encode(&a).cmp(&encode(&b)));
        }

        #[test]
        fn keeps_order_of_any_strings(a in any::<String>(), b in any::<String>()) {
            prop_assert_eq!(a.cmp(&b), encode(&a).cmp(&encode(&b)));
            prop_assert_eq!(decode(&encode(&a), "t").unwrap(), a);
        }
    }
}
