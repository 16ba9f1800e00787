//! Lower-case hexadecimal text for keys and hashes.

use alloc::string::String;

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Encodes bytes as lower-case hex.
pub fn encode(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    encode_into(&mut s, bytes);
    s
}

/// Appends `bytes` as lower-case hex to `out`.
pub fn encode_into(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
}

/// Decodes exactly `N` bytes of hex (either case); `None` on any other input.
///
/// The server decodes a signature and a bundle hash on every check-in: a table lookup per
/// digit and one check at the end keep that branch-free.
pub fn decode_array<const N: usize>(text: &str) -> Option<[u8; N]> {
    let raw = text.as_bytes();
    if raw.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    // Digits are 0..=15; a non-digit is 0xff, which sets a high bit in `seen`.
    let mut seen = 0u8;
    for (byte, pair) in out.iter_mut().zip(raw.chunks_exact(2)) {
        let hi = VALUES[usize::from(pair[0])];
        let lo = VALUES[usize::from(pair[1])];
        seen |= hi | lo;
        *byte = (hi << 4) | lo;
    }
    (seen & 0xf0 == 0).then_some(out)
}

/// The value of every byte as a hex digit, 0xff for bytes that are none.
const VALUES: [u8; 256] = {
    let mut t = [0xff; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_byte() {
        let bytes: [u8; 256] = core::array::from_fn(|i| i as u8);
        let text = encode(&bytes);
        assert_eq!(&text[..8], "00010203");
        assert_eq!(decode_array::<256>(&text), Some(bytes));
        assert_eq!(
            decode_array::<256>(&text.to_uppercase()),
            Some(bytes),
            "upper case"
        );
    }

    #[test]
    fn refuses_what_is_not_hex_of_the_length() {
        for text in ["", "0", "000", "0g", "g0", "-1", " 0", "0 ", "0x", "\u{e9}"] {
            assert_eq!(decode_array::<1>(text), None, "{text:?}");
        }
        // Every byte that is not a digit, in either place of a pair.
        for b in (0..=255u8).filter(|b| !b.is_ascii_hexdigit() && b.is_ascii()) {
            let c = char::from(b);
            for text in [alloc::format!("{c}0"), alloc::format!("0{c}")] {
                assert_eq!(decode_array::<1>(&text), None, "{text:?}");
            }
        }
        assert_eq!(decode_array::<2>("ffFF"), Some([0xff, 0xff]));
    }
}
