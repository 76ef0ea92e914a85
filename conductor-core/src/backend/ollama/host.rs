//! Where the Ollama server is and how to authenticate to it: [`OllamaHost`] and [`Secret`].

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};
use url::Url;

/// Ollama's own default address.
pub const DEFAULT_HOST: &str = "127.0.0.1:11434";

/// The address of an Ollama server, parsed the way Ollama itself parses `OLLAMA_HOST`.
///
/// Accepted: `host`, `host:port`, `:port`, `[::1]:port`, `http://host[:port][/prefix]`,
/// `https://host[:port][/prefix]`. Without a scheme the port defaults to 11434; with `http://`
/// to 80 and with `https://` to 443, as in Ollama.
///
/// A user name and password before the host (`http://user:pass@host`, special characters
/// percent-encoded) are sent as HTTP basic auth. The password is never shown: `Display` (and so
/// every message, log line and `config show`) writes it as `***` (`http://user:***@host`), and
/// [`OllamaHost::url`] and [`OllamaHost::join`] leave the credentials out; only
/// [`OllamaHost::url_with_credentials`] gives them back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OllamaHost {
    /// The base URL, without credentials.
    url: Url,
    /// Kept apart from `url` so that no URL that is shown, logged or requested holds it.
    userinfo: Option<UserInfo>,
}

/// `user[:password]` as written, percent-encoding included.
#[derive(Debug, Clone, PartialEq, Eq)]
struct UserInfo {
    user: String,
    password: Option<Secret>,
}

impl OllamaHost {
    /// Parses an `OLLAMA_HOST` value; an empty string means the default.
    ///
    /// # Errors
    /// A sentence saying what is wrong and what is accepted (never quoting a password).
    pub fn parse(value: &str) -> Result<Self, String> {
        let value = value.trim();
        let (scheme, rest, default_port) = match value.split_once("://") {
            None => ("http", value, 11434),
            Some(("http", rest)) => ("http", rest, 80),
            Some(("https", rest)) => ("https", rest, 443),
            Some((other, _)) => {
                return Err(format!(
                    "unsupported scheme {other:?}: use http:// or https://"
                ));
            }
        };
        let authority_end = rest.find('/').unwrap_or(rest.len());
        let (userinfo, rest) = match rest[..authority_end].rfind('@') {
            Some(at) => (Some(UserInfo::parse(&rest[..at])?), &rest[at + 1..]),
            None => (None, rest),
        };
        let (hostport, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (host, port) = split_host_port(hostport)?;
        let host = if host.is_empty() { "127.0.0.1" } else { host };
        if host.parse::<IpAddr>().is_err()
            && !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
        {
            return Err(format!(
                "invalid host name {host:?}: use a name such as gpu-box.lan or an IP address"
            ));
        }
        let port = port.unwrap_or(default_port);
        let host_for_url = match host.parse::<IpAddr>() {
            Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
            _ => host.to_owned(),
        };
        let path = path.trim_end_matches('/');
        // A proxy prefix such as `/ollama`: plain segments only, so the address reads back the
        // same way it prints (the fuzzer found `.`/`..` and empty segments that did not).
        if !path.is_empty()
            && !path.split('/').all(|segment| {
                !segment.is_empty()
                    && segment != "."
                    && segment != ".."
                    && segment
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
            })
        {
            return Err(format!(
                "invalid path {path:?} after the host: use plain segments such as /ollama"
            ));
        }
        let text = if path.is_empty() {
            format!("{scheme}://{host_for_url}:{port}")
        } else {
            format!("{scheme}://{host_for_url}:{port}/{path}")
        };
        let url = Url::parse(&text).map_err(|err| format!("not a valid address ({err})"))?;
        if url.host_str().is_none_or(str::is_empty) {
            return Err("no host name".into());
        }
        Ok(Self { url, userinfo })
    }

    /// The base URL, without user name or password.
    #[must_use]
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The URL of an API path such as `/api/chat`, under any path prefix of the host, without
    /// user name or password (those travel as a header).
    #[must_use]
    pub fn join(&self, path: &str) -> String {
        let base = self.url.as_str().trim_end_matches('/');
        format!("{base}{path}")
    }

    /// The address with its password in clear, for handing it on to another program (e.g. a
    /// child `conductor` process). Never show or log it; use `Display` for that.
    #[must_use]
    pub fn url_with_credentials(&self) -> String {
        self.write_with(
            self.userinfo
                .as_ref()
                .and_then(|u| u.password.as_ref())
                .map(Secret::expose),
        )
    }

    /// True when the address carries a user name (and perhaps a password) for basic auth.
    #[must_use]
    pub fn has_credentials(&self) -> bool {
        self.userinfo.is_some()
    }

    /// The user name and password for HTTP basic auth, percent-decoded.
    pub(crate) fn basic_auth(&self) -> Option<(String, Option<String>)> {
        self.userinfo.as_ref().map(|info| {
            (
                percent_decode(&info.user),
                info.password.as_ref().map(|p| percent_decode(p.expose())),
            )
        })
    }

    /// The address as text, the password (if any) written as `password`.
    fn write_with(&self, password: Option<&str>) -> String {
        let base = self.url.as_str().trim_end_matches('/');
        let Some(info) = &self.userinfo else {
            return base.to_owned();
        };
        let (scheme, rest) = base.split_once("://").unwrap_or(("http", base));
        match (info.password.is_some(), password) {
            (true, Some(password)) => format!("{scheme}://{}:{password}@{rest}", info.user),
            _ => format!("{scheme}://{}@{rest}", info.user),
        }
    }

    /// True for a server on this machine (loopback, `localhost`, or the unspecified address),
    /// whose GPUs the local NVML can see.
    #[must_use]
    pub fn is_local(&self) -> bool {
        match self.url.host() {
            Some(url::Host::Domain(name)) => {
                name.eq_ignore_ascii_case("localhost") || name.ends_with(".localhost")
            }
            Some(url::Host::Ipv4(ip)) => ip.is_loopback() || ip.is_unspecified(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback() || ip.is_unspecified(),
            None => false,
        }
    }
}

impl UserInfo {
    /// `user[:password]`: RFC 3986 userinfo characters only, so that it prints back as it was
    /// written. The error never quotes it: it may hold a password.
    fn parse(text: &str) -> Result<Self, String> {
        let (user, password) = match text.split_once(':') {
            Some((user, password)) => (user, Some(password)),
            None => (text, None),
        };
        if user.is_empty() && password.is_none() {
            return Err(
                "nothing before '@': write user:password@host, or leave out the '@'".into(),
            );
        }
        let valid = |part: &str| {
            let bytes = part.as_bytes();
            bytes.iter().enumerate().all(|(i, b)| {
                b.is_ascii_alphanumeric()
                    || b"-._~!$&'()*+,;=:".contains(b)
                    || (*b == b'%'
                        && bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                        && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
            })
        };
        if !valid(user) || !password.is_none_or(valid) {
            return Err(
                "a character in the user name or password must be percent-encoded \
                 (e.g. '@' as %40, '/' as %2F, a space as %20)"
                    .into(),
            );
        }
        Ok(Self {
            user: user.to_owned(),
            password: password.map(Secret::new),
        })
    }
}

/// Decodes `%XX` escapes; anything else is kept as it is.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'?'));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An address as a person typed it, with any password replaced by `***`: for quoting a value
/// that did not parse.
#[must_use]
pub fn redact_address(text: &str) -> String {
    let start = text.find("://").map_or(0, |i| i + 3);
    let authority_end = text[start..].find('/').map_or(text.len(), |i| start + i);
    let Some(at) = text[start..authority_end].rfind('@').map(|i| start + i) else {
        return text.to_owned();
    };
    match text[start..at].split_once(':') {
        Some((user, _)) => format!("{}{user}:***{}", &text[..start], &text[at..]),
        None => text.to_owned(),
    }
}

impl Default for OllamaHost {
    fn default() -> Self {
        Self {
            // A literal that always parses; kept as a constant URL to avoid a fallible default.
            url: Url::from_str("http://127.0.0.1:11434").unwrap_or_else(|_| unreachable_url()),
            userinfo: None,
        }
    }
}

#[allow(clippy::panic)] // the literal above is a valid URL; this is never reached
fn unreachable_url() -> Url {
    panic!("the default Ollama URL literal is valid")
}

impl fmt::Display for OllamaHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.write_with(Some("***")))
    }
}

impl FromStr for OllamaHost {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl<'de> Deserialize<'de> for OllamaHost {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Go's `net.SplitHostPort`, tolerant of a missing port (then `None`).
fn split_host_port(hostport: &str) -> Result<(&str, Option<u16>), String> {
    let parse_port = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| format!("invalid port {p:?}: use a number from 0 to 65535"))
    };
    if let Some(rest) = hostport.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("missing ']' in {hostport:?}"))?;
        return match after.strip_prefix(':') {
            Some(port) => Ok((host, Some(parse_port(port)?))),
            None if after.is_empty() => Ok((host, None)),
            None => Err(format!("unexpected {after:?} after the IPv6 address")),
        };
    }
    match hostport.matches(':').count() {
        0 => Ok((hostport, None)),
        1 => {
            let (host, port) = hostport.split_once(':').unwrap_or((hostport, ""));
            Ok((host, Some(parse_port(port)?)))
        }
        // A bare IPv6 address without brackets and without a port.
        _ if hostport.parse::<IpAddr>().is_ok() => Ok((hostport, None)),
        _ => Err(format!("cannot read {hostport:?} as host:port")),
    }
}

/// A secret (an API token). Its `Debug` never shows it and it has no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    #[must_use]
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that must send it.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(\"***\")")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(s: &str) -> String {
        OllamaHost::parse(s)
            .map(|h| h.to_string())
            .unwrap_or_else(|e| format!("ERR {e}"))
    }

    #[test]
    fn ollama_host_accepts_every_form_ollama_accepts() {
        assert_eq!(host(""), "http://127.0.0.1:11434");
        assert_eq!(host("example.com"), "http://example.com:11434");
        assert_eq!(host("example.com:1234"), "http://example.com:1234");
        assert_eq!(host(":1234"), "http://127.0.0.1:1234");
        assert_eq!(host("0.0.0.0"), "http://0.0.0.0:11434");
        assert_eq!(host("[::1]:1234"), "http://[::1]:1234");
        assert_eq!(host("::1"), "http://[::1]:11434");
        assert_eq!(host("http://example.com"), "http://example.com");
        assert_eq!(host("https://example.com"), "https://example.com");
        assert_eq!(
            host("https://example.com:8443/ollama/"),
            "https://example.com:8443/ollama"
        );
        assert_eq!(host("  10.0.0.2:11434  "), "http://10.0.0.2:11434");
    }

    #[test]
    fn ollama_host_refuses_garbage_with_a_reason() {
        assert!(host("ftp://x").starts_with("ERR unsupported scheme"));
        assert!(host("x:99999").starts_with("ERR invalid port"));
        assert!(host("x:abc").starts_with("ERR invalid port"));
        assert!(host("http://us er:pw@x").starts_with("ERR a character"));
        assert!(host("http://@x").starts_with("ERR nothing before"));
        assert!(host("x:1//a").starts_with("ERR invalid path"));
        assert!(host("616)/x").starts_with("ERR invalid host name"));
        assert!(host("http://a b:1").starts_with("ERR invalid host name"));
        assert!(host("x:1/a/../b").starts_with("ERR invalid path"));
        assert!(host("x:1/caf\u{e9}").starts_with("ERR invalid path"));
        assert_eq!(host("x:1/ollama/v1/"), "http://x:1/ollama/v1");
    }

    #[test]
    fn credentials_in_the_address_are_kept_apart_and_never_shown() {
        let h = OllamaHost::parse("https://me:s3cr%40t@proxy.example:8443/ollama").unwrap();
        assert_eq!(h.to_string(), "https://me:***@proxy.example:8443/ollama");
        assert_eq!(
            h.url_with_credentials(),
            "https://me:s3cr%40t@proxy.example:8443/ollama"
        );
        assert_eq!(h.url().as_str(), "https://proxy.example:8443/ollama");
        assert_eq!(
            h.join("/api/ps"),
            "https://proxy.example:8443/ollama/api/ps"
        );
        assert_eq!(
            h.basic_auth(),
            Some(("me".to_owned(), Some("s3cr@t".to_owned())))
        );
        assert!(!format!("{h:?}").contains("s3cr"));
        // What is shown reads back to the same place (the password then being `***`).
        let again = OllamaHost::parse(&h.to_string()).unwrap();
        assert_eq!(again.to_string(), h.to_string());
        assert_eq!(again.join("/api/chat"), h.join("/api/chat"));
        assert_eq!(host("user@x:1"), "http://user@x:1");
        assert_eq!(host("http://:pw@x"), "http://:***@x");
        assert!(OllamaHost::parse("x:1").is_ok_and(|h| !h.has_credentials()));
    }

    #[test]
    fn a_bad_address_is_quoted_without_its_password() {
        assert_eq!(
            redact_address("http://me:hunter2@bad host:1/x@y"),
            "http://me:***@bad host:1/x@y"
        );
        assert_eq!(redact_address("me@host"), "me@host");
        assert_eq!(redact_address("host:1/a@b"), "host:1/a@b");
    }

    #[test]
    fn join_keeps_a_path_prefix() {
        let h = OllamaHost::parse("https://proxy.example/ollama").unwrap();
        assert_eq!(h.join("/api/chat"), "https://proxy.example/ollama/api/chat");
        let h = OllamaHost::parse(":11434").unwrap();
        assert_eq!(h.join("/api/ps"), "http://127.0.0.1:11434/api/ps");
    }

    #[test]
    fn locality() {
        for local in ["", "localhost:1", "127.0.0.5", "[::1]:1", "0.0.0.0"] {
            assert!(OllamaHost::parse(local).unwrap().is_local(), "{local}");
        }
        for remote in ["10.0.0.2", "gpu-box.lan", "https://example.com"] {
            assert!(!OllamaHost::parse(remote).unwrap().is_local(), "{remote}");
        }
    }
}
