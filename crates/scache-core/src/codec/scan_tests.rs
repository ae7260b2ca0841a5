//! attr_scan0 behaviour observed on Postfix 3.7.11 (spec §1.4, §2.3, §11), one case per test.

use super::*;

const REQUEST: &[Wish] = &[Wish::Str("request")];
const SAVE_ENDP: &[Wish] = &[Wish::Int("ttl"), Wish::Str("label"), Wish::Str("property")];

fn input(bytes: &[u8]) -> AttrInput {
    let mut input = AttrInput::new(1 << 16);
    input.push(bytes).unwrap();
    input
}

fn done<'a>(scan: Scan<'a>) -> Scanned<'a> {
    match scan {
        Scan::Done(scanned) => scanned,
        Scan::NeedMore => panic!("scan wanted more input"),
    }
}

fn unexpected(name: &str, expecting: &'static str) -> ScanWarning {
    ScanWarning::UnexpectedAttribute { name: name.as_bytes().to_vec(), expecting }
}

#[test]
fn request_name_is_read_without_the_terminator() {
    let input = input(b"request\0find_endp\0label\0x\0\0");
    let scanned = done(scan_strict(&input, REQUEST, true, None));
    assert_eq!((scanned.count, scanned.consumed, scanned.stop), (1, 2, Stop::BeforeTerminator));
    assert_eq!(scanned.str(0), Some(&b"find_endp"[..]));
    assert!(scanned.warnings.is_empty());
}

#[test]
fn garbage_first_attribute_stops_before_its_value() {
    let input = input(b"foo\0bar\0\0");
    let scanned = done(scan_strict(&input, REQUEST, true, None));
    assert_eq!((scanned.count, scanned.consumed, scanned.stop), (0, 1, Stop::UnexpectedName));
    assert_eq!(scanned.warnings, vec![unexpected("foo", "request")]);
}

#[test]
fn lone_terminator_is_a_missing_request() {
    let input = input(b"\0");
    let scanned = done(scan_strict(&input, REQUEST, true, None));
    assert_eq!((scanned.count, scanned.consumed, scanned.stop), (0, 1, Stop::Terminator));
    assert_eq!(scanned.warnings, vec![ScanWarning::MissingAttribute { name: "request" }]);
}

#[test]
fn full_list_consumes_its_terminator() {
    let input = input(b"ttl\x002\0label\0E\0property\0P\0\0");
    let scanned = done(scan_strict(&input, SAVE_ENDP, false, None));
    assert_eq!((scanned.count, scanned.consumed, scanned.stop), (3, 7, Stop::Terminator));
    assert_eq!(scanned.int(0), Some(2));
    assert_eq!(scanned.str(1), Some(&b"E"[..]));
    assert_eq!(scanned.str(2), Some(&b"P"[..]));
}

#[test]
fn short_list_warns_missing_attribute() {
    let input = input(b"ttl\x002\0label\0E\0\0");
    let scanned = done(scan_strict(&input, SAVE_ENDP, false, None));
    assert_eq!((scanned.count, scanned.consumed, scanned.stop), (2, 5, Stop::Terminator));
    assert_eq!(scanned.warnings, vec![ScanWarning::MissingAttribute { name: "property" }]);
}

#[test]
fn extra_attribute_before_a_wish_aborts() {
    let input = input(b"ttl\x002\0label\0E\0x\0y\0property\0P\0\0");
    let scanned = done(scan_strict(&input, SAVE_ENDP, false, None));
    assert_eq!((scanned.count, scanned.consumed, scanned.stop), (2, 5, Stop::UnexpectedName));
    assert_eq!(scanned.warnings, vec![unexpected("x", "property")]);
}

#[test]
fn extra_attribute_after_the_last_wish_still_counts() {
    let input = input(b"ttl\x002\0label\0E\0property\0P\0x\0y\0\0");
    let scanned = done(scan_strict(&input, SAVE_ENDP, false, None));
    assert_eq!((scanned.count, scanned.consumed, scanned.stop), (3, 7, Stop::UnexpectedName));
    assert_eq!(scanned.warnings, vec![unexpected("x", "(list terminator)")]);
}

#[test]
fn malformed_number_fails_the_scan() {
    let input = input(b"ttl\x005 \0label\0E\0property\0P\0\0");
    let scanned = done(scan_strict(&input, SAVE_ENDP, false, None));
    assert_eq!((scanned.count, scanned.consumed, scanned.stop), (-1, 2, Stop::Malformed));
    assert_eq!(scanned.warnings, vec![ScanWarning::MalformedNumber { value: b"5 ".to_vec() }]);
}

#[test]
fn malformed_number_is_quoted_to_100_bytes() {
    let mut bytes = b"ttl\0".to_vec();
    bytes.extend(std::iter::repeat_n(b'x', 300));
    bytes.extend(b"\0\0");
    let input = input(&bytes);
    let scanned = done(scan_strict(&input, SAVE_ENDP, false, None));
    assert_eq!(scanned.warnings, vec![ScanWarning::MalformedNumber { value: vec![b'x'; 100] }]);
}

#[test]
fn waits_for_more_until_the_input_ends() {
    let partial = input(b"ttl\x002\0lab");
    assert_eq!(scan_strict(&partial, SAVE_ENDP, false, None), Scan::NeedMore);
    let scanned = done(scan_strict(&partial, SAVE_ENDP, false, Some(InputEnd::Eof)));
    assert_eq!((scanned.count, scanned.stop), (-1, Stop::EndOfInput));
    assert_eq!(scanned.warnings, vec![ScanWarning::TruncatedInput { context: Context::Name }]);

    let between = input(b"ttl\x002\0label\0");
    let scanned = done(scan_strict(&between, SAVE_ENDP, false, Some(InputEnd::Timeout)));
    assert_eq!(scanned.warnings, vec![ScanWarning::EndOfInput { end: InputEnd::Timeout, context: Context::Value }]);
}

#[test]
fn end_at_the_first_byte_is_silent() {
    let empty = input(b"");
    assert_eq!(scan_strict(&empty, SAVE_ENDP, false, None), Scan::NeedMore);
    let scanned = done(scan_strict(&empty, SAVE_ENDP, false, Some(InputEnd::Eof)));
    assert_eq!((scanned.count, scanned.consumed, scanned.stop), (0, 0, Stop::EndOfInput));
    assert!(scanned.warnings.is_empty());
}
