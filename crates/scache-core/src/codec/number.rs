//! Integer values as Postfix's receiver reads them.
//!
//! attr_scan0 converts an `int` attribute with glibc `sscanf(value, "%u%c")`, which accepts more than
//! plain digits: leading white space, a sign, and numbers that wrap modulo 2^32. A drop-in must accept
//! and reject exactly the same strings (spec §1.3), so this reproduces glibc's `strtoul` arithmetic
//! instead of using Rust's stricter parser.

/// Parses `value` the way `sscanf("%u%c")` followed by Postfix's "exactly one conversion" check does.
/// Returns the 32-bit result, or `None` for input Postfix calls "malformed numerical data".
pub fn parse_postfix_uint(value: &[u8]) -> Option<u32> {
    let mut rest = value;
    while let [first, tail @ ..] = rest {
        if !is_c_space(*first) {
            break;
        }
        rest = tail;
    }
    let negative = match rest.first() {
        Some(b'-') => true,
        Some(b'+') => false,
        _ => false,
    };
    if matches!(rest.first(), Some(b'-' | b'+')) {
        rest = &rest[1..];
    }
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits != rest.len() {
        // No number at all, or a second conversion (`%c`) would succeed on trailing junk.
        return None;
    }
    // strtoul saturates at ULONG_MAX on overflow, whatever the sign, and negates otherwise.
    let magnitude = rest.iter().try_fold(0u64, |acc, digit| acc.checked_mul(10)?.checked_add(u64::from(digit - b'0')));
    let unsigned_long = match magnitude {
        None => u64::MAX,
        Some(n) if negative => n.wrapping_neg(),
        Some(n) => n,
    };
    // `%u` stores into an unsigned int: the conversion keeps the low 32 bits.
    Some(unsigned_long as u32)
}

/// C `isspace()` in the "C" locale.
fn is_c_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

#[cfg(test)]
mod tests {
    use super::parse_postfix_uint;

    fn as_int(text: &str) -> Option<i32> {
        parse_postfix_uint(text.as_bytes()).map(|n| n as i32)
    }

    #[test]
    fn accepts_what_glibc_accepts() {
        assert_eq!(as_int("2"), Some(2));
        assert_eq!(as_int(" 5"), Some(5));
        assert_eq!(as_int("+5"), Some(5));
        assert_eq!(as_int("\t\n 7"), Some(7));
        assert_eq!(as_int("-5"), Some(-5));
        assert_eq!(as_int("0"), Some(0));
    }

    #[test]
    fn wraps_like_postfix_3_7() {
        // Values observed on the live Debian 3.7.11 daemon (spec §1.3).
        assert_eq!(as_int("4294967295"), Some(-1));
        assert_eq!(as_int("2147483648"), Some(i32::MIN));
        assert_eq!(as_int("99999999999"), Some(1_215_752_191));
        assert_eq!(as_int("4294967296"), Some(0));
        assert_eq!(as_int("4294967297"), Some(1));
        assert_eq!(as_int("-4294967295"), Some(1));
        assert_eq!(as_int("18446744073709551615"), Some(-1));
        assert_eq!(as_int("99999999999999999999999"), Some(-1));
        assert_eq!(as_int("-99999999999999999999999"), Some(-1));
    }

    #[test]
    fn rejects_what_glibc_rejects() {
        for bad in ["", "abc", "5 ", "0x10", "+", "-", " ", "5\n", "1.5", "++1"] {
            assert_eq!(as_int(bad), None, "{bad:?} must be malformed");
        }
    }
}
