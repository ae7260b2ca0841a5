//! Every attribute list either side of the protocol writes, byte for byte (spec §1.8, §3).

use super::*;
use crate::codec::AttrWriter;

/// The 36-byte announcement a server writes on accept.
pub fn write_announcement(out: &mut Vec<u8>) {
    AttrWriter::new(out).str(ATTR_PROTOCOL, PROTOCOL_NAME.as_bytes()).finish();
}

/// `status=N`, the reply to save_endp, save_dest and unknown requests.
pub fn write_status(out: &mut Vec<u8>, status: Status) {
    AttrWriter::new(out).int(ATTR_STATUS, status as i32).finish();
}

/// `dummy=`, written before a descriptor is expected from the peer.
pub fn write_dummy(out: &mut Vec<u8>) {
    AttrWriter::new(out).str(ATTR_DUMMY, b"").finish();
}

/// The find_endp reply: status plus the endpoint property (empty unless found).
pub fn write_find_endp_reply(out: &mut Vec<u8>, status: Status, property: &[u8]) {
    AttrWriter::new(out).int(ATTR_STATUS, status as i32).str(ATTR_PROPERTY, property).finish();
}

/// The find_dest reply: status, destination property, endpoint property.
pub fn write_find_dest_reply(out: &mut Vec<u8>, status: Status, dest_property: &[u8], endp_property: &[u8]) {
    AttrWriter::new(out)
        .int(ATTR_STATUS, status as i32)
        .str(ATTR_PROPERTY, dest_property)
        .str(ATTR_PROPERTY, endp_property)
        .finish();
}

/// Our status reply: status plus the JSON snapshot.
pub fn write_status_reply(out: &mut Vec<u8>, status: Status, snapshot: &[u8]) {
    AttrWriter::new(out).int(ATTR_STATUS, status as i32).str(ATTR_SNAPSHOT, snapshot).finish();
}

/// `request=postfix_scache_status limit=N`.
pub fn write_status_request(out: &mut Vec<u8>, limit: i32) {
    AttrWriter::new(out).str(ATTR_REQUEST, STATUS_REQUEST.as_bytes()).int(ATTR_LIMIT, limit).finish();
}

/// `request=save_endp ttl label property`.
pub fn write_save_endp(out: &mut Vec<u8>, ttl: i32, endpoint: &[u8], property: &[u8]) {
    AttrWriter::new(out)
        .str(ATTR_REQUEST, Handler::SaveEndp.request_name().as_bytes())
        .int(ATTR_TTL, ttl)
        .str(ATTR_LABEL, endpoint)
        .str(ATTR_PROPERTY, property)
        .finish();
}

/// `request=find_endp label` or `request=find_dest label`.
pub fn write_find(out: &mut Vec<u8>, handler: Handler, label: &[u8]) {
    AttrWriter::new(out).str(ATTR_REQUEST, handler.request_name().as_bytes()).str(ATTR_LABEL, label).finish();
}

/// `request=save_dest ttl label(dest) property label(endpoint)`.
pub fn write_save_dest(out: &mut Vec<u8>, ttl: i32, dest: &[u8], dest_property: &[u8], endpoint: &[u8]) {
    AttrWriter::new(out)
        .str(ATTR_REQUEST, Handler::SaveDest.request_name().as_bytes())
        .int(ATTR_TTL, ttl)
        .str(ATTR_LABEL, dest)
        .str(ATTR_PROPERTY, dest_property)
        .str(ATTR_LABEL, endpoint)
        .finish();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(write: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut out = Vec::new();
        write(&mut out);
        out
    }

    // Hex dumps of spec §1.8, captured from Postfix 3.7.11.
    #[test]
    fn matches_the_captured_bytes() {
        assert_eq!(bytes(write_announcement), b"protocol\0connection_cache_protocol\0\0");
        assert_eq!(bytes(write_announcement).len(), 36);
        assert_eq!(bytes(write_dummy), b"dummy\0\0\0");
        assert_eq!(bytes(|o| write_status(o, Status::Ok)), b"status\x000\0\0");
        assert_eq!(bytes(|o| write_find_endp_reply(o, Status::Fail, b"")), b"status\x002\0property\0\0\0");
        assert_eq!(
            bytes(|o| write_find_dest_reply(o, Status::Fail, b"", b"")),
            b"status\x002\0property\0\0property\0\0\0"
        );
        let save = bytes(|o| write_save_endp(o, 2, b"smtp\n192.0.2.1\n25\n0\n", b"tls_level=0\nreuse_count=0\n"));
        assert_eq!(save.len(), 88);
        let dest = bytes(|o| {
            write_save_dest(o, 2, b"smtp\nexample.com\n", b"destination=example.com\n", b"smtp\n192.0.2.1\n25\n0\n")
        });
        assert_eq!(dest.len(), 110);
        assert_eq!(bytes(|o| write_find(o, Handler::FindDest, b"smtp\nexample.com\n")).len(), 43);
    }
}
