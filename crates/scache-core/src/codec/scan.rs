//! attr_scan0's reading rules, applied to strings already split by [`AttrInput`].
//!
//! Postfix reads an attribute list against a caller's "wish list" and, for scache, always in STRICT
//! mode: an attribute that is not the next wished one stops the scan with a warning, and a list that
//! ends early stops it with another (spec §1.4). Those warnings, which strings were consumed and where
//! the scan stopped are all observable, so this module reproduces them exactly, including the
//! oddities: an unexpected attribute's value is left unread, and an extra attribute after the last
//! wished one still counts as success.
//!
//! A scan is a pure function of the strings received so far. When it runs out of input before the
//! peer has finished, it answers [`Scan::NeedMore`] and is simply run again when more arrives, so a
//! request split at any byte boundary scans exactly like one received whole.

use super::input::AttrInput;
use super::number::parse_postfix_uint;

/// How many wished attributes the longest scache request has.
pub const MAX_WISHES: usize = 4;

/// One entry of a wish list: the attribute name and how its value is converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wish {
    Str(&'static str),
    Int(&'static str),
}

impl Wish {
    pub fn name(self) -> &'static str {
        match self {
            Wish::Str(name) | Wish::Int(name) => name,
        }
    }
}

/// A converted attribute value, borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Str(&'a [u8]),
    Int(u32),
}

/// Why the input ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputEnd {
    /// The peer closed (or shut down) its side.
    Eof,
    /// The peer sent nothing for `ipc_timeout`.
    Timeout,
}

/// What was being read when the input ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    Name,
    Value,
}

impl Context {
    /// Postfix's wording, as it appears in warnings.
    pub fn as_str(self) -> &'static str {
        match self {
            Context::Name => "input attribute name",
            Context::Value => "input attribute value",
        }
    }
}

/// The warnings attr_scan0 logs, in the order it logs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanWarning {
    /// Input ended where a string should have started.
    EndOfInput { end: InputEnd, context: Context },
    /// Input ended inside a string.
    TruncatedInput { context: Context },
    /// The list ended before a wished attribute.
    MissingAttribute { name: &'static str },
    /// An attribute other than the next wished one (`expecting` is `(list terminator)` at the end).
    UnexpectedAttribute { name: Vec<u8>, expecting: &'static str },
    /// An `int` value glibc's `%u` rejects; Postfix quotes at most 100 bytes of it.
    MalformedNumber { value: Vec<u8> },
}

/// Where the scan left the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The list terminator was consumed.
    Terminator,
    /// MORE mode: stopped after the last wished attribute, terminator unread.
    BeforeTerminator,
    /// An unexpected attribute name was consumed; its value was not.
    UnexpectedName,
    /// A value was consumed but could not be converted (result -1).
    Malformed,
    /// The input ended (result 0 at the first byte, else -1).
    EndOfInput,
}

/// The result of a completed scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scanned<'a> {
    /// attr_scan0's return value: wished attributes stored, or -1.
    pub count: i32,
    values: [Option<Value<'a>>; MAX_WISHES],
    /// Complete strings consumed from the input.
    pub consumed: usize,
    pub stop: Stop,
    pub warnings: Vec<ScanWarning>,
}

impl<'a> Scanned<'a> {
    /// The value stored for the `index`-th wish, if the scan got that far.
    pub fn value(&self, index: usize) -> Option<Value<'a>> {
        self.values.get(index).copied().flatten()
    }

    pub fn str(&self, index: usize) -> Option<&'a [u8]> {
        match self.value(index)? {
            Value::Str(bytes) => Some(bytes),
            Value::Int(_) => None,
        }
    }

    pub fn int(&self, index: usize) -> Option<u32> {
        match self.value(index)? {
            Value::Int(n) => Some(n),
            Value::Str(_) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scan<'a> {
    /// The peer may still send what the scan needs.
    NeedMore,
    Done(Scanned<'a>),
}

/// Scans one attribute list (or, with `more`, its first attributes) in STRICT mode.
/// `end` says whether the input has ended; `None` means more may arrive.
pub fn scan_strict<'a>(input: &'a AttrInput, wishes: &[Wish], more: bool, end: Option<InputEnd>) -> Scan<'a> {
    assert!(wishes.len() <= MAX_WISHES, "wish list longer than any scache request");
    let mut done =
        Scanned { count: 0, values: [None; MAX_WISHES], consumed: 0, stop: Stop::Terminator, warnings: Vec::new() };

    // attr_scan0 first peeks at one byte: input that ends right here is "no request", silently.
    if input.complete_strings() == 0 && input.partial_len() == 0 {
        return match end {
            None => Scan::NeedMore,
            Some(_) => Scan::Done(Scanned { stop: Stop::EndOfInput, ..done }),
        };
    }

    let mut next = 0;
    for wish in wishes.iter().copied().map(Some).chain([None]) {
        if wish.is_none() && more {
            done.stop = Stop::BeforeTerminator;
            break;
        }
        let Some(name) = input.string(next) else {
            return ended(input, end, Context::Name, done);
        };
        next += 1;
        done.consumed = next;
        let Some(wish) = wish else {
            if !name.is_empty() {
                done.warnings
                    .push(ScanWarning::UnexpectedAttribute { name: name.to_vec(), expecting: "(list terminator)" });
                done.stop = Stop::UnexpectedName;
            }
            break;
        };
        if name.is_empty() {
            done.warnings.push(ScanWarning::MissingAttribute { name: wish.name() });
            break;
        }
        if name != wish.name().as_bytes() {
            done.warnings.push(ScanWarning::UnexpectedAttribute { name: name.to_vec(), expecting: wish.name() });
            done.stop = Stop::UnexpectedName;
            break;
        }
        let Some(value) = input.string(next) else {
            return ended(input, end, Context::Value, done);
        };
        next += 1;
        done.consumed = next;
        let converted = match wish {
            Wish::Str(_) => Value::Str(value),
            Wish::Int(_) => match parse_postfix_uint(value) {
                Some(number) => Value::Int(number),
                None => {
                    let quoted = value[..value.len().min(100)].to_vec();
                    done.warnings.push(ScanWarning::MalformedNumber { value: quoted });
                    return Scan::Done(Scanned { count: -1, stop: Stop::Malformed, ..done });
                }
            },
        };
        done.values[done.count as usize] = Some(converted);
        done.count += 1;
    }
    Scan::Done(done)
}

/// The scan needs a string that has not arrived: wait, or fail the way attr_scan0 does at EOF.
fn ended<'a>(input: &AttrInput, end: Option<InputEnd>, context: Context, mut done: Scanned<'a>) -> Scan<'a> {
    let Some(end) = end else {
        return Scan::NeedMore;
    };
    done.warnings.push(if input.partial_len() > 0 {
        ScanWarning::TruncatedInput { context }
    } else {
        ScanWarning::EndOfInput { end, context }
    });
    Scan::Done(Scanned { count: -1, stop: Stop::EndOfInput, ..done })
}
