//! attr_print0: attribute lists as Postfix writes them.
//!
//! Each attribute is `name NUL value NUL`; the list ends with one more NUL. Integers are the C `int`
//! printed as unsigned decimal (`%u`), so -1 travels as `4294967295` (spec §1.2).

/// Appends attributes to `out`; `finish` writes the list terminator.
pub struct AttrWriter<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> AttrWriter<'a> {
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        Self { out }
    }

    pub fn str(self, name: &str, value: &[u8]) -> Self {
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.out.extend_from_slice(value);
        self.out.push(0);
        self
    }

    pub fn int(self, name: &str, value: i32) -> Self {
        let text = (value as u32).to_string();
        self.str(name, text.as_bytes())
    }

    pub fn finish(self) {
        self.out.push(0);
    }
}

#[cfg(test)]
mod tests {
    use super::AttrWriter;

    #[test]
    fn writes_postfix_bytes() {
        let mut out = Vec::new();
        AttrWriter::new(&mut out).int("status", 2).str("property", b"").finish();
        assert_eq!(out, b"status\x002\x00property\x00\x00\x00");
        out.clear();
        AttrWriter::new(&mut out).int("ttl", -1).finish();
        assert_eq!(out, b"ttl\x004294967295\x00\x00");
    }
}
