//! What an OpenAI-compatible server does report about itself, read where it is cheap, never
//! guessed: evidence to show beside "residency: not reported", never a residency verdict.
//!
//! Two sources, both at the server root (the base URL without its `/v1`), both optional:
//!
//! - `GET /metrics`, Prometheus text. vLLM serves it always; its KV-cache gauge is
//!   `vllm:kv_cache_usage_perc` (vllm-project/vllm `vllm/v1/metrics/loggers.py`: "KV-cache
//!   usage. 1 means 100 percent usage.", labels `model_name`, `engine`), formerly
//!   `vllm:gpu_cache_usage_perc` (`vllm/engine/metrics.py`, "GPU KV-cache usage. 1 means 100
//!   percent usage."). llama-server serves it only with `--metrics`; older builds list
//!   `llamacpp:kv_cache_usage_ratio` ("KV-cache usage. 1 means 100 percent usage.") in
//!   ggml-org/llama.cpp `tools/server/README.md`, newer builds no longer do.
//! - `GET /props`, llama-server's JSON (ggml-org/llama.cpp `tools/server/README.md`, "GET
//!   /props: Get server global properties"): `default_generation_settings.n_ctx`,
//!   `total_slots`, `model_path`, `build_info`. vLLM answers 404 there.
//!
//! A KV cache is not where the weights live: none of this says whether a model runs on the GPU.

use serde::{Deserialize, Serialize};
use tracing::debug;

use super::{OpenAiBackend, Wait};

/// The KV-cache gauges read from `/metrics`, first match wins (newest name first).
const KV_GAUGES: [&str; 3] = [
    "vllm:kv_cache_usage_perc",
    "vllm:gpu_cache_usage_perc",
    "llamacpp:kv_cache_usage_ratio",
];

/// What the server reported about itself; both parts absent when it answered neither probe.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServerReports {
    /// From `GET {root}/metrics`.
    pub kv_cache: Option<KvCacheUsage>,
    /// From `GET {root}/props` (llama-server).
    pub props: Option<ServerProps>,
}

impl ServerReports {
    /// True when the server reported nothing conductor reads.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.kv_cache.is_none() && self.props.is_none()
    }
}

/// A KV-cache usage gauge as the server exports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KvCacheUsage {
    /// The metric's name, e.g. `vllm:kv_cache_usage_perc`.
    pub metric: String,
    /// The usage, 0 to 1 (1 = 100%); the highest when several series (engines) report it.
    pub ratio: f64,
    /// How many series (engines, models) reported it.
    pub series: usize,
}

/// The parts of llama-server's `GET /props` conductor reads; every field may be missing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerProps {
    /// The context size of a slot (`default_generation_settings.n_ctx`).
    #[serde(default)]
    pub n_ctx: Option<u64>,
    /// Parallel slots (`total_slots`, the `--parallel` option).
    #[serde(default)]
    pub total_slots: Option<u64>,
    /// The model file (`model_path`, the `-m` argument).
    #[serde(default)]
    pub model_path: Option<String>,
    /// The server build (`build_info`, e.g. `b4567-abc1234`).
    #[serde(default)]
    pub build_info: Option<String>,
}

/// Reads the KV-cache gauge from Prometheus text exposition; `None` when it is not there.
///
/// Sample lines are `name value [timestamp]` or `name{label="v",...} value [timestamp]`;
/// `#` lines (HELP, TYPE) and blank lines are skipped; values that are not finite numbers are
/// ignored.
#[must_use]
pub fn parse_metrics(text: &str) -> Option<KvCacheUsage> {
    KV_GAUGES.iter().find_map(|name| {
        let values: Vec<f64> = text
            .lines()
            .filter_map(|line| sample(line.trim(), name))
            .collect();
        let ratio = values.iter().copied().reduce(f64::max)?;
        Some(KvCacheUsage {
            metric: (*name).to_owned(),
            ratio,
            series: values.len(),
        })
    })
}

/// The value of one sample line of metric `name`, if the line is one.
fn sample(line: &str, name: &str) -> Option<f64> {
    let rest = line.strip_prefix(name)?;
    let rest = if let Some(labels) = rest.strip_prefix('{') {
        // Label values are quoted and may hold '}' only escaped inside quotes; find the close.
        let mut quoted = false;
        let mut escaped = false;
        let close = labels.char_indices().find_map(|(i, c)| {
            match (c, quoted, escaped) {
                (_, _, true) => escaped = false,
                ('\\', true, false) => escaped = true,
                ('"', _, false) => quoted = !quoted,
                ('}', false, false) => return Some(i),
                _ => {}
            }
            None
        })?;
        &labels[close + 1..]
    } else {
        rest
    };
    // The name must end here (not `name_total`).
    if !rest.starts_with([' ', '\t']) {
        return None;
    }
    let value: f64 = rest.split_whitespace().next()?.parse().ok()?;
    value.is_finite().then_some(value)
}

/// Reads llama-server's `/props` body; `None` when it is not JSON or holds none of the fields.
#[must_use]
pub fn parse_props(body: &[u8]) -> Option<ServerProps> {
    #[derive(Deserialize)]
    struct Props {
        #[serde(default)]
        default_generation_settings: Option<Settings>,
        #[serde(default)]
        total_slots: Option<u64>,
        #[serde(default)]
        model_path: Option<String>,
        #[serde(default)]
        build_info: Option<String>,
    }
    #[derive(Deserialize)]
    struct Settings {
        #[serde(default)]
        n_ctx: Option<u64>,
    }
    let props: Props = serde_json::from_slice(body).ok()?;
    let props = ServerProps {
        n_ctx: props.default_generation_settings.and_then(|s| s.n_ctx),
        total_slots: props.total_slots,
        model_path: props.model_path.filter(|p| !p.is_empty()),
        build_info: props.build_info.filter(|b| !b.is_empty()),
    };
    (props != ServerProps::default()).then_some(props)
}

/// The server root: the base URL without a last `/v1` segment (`http://h:8000/v1` →
/// `http://h:8000`); a base without one is the root itself.
pub(super) fn root(base: &str) -> &str {
    let base = base.trim_end_matches('/');
    base.strip_suffix("/v1").unwrap_or(base)
}

impl OpenAiBackend {
    /// Asks the server what it reports about itself (`/metrics`, `/props` at its root), both at
    /// once, with the backend's timeouts and credentials. Best effort: a probe that fails, is
    /// refused or answers something else is left out (logged at debug level), never an error.
    pub async fn reports(&self) -> ServerReports {
        let root = root(self.transport.host().url().as_str()).to_owned();
        let (metrics, props) =
            tokio::join!(self.fetch(&root, "/metrics"), self.fetch(&root, "/props"));
        ServerReports {
            kv_cache: metrics.and_then(|b| parse_metrics(&String::from_utf8_lossy(&b))),
            props: props.and_then(|b| parse_props(&b)),
        }
    }

    async fn fetch(&self, root: &str, path: &'static str) -> Option<Vec<u8>> {
        let url = format!("{root}{path}");
        let response = match self
            .transport
            .send(path, Wait::Response, None, |http, _| http.get(&url))
            .await
        {
            Ok(response) => response,
            Err(err) => {
                debug!(%url, error = %err, "server report not available");
                return None;
            }
        };
        match tokio::time::timeout(self.transport.timeouts().idle, response.bytes()).await {
            Ok(Ok(body)) => Some(body.to_vec()),
            Ok(Err(err)) => {
                debug!(%url, error = %err, "server report cut off");
                None
            }
            Err(_) => {
                debug!(%url, "server report timed out");
                None
            }
        }
    }
}
