//! The demo pages and their shared files, embedded at build time from
//! `assets/` (see `build.rs`).

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

use std::borrow::Cow;
use std::path::Path;

/// The bytes and content type of file `name`: from `dir` when given (only
/// names that are also embedded, so no path outside it can be asked for),
/// else the embedded copy.
pub fn get(name: &str, dir: Option<&Path>) -> Option<(Cow<'static, [u8]>, &'static str)> {
    let (_, bytes) = ASSETS.iter().find(|(n, _)| *n == name)?;
    let bytes = match dir.and_then(|d| std::fs::read(d.join(name)).ok()) {
        Some(fresh) => Cow::Owned(fresh),
        None => Cow::Borrowed(*bytes),
    };
    Some((bytes, content_type(name)))
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}
