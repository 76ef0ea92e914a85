//! The commented starter `conductor.toml` that `conductor config init` writes.

/// A starter `conductor.toml`: every key, commented out, with its default and why one would
/// set it. As written it sets nothing (every value stays the default); uncommenting a line
/// sets that value. It parses with [`super::ConfigLayer::from_toml`] as it is, and with every
/// key line uncommented (both checked by tests).
#[must_use]
pub fn starter_file() -> &'static str {
    STARTER
}

const STARTER: &str = r#"# conductor.toml: conductor's configuration. Every key is commented out with its default;
# remove the leading '# ' of a key to set it. Precedence: flags > environment > this file > defaults.
# `conductor config show` prints the effective values and where each came from.

# The model to talk to (CONDUCTOR_MODEL, -m).
# model = "llama3.2:3b"

# The personality: a built-in one or NAME.toml in a personality directory (CONDUCTOR_PERSONALITY, -p).
# personality = "yollayah"

# Extra system text sent after the personality, on every request (ask -s adds more).
# system = ""

# How long Ollama keeps the model loaded after a request: 10m, 1h, -1 (forever), 0 (unload at once).
# Unset leaves Ollama's own default (5m).
# keep_alive = "5m"

# Ask thinking models to think (their thinking goes to stderr, or to the chat UI's thinking pane).
# think = false

# More directories of personality files, after the platform one (later ones override earlier ones).
# Relative paths are relative to this file.
# personality_dirs = ["personalities"]

[options]
# Runner and sampling options sent with every request. Unset ones are left to Ollama and the
# Modelfile. Changing num_ctx, num_gpu, num_batch, num_thread, main_gpu or use_mmap reloads the model.

# Context window in tokens. A large context may not fit the GPU; `conductor gpu verify` checks.
# num_ctx = 4096
# Layers offloaded to the GPU (not a number of GPUs); a low value forces CPU fallback.
# num_gpu = 999
# Most tokens per answer; -1 is no limit.
# num_predict = -1
# Prompt-processing batch size.
# num_batch = 512
# CPU threads for the layers on the CPU.
# num_thread = 8
# The GPU that holds the small tensors when a model is split over several.
# main_gpu = 0
# Memory-map the weights (faster loads; false reads them into memory).
# use_mmap = true
# Sampling: higher is more varied, lower more deterministic.
# temperature = 0.8
# Nucleus sampling: keep the smallest set of tokens whose probability adds up to this.
# top_p = 0.9
# Keep only the k most likely tokens.
# top_k = 40
# Drop tokens less likely than this fraction of the most likely one.
# min_p = 0.0
# Penalise repetition (1.0 is none).
# repeat_penalty = 1.1
# A fixed seed makes answers reproducible.
# seed = 42
# Stop the answer at any of these strings.
# stop = ["<|eot_id|>"]

[backend]
# Which protocol the server speaks: "ollama", or "openai" for an OpenAI-compatible server
# (vLLM, llama-server, ...) whose base URL (…/v1) is then ollama.host (CONDUCTOR_BACKEND, --backend).
# kind = "ollama"

[ollama]
# Where the server listens, in any form OLLAMA_HOST accepts (OLLAMA_HOST, --host).
# host = "127.0.0.1:11434"
# A pool of servers instead of one host (CONDUCTOR_OLLAMA_HOSTS); wins over host.
# hosts = ["gpu1:11434", "gpu2:11434"]
# Bearer token for a server behind an authenticating proxy (prefer CONDUCTOR_OLLAMA_TOKEN).
# token = ""
# A PEM certificate authority to trust for https:// hosts (an internal proxy).
# ca_cert = "ca.pem"
# How long to wait for a connection.
# connect_timeout = "5s"
# How long to wait for the first byte of an answer; covers loading the model.
# load_timeout = "5m"
# How long a streaming answer may pause between two reads.
# idle_timeout = "1m"
# Retries when the server is busy (HTTP 429 or 503).
# max_retries = 3

[gpu]
# What to do when the model is not fully on the GPU (CONDUCTOR_GPU_POLICY, --gpu-policy):
# enforce (refuse, exit 3), warn (answer, with a warning), fix (reload with options that fit,
# remembered for later runs), off (do not check).
# policy = "enforce"
# The smallest share of the model on the GPU accepted (1.0: all of it).
# min_fraction = 1.0

# [chat]
# The chat UI's colours: auto (follow the terminal), dark or light.
# theme = "auto"
"#;

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::starter_file;
    use crate::config::ConfigLayer;

    /// The starter with every key line uncommented, up to the `[chat]` section (a key this
    /// version may not know yet).
    fn uncommented() -> String {
        let before_chat = starter_file().split("# [chat]").next().unwrap_or_default();
        before_chat
            .lines()
            .map(|line| match line.strip_prefix("# ") {
                Some(rest) if rest.contains(" = ") && !rest.contains(": ") => rest,
                _ => line,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn the_starter_parses_and_sets_nothing() {
        let path = Path::new("/etc/conductor.toml");
        let layer = ConfigLayer::from_toml(path, starter_file()).unwrap_or_default();
        assert!(layer.model.is_none() && layer.options.is_empty());
        assert!(ConfigLayer::from_toml(path, starter_file()).is_ok());
        assert!(starter_file().contains("# [chat]\n"));
        assert!(starter_file().contains("# theme = \"auto\""));
    }

    #[test]
    fn every_key_of_the_starter_is_one_conductor_reads() {
        let text = uncommented();
        let layer = ConfigLayer::from_toml(Path::new("/etc/conductor.toml"), &text);
        let layer = match layer {
            Ok(layer) => layer,
            Err(err) => panic!("{err}\n{text}"),
        };
        assert_eq!(layer.model.as_deref(), Some("llama3.2:3b"));
        assert!(layer.keep_alive.is_some() && layer.think == Some(false));
        // Every runner option is listed.
        let options = serde_json::to_value(&layer.options).unwrap_or_default();
        assert_eq!(options.as_object().map(serde_json::Map::len), Some(14));
        assert!(layer.ollama.max_retries == Some(3) && layer.gpu.min_fraction.is_some());
        assert!(layer.backend.kind.is_some() && layer.ollama.hosts.is_some());
    }
}
