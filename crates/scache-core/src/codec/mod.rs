//! The attr0 wire format of Postfix's connection cache protocol (spec §1).
//!
//! [`AttrInput`] collects bytes and splits NUL-terminated strings, [`scan_strict`] applies
//! attr_scan0's rules to them, [`AttrWriter`] produces attr_print0 output. Nothing here performs I/O.

mod input;
mod number;
mod print;
mod scan;

pub use input::{AttrInput, StringTooLong};
pub use number::parse_postfix_uint;
pub use print::AttrWriter;
pub use scan::{Context, InputEnd, MAX_WISHES, Scan, ScanWarning, Scanned, Stop, Value, Wish, scan_strict};

#[cfg(test)]
mod scan_tests;
