//! Property of the word-at-a-time masking: it equals RFC 6455 §5.3's
//! byte-at-a-time definition for any buffer, key and offset, and masking a
//! payload in pieces (each at its own offset) equals masking it whole.
//!
//! Input: 4 bytes of key, 2 of offset, 2 of split points, then the buffer.
#![allow(dead_code)]

use pushwire::wire::ws_frame::{apply_mask, apply_mask_bytewise};

pub fn check(data: &[u8]) {
    let [k0, k1, k2, k3, o0, o1, s0, s1, buf @ ..] = data else {
        return;
    };
    let key = [*k0, *k1, *k2, *k3];
    let offset = usize::from(u16::from_le_bytes([*o0, *o1]));

    // Fast == reference.
    let mut fast = buf.to_vec();
    let mut slow = buf.to_vec();
    apply_mask(&mut fast, key, offset);
    apply_mask_bytewise(&mut slow, key, offset);
    assert_eq!(fast, slow, "key {key:02x?} offset {offset}");

    // In three pieces, each masked at its own position in the payload.
    let len = buf.len();
    let (mut a, mut b) = (usize::from(*s0) % (len + 1), usize::from(*s1) % (len + 1));
    if a > b {
        std::mem::swap(&mut a, &mut b);
    }
    let mut pieces = buf.to_vec();
    apply_mask(&mut pieces[..a], key, offset);
    apply_mask(&mut pieces[a..b], key, offset + a);
    apply_mask(&mut pieces[b..], key, offset + b);
    assert_eq!(pieces, fast, "split at {a} and {b}");

    // Masking is its own inverse.
    apply_mask(&mut fast, key, offset);
    assert_eq!(fast, buf);
}
