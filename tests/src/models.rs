//! The models the stand-in knows and where a loaded one lives.

use serde_json::{Value, json};

/// Where a loaded model lives, as `/api/ps` will report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Residency {
    /// Total bytes of the load.
    pub size: u64,
    /// Bytes in VRAM.
    pub size_vram: u64,
    /// Context in use; `None` uses the request's num_ctx, else the Modelfile's, else 4096.
    pub context_length: Option<u64>,
    /// Leave the model out of `/api/ps` after loading (evicted at once).
    pub absent: bool,
}

impl Residency {
    /// Fully on the GPU.
    #[must_use]
    pub fn gpu(size: u64) -> Self {
        Self {
            size,
            size_vram: size,
            context_length: None,
            absent: false,
        }
    }

    /// `size_vram` of `size`.
    #[must_use]
    pub fn split(size: u64, size_vram: u64) -> Self {
        Self {
            size,
            size_vram,
            context_length: None,
            absent: false,
        }
    }

    /// With this context length reported.
    #[must_use]
    pub fn context(mut self, context_length: u64) -> Self {
        self.context_length = Some(context_length);
        self
    }

    /// Loads, then is missing from `/api/ps`.
    #[must_use]
    pub fn absent() -> Self {
        Self {
            size: 0,
            size_vram: 0,
            context_length: None,
            absent: true,
        }
    }
}

/// A model the stand-in knows: its `/api/show` body and its `/api/tags` entry.
#[derive(Debug, Clone)]
pub struct ModelFixture {
    /// Full name with tag, e.g. `tiny:latest`.
    pub name: String,
    /// The `/api/show` response body.
    pub show: Value,
    /// Size on disk for `/api/tags`.
    pub disk_size: u64,
    /// Digest for `/api/tags` and `/api/ps`.
    pub digest: String,
}

impl ModelFixture {
    /// A model from a recorded `/api/show` body.
    #[must_use]
    pub fn from_show(name: &str, show: &str, disk_size: u64, digest: &str) -> Self {
        Self {
            name: full_name(name),
            show: serde_json::from_str(show).unwrap_or(Value::Null),
            disk_size,
            digest: digest.to_owned(),
        }
    }

    /// The recorded CPU-machine model `tiny` (2 blocks, 196K parameters).
    #[must_use]
    pub fn tiny() -> Self {
        Self::from_show(
            "tiny",
            include_str!("../fixtures/cpu/show_tiny.json"),
            414_459,
            "f91d053d064cdd40ef0943dced13eb6b1d6518e8099c1cd3092742de6adad202",
        )
    }

    /// A recorded H100 model with llama3.2:3b's shapes: `m3b`, `m3b-numgpu1`, `m3b-cpu`,
    /// `m3b-ctx` or `m3b-4k`.
    #[must_use]
    pub fn h100(name: &str) -> Self {
        let show = match name {
            "m3b-numgpu1" => include_str!("../fixtures/h100/show_m3b-numgpu1.json"),
            "m3b-cpu" => include_str!("../fixtures/h100/show_m3b-cpu.json"),
            "m3b-ctx" => include_str!("../fixtures/h100/show_m3b-ctx.json"),
            "m3b-4k" => include_str!("../fixtures/h100/show_m3b-4k.json"),
            _ => include_str!("../fixtures/h100/show_m3b.json"),
        };
        Self::from_show(
            name,
            show,
            3_421_000_000,
            "6cbce2a43654afdb0a8426621d55440d38a26690774c9d2531d981ed3c0ee223",
        )
    }

    /// A model with llama3.2:3b's shapes under another name (e.g. `llama3.2:3b` itself).
    #[must_use]
    pub fn llama_3b(name: &str) -> Self {
        let mut model = Self::h100("m3b");
        model.name = full_name(name);
        model
    }

    pub(crate) fn details(&self) -> Value {
        let mut details = self
            .show
            .get("details")
            .cloned()
            .unwrap_or_else(|| json!({}));
        if let Some(obj) = details.as_object_mut() {
            obj.insert("parent_model".into(), json!(""));
        }
        details
    }

    pub(crate) fn parameter(&self, key: &str) -> Option<String> {
        let text = self.show.get("parameters")?.as_str()?;
        text.lines().find_map(|line| {
            let (k, v) = line.trim().split_once(char::is_whitespace)?;
            (k == key).then(|| v.trim().to_owned())
        })
    }
}

/// `tiny` → `tiny:latest`.
pub(crate) fn full_name(name: &str) -> String {
    if name.contains(':') {
        name.to_owned()
    } else {
        format!("{name}:latest")
    }
}
