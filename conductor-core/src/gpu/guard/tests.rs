#![allow(clippy::unwrap_used)]
use super::admit::{adopt, sending};
use super::*;
use crate::gpu::fixes::RememberedFix;

fn running(context: Option<u64>) -> RunningModel {
    RunningModel {
        name: "m3b:latest".into(),
        size: 10,
        size_vram: 10,
        context_length: context,
        expires_at: None,
        digest: "d".into(),
        details: crate::backend::ModelFamily::default(),
    }
}

fn ctx(n: u32) -> RunnerOptions {
    RunnerOptions {
        num_ctx: Some(n),
        ..RunnerOptions::default()
    }
}

#[test]
fn adopts_the_loaded_context_only_when_none_is_asked_and_the_prompt_fits() {
    let none = RunnerOptions::default();
    let trained = Some(131_072);
    let (options, adopted) = adopt(&none, &running(Some(8192)), 100, trained).unwrap();
    assert_eq!(options.num_ctx, Some(8192));
    assert_eq!(adopted, Some(8192));
    // The same context asked for: nothing adopted, nothing reloads.
    assert_eq!(
        adopt(&ctx(8192), &running(Some(8192)), 0, trained).unwrap(),
        (ctx(8192), None)
    );
    // Another context: Ollama would reload; no admission from /api/ps.
    assert!(adopt(&ctx(4096), &running(Some(8192)), 0, trained).is_none());
    // A loaded context too small for a 30 KB prompt is not adopted.
    assert!(adopt(&none, &running(Some(8192)), 30_000, trained).is_none());
    // The trained maximum may be Ollama's clamped default: sent as the loader sent it.
    assert_eq!(
        adopt(&none, &running(Some(131_072)), 0, trained).unwrap(),
        (none.clone(), None)
    );
    // Unknown trained context: nothing adopted.
    assert_eq!(
        adopt(&none, &running(Some(8192)), 0, None).unwrap(),
        (none.clone(), None)
    );
    // A server that does not report its context.
    assert!(adopt(&ctx(4096), &running(None), 0, trained).is_none());
    assert_eq!(
        adopt(&none, &running(None), 0, trained).unwrap(),
        (none, None)
    );
}

#[test]
fn a_remembered_fix_replaces_runner_options_and_keeps_sampling() {
    let requested = RunnerOptions {
        temperature: Some(0.3),
        ..RunnerOptions::default()
    };
    let fix = RememberedFix {
        host: "h".into(),
        model: "m".into(),
        digest: "d".into(),
        requested: RunnerOptions::default(),
        options: ctx(16384),
        changes: Vec::new(),
        recorded_at: String::new(),
    };
    let sent = sending(&requested, Some(&fix));
    assert_eq!(sent.num_ctx, Some(16384));
    assert_eq!(sent.temperature, Some(0.3));
    assert_eq!(sending(&requested, None), requested);
}
