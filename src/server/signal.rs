//! SIGINT/SIGTERM → a flag the loop checks.
//!
//! The handler only stores to an atomic (all a signal handler may safely
//! do). The loop notices at once because a signal interrupts `epoll_wait`
//! with EINTR, which is never restarted (signal(7)), whatever SA_RESTART
//! says.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;

extern "C" {
    fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
}

extern "C" fn on_signal(_: i32) {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// Installs the handler for SIGINT and SIGTERM.
pub fn install() {
    // SAFETY: `signal` is the C library's; the handler is async-signal-safe
    // (one atomic store) and lives for the whole program.
    unsafe {
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
    }
}

/// Whether a shutdown signal arrived.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}
