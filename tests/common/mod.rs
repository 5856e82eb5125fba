//! Shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// Runs `check` on every file of `fuzz/corpus/<target>/` and returns how
/// many there were. Panics (failing the test) if there are none: a corpus
/// that silently went missing would make the test pass without testing.
pub fn replay_corpus(target: &str, check: fn(&[u8])) -> usize {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut n = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_file() {
            let data = std::fs::read(&path).unwrap();
            let result = std::panic::catch_unwind(|| check(&data));
            if result.is_err() {
                panic!("{target}: property failed on {}", path.display());
            }
            n += 1;
        }
    }
    assert!(n > 0, "corpus {} is empty", dir.display());
    n
}
