//! `conductor show MODEL`: what a model is (architecture, size, context, quantization,
//! capabilities) and the Modelfile parameters that decide how it loads, with a warning for
//! those that push it off the GPU.

use std::process::ExitCode;

use conductor_core::Conductor;
use conductor_core::backend::ModelDetails;
use serde_json::json;

use crate::cli::{GlobalArgs, ShowArgs};
use crate::commands::load_config;
use crate::exit::Failure;
use crate::output::{self, outln};

/// Runs the command.
pub async fn run(global: &GlobalArgs, args: ShowArgs) -> Result<ExitCode, Failure> {
    let config = load_config(global)?;
    let conductor = Conductor::from_settings(&config.settings)?;
    let details = conductor
        .backend()
        .server()
        .map_err(Failure::model_management("show"))?
        .show_model(&args.model)
        .await?;
    if args.modelfile {
        // The Modelfile is the user's data: exact on a pipe, without control characters on a
        // terminal.
        let terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
        output::write_out(format_args!(
            "{}",
            output::for_terminal(&details.modelfile, terminal)
        ))?;
        return Ok(ExitCode::SUCCESS);
    }
    let summary = Summary::of(&details);
    let warnings = gpu_warnings(&details);
    if args.json {
        outln!(
            "{:#}",
            json!({
                "model": args.model,
                "architecture": summary.architecture,
                "parameters": summary.parameters,
                "parameter_count": summary.parameter_count,
                "context_length": summary.context_length,
                "embedding_length": summary.embedding_length,
                "layers": details.block_count(),
                "quantization": summary.quantization,
                "capabilities": details.capabilities,
                "modelfile_parameters": details
                    .parameters
                    .iter()
                    .map(|(k, v)| json!({ "name": k, "value": v }))
                    .collect::<Vec<_>>(),
                "system": details.system,
                "warnings": warnings,
            })
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!("  Model")?;
    let rows = [
        ("architecture", summary.architecture.clone()),
        ("parameters", summary.parameters.clone()),
        (
            "context length",
            summary.context_length.map(|c| c.to_string()),
        ),
        (
            "embedding length",
            summary.embedding_length.map(|c| c.to_string()),
        ),
        ("layers", details.block_count().map(|c| c.to_string())),
        ("quantization", summary.quantization.clone()),
    ];
    for (name, value) in rows {
        if let Some(value) = value {
            outln!("    {name:<20}{}", clean(&value))?;
        }
    }
    if !details.capabilities.is_empty() {
        outln!("\n  Capabilities")?;
        for capability in &details.capabilities {
            outln!("    {}", clean(capability))?;
        }
    }
    if !details.parameters.is_empty() {
        outln!("\n  Parameters")?;
        let width = details
            .parameters
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        for (name, value) in &details.parameters {
            outln!("    {:<width$}   {}", clean(name), clean(value))?;
        }
    }
    if let Some(system) = &details.system {
        // The story conductor exists to tell: a baked SYSTEM neither helps nor hurts residency,
        // and conductor's personality replaces it on every request.
        outln!(
            "\n  System ({} characters, baked into the model)",
            system.chars().count()
        )?;
        outln!("    {}", conductor_core::text::shorten(&clean(system), 160))?;
        outln!(
            "    (conductor's personality replaces it: Ollama uses it only for a request without \
             a system message)"
        )?;
    }
    for warning in &warnings {
        output::warn(warning);
    }
    Ok(ExitCode::SUCCESS)
}

fn clean(text: &str) -> String {
    conductor_core::text::one_line(text).into_owned()
}

/// The model's summary, from its GGUF metadata.
#[derive(Debug, Default)]
struct Summary {
    architecture: Option<String>,
    parameters: Option<String>,
    parameter_count: Option<u64>,
    context_length: Option<u64>,
    embedding_length: Option<u64>,
    quantization: Option<String>,
}

impl Summary {
    fn of(details: &ModelDetails) -> Self {
        let parameter_count = details
            .model_info
            .get("general.parameter_count")
            .and_then(serde_json::Value::as_u64);
        Self {
            architecture: details.architecture().map(str::to_owned),
            parameters: parameter_count.map(parameter_size),
            parameter_count,
            context_length: details.trained_context_length(),
            embedding_length: details.arch_u64("embedding_length"),
            quantization: details
                .model_info
                .get("general.file_type")
                .and_then(serde_json::Value::as_u64)
                .map(file_type),
        }
    }
}

/// `3.2B`, `196.6K`, as Ollama prints a parameter count.
fn parameter_size(count: u64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let n = count as f64;
    if n >= 1e9 {
        format!("{:.1}B", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.1}M", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1}K", n / 1e3)
    } else {
        count.to_string()
    }
}

/// GGUF's `general.file_type` (llama.cpp's `llama_ftype`) as a quantization name.
fn file_type(code: u64) -> String {
    let name = match code {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        19 => "IQ2_XXS",
        20 => "IQ2_XS",
        21 => "Q2_K_S",
        22 => "IQ3_XS",
        23 => "IQ3_XXS",
        24 => "IQ1_S",
        25 => "IQ4_NL",
        26 => "IQ3_S",
        27 => "IQ3_M",
        28 => "IQ2_S",
        29 => "IQ2_M",
        30 => "IQ4_XS",
        31 => "IQ1_M",
        32 => "BF16",
        other => return format!("file type {other}"),
    };
    name.to_owned()
}

/// Modelfile parameters that keep the model off the GPU, in words: a `num_gpu` below the
/// layer count leaves layers on the CPU (always, whatever the card); a `num_ctx` above the
/// trained context is cut to it by Ollama, and a large one may not fit (checked by
/// `conductor gpu verify`).
fn gpu_warnings(details: &ModelDetails) -> Vec<String> {
    let mut warnings = Vec::new();
    // Ollama counts the output layer too: block_count + 1 layers to offload.
    let layers = details.block_count().map(|b| b + 1);
    if let Some(num_gpu) = details
        .parameter("num_gpu")
        .and_then(|v| v.parse::<i64>().ok())
    {
        match (num_gpu, layers) {
            (0, _) => warnings.push(
                "PARAMETER num_gpu 0 runs the model on the CPU only; send -o num_gpu=999 (or use `--gpu-policy fix`) to offload it".to_owned(),
            ),
            (n, Some(layers)) if n > 0 && n.unsigned_abs() < layers => warnings.push(format!(
                "PARAMETER num_gpu {n} offloads {n} of {layers} layers: the rest runs on the CPU; send -o num_gpu={layers} (or use `--gpu-policy fix`)"
            )),
            _ => {}
        }
    }
    if let Some(num_ctx) = details
        .parameter("num_ctx")
        .and_then(|v| v.parse::<u64>().ok())
    {
        match details.trained_context_length() {
            Some(trained) if num_ctx > trained => warnings.push(format!(
                "PARAMETER num_ctx {num_ctx} is above the {trained} tokens the model was trained for; Ollama cuts it to {trained}"
            )),
            _ if num_ctx > 32_768 => warnings.push(format!(
                "PARAMETER num_ctx {num_ctx} needs a large KV cache that may push layers onto the CPU; `conductor gpu verify -m MODEL` checks, `--num-ctx` sends a smaller one"
            )),
            _ => {}
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_types_read_like_ollama() {
        assert_eq!(parameter_size(3_212_749_888), "3.2B");
        assert_eq!(parameter_size(196_608), "196.6K");
        assert_eq!(file_type(15), "Q4_K_M");
        assert_eq!(file_type(7), "Q8_0");
        assert_eq!(file_type(99), "file type 99");
    }

    #[test]
    fn layer_caps_and_huge_contexts_are_flagged() {
        let mut details = ModelDetails::default();
        details
            .model_info
            .insert("general.architecture".into(), "llama".into());
        details
            .model_info
            .insert("llama.block_count".into(), 28.into());
        details
            .model_info
            .insert("llama.context_length".into(), 131_072.into());
        details.parameters = vec![("num_gpu".into(), "1".into())];
        let warnings = gpu_warnings(&details);
        assert!(
            warnings[0].contains("offloads 1 of 29 layers"),
            "{warnings:?}"
        );
        details.parameters = vec![("num_gpu".into(), "0".into())];
        assert!(gpu_warnings(&details)[0].contains("CPU only"));
        details.parameters = vec![("num_gpu".into(), "999".into())];
        assert!(gpu_warnings(&details).is_empty());
        details.parameters = vec![("num_ctx".into(), "262144".into())];
        assert!(gpu_warnings(&details)[0].contains("cuts it to 131072"));
        details.parameters = vec![("num_ctx".into(), "65536".into())];
        assert!(gpu_warnings(&details)[0].contains("gpu verify"));
        details.parameters = vec![("num_ctx".into(), "8192".into())];
        assert!(gpu_warnings(&details).is_empty());
    }
}
