//! Properties of the frame-header codec (`wire/ws_frame.rs`).
//!
//! 1. Parse → emit is byte-exact: a header we accept has exactly one
//!    spelling (non-minimal lengths are refused), `header_len` is what was
//!    consumed, and each shorter prefix is "need more", never an error.
//! 2. An error does not depend on bytes after the header: appending more
//!    input gives the same error.
//! 3. Emit → parse: a header built from the input's bytes survives the
//!    round trip, and `server_header` / `write_frame` agree with `emit`:
//!    lengths add up.
#![allow(dead_code)]

use pushwire::wire::ws_frame::{server_header, write_frame, FrameHeader, Opcode, MAX_HEADER_LEN};

pub fn check(data: &[u8]) {
    parse_then_emit(data);
    emit_then_parse(data);
}

fn parse_then_emit(data: &[u8]) {
    match FrameHeader::parse(data) {
        Ok(Some((h, n))) => {
            assert!((2..=MAX_HEADER_LEN).contains(&n) && n <= data.len());
            assert_eq!(h.header_len(), n);
            assert!(h.rsv < 8);
            assert_eq!(Opcode::from_u8(h.opcode.to_u8()), h.opcode);
            assert!(h.payload_len < 1 << 63);
            let mut out = Vec::new();
            h.emit(&mut out);
            assert_eq!(out, &data[..n], "emit must give back the bytes parsed");
            for cut in 0..n {
                assert_eq!(FrameHeader::parse(&data[..cut]), Ok(None), "prefix {cut}");
            }
        }
        Ok(None) => {
            assert!(data.len() < MAX_HEADER_LEN);
        }
        Err(e) => {
            assert_eq!(e.close_code(), 1002);
            let mut more = data.to_vec();
            more.extend_from_slice(&[0xAB; MAX_HEADER_LEN]);
            assert_eq!(FrameHeader::parse(&more), Err(e));
        }
    }
}

fn emit_then_parse(data: &[u8]) {
    let [b0, m, l0, l1, l2, l3, l4, l5, l6, l7, ..] = *data else {
        return;
    };
    // Spread the length over the three encodings.
    let raw = u64::from_le_bytes([l0, l1, l2, l3, l4, l5, l6, l7]);
    let payload_len = match l0 % 3 {
        0 => raw % 126,
        1 => raw % 0x1_0000,
        _ => raw >> 1,
    };
    let h = FrameHeader {
        fin: b0 & 0x80 != 0,
        rsv: (b0 >> 4) & 7,
        opcode: Opcode::from_u8(b0),
        mask: (m & 1 == 1).then_some([m, l1, l2, l3]),
        payload_len,
    };
    let mut out = Vec::new();
    h.emit(&mut out);
    assert_eq!(out.len(), h.header_len());
    assert_eq!(FrameHeader::parse(&out), Ok(Some((h, out.len()))));

    // The server's own header: the same bytes, unmasked, RSV clear.
    let len = (payload_len as usize) & 0xFFF_FFFF;
    let (sh, n) = server_header(h.fin, h.opcode, len);
    let unmasked = FrameHeader {
        rsv: 0,
        mask: None,
        payload_len: len as u64,
        ..h
    };
    let mut want = Vec::new();
    unmasked.emit(&mut want);
    assert_eq!(&sh[..n], &want[..]);

    // A whole frame: header + payload, and it parses back to both.
    let payload = &data[..data.len().min(300)];
    let mut frame = Vec::new();
    write_frame(&mut frame, h.fin, h.opcode, payload);
    let (back, hn) = FrameHeader::parse(&frame).unwrap().unwrap();
    assert_eq!(hn + payload.len(), frame.len());
    assert_eq!(back.payload_len as usize, payload.len());
    assert_eq!(&frame[hn..], payload);
}
