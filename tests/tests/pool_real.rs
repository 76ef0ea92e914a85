//! A pool of two real Ollamas: placement, stickiness and failover against the real server.
//! They run when `CONDUCTOR_TEST_OLLAMA_POOL` lists two or more servers with the models of
//! `shared/real-ollama/setup.sh` (e.g. `http://127.0.0.1:11581,http://127.0.0.1:11582`), and
//! say they skipped otherwise. The failover test kills the first server: it runs only when
//! `CONDUCTOR_TEST_POOL_KILL_PID` names its process.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::time::{Duration, Instant};

use conductor_core::{Conductor, GpuPolicy, Settings};

/// One test at a time: they share the servers.
static SERVERS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn real_pool() -> Option<Vec<String>> {
    match std::env::var("CONDUCTOR_TEST_OLLAMA_POOL") {
        Ok(list) if list.split(',').filter(|h| !h.trim().is_empty()).count() >= 2 => {
            Some(list.split(',').map(|h| h.trim().to_owned()).collect())
        }
        _ => {
            eprintln!(
                "skipped: set CONDUCTOR_TEST_OLLAMA_POOL to two real Ollamas (shared/real-ollama/setup.sh on two ports)"
            );
            None
        }
    }
}

fn conductor(hosts: &[String]) -> Conductor {
    let mut settings = Settings::defaults();
    settings.hosts = hosts.iter().map(|h| h.parse().unwrap()).collect();
    settings.host = settings.hosts[0].clone();
    settings.model = "tiny-det".into();
    // A CPU-only machine: the guard would refuse every host under enforce.
    settings.gpu_policy = GpuPolicy::Off;
    Conductor::from_settings(&settings).unwrap()
}

/// `n` conversations at once, each asking once; returns the hosts they went to and the time.
async fn concurrent(conductor: &Conductor, n: usize) -> (Vec<usize>, Duration) {
    let started = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let conductor = conductor.clone();
            tokio::spawn(async move {
                let mut chat = conductor.chat();
                chat.send_collect(&format!("Say something about the number {i}."))
                    .await
                    .unwrap();
                chat.pool_host().unwrap_or(0)
            })
        })
        .collect();
    let mut hosts = Vec::new();
    for task in tasks {
        hosts.push(task.await.unwrap());
    }
    (hosts, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_conversations_spread_over_two_real_hosts() {
    let Some(hosts) = real_pool() else { return };
    let _one = SERVERS.lock().await;
    let pool = conductor(&hosts[..2]);
    // Warm both (the model loads once per host), then measure.
    concurrent(&pool, 4).await;
    let mut one = Settings::defaults();
    one.host = hosts[0].parse().unwrap();
    one.model = "tiny-det".into();
    one.gpu_policy = GpuPolicy::Off;
    let single = Conductor::from_settings(&one).unwrap();
    let (_, one_host) = concurrent(&single, 16).await;
    let (placed, two_hosts) = concurrent(&pool, 16).await;
    let on_first = placed.iter().filter(|&&h| h == 0).count();
    eprintln!(
        "16 concurrent conversations: {on_first} on host 0, {} on host 1; {:.2} s on two hosts vs {:.2} s on one",
        16 - on_first,
        two_hosts.as_secs_f64(),
        one_host.as_secs_f64()
    );
    assert!((4..=12).contains(&on_first), "{placed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_chat_stays_on_its_host() {
    let Some(hosts) = real_pool() else { return };
    let _one = SERVERS.lock().await;
    let pool = conductor(&hosts[..2]);
    let mut chat = pool.chat();
    chat.send_collect("Hello.").await.unwrap();
    let home = chat.pool_host();
    for turn in ["And then?", "One more."] {
        chat.send_collect(turn).await.unwrap();
        assert_eq!(chat.pool_host(), home);
    }
    assert_eq!(chat.history().len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_pool_with_a_dead_host_answers_from_the_live_one() {
    let Some(hosts) = real_pool() else { return };
    let _one = SERVERS.lock().await;
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let pool = conductor(&[dead, hosts[0].clone()]);
    let started = Instant::now();
    let answer = pool.ask_collect("Hello.").await.unwrap();
    assert!(answer.completion.is_some());
    eprintln!(
        "answered past a dead host in {} ms",
        started.elapsed().as_millis()
    );
    let health = pool.backend().pool().unwrap().hosts()[0].health();
    assert_eq!(health.failures, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_fails_over_when_its_real_host_is_killed() {
    let Some(hosts) = real_pool() else { return };
    let Ok(pid) = std::env::var("CONDUCTOR_TEST_POOL_KILL_PID") else {
        eprintln!("skipped: set CONDUCTOR_TEST_POOL_KILL_PID to the first server's pid to kill it");
        return;
    };
    let _one = SERVERS.lock().await;
    let pool = conductor(&hosts[..2]);
    let mut chat = pool.chat();
    chat.send_collect("Hello.").await.unwrap();
    let home = chat.pool_host().unwrap();
    assert_eq!(home, 0, "the chat should start on the first host");
    let status = std::process::Command::new("kill")
        .arg(&pid)
        .status()
        .unwrap();
    assert!(status.success());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let answer = chat.send_collect("Still there?").await.unwrap();
    let failover = started.elapsed();
    assert!(answer.completion.is_some());
    assert_eq!(chat.pool_host(), Some(1));
    let started = Instant::now();
    chat.send_collect("And now?").await.unwrap();
    eprintln!(
        "host killed: next turn answered by the other host in {} ms (the one after: {} ms)",
        failover.as_millis(),
        started.elapsed().as_millis()
    );
}
