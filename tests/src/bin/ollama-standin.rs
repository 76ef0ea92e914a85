//! The Ollama stand-in as a program, for end-to-end runs of the binaries (the tmux test of the
//! chat UI, demos, the GPU machine): `ollama-standin [--port N] [--reply "a b c"]
//! [--token-delay-ms N] [--load-delay-ms N] [--request-delay-ms N]
//! [--residency MODEL=SIZE:VRAM[:CTX]]...`. `--request-delay-ms` delays every generation and
//! load as a real Ollama does (73-108 ms measured on an H200, even for a loaded model).
//! Prints `listening on http://127.0.0.1:PORT` and serves until killed.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::time::Duration;

use conductor_tests::{Reply, Residency, StandIn};

fn usage(message: &str) -> ! {
    eprintln!("ollama-standin: {message}");
    eprintln!(
        "usage: ollama-standin [--port N] [--reply TEXT] [--token-delay-ms N] [--load-delay-ms N] [--request-delay-ms N] [--residency MODEL=SIZE:VRAM[:CTX]]..."
    );
    std::process::exit(2)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let mut port: u16 = 0;
    let mut reply =
        "Hello from the stand-in! Here is some `code`:\n\n```rust\nfn main() {}\n```\n".to_owned();
    let mut token_delay = Duration::ZERO;
    let mut load_delay = Duration::ZERO;
    let mut request_delay = Duration::ZERO;
    let mut residencies = Vec::new();
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{arg} needs a value")))
        };
        match arg.as_str() {
            "--port" => port = value().parse().unwrap_or_else(|_| usage("bad --port")),
            "--reply" => reply = value(),
            "--token-delay-ms" => {
                token_delay = Duration::from_millis(
                    value()
                        .parse()
                        .unwrap_or_else(|_| usage("bad --token-delay-ms")),
                );
            }
            "--load-delay-ms" => {
                load_delay = Duration::from_millis(
                    value()
                        .parse()
                        .unwrap_or_else(|_| usage("bad --load-delay-ms")),
                );
            }
            "--request-delay-ms" => {
                request_delay = Duration::from_millis(
                    value()
                        .parse()
                        .unwrap_or_else(|_| usage("bad --request-delay-ms")),
                );
            }
            "--residency" => residencies.push(value()),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    let standin = StandIn::start_on(port).await;
    // Tokens as a model streams them: each word with its leading space.
    let mut tokens: Vec<&str> = Vec::new();
    let mut start = 0;
    for (i, c) in reply.char_indices() {
        if c == ' ' && i > start && !reply[..i].ends_with(' ') {
            tokens.push(&reply[start..i]);
            start = i;
        }
    }
    tokens.push(&reply[start..]);
    standin.set_default_reply(
        Reply::tokens(&tokens)
            .chunk_delay(token_delay)
            .first_byte_delay(load_delay),
    );
    standin.set_request_delay(request_delay);
    for spec in residencies {
        let (model, numbers) = spec
            .split_once('=')
            .unwrap_or_else(|| usage("--residency MODEL=SIZE:VRAM[:CTX]"));
        let n: Vec<u64> = numbers
            .split(':')
            .map(|n| {
                n.parse()
                    .unwrap_or_else(|_| usage("residency numbers are bytes"))
            })
            .collect();
        let mut residency = Residency::split(
            n.first().copied().unwrap_or(0),
            n.get(1).copied().unwrap_or(0),
        );
        if let Some(ctx) = n.get(2) {
            residency = residency.context(*ctx);
        }
        standin.set_residency(model, residency);
    }
    println!("listening on {}", standin.host());
    loop {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}
