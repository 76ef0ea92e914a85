//! Hardening (issue 10), against the Ollama stand-in: every wait is bounded and named, a
//! password in the address never shows, errors say what happened, and files a person points
//! conductor at are read defensively.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    missing_docs
)]

use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use conductor_core::backend::{ChatRequest, Message, Timeouts};
use conductor_core::config::{ConfigSources, LoadedConfig, Secret};
use conductor_core::error::{
    ConfigError, Credentials, FileRefusal, PersonalityError, TimeoutPhase,
};
use conductor_core::{
    Backend, Conductor, Error, ModelServer, OllamaBackend, OllamaHost, PersonalityCatalog,
    Settings, collect_answer,
};
use conductor_tests::{Fault, Reply, StandIn};

/// Short budgets, so a silent server fails a test in well under a second.
const SHORT: Timeouts = Timeouts {
    connect: Duration::from_millis(400),
    load: Duration::from_millis(300),
    idle: Duration::from_millis(300),
};

fn backend(host: &str) -> OllamaBackend {
    OllamaBackend::builder(host.parse().unwrap())
        .timeouts(SHORT)
        .build()
        .unwrap()
}

fn chat_request() -> ChatRequest {
    ChatRequest {
        model: "llama3.2:3b".into(),
        messages: vec![Message::user("hi")],
        options: Default::default(),
        keep_alive: None,
        think: None,
    }
}

/// Calls `endpoint` through the backend and returns its error.
async fn fail(backend: &OllamaBackend, endpoint: &str) -> Error {
    let result = match endpoint {
        "/api/tags" => backend.list_models().await.map(drop),
        "/api/show" => backend.show_model("llama3.2:3b").await.map(drop),
        "/api/ps" => backend.running_models().await.map(drop),
        "/api/version" => backend.version().await.map(drop),
        "/api/chat" => match backend.chat(chat_request()).await {
            Ok(stream) => collect_answer(stream).await.map(drop),
            Err(err) => Err(err),
        },
        other => panic!("no call for {other}"),
    };
    result.expect_err(endpoint)
}

fn assert_timeout(err: &Error, endpoint: &str, phase: TimeoutPhase) {
    match err.root() {
        Error::Timeout {
            endpoint: named,
            phase: got,
            ..
        } => {
            assert_eq!(named, endpoint, "{err}");
            assert_eq!(*got, phase, "{err}");
        }
        other => panic!("{endpoint}: expected a timeout, got {other:?}"),
    }
    assert!(err.to_string().contains(endpoint), "{err}");
    assert!(err.hint().is_some(), "{err}");
}

const ENDPOINTS: [&str; 5] = [
    "/api/tags",
    "/api/show",
    "/api/ps",
    "/api/version",
    "/api/chat",
];

fn head_phase(endpoint: &str) -> TimeoutPhase {
    if endpoint == "/api/chat" {
        TimeoutPhase::Load
    } else {
        TimeoutPhase::Response
    }
}

// ---------------------------------------------------------------- 1. bounded, named waits

#[tokio::test]
async fn a_server_that_never_answers_times_out_naming_the_endpoint() {
    let ollama = StandIn::start().await;
    let backend = backend(&ollama.host());
    for endpoint in ENDPOINTS {
        ollama.push_fault(endpoint, Fault::NoResponse);
        let started = Instant::now();
        let err = fail(&backend, endpoint).await;
        assert_timeout(&err, endpoint, head_phase(endpoint));
        assert!(started.elapsed() < Duration::from_secs(5), "{endpoint}");
        if endpoint == "/api/ps" {
            assert_eq!(
                err.to_string(),
                "no data from Ollama for 300 ms while waiting for a response (/api/ps)"
            );
        }
    }
}

/// A bare socket that accepts connections and never writes a byte: not even the stand-in.
#[tokio::test]
async fn a_listener_that_accepts_and_never_writes_times_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let backend = backend(&format!("http://{addr}"));
    for endpoint in ENDPOINTS {
        let err = fail(&backend, endpoint).await;
        assert_timeout(&err, endpoint, head_phase(endpoint));
    }
    holder.abort();
}

#[tokio::test]
async fn a_body_that_never_comes_is_named_as_such() {
    let ollama = StandIn::start().await;
    ollama.push_fault("/api/ps", Fault::NoBody);
    let err = fail(&backend(&ollama.host()), "/api/ps").await;
    assert_timeout(&err, "/api/ps", TimeoutPhase::Body);
    assert!(err.to_string().contains("reading the response"), "{err}");
}

#[tokio::test]
async fn a_stalled_stream_is_named_and_keeps_the_partial_answer() {
    let ollama = StandIn::start().await;
    ollama.push_reply(Reply::tokens(&["Hel", "lo", "!"]).fault(Fault::Stall {
        after: 2,
        stall: Duration::from_secs(3),
    }));
    let err = fail(&backend(&ollama.host()), "/api/chat").await;
    assert_timeout(&err, "/api/chat", TimeoutPhase::Stream);
    assert_eq!(err.partial_answer(), Some("Hello"));
    assert!(
        err.to_string()
            .ends_with("(after 5 characters of the answer)"),
        "{err}"
    );
}

#[tokio::test]
async fn a_connection_nobody_accepts_times_out_while_connecting() {
    // A listener whose accept queue is full drops new SYNs (Linux): connecting hangs.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut filled = Vec::new();
    let mut hangs = false;
    for _ in 0..16 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(stream) => filled.push(stream),
            Err(_) => {
                hangs = true;
                break;
            }
        }
    }
    if !hangs {
        eprintln!("skipped: this kernel completes connections beyond a full accept queue");
        return;
    }
    let backend = backend(&format!("http://{addr}"));
    for endpoint in ["/api/version", "/api/chat"] {
        let err = fail(&backend, endpoint).await;
        assert_timeout(&err, endpoint, TimeoutPhase::Connect);
        assert!(err.to_string().contains("could not connect"), "{err}");
    }
    drop(listener);
}

// ---------------------------------------------------------------- 2. secrets

#[tokio::test]
async fn a_password_in_the_address_never_shows() {
    let host: OllamaHost = "http://user:s3cret@127.0.0.1:1".parse().unwrap();
    assert_eq!(host.to_string(), "http://user:***@127.0.0.1:1");
    assert_eq!(
        host.url_with_credentials(),
        "http://user:s3cret@127.0.0.1:1"
    );
    let backend = OllamaBackend::builder(host).build().unwrap();
    assert!(
        !backend.endpoint().contains("s3cret"),
        "{}",
        backend.endpoint()
    );
    assert!(backend.endpoint().contains("user:***@"));
    assert!(!format!("{backend:?}").contains("s3cret"));
    for endpoint in ENDPOINTS {
        let err = fail(&backend, endpoint).await;
        assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
        for shown in [
            err.to_string(),
            format!("{err:?}"),
            err.hint().unwrap_or_default(),
        ] {
            assert!(!shown.contains("s3cret"), "{shown}");
        }
    }
    // And through a whole Conductor, as the CLI builds it.
    let mut settings = Settings::defaults();
    settings.host = "http://user:s3cret@127.0.0.1:1".parse().unwrap();
    let conductor = Conductor::from_settings(&settings).unwrap();
    let err = conductor.ask("x").await.err().unwrap();
    assert!(!err.to_string().contains("s3cret"), "{err}");
}

#[tokio::test]
async fn credentials_in_the_address_reach_the_server_as_basic_auth() {
    let ollama = StandIn::start().await;
    let host = ollama.host().replace("http://", "http://user:s3cret@");
    let backend = backend(&host);
    backend.version().await.unwrap();
    backend.list_models().await.unwrap();
    backend.show_model("llama3.2:3b").await.unwrap();
    backend.running_models().await.unwrap();
    collect_answer(backend.chat(chat_request()).await.unwrap())
        .await
        .unwrap();
    let requests = ollama.requests();
    assert_eq!(requests.len(), 5);
    for request in requests {
        assert_eq!(
            request.header("authorization"),
            Some("Basic dXNlcjpzM2NyZXQ="),
            "{}",
            request.path
        );
        // The Host header names the server only.
        assert_eq!(
            request.header("host"),
            Some(ollama.addr().to_string().as_str())
        );
    }
    // Percent-encoded characters are decoded before they are sent.
    let backend = self::backend(&ollama.host().replace("http://", "http://me:p%40ss@"));
    backend.version().await.unwrap();
    let request = ollama.requests_to("/api/version").pop().unwrap();
    assert_eq!(request.header("authorization"), Some("Basic bWU6cEBzcw=="));
}

#[tokio::test]
async fn a_token_and_a_password_together_are_refused() {
    let err = OllamaBackend::builder("http://u:p@127.0.0.1:1".parse().unwrap())
        .token(Some(Secret::new("sk")))
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::InvalidRequest(_)), "{err:?}");
    assert!(!err.to_string().contains(":p@"), "{err}");
}

// ---------------------------------------------------------------- 3. results say what happened

#[tokio::test]
async fn a_401_tells_a_rejected_token_from_a_missing_one() {
    let ollama = StandIn::start().await;
    let unauthorized = || Fault::Status {
        status: 401,
        body: "unauthorized".into(),
        json: true,
    };
    let with_token = OllamaBackend::builder(ollama.host().parse().unwrap())
        .token(Some(Secret::new("sk-wrong")))
        .build()
        .unwrap();
    let with_password = backend(&ollama.host().replace("http://", "http://me:wrong@"));
    let without = backend(&ollama.host());
    let cases = [
        (
            &with_token,
            Credentials::Token,
            "rejected the token in CONDUCTOR_OLLAMA_TOKEN",
        ),
        (
            &with_password,
            Credentials::Password,
            "rejected the user name and password",
        ),
        (&without, Credentials::None, "the server wants a token"),
    ];
    for (backend, expected, hint) in cases {
        // Both a request of our own and one that used to go through ollama-rs (which lost the
        // status of every error).
        for endpoint in ["/api/version", "/api/tags", "/api/chat"] {
            ollama.push_fault(endpoint, unauthorized());
            let err = fail(backend, endpoint).await;
            match &err {
                Error::Unauthorized {
                    credentials,
                    message,
                    ..
                } => {
                    assert_eq!(*credentials, expected, "{endpoint}");
                    assert_eq!(message, "unauthorized");
                }
                other => panic!("{endpoint}: {other:?}"),
            }
            assert!(err.hint().unwrap().contains(hint), "{:?}", err.hint());
            assert!(!err.to_string().contains("wrong"), "{err}");
        }
    }
}

#[tokio::test]
async fn https_to_a_plain_http_server_says_so_and_proposes_http() {
    let ollama = StandIn::start().await;
    let https = ollama.host().replace("http://", "https://");
    let err = fail(&backend(&https), "/api/version").await;
    match &err {
        Error::Unreachable { reason, .. } => {
            assert!(reason.starts_with("TLS handshake failed"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let hint = err.hint().unwrap();
    assert!(hint.contains(&format!("use {}", ollama.host())), "{hint}");
    // The certificate case keeps its own advice.
    let (tls, _pem) = StandIn::start_tls().await;
    let err = fail(&backend(&tls.host()), "/api/version").await;
    assert!(err.hint().unwrap().contains("ollama.ca_cert"), "{err}");
}

#[tokio::test]
async fn an_empty_200_is_no_answer_not_a_cut_answer() {
    let ollama = StandIn::start().await;
    let backend = backend(&ollama.host());
    ollama.push_fault("/api/chat", Fault::EmptyBody);
    let err = fail(&backend, "/api/chat").await;
    assert!(
        matches!(&err, Error::EmptyResponse { endpoint } if endpoint == "/api/chat"),
        "{err:?}"
    );
    assert!(err.partial_answer().is_none());
    assert!(err.hint().is_some());

    // An answer cut after some text is a broken answer, with the text.
    ollama.push_reply(Reply::tokens(&["a", "b", "c"]).fault(Fault::Drop { after: 2 }));
    let err = fail(&backend, "/api/chat").await;
    assert!(
        matches!(err.root(), Error::Truncated | Error::ConnectionLost { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .ends_with("(after 2 characters of the answer)"),
        "{err}"
    );

    // A JSON endpoint answering 200 with nothing.
    ollama.push_fault(
        "/api/ps",
        Fault::Status {
            status: 200,
            body: String::new(),
            json: false,
        },
    );
    let err = fail(&backend, "/api/ps").await;
    assert!(
        matches!(&err, Error::EmptyResponse { endpoint } if endpoint == "/api/ps"),
        "{err:?}"
    );
}

#[test]
fn a_frontend_can_attach_the_partial_answer_to_a_stream_error() {
    let err = Error::incomplete("Hello", Error::Truncated);
    assert_eq!(err.partial_answer(), Some("Hello"));
    assert!(
        err.to_string()
            .ends_with("(after 5 characters of the answer)")
    );
    // Nothing arrived: the error stays as it was; never wrapped twice.
    assert!(matches!(
        Error::incomplete("", Error::Truncated),
        Error::Truncated
    ));
    let twice = Error::incomplete("more", err);
    assert_eq!(twice.partial_answer(), Some("Hello"));
}

// ---------------------------------------------------------------- 4. files read defensively

/// Runs `f` on a thread and fails (rather than hangs) when it does not finish in 5 s.
fn within_5s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(5))
        .expect("blocked on a file for more than 5 s")
}

/// Makes a FIFO at `path`; false (the test then skips) when mkfifo is not available.
fn mkfifo(path: &Path) -> bool {
    match std::process::Command::new("mkfifo").arg(path).status() {
        Ok(status) if status.success() => true,
        _ => {
            eprintln!("skipped: mkfifo is not available");
            false
        }
    }
}

const GOOD: &str = "name = \"good\"\ndescription = \"d\"\nprompt = \"p\"\n";

#[test]
fn a_fifo_personality_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    if !mkfifo(&dir.path().join("pipe.toml")) {
        return;
    }
    let catalog = PersonalityCatalog::with_dirs(vec![dir.path().to_owned()]);
    let err = within_5s(move || catalog.load("pipe")).unwrap_err();
    assert!(
        matches!(
            err,
            PersonalityError::Refused {
                reason: FileRefusal::NotRegular { kind: "a FIFO" },
                ..
            }
        ),
        "{err:?}"
    );
    let shown = err.to_string();
    assert!(shown.contains("pipe.toml") && shown.contains("not a regular file (a FIFO)"));
    assert!(err.hint().is_some());
}

#[test]
fn a_bad_entry_is_reported_in_the_listing_without_aborting_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    std::fs::write(path.join("good.toml"), GOOD).unwrap();
    // A sparse 4 GiB file: refused by its size, never read.
    let huge = std::fs::File::create(path.join("huge.toml")).unwrap();
    huge.set_len(4 << 30).unwrap();
    // Just over the limit, with real bytes.
    let big = format!(
        "{GOOD}# {}\n",
        "x".repeat(conductor_core::personality::MAX_FILE_BYTES as usize)
    );
    std::fs::write(path.join("big.toml"), big).unwrap();
    std::fs::create_dir(path.join("folder.toml")).unwrap();
    let fifo = mkfifo(&path.join("pipe.toml"));

    let catalog = PersonalityCatalog::only_dirs(vec![path.to_owned()]);
    let list = within_5s({
        let catalog = catalog.clone();
        move || catalog.list()
    });
    let names: Vec<&str> = list.iter().map(|e| e.name.as_str()).collect();
    let mut expected = vec!["big", "folder", "good", "huge"];
    if fifo {
        expected.push("pipe");
    }
    assert_eq!(names, expected);
    for entry in &list {
        let result = entry
            .personality
            .as_ref()
            .map(|p| p.name().as_str().to_owned());
        match entry.name.as_str() {
            "good" => assert_eq!(result.unwrap(), "good"),
            "big" | "huge" => {
                let err = result.unwrap_err();
                assert!(
                    matches!(
                        err,
                        PersonalityError::Refused {
                            reason: FileRefusal::TooLarge { .. },
                            ..
                        }
                    ),
                    "{err:?}"
                );
                assert!(err.to_string().contains("larger than 256 KiB"), "{err}");
            }
            "folder" => {
                let err = result.unwrap_err();
                assert!(
                    err.to_string().contains("not a regular file (a directory)"),
                    "{err}"
                );
            }
            "pipe" => {
                let err = result.unwrap_err();
                assert!(err.to_string().contains("(a FIFO)"), "{err}");
            }
            other => panic!("{other}"),
        }
    }
    // `ask -p typo` lists the directory to say what exists: it must not abort or hang either.
    let err = within_5s(move || catalog.load("typo")).unwrap_err();
    assert!(
        matches!(&err, PersonalityError::NotFound { available, .. } if available.len() == expected.len()),
        "{err:?}"
    );
}

#[test]
fn a_config_file_that_is_not_a_small_regular_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let load = |path: std::path::PathBuf| {
        within_5s(move || {
            LoadedConfig::load_with(
                ConfigSources {
                    config_file: Some(path),
                    ..ConfigSources::default()
                },
                &|_| None,
                None,
            )
        })
    };
    let huge = dir.path().join("huge.toml");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(2 << 20)
        .unwrap();
    let err = load(huge).unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::Refused {
                reason: FileRefusal::TooLarge { limit: 1_048_576 },
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("huge.toml"), "{err}");
    assert!(Error::from(err).hint().is_some());

    let err = load(dir.path().to_owned()).unwrap_err();
    assert!(err.to_string().contains("(a directory)"), "{err}");

    // The default location too: `~/.config/conductor/conductor.toml` as a FIFO.
    let app = dir.path().join("conductor");
    std::fs::create_dir(&app).unwrap();
    if !mkfifo(&app.join("conductor.toml")) {
        return;
    }
    let config_dir = dir.path().to_owned();
    let err = within_5s(move || {
        LoadedConfig::load_with(ConfigSources::default(), &|_| None, Some(config_dir))
    })
    .unwrap_err();
    assert!(
        err.to_string().contains("not a regular file (a FIFO)"),
        "{err}"
    );
}

#[tokio::test]
async fn a_fifo_personality_does_not_hang_a_conductor() {
    let dir = tempfile::tempdir().unwrap();
    if !mkfifo(&dir.path().join("yollayah.toml")) {
        return;
    }
    let mut settings = Settings::defaults();
    settings.personality_dirs = vec![dir.path().to_owned()];
    let err = within_5s(move || Conductor::from_settings(&settings).err()).unwrap();
    assert!(
        matches!(err, Error::Personality(PersonalityError::Refused { .. })),
        "{err:?}"
    );
}
