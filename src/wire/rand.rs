//! Unpredictable bytes from the operating system.
//!
//! RFC 6455 §5.3: "The masking key MUST be derived from a strong source of
//! entropy", fresh for every frame, so that a script choosing payloads
//! cannot predict the bytes an intermediary sees (§10.3, cache poisoning).
//! §4.1 asks the same of the handshake nonce. The kernel's generator is the
//! strong source every platform has; we ask it through `getrandom(2)` and,
//! where that call is missing (old kernels, seccomp filters), read
//! `/dev/urandom`.
//!
//! This is the one place in `wire/` that makes a system call: it reads no
//! clock and holds no state, so codecs that take keys as arguments stay
//! pure, and callers that must be deterministic (tests) pass their own.

use std::io::Read;

/// Fills `buf` with bytes from the kernel's cryptographic generator.
///
/// Never fails in practice: `getrandom(2)` without flags blocks only until
/// the generator is seeded at boot. Should both sources be unavailable —
/// a broken sandbox — this panics rather than hand out guessable keys.
pub fn fill(buf: &mut [u8]) {
    let mut done = 0;
    while done < buf.len() {
        let rest = &mut buf[done..];
        // SAFETY: the pointer and length describe `rest`, which is valid
        // for writes of that many bytes for the duration of the call.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n > 0 {
            done += n as usize;
            continue;
        }
        match std::io::Error::last_os_error().raw_os_error() {
            // Interrupted by a signal before any byte: ask again.
            Some(libc::EINTR) => continue,
            // ENOSYS (kernel before 3.17) or EPERM (filtered): the device.
            _ => return fill_from_device(rest),
        }
    }
}

fn fill_from_device(buf: &mut [u8]) {
    let got = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(buf));
    if let Err(e) = got {
        panic!("no source of randomness (getrandom and /dev/urandom failed: {e})");
    }
}

/// `N` bytes from [`fill`].
pub fn bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    fill(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_every_byte() {
        // 4096 bytes all zero after a fill would be a broken generator
        // (probability 2^-32768), as would two equal fills.
        let mut a = vec![0u8; 4096];
        let mut b = vec![0u8; 4096];
        fill(&mut a);
        fill(&mut b);
        assert!(a.iter().any(|&x| x != 0));
        assert_ne!(a, b);
        // Every byte value turns up in 4096 bytes (a check that no byte
        // position was left unwritten or stuck).
        let mut seen = [false; 256];
        for &x in &a {
            seen[x as usize] = true;
        }
        assert!(seen.iter().filter(|&&s| s).count() > 200);
    }

    #[test]
    fn device_fallback_works() {
        let mut a = [0u8; 64];
        fill_from_device(&mut a);
        assert!(a.iter().any(|&x| x != 0));
        fill(&mut []);
        assert_ne!(bytes::<16>(), bytes::<16>());
    }
}
