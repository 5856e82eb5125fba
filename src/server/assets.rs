//! The demo pages and their shared files, embedded at build time from
//! `assets/` (see `build.rs`).

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The bytes and content type of the embedded file `name`.
pub fn get(name: &str) -> Option<(&'static [u8], &'static str)> {
    let (_, bytes) = ASSETS.iter().find(|(n, _)| *n == name)?;
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
