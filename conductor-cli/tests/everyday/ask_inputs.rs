//! `ask -s`, `-f` and `-o`: the system prompt, attached files and model options.

use std::process::Command;
use std::time::{Duration, Instant};

use conductor_tests::Residency;

use crate::common::{Env, code, run_with, stderr};
use crate::support::{json, path_arg};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_s_is_system() {
    let env = Env::new().await;
    env.ollama.reply_with(&["ok"]);
    let out = env
        .run(&["ask", "--no-personality", "-s", "answer in French", "hi"])
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let messages = env.ollama.requests_to("/api/chat")[0].messages();
    assert_eq!(messages[0], ("system".into(), "answer in French".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attached_files_come_first_in_order_then_the_question_then_stdin() {
    let env = Env::new().await;
    env.ollama.reply_with(&["ok"]);
    std::fs::create_dir_all(env.path("src")).unwrap();
    std::fs::write(env.path("src/a.rs"), "fn a() {}\n").unwrap();
    std::fs::write(env.path("notes.md"), "use ```code``` fences").unwrap();
    let mut cmd = env.cmd(&["ask", "-f", "src/a.rs", "--file", "notes.md", "review"]);
    cmd.current_dir(env.home.path());
    let out = run_with(cmd, Some(b"diff --git x\n".to_vec())).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let messages = env.ollama.requests_to("/api/chat")[0].messages();
    let user = &messages.last().unwrap().1;
    assert_eq!(
        user,
        "File: src/a.rs\n```rs\nfn a() {}\n```\n\n\
         File: notes.md\n````md\nuse ```code``` fences\n````\n\n\
         review\n\ndiff --git x\n"
    );
    // Files alone are a question.
    let mut cmd = env.cmd(&["ask", "-f", "src/a.rs"]);
    cmd.current_dir(env.home.path());
    let out = run_with(cmd, None).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let messages = env.ollama.requests_to("/api/chat")[1].messages();
    assert_eq!(
        messages.last().unwrap().1,
        "File: src/a.rs\n```rs\nfn a() {}\n```"
    );
    // Files do not excuse bad stdin.
    let mut cmd = env.cmd(&["ask", "-f", "src/a.rs"]);
    cmd.current_dir(env.home.path());
    let out = run_with(cmd, Some(b"caf\xe9".to_vec())).await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("stdin is not UTF-8"),
        "{}",
        stderr(&out)
    );
    assert_eq!(env.ollama.requests_to("/api/chat").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_that_cannot_be_attached_are_refused_by_name_without_blocking() {
    let env = Env::new().await;
    let dir = env.path("adir");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(env.path("binary.bin"), b"ELF\0\x01\x02").unwrap();
    std::fs::write(env.path("latin1.txt"), b"caf\xe9\n").unwrap();
    std::fs::write(env.path("big.txt"), vec![b'a'; (256 << 10) + 1]).unwrap();
    for i in 0..5 {
        std::fs::write(env.path(&format!("part{i}.txt")), vec![b'a'; 250 << 10]).unwrap();
    }
    let fifo = env.path("pipe");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let cases: Vec<(Vec<String>, &str, &str)> = vec![
        (vec![path_arg(&dir)], "adir", "a directory"),
        (vec![path_arg(&fifo)], "pipe", "FIFO"),
        (
            vec![path_arg(&env.path("binary.bin"))],
            "binary.bin",
            "NUL byte at offset 3",
        ),
        (
            vec![path_arg(&env.path("latin1.txt"))],
            "latin1.txt",
            "not UTF-8",
        ),
        (
            vec![path_arg(&env.path("big.txt"))],
            "big.txt",
            "larger than 256 KiB",
        ),
        (
            vec![path_arg(&env.path("missing.txt"))],
            "missing.txt",
            "No such file",
        ),
        (
            (0..5)
                .map(|i| path_arg(&env.path(&format!("part{i}.txt"))))
                .collect(),
            "part4.txt",
            "more than the 1024 KiB allowed in all",
        ),
    ];
    for (files, name, why) in cases {
        let mut args = vec!["ask".to_owned()];
        for file in &files {
            args.extend(["-f".to_owned(), file.clone()]);
        }
        args.push("explain".to_owned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let started = Instant::now();
        let out = env.run(&args).await;
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{name} blocked"
        );
        assert_eq!(code(&out), 2, "{name}: {}", stderr(&out));
        let text = stderr(&out);
        assert!(text.contains(name) && text.contains(why), "{name}: {text}");
    }
    assert!(env.ollama.requests_to("/api/chat").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_reach_the_server_typed() {
    let env = Env::new().await;
    env.ollama.reply_with(&["ok"]);
    let out = env
        .run(&[
            "ask",
            "-o",
            "temperature=0.2",
            "-o",
            "num_ctx=8192",
            "-o",
            "stop=END",
            "--option",
            "stop=a,b",
            "-o",
            "seed=7",
            "-o",
            "use_mmap=false",
            "-o",
            "mirostat=2",
            "-o",
            "mirostat_tau=4.5",
            "-o",
            "penalize_newline=true",
            "hi",
        ])
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        env.last_chat_options(),
        serde_json::json!({
            "num_ctx": 8192, "temperature": 0.2, "seed": 7, "use_mmap": false,
            "stop": ["END", "a,b"],
            "mirostat": 2, "mirostat_tau": 4.5, "penalize_newline": true,
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn option_num_ctx_is_the_same_as_the_flag_and_the_gpu_guard_sees_options() {
    let env = Env::new().await;
    env.ollama.reply_with(&["ok"]);
    let out = env.run(&["ask", "--num-ctx", "8192", "hi"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let by_flag = env.last_chat_options();
    let loads_by_flag = env.ollama.requests_to("/api/generate");
    env.ollama.evict_all();
    let out = env.run(&["ask", "-o", "num_ctx=8192", "hi"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(env.last_chat_options(), by_flag);
    let loads = env.ollama.requests_to("/api/generate");
    assert_eq!(
        loads.last().unwrap().json.as_ref().unwrap()["options"],
        loads_by_flag.last().unwrap().json.as_ref().unwrap()["options"]
    );
    // The same value twice is fine; two different ones are a usage error.
    let out = env
        .run(&["ask", "--num-ctx", "8192", "-o", "num_ctx=8192", "hi"])
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = env
        .run(&["ask", "--num-ctx", "4096", "-o", "num_ctx=8192", "hi"])
        .await;
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("disagree"), "{}", stderr(&out));

    // num_gpu through -o is a runner option the guard checks: a layer cap that leaves the
    // model split is refused under enforce, before anything is generated.
    env.ollama.set_residency_if_option(
        "llama3.2:3b",
        "num_gpu",
        Residency::split(4_152_782_848, 2_000_000_000),
    );
    // (From a cold start: /api/ps does not report num_gpu, so the guard cannot tell that a
    // loaded model was loaded with another one.)
    env.ollama.evict_all();
    let chats = env.ollama.requests_to("/api/chat").len();
    let out = env.run(&["ask", "-o", "num_gpu=1", "hi"]).await;
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not fully on the GPU"),
        "{}",
        stderr(&out)
    );
    assert_eq!(env.ollama.requests_to("/api/chat").len(), chats);
    let preload = env.ollama.requests_to("/api/generate").pop().unwrap();
    assert_eq!(preload.json.unwrap()["options"]["num_gpu"], 1);
    // And a context below the minimum is the configuration error --num-ctx gives.
    let by_option = env.run(&["ask", "-o", "num_ctx=100", "hi"]).await;
    let by_flag = env.run(&["ask", "--num-ctx", "100", "hi"]).await;
    assert_eq!(code(&by_option), code(&by_flag));
    assert!(
        stderr(&by_option).contains("num_ctx"),
        "{}",
        stderr(&by_option)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_options_are_usage_errors_that_say_what_is_wanted() {
    let env = Env::new().await;
    for (option, wanted) in [
        ("temperature=hot", "temperature takes a number"),
        ("num_ctx=-3", "num_ctx takes a whole number of at least 1"),
        ("num_ctx", "expected KEY=VALUE"),
        ("use_mmap=maybe", "true or false"),
        ("top_k=", "give a value"),
        ("Top K=1", "option name"),
    ] {
        let out = env.run(&["ask", "-o", option, "hi"]).await;
        assert_eq!(code(&out), 2, "{option}: {}", stderr(&out));
        assert!(stderr(&out).contains(wanted), "{option}: {}", stderr(&out));
    }
    // With --json the failure is a JSON object too.
    let out = env
        .run(&["ask", "--json", "-o", "temperature=hot", "hi"])
        .await;
    assert_eq!(code(&out), 2);
    assert_eq!(json(&out)["error"]["kind"], "usage");
    assert!(env.ollama.requests_to("/api/chat").is_empty());
}
