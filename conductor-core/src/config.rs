//! Configuration: defaults, a TOML file, the environment and command-line flags.
//!
//! Each source is read into a [`ConfigLayer`] whose fields are all `Option`; layers are merged
//! with precedence flags > environment > file > defaults and validated once into [`Settings`].
//! Values are parsed into their types while a layer is read, so a bad value in the file is
//! reported with its file, line and column, and one from the environment names the variable.
//!
//! The file is `conductor.toml` in the platform config directory (`~/.config/conductor/` on
//! Linux), or the path in `CONDUCTOR_CONFIG`. Example:
//!
//! ```toml
//! model = "llama3.2:3b"
//! personality = "yollayah"
//! keep_alive = "30m"
//!
//! [options]          # runner options sent with every request
//! num_ctx = 8192
//!
//! [ollama]
//! host = "127.0.0.1:11434"
//! load_timeout = "5m"
//!
//! [gpu]
//! policy = "enforce"  # enforce | warn | fix | off
//! ```

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use url::Url;

use crate::backend::{KeepAlive, RetryPolicy, RunnerOptions, Timeouts};
use crate::error::{ConfigError, FileLocation, ReadProblem, read_small_file};
use crate::personality::PersonalityName;

/// The model used when nothing else says.
pub const DEFAULT_MODEL: &str = "llama3.2:3b";
/// The personality used when nothing else says.
pub const DEFAULT_PERSONALITY: &str = "yollayah";
/// Ollama's own default address.
pub const DEFAULT_HOST: &str = "127.0.0.1:11434";
/// The largest config file read (1 MiB). A `conductor.toml` is a few hundred bytes; a larger
/// file is not one, and reading it whole is not worth the memory.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// The environment variables conductor reads, with the setting each one feeds.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("OLLAMA_HOST", "ollama.host"),
    ("CONDUCTOR_OLLAMA_TOKEN", "ollama.token"),
    ("CONDUCTOR_MODEL", "model"),
    ("CONDUCTOR_PERSONALITY", "personality"),
    ("CONDUCTOR_GPU_POLICY", "gpu.policy"),
];

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

/// What to do when the model is not fully on the GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GpuPolicy {
    /// Refuse to generate unless the model is fully resident (the default).
    #[default]
    Enforce,
    /// Generate, but surface a warning with the diagnosis.
    Warn,
    /// Try to make the model resident (smaller context, no layer cap), then enforce.
    Fix,
    /// Do not check.
    Off,
}

impl GpuPolicy {
    /// The config spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enforce => "enforce",
            Self::Warn => "warn",
            Self::Fix => "fix",
            Self::Off => "off",
        }
    }
}

impl fmt::Display for GpuPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GpuPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "enforce" => Ok(Self::Enforce),
            "warn" => Ok(Self::Warn),
            "fix" => Ok(Self::Fix),
            "off" => Ok(Self::Off),
            _ => Err("expected one of: enforce, warn, fix, off".into()),
        }
    }
}

/// The smallest share of the model that must be on the GPU, 0.0..=1.0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MinFraction(f64);

impl MinFraction {
    /// Fully resident.
    pub const FULL: Self = Self(1.0);

    /// Validates a fraction.
    ///
    /// # Errors
    /// When it is not within 0.0..=1.0.
    pub fn new(value: f64) -> Result<Self, String> {
        if (0.0..=1.0).contains(&value) {
            Ok(Self(value))
        } else {
            Err(format!("{value} is not a fraction between 0.0 and 1.0"))
        }
    }

    /// The value.
    #[must_use]
    pub fn get(self) -> f64 {
        self.0
    }
}

impl<'de> Deserialize<'de> for MinFraction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::new(f64::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A duration written for people: `250ms`, `45s`, `5m`, `1h30m`, or a number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Seconds(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Seconds(secs) if Duration::from_secs(secs) > MAX_DURATION => {
                Err(serde::de::Error::custom("a duration longer than ten years"))
            }
            Raw::Seconds(secs) => Ok(Self(Duration::from_secs(secs))),
            Raw::Text(text) => parse_duration(&text)
                .map(Self)
                .map_err(serde::de::Error::custom),
        }
    }
}

impl<'de> Deserialize<'de> for KeepAlive {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Seconds(i64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Seconds(secs) if secs < 0 => Ok(Self::Forever),
            Raw::Seconds(secs) if Duration::from_secs(secs.unsigned_abs()) > MAX_DURATION => Err(
                serde::de::Error::custom("keep_alive is longer than ten years: use -1 for ever"),
            ),
            Raw::Seconds(secs) => Ok(Self::For(Duration::from_secs(secs.unsigned_abs()))),
            Raw::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// The longest duration accepted (ten years): longer values are typos, and "for ever" has its
/// own spelling (`-1`) for `keep_alive`.
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 86_400);

/// Parses a Go-style duration (`300ms`, `1.5h`, `1h30m`) or a bare number of seconds.
/// Whole numbers are read exactly (no floating point), so a duration reads back as it prints.
///
/// # Errors
/// A sentence naming the accepted forms.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let bad = || format!("invalid duration {text:?}: use e.g. 500ms, 30s, 5m, 1h30m");
    if text.is_empty() {
        return Err(bad());
    }
    let bare_number = text.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    let mut total_nanos: u128 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(number_len);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let unit = if bare_number { "s" } else { unit };
        let nanos_per_unit: u128 = match unit {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(bad()),
        };
        let nanos = match number.split_once('.') {
            None => number
                .parse::<u128>()
                .map_err(|_| bad())?
                .checked_mul(nanos_per_unit)
                .ok_or_else(bad)?,
            Some((whole, fraction)) => {
                if whole.is_empty() && fraction.is_empty() {
                    return Err(bad());
                }
                let value: f64 = number.parse().map_err(|_| bad())?;
                #[allow(
                    clippy::cast_precision_loss,
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss
                )]
                let nanos = (value * nanos_per_unit as f64).round() as u128;
                nanos
            }
        };
        total_nanos = total_nanos.checked_add(nanos).ok_or_else(bad)?;
        if total_nanos > MAX_DURATION.as_nanos() {
            return Err(format!("duration {text:?} is longer than ten years"));
        }
        rest = tail;
    }
    let secs = u64::try_from(total_nanos / 1_000_000_000).map_err(|_| bad())?;
    let nanos = u32::try_from(total_nanos % 1_000_000_000).map_err(|_| bad())?;
    Ok(Duration::new(secs, nanos))
}

/// Formats a duration the way [`parse_duration`] reads it, exactly: `250ms`, `45s`, `5m`,
/// `1h30m`, `1500us`.
#[must_use]
pub fn format_duration(d: Duration) -> String {
    let nanos = d.subsec_nanos();
    if d.is_zero() {
        return "0s".to_owned();
    }
    if nanos != 0 {
        let total = d.as_nanos();
        return if total.is_multiple_of(1_000_000) {
            format!("{}ms", total / 1_000_000)
        } else if total.is_multiple_of(1_000) {
            format!("{}us", total / 1_000)
        } else {
            format!("{total}ns")
        };
    }
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// `[ollama]`: how to reach the server.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OllamaLayer {
    /// Server address, in any form `OLLAMA_HOST` accepts.
    pub host: Option<OllamaHost>,
    /// Bearer token for a server behind an authenticating proxy.
    pub token: Option<Secret>,
    /// A PEM file of a certificate authority to trust for `https://` (an internal proxy).
    pub ca_cert: Option<PathBuf>,
    /// Connection timeout.
    pub connect_timeout: Option<HumanDuration>,
    /// Time allowed for the first byte of an answer (covers loading the model).
    pub load_timeout: Option<HumanDuration>,
    /// Time allowed between two reads of a streaming answer.
    pub idle_timeout: Option<HumanDuration>,
    /// Retries when Ollama answers 429 or 503.
    pub max_retries: Option<u32>,
}

/// `[gpu]`: the residency policy.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuLayer {
    /// `enforce`, `warn`, `fix` or `off`.
    pub policy: Option<GpuPolicy>,
    /// The smallest GPU share accepted (default 1.0: fully resident).
    pub min_fraction: Option<MinFraction>,
}

/// One source of configuration; every field optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigLayer {
    /// The model, e.g. `llama3.2:3b`.
    pub model: Option<String>,
    /// The personality name.
    pub personality: Option<PersonalityName>,
    /// Extra system text appended after the personality.
    pub system: Option<String>,
    /// How long Ollama keeps the model loaded (`30m`, `-1` for ever).
    pub keep_alive: Option<KeepAlive>,
    /// Ask thinking models to think.
    pub think: Option<bool>,
    /// More directories of personality files (later ones override earlier ones).
    pub personality_dirs: Option<Vec<PathBuf>>,
    /// Runner and sampling options sent with every request.
    #[serde(default)]
    pub options: RunnerOptions,
    /// How to reach Ollama.
    #[serde(default)]
    pub ollama: OllamaLayer,
    /// The GPU-residency policy.
    #[serde(default)]
    pub gpu: GpuLayer,
}

impl ConfigLayer {
    /// Parses a config file's text; errors name `path`, line and column.
    ///
    /// # Errors
    /// [`ConfigError::Parse`] for bad TOML, unknown fields, wrong types and invalid values.
    pub fn from_toml(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let mut layer: Self = toml::from_str(text).map_err(|err| ConfigError::Parse {
            location: FileLocation::of_toml_error(path, text, &err),
            message: err.message().to_owned(),
        })?;
        if let (Some(ca), Some(base)) = (&mut layer.ollama.ca_cert, path.parent())
            && ca.is_relative()
        {
            *ca = base.join(&*ca);
        }
        // Relative personality directories are relative to the file that names them.
        if let (Some(dirs), Some(base)) = (&mut layer.personality_dirs, path.parent()) {
            for dir in dirs.iter_mut() {
                if dir.is_relative() {
                    *dir = base.join(&*dir);
                }
            }
        }
        Ok(layer)
    }

    /// Reads the environment through `var` (so tests need not touch the process environment).
    /// Empty variables count as unset, as in Ollama.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the variable.
    pub fn from_env(var: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let invalid = |field, name: &str, value: String, reason: String| ConfigError::Invalid {
            field,
            value,
            origin: format!("environment variable {name}"),
            reason,
        };
        let mut layer = Self::default();
        if let Some(value) = get("OLLAMA_HOST") {
            layer.ollama.host = Some(OllamaHost::parse(&value).map_err(|reason| {
                invalid("ollama.host", "OLLAMA_HOST", redact_address(&value), reason)
            })?);
        }
        layer.ollama.token = get("CONDUCTOR_OLLAMA_TOKEN").map(Secret::new);
        layer.model = get("CONDUCTOR_MODEL");
        if let Some(value) = get("CONDUCTOR_PERSONALITY") {
            layer.personality = Some(PersonalityName::new(&value).map_err(|err| {
                invalid(
                    "personality",
                    "CONDUCTOR_PERSONALITY",
                    value,
                    err.to_string(),
                )
            })?);
        }
        if let Some(value) = get("CONDUCTOR_GPU_POLICY") {
            layer.gpu.policy =
                Some(value.parse().map_err(|reason| {
                    invalid("gpu.policy", "CONDUCTOR_GPU_POLICY", value, reason)
                })?);
        }
        Ok(layer)
    }

    /// Fills every unset field from `lower`; `self` wins.
    #[must_use]
    pub fn combine(self, lower: Self) -> Self {
        Self {
            model: self.model.or(lower.model),
            personality: self.personality.or(lower.personality),
            system: self.system.or(lower.system),
            keep_alive: self.keep_alive.or(lower.keep_alive),
            think: self.think.or(lower.think),
            personality_dirs: self.personality_dirs.or(lower.personality_dirs),
            options: self.options.or(lower.options),
            ollama: OllamaLayer {
                host: self.ollama.host.or(lower.ollama.host),
                token: self.ollama.token.or(lower.ollama.token),
                ca_cert: self.ollama.ca_cert.or(lower.ollama.ca_cert),
                connect_timeout: self.ollama.connect_timeout.or(lower.ollama.connect_timeout),
                load_timeout: self.ollama.load_timeout.or(lower.ollama.load_timeout),
                idle_timeout: self.ollama.idle_timeout.or(lower.ollama.idle_timeout),
                max_retries: self.ollama.max_retries.or(lower.ollama.max_retries),
            },
            gpu: GpuLayer {
                policy: self.gpu.policy.or(lower.gpu.policy),
                min_fraction: self.gpu.min_fraction.or(lower.gpu.min_fraction),
            },
        }
    }

    /// The built-in defaults as a layer.
    #[must_use]
    pub fn defaults() -> Self {
        let timeouts = Timeouts::default();
        Self {
            model: Some(DEFAULT_MODEL.to_owned()),
            personality: PersonalityName::new(DEFAULT_PERSONALITY).ok(),
            ollama: OllamaLayer {
                host: Some(OllamaHost::default()),
                connect_timeout: Some(HumanDuration(timeouts.connect)),
                load_timeout: Some(HumanDuration(timeouts.load)),
                idle_timeout: Some(HumanDuration(timeouts.idle)),
                max_retries: Some(RetryPolicy::default().max_retries),
                token: None,
                ca_cert: None,
            },
            gpu: GpuLayer {
                policy: Some(GpuPolicy::default()),
                min_fraction: Some(MinFraction::FULL),
            },
            ..Self::default()
        }
    }
}

/// Where a setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Built in.
    Default,
    /// The config file.
    File(PathBuf),
    /// An environment variable.
    Env,
    /// A command-line flag (or the embedding program).
    Flag,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("default"),
            Self::File(path) => write!(f, "file {}", path.display()),
            Self::Env => f.write_str("environment"),
            Self::Flag => f.write_str("flag"),
        }
    }
}

/// The validated, effective configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where Ollama listens.
    pub host: OllamaHost,
    /// Bearer token for a proxied Ollama.
    pub token: Option<Secret>,
    /// Extra certificate authority (PEM file) for `https://` hosts.
    pub ca_cert: Option<PathBuf>,
    /// Timeouts per phase.
    pub timeouts: Timeouts,
    /// Retry policy for a busy server.
    pub retry: RetryPolicy,
    /// The model.
    pub model: String,
    /// The personality.
    pub personality: PersonalityName,
    /// Extra system text after the personality.
    pub system: Option<String>,
    /// How long the model stays loaded.
    pub keep_alive: Option<KeepAlive>,
    /// Ask thinking models to think.
    pub think: Option<bool>,
    /// Runner and sampling options.
    pub options: RunnerOptions,
    /// What to do when the model is not on the GPU.
    pub gpu_policy: GpuPolicy,
    /// The smallest GPU share accepted.
    pub gpu_min_fraction: MinFraction,
    /// Directories searched for personality files, lowest precedence first (the built-in
    /// personalities come before all of them).
    pub personality_dirs: Vec<PathBuf>,
}

/// Settings plus the layers they came from, for `config show`.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The effective settings.
    pub settings: Settings,
    /// The config file that was read, if any.
    pub file: Option<PathBuf>,
    layers: Vec<(Origin, ConfigLayer)>,
}

/// One line of [`LoadedConfig::explain`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingLine {
    /// The setting, as in the file (`ollama.host`).
    pub key: &'static str,
    /// Its effective value, secrets masked.
    pub value: String,
    /// Where it came from.
    pub origin: Origin,
}

/// Where and how to load the configuration.
#[derive(Debug, Clone, Default)]
pub struct ConfigSources {
    /// A config file given on the command line (overrides `CONDUCTOR_CONFIG`).
    pub config_file: Option<PathBuf>,
    /// Values from flags.
    pub flags: ConfigLayer,
    /// Skip the config file entirely (tests, `--no-config`).
    pub ignore_file: bool,
}

impl LoadedConfig {
    /// Loads from the real environment and the platform config directory.
    ///
    /// # Errors
    /// Any [`ConfigError`] of a source, or of validation.
    pub fn load(sources: ConfigSources) -> Result<Self, ConfigError> {
        Self::load_with(
            sources,
            &|name| std::env::var(name).ok(),
            dirs::config_dir(),
        )
    }

    /// Loads with an explicit environment and config directory (for tests and embedding).
    ///
    /// # Errors
    /// Any [`ConfigError`] of a source, or of validation.
    pub fn load_with(
        sources: ConfigSources,
        env: &dyn Fn(&str) -> Option<String>,
        config_dir: Option<PathBuf>,
    ) -> Result<Self, ConfigError> {
        let app_dir = config_dir.map(|dir| dir.join("conductor"));
        let explicit = sources.config_file.clone().or_else(|| {
            env("CONDUCTOR_CONFIG")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        let mut layers = vec![
            (Origin::Flag, sources.flags),
            (Origin::Env, ConfigLayer::from_env(env)?),
        ];
        let mut file = None;
        if !sources.ignore_file {
            let path = explicit
                .clone()
                .or_else(|| app_dir.as_ref().map(|d| d.join("conductor.toml")));
            if let Some(path) = path {
                match read_small_file(&path, MAX_FILE_BYTES) {
                    Ok(text) => {
                        layers.push((
                            Origin::File(path.clone()),
                            ConfigLayer::from_toml(&path, &text)?,
                        ));
                        file = Some(path);
                    }
                    // The default file is optional; a file named explicitly must exist.
                    Err(ReadProblem::Io(err))
                        if err.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => {}
                    Err(ReadProblem::Io(source)) => return Err(ConfigError::Read { path, source }),
                    Err(ReadProblem::Refused(reason)) => {
                        return Err(ConfigError::Refused { path, reason });
                    }
                }
            }
        }
        layers.push((Origin::Default, ConfigLayer::defaults()));
        let merged = layers
            .iter()
            .rev()
            .fold(ConfigLayer::default(), |lower, (_, layer)| {
                layer.clone().combine(lower)
            });
        let mut personality_dirs: Vec<PathBuf> = app_dir
            .map(|d| d.join("personalities"))
            .into_iter()
            .collect();
        personality_dirs.extend(merged.personality_dirs.clone().unwrap_or_default());
        let settings = Settings::validate(merged, personality_dirs)?;
        Ok(Self {
            settings,
            file,
            layers,
        })
    }

    /// Every setting with its effective value and origin (secrets masked).
    #[must_use]
    pub fn explain(&self) -> Vec<SettingLine> {
        type Getter = fn(&ConfigLayer) -> Option<String>;
        let fields: &[(&'static str, Getter)] = &[
            ("model", |l| l.model.clone()),
            ("personality", |l| {
                l.personality.as_ref().map(ToString::to_string)
            }),
            ("system", |l| l.system.clone()),
            ("keep_alive", |l| l.keep_alive.map(|k| k.to_string())),
            ("think", |l| l.think.map(|t| t.to_string())),
            ("personality_dirs", |l| {
                l.personality_dirs.as_ref().map(|d| {
                    d.iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                })
            }),
            ("options", |l| {
                (!l.options.is_empty())
                    .then(|| serde_json::to_string(&l.options).unwrap_or_else(|_| "?".to_owned()))
            }),
            ("ollama.host", |l| {
                l.ollama.host.as_ref().map(ToString::to_string)
            }),
            ("ollama.token", |l| {
                l.ollama.token.as_ref().map(|_| "(set, hidden)".to_owned())
            }),
            ("ollama.connect_timeout", |l| {
                l.ollama.connect_timeout.map(|d| format_duration(d.0))
            }),
            ("ollama.load_timeout", |l| {
                l.ollama.load_timeout.map(|d| format_duration(d.0))
            }),
            ("ollama.idle_timeout", |l| {
                l.ollama.idle_timeout.map(|d| format_duration(d.0))
            }),
            ("ollama.max_retries", |l| {
                l.ollama.max_retries.map(|n| n.to_string())
            }),
            ("gpu.policy", |l| l.gpu.policy.map(|p| p.to_string())),
            ("gpu.min_fraction", |l| {
                l.gpu.min_fraction.map(|f| f.get().to_string())
            }),
        ];
        fields
            .iter()
            .filter_map(|(key, get)| {
                self.layers.iter().find_map(|(origin, layer)| {
                    get(layer).map(|value| SettingLine {
                        key,
                        value,
                        origin: origin.clone(),
                    })
                })
            })
            .collect()
    }
}

impl Settings {
    /// Validates a merged layer. Fields the defaults always set are required here.
    fn validate(merged: ConfigLayer, personality_dirs: Vec<PathBuf>) -> Result<Self, ConfigError> {
        let defaults = ConfigLayer::defaults();
        let model = merged.model.unwrap_or_default();
        if model.trim().is_empty() || model.chars().any(char::is_whitespace) {
            return Err(ConfigError::Invalid {
                field: "model",
                value: model,
                origin: "configuration".into(),
                reason: "a model name such as llama3.2:3b, without spaces".into(),
            });
        }
        let secs = |d: Option<HumanDuration>, fallback: Duration| d.map_or(fallback, |d| d.0);
        let default_timeouts = Timeouts::default();
        let timeouts = Timeouts {
            connect: secs(merged.ollama.connect_timeout, default_timeouts.connect),
            load: secs(merged.ollama.load_timeout, default_timeouts.load),
            idle: secs(merged.ollama.idle_timeout, default_timeouts.idle),
        };
        for (field, value) in [
            ("ollama.connect_timeout", timeouts.connect),
            ("ollama.load_timeout", timeouts.load),
            ("ollama.idle_timeout", timeouts.idle),
        ] {
            if value.is_zero() {
                return Err(ConfigError::Invalid {
                    field,
                    value: "0".into(),
                    origin: "configuration".into(),
                    reason: "a timeout must be longer than zero".into(),
                });
            }
        }
        if let Some(num_ctx) = merged.options.num_ctx
            && num_ctx < 256
        {
            return Err(ConfigError::Invalid {
                field: "options.num_ctx",
                value: num_ctx.to_string(),
                origin: "configuration".into(),
                reason: "a context below 256 tokens cannot hold a personality; use e.g. 4096"
                    .into(),
            });
        }
        Ok(Self {
            host: merged.ollama.host.unwrap_or_default(),
            token: merged.ollama.token,
            ca_cert: merged.ollama.ca_cert,
            timeouts,
            retry: RetryPolicy {
                max_retries: merged
                    .ollama
                    .max_retries
                    .unwrap_or(RetryPolicy::default().max_retries),
                ..RetryPolicy::default()
            },
            model,
            personality: merged
                .personality
                .or(defaults.personality)
                .unwrap_or_else(PersonalityName::default_name),
            system: merged.system.filter(|s| !s.trim().is_empty()),
            keep_alive: merged.keep_alive,
            think: merged.think,
            options: merged.options,
            gpu_policy: merged.gpu.policy.unwrap_or_default(),
            gpu_min_fraction: merged.gpu.min_fraction.unwrap_or(MinFraction::FULL),
            personality_dirs,
        })
    }

    /// Settings from defaults only (no file, no environment): a starting point for embedding.
    #[must_use]
    pub fn defaults() -> Self {
        match Self::validate(ConfigLayer::defaults(), Vec::new()) {
            Ok(settings) => settings,
            Err(_) => unreachable_defaults(),
        }
    }
}

#[allow(clippy::panic)] // the built-in defaults are valid, checked by a unit test
fn unreachable_defaults() -> Settings {
    panic!("built-in defaults are valid")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

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
        let err = ConfigLayer::from_env(&env(&[("OLLAMA_HOST", "http://me:hunter2@bad host")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("OLLAMA_HOST") && !err.contains("hunter2"),
            "{err}"
        );
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

    #[test]
    fn durations_round_trip() {
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
        for d in [300, 5400, 45, 3600, 155_325_592] {
            let d = Duration::from_secs(d);
            assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
        for d in [
            Duration::from_micros(1500),
            Duration::from_nanos(7),
            Duration::from_millis(250),
            Duration::ZERO,
        ] {
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{d:?}");
        }
        assert!(
            parse_duration("155325592290448382")
                .unwrap_err()
                .contains("ten years")
        );
        assert!(parse_duration("1.").is_ok());
        assert!(parse_duration(".").is_err());
        assert!(parse_duration("5").is_ok());
    }

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn precedence_is_flags_then_env_then_file_then_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "model = \"from-file\"\npersonality = \"tutor\"\n[ollama]\nhost = \"file-host:1\"\n",
        )
        .unwrap();
        let sources = ConfigSources {
            config_file: Some(file.clone()),
            flags: ConfigLayer {
                model: Some("from-flag".into()),
                ..ConfigLayer::default()
            },
            ignore_file: false,
        };
        let loaded = LoadedConfig::load_with(
            sources,
            &env(&[("CONDUCTOR_MODEL", "from-env"), ("OLLAMA_HOST", "env-host")]),
            None,
        )
        .unwrap();
        let s = &loaded.settings;
        assert_eq!(s.model, "from-flag");
        assert_eq!(s.host.to_string(), "http://env-host:11434");
        assert_eq!(s.personality.as_str(), "tutor");
        assert_eq!(s.gpu_policy, GpuPolicy::Enforce);
        let lines = loaded.explain();
        let origin = |key: &str| {
            lines
                .iter()
                .find(|l| l.key == key)
                .map(|l| l.origin.clone())
        };
        assert_eq!(origin("model"), Some(Origin::Flag));
        assert_eq!(origin("ollama.host"), Some(Origin::Env));
        assert_eq!(origin("personality"), Some(Origin::File(file)));
        assert_eq!(origin("gpu.policy"), Some(Origin::Default));
    }

    #[test]
    fn defaults_without_any_source() {
        let loaded = LoadedConfig::load_with(ConfigSources::default(), &env(&[]), None).unwrap();
        assert_eq!(loaded.settings.model, DEFAULT_MODEL);
        assert_eq!(loaded.settings.personality.as_str(), DEFAULT_PERSONALITY);
        assert_eq!(loaded.settings.host.to_string(), "http://127.0.0.1:11434");
        assert_eq!(Settings::defaults().model, DEFAULT_MODEL);
    }

    #[test]
    fn file_errors_name_file_line_and_column() {
        let path = Path::new("/etc/conductor.toml");
        let err =
            ConfigLayer::from_toml(path, "model = \"x\"\n[gpu]\npolicy = \"maybe\"\n").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("/etc/conductor.toml:3:10: "), "{text}");
        assert!(text.contains("enforce"), "{text}");

        let err = ConfigLayer::from_toml(path, "modle = \"x\"\n").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("/etc/conductor.toml:1:1: unknown field `modle`"),
            "{err}"
        );

        let err = ConfigLayer::from_toml(path, "[options]\nnum_ctx = \"big\"\n").unwrap_err();
        assert!(
            err.to_string().starts_with("/etc/conductor.toml:2:11: "),
            "{err}"
        );

        let err = ConfigLayer::from_toml(path, "[ollama]\nhost = \"ftp://x\"\n").unwrap_err();
        assert!(err.to_string().contains("unsupported scheme"), "{err}");

        let err = ConfigLayer::from_toml(path, "[gpu]\nmin_fraction = 1.5\n").unwrap_err();
        assert!(err.to_string().contains("between 0.0 and 1.0"), "{err}");

        let err = ConfigLayer::from_toml(path, "personality = \"../etc/passwd\"\n").unwrap_err();
        assert!(
            err.to_string().contains("invalid personality name"),
            "{err}"
        );
    }

    #[test]
    fn env_errors_name_the_variable() {
        let err = ConfigLayer::from_env(&env(&[("OLLAMA_HOST", "x:notaport")])).unwrap_err();
        assert!(
            err.to_string().contains("environment variable OLLAMA_HOST"),
            "{err}"
        );
        let err =
            ConfigLayer::from_env(&env(&[("CONDUCTOR_GPU_POLICY", "sometimes")])).unwrap_err();
        assert!(err.to_string().contains("CONDUCTOR_GPU_POLICY"), "{err}");
    }

    #[test]
    fn an_explicit_config_file_must_exist() {
        let sources = ConfigSources {
            config_file: Some(PathBuf::from("/nonexistent/conductor.toml")),
            ..ConfigSources::default()
        };
        let err = LoadedConfig::load_with(sources, &env(&[]), None).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }));
    }

    #[test]
    fn token_never_shows() {
        let loaded = LoadedConfig::load_with(
            ConfigSources::default(),
            &env(&[("CONDUCTOR_OLLAMA_TOKEN", "sk-very-secret")]),
            None,
        )
        .unwrap();
        let debug = format!("{:?}", loaded);
        assert!(!debug.contains("sk-very-secret"));
        let explained = format!("{:?}", loaded.explain());
        assert!(!explained.contains("sk-very-secret"));
        assert_eq!(
            loaded.settings.token.as_ref().map(Secret::expose),
            Some("sk-very-secret")
        );
    }
}
