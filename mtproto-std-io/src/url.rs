//! The URL forms the drivers take (`ws://`, `wss://`, `http://`, `https://`): one parser for
//! [`WsUrl`](crate::ws::WsUrl) and [`HttpUrl`](crate::http::HttpUrl).
#![cfg_attr(not(any(feature = "websocket", feature = "http")), allow(dead_code))]

/// `scheme://host[:port][/path]`, taken apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Parts {
    /// The TLS scheme.
    pub secure: bool,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// Port (default 80, 443 with TLS).
    pub port: u16,
    /// Path and query (`default_path` when absent).
    pub path: String,
}

/// Whether `s` starts with `plain://` or `tls://` (any case).
pub(crate) fn has_scheme(s: &str, plain: &str, tls: &str) -> bool {
    [plain, tls]
        .iter()
        .any(|scheme| strip_prefix_ci(s, scheme).is_some_and(|r| r.starts_with("://")))
}

/// Parses `plain://host[:port][/path]` or `tls://…`; IPv6 hosts in brackets.
pub(crate) fn parse(s: &str, plain: &str, tls: &str, default_path: &str) -> Result<Parts, String> {
    let bad = |why: &str| format!("{s}: {why}");
    let after = |scheme: &str| strip_prefix_ci(s, scheme).and_then(|r| r.strip_prefix("://"));
    let (secure, rest) = if let Some(r) = after(tls) {
        (true, r)
    } else if let Some(r) = after(plain) {
        (false, r)
    } else {
        return Err(bad(&format!("not a {plain}:// or {tls}:// URL")));
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let path = match path {
        "" => default_path.to_string(),
        p if p.starts_with('?') => format!("{default_path}{p}"),
        p => p.to_string(),
    };
    if authority.contains('@') {
        return Err(bad("user info is not supported"));
    }
    let (host, port) = if let Some(r) = authority.strip_prefix('[') {
        let (h, after) = r.split_once(']').ok_or_else(|| bad("unclosed ["))?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(|| bad("junk after ]"))?),
        };
        (h, port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let port = match port {
        Some(p) => p.parse().map_err(|_| bad("bad port"))?,
        None if secure => 443,
        None => 80,
    };
    Ok(Parts {
        secure,
        host: host.to_string(),
        port,
        path,
    })
}

/// `host:port` (IPv6 in brackets).
pub(crate) fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| s.get(prefix.len()..))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_hosts_ports_and_paths() {
        let p = parse("WSS://[::1]:8443?x=1", "ws", "wss", "/apiws").unwrap();
        assert_eq!(
            (p.secure, p.host.as_str(), p.port, p.path.as_str()),
            (true, "::1", 8443, "/apiws?x=1")
        );
        assert_eq!(authority(&p.host, p.port), "[::1]:8443");
        let p = parse("http://example.org/apiw1", "http", "https", "/api").unwrap();
        assert_eq!((p.secure, p.port, p.path.as_str()), (false, 80, "/apiw1"));
        assert_eq!(
            parse("https://h", "http", "https", "/api").unwrap().port,
            443
        );
        for bad in [
            "ws://",
            "ws://u@h",
            "ws://[::1",
            "ws://[::1]x",
            "ws://h:x",
            "wsx://h",
        ] {
            assert!(parse(bad, "ws", "wss", "/apiws").is_err(), "{bad}");
        }
        assert!(has_scheme("HTTPS://h", "http", "https"));
        assert!(!has_scheme("httpx://h", "http", "https"));
        assert!(!has_scheme("127.0.0.1:80", "ws", "wss"));
    }
}
