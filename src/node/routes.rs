//! The route table: which path means what, and which methods it takes.
//!
//! To add an endpoint, add a [`Route`] variant, a line in [`route`], and
//! its handler in `app.rs`. Unknown path: 404. Known path, wrong method:
//! 405 with `Allow` (RFC 9110 §15.5.6: the origin server MUST generate an
//! Allow header field in a 405 response).

use crate::wire::http1::Method;

/// A resolved request path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route<'a> {
    Healthz,
    /// An embedded page or asset, by name.
    Page(&'static str),
    Asset(&'a str),
    /// `/topics/{t}`: `POST` publishes, `GET` is its stats, `DELETE`
    /// drops its history.
    Topic(&'a str),
    /// `GET /topics`: the list, with presence.
    Topics,
    /// `GET /topics/{t}/sse`
    Sse(&'a str),
    /// `GET /topics/{t}/stream` (NDJSON)
    Stream(&'a str),
    /// `GET /sse?topic=…`, `/stream`, `/poll`, `/messages`, `/ws`: many
    /// topics on one connection.
    MultiSse,
    MultiStream,
    MultiPoll,
    MultiMessages,
    MultiWs,
    /// `GET /topics/{t}/poll`
    Poll(&'a str),
    /// `GET /topics/{t}/messages`
    Messages(&'a str),
    /// `GET /topics/{t}/ws`
    TopicWs(&'a str),
    /// `GET /echo`
    Echo,
    /// `POST /debug/drop?topic=T` (only with `--debug-endpoints`)
    DebugDrop,
    /// `GET /stats`
    Stats,
    /// `GET /metrics`: Prometheus text exposition format 0.0.4.
    Metrics,
    /// `GET /socket.io.min.js`: the file `--socketio-client-js` names.
    SocketIoClientJs,
}

/// Why a request matched no route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Miss {
    NotFound,
    /// The path exists; these are the methods it allows.
    MethodNotAllowed(&'static str),
    /// `OPTIONS` on a known path: answered 204 with `Allow` (and CORS
    /// headers when configured).
    Options(&'static str),
}

const GET: &str = "GET, HEAD, OPTIONS";
const TOPIC: &str = "GET, HEAD, POST, DELETE, OPTIONS";
const POST: &str = "POST, OPTIONS";

/// The demo pages, by path.
const PAGES: &[(&str, &str)] = &[
    ("/", "index.html"),
    ("/demo/chat", "chat.html"),
    ("/demo/ticker", "ticker.html"),
    ("/demo/notifications", "notifications.html"),
    ("/demo/dashboard", "dashboard.html"),
    ("/demo/lab", "lab.html"),
    ("/demo/webrtc", "webrtc.html"),
    ("/demo/multi", "multi.html"),
    ("/demo/socketio", "socketio.html"),
];

/// Resolves `path` for `method`.
pub fn route(method: Method, path: &str, debug_endpoints: bool) -> Result<Route<'_>, Miss> {
    // RFC 9110 §9.3.7: `OPTIONS *` asks about the server as a whole.
    if path == "*" && method == Method::Options {
        return Err(Miss::Options("GET, HEAD, POST, OPTIONS"));
    }
    let (route, allow) = resolve(path, debug_endpoints).ok_or(Miss::NotFound)?;
    let allowed = match method {
        Method::Options => return Err(Miss::Options(allow)),
        Method::Head => allow.contains("HEAD"),
        // Split bytes with a plain loop, not a string searcher: this runs
        // for every request, on a list of a few short names.
        m => allow
            .as_bytes()
            .split(|&b| b == b',')
            .any(|a| a.trim_ascii_start() == m.as_str().as_bytes()),
    };
    if allowed {
        Ok(route)
    } else {
        Err(Miss::MethodNotAllowed(allow))
    }
}

fn resolve(path: &str, debug_endpoints: bool) -> Option<(Route<'_>, &'static str)> {
    if let Some(&(_, page)) = PAGES.iter().find(|(p, _)| *p == path) {
        return Some((Route::Page(page), GET));
    }
    match path {
        "/healthz" => return Some((Route::Healthz, GET)),
        // WebSocket paths: RFC 9110 §9.1 (GET and HEAD MUST be supported);
        // a HEAD is the head of a GET's answer without an upgrade (426).
        "/echo" => return Some((Route::Echo, GET)),
        "/stats" => return Some((Route::Stats, GET)),
        "/metrics" => return Some((Route::Metrics, GET)),
        "/topics" => return Some((Route::Topics, GET)),
        "/sse" => return Some((Route::MultiSse, GET)),
        "/stream" => return Some((Route::MultiStream, GET)),
        "/poll" => return Some((Route::MultiPoll, GET)),
        "/messages" => return Some((Route::MultiMessages, GET)),
        "/ws" => return Some((Route::MultiWs, GET)),
        "/socket.io.min.js" => return Some((Route::SocketIoClientJs, GET)),
        "/debug/drop" if debug_endpoints => return Some((Route::DebugDrop, POST)),
        _ => {}
    }
    if let Some(name) = path.strip_prefix("/assets/") {
        return Some((Route::Asset(name), GET));
    }
    // /topics/{t} and /topics/{t}/{transport}. The topic is matched as
    // sent; its validity (charset, length) is the handler's 400, not a 404,
    // so a client learns its topic name is wrong.
    let rest = path.strip_prefix("/topics/")?;
    let (topic, transport) = match rest.split_once('/') {
        Some((t, tr)) => (t, Some(tr)),
        None => (rest, None),
    };
    if topic.is_empty() {
        return None;
    }
    Some(match transport {
        None => (Route::Topic(topic), TOPIC),
        Some("sse") => (Route::Sse(topic), GET),
        Some("stream") => (Route::Stream(topic), GET),
        Some("poll") => (Route::Poll(topic), GET),
        Some("messages") => (Route::Messages(topic), GET),
        Some("ws") => (Route::TopicWs(topic), GET),
        Some(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        assert_eq!(route(Method::Get, "/healthz", false), Ok(Route::Healthz));
        assert_eq!(route(Method::Head, "/healthz", false), Ok(Route::Healthz));
        assert_eq!(
            route(Method::Get, "/", false),
            Ok(Route::Page("index.html"))
        );
        assert_eq!(
            route(Method::Post, "/topics/a.b", false),
            Ok(Route::Topic("a.b"))
        );
        assert_eq!(
            route(Method::Delete, "/topics/a.b", false),
            Ok(Route::Topic("a.b"))
        );
        assert_eq!(route(Method::Get, "/topics", false), Ok(Route::Topics));
        assert_eq!(route(Method::Get, "/sse", false), Ok(Route::MultiSse));
        assert_eq!(route(Method::Get, "/ws", false), Ok(Route::MultiWs));
        assert_eq!(
            route(Method::Get, "/topics/a/sse", false),
            Ok(Route::Sse("a"))
        );
        assert_eq!(
            route(Method::Put, "/topics/a", false),
            Err(Miss::MethodNotAllowed(TOPIC))
        );
        assert_eq!(
            route(Method::Post, "/topics/a/sse", false),
            Err(Miss::MethodNotAllowed(GET))
        );
        assert_eq!(
            route(Method::Options, "/topics/a/poll", false),
            Err(Miss::Options(GET))
        );
        assert_eq!(route(Method::Get, "/nope", false), Err(Miss::NotFound));
        assert_eq!(
            route(Method::Options, "*", false),
            Err(Miss::Options("GET, HEAD, POST, OPTIONS"))
        );
        assert_eq!(
            route(Method::Get, "/topics/a/x", false),
            Err(Miss::NotFound)
        );
        assert_eq!(route(Method::Get, "/topics/", false), Err(Miss::NotFound));
        assert_eq!(
            route(Method::Post, "/debug/drop", false),
            Err(Miss::NotFound)
        );
        assert_eq!(
            route(Method::Post, "/debug/drop", true),
            Ok(Route::DebugDrop)
        );
        assert_eq!(route(Method::Head, "/echo", false), Ok(Route::Echo));
        assert_eq!(
            route(Method::Post, "/echo", false),
            Err(Miss::MethodNotAllowed(GET))
        );
    }

    #[test]
    fn socketio_demo_and_its_client_bundle() {
        assert_eq!(
            route(Method::Get, "/demo/socketio", false),
            Ok(Route::Page("socketio.html"))
        );
        assert_eq!(
            route(Method::Get, "/socket.io.min.js", false),
            Ok(Route::SocketIoClientJs)
        );
        assert_eq!(
            route(Method::Post, "/socket.io.min.js", false),
            Err(Miss::MethodNotAllowed(GET))
        );
    }
}
