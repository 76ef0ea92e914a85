//! `config path` and `config init`: a starter file, read back, never overwritten, written whole.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::{self, Env, code, run_with, stderr, stdout};
use crate::support::{json, path_arg};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_init_writes_a_starter_that_conductor_reads_and_never_overwrites() {
    let env = Env::new().await;
    let default = env.path(".config/conductor/conductor.toml");
    let out = env.run(&["config", "path"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let line = stdout(&out)
        .lines()
        .find(|l| l.contains(&path_arg(&default)))
        .unwrap()
        .to_owned();
    assert!(line.contains("missing (optional"), "{line}");

    let out = env.run(&["config", "init"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("wrote {}\n", default.display()));
    let text = std::fs::read_to_string(&default).unwrap();
    assert!(text.contains("# [chat]") && text.contains("# theme = \"auto\""));
    // conductor reads it (everything commented: all defaults).
    let out = env.run(&["config", "show", "--json"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["config_file"], path_arg(&default));
    let out = env.run(&["config", "path", "--json"]).await;
    let paths = json(&out);
    assert_eq!(paths["config_files"][0]["used"], true);
    assert_eq!(paths["config_files"][0]["exists"], true);
    let whats: Vec<&str> = paths["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["what"].as_str().unwrap())
        .collect();
    for what in [
        "personalities",
        "GPU fixes (state)",
        "chat sessions",
        "chat log",
    ] {
        assert!(whats.contains(&what), "{what} in {whats:?}");
    }

    // Never over an existing file without --force.
    std::fs::write(&default, "model = \"mine\"\n").unwrap();
    let out = env.run(&["config", "init"]).await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(&default).unwrap(),
        "model = \"mine\"\n"
    );
    let out = env.run(&["config", "init", "--force"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&default).unwrap(), text);

    // --path creates directories, and says how to use a file conductor does not read itself.
    let elsewhere = env.path("deep/er/c.toml");
    let out = env
        .run(&["config", "init", "--path", &path_arg(&elsewhere)])
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("--config"), "{}", stderr(&out));
    // --config names the target, and is then the file used.
    let named = env.path("named.toml");
    let out = env
        .run(&["config", "init", "--config", &path_arg(&named)])
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(named.exists());
    let out = env
        .run(&["config", "path", "--json", "--config", &path_arg(&named)])
        .await;
    let paths = json(&out);
    assert_eq!(paths["config_files"][0]["source"], "--config");
    assert_eq!(paths["config_files"][0]["used"], true);
    assert_eq!(paths["config_files"][1]["used"], false);
    // A directory is not a file.
    let out = env
        .run(&["config", "init", "--path", &path_arg(env.home.path())])
        .await;
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("is a directory"), "{}", stderr(&out));
    // A configuration that does not load is reported, not fatal, and CONDUCTOR_CONFIG shows
    // as the file used over the platform one.
    let broken = env.path("broken.toml");
    std::fs::write(&broken, "model = [\n").unwrap();
    let mut cmd = env.cmd(&["config", "path", "--json"]);
    cmd.env("CONDUCTOR_CONFIG", &broken);
    let out = run_with(cmd, None).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let paths = json(&out);
    assert_eq!(paths["config_files"][0]["source"], "CONDUCTOR_CONFIG");
    assert_eq!(paths["config_files"][0]["used"], true);
    assert_eq!(paths["config_files"][1]["source"], "platform default");
    assert_eq!(paths["config_files"][1]["used"], false);
    assert!(
        paths["config_error"]
            .as_str()
            .unwrap()
            .contains("broken.toml:1"),
        "{paths}"
    );
    let mut cmd = env.cmd(&["config", "path"]);
    cmd.env("CONDUCTOR_CONFIG", &broken);
    let out = run_with(cmd, None).await;
    assert_eq!(code(&out), 0);
    assert!(stderr(&out).contains("does not load"), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("not used (exists)"),
        "{}",
        stdout(&out)
    );
    // --print writes nothing, and what it prints parses.
    let out = env.run(&["config", "init", "--print"]).await;
    assert_eq!(code(&out), 0);
    assert_eq!(stdout(&out), text);
}

/// `conductor ARGS` in a shell that caps the files it writes at 512 bytes (`ulimit -f 1`) and
/// ignores SIGXFSZ, so that a write past the cap fails (EFBIG) as on a full disk, even as root.
fn with_file_size_cap(env: &Env, args: &[&str]) -> Command {
    let clean = env.bare(&[]);
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg("trap '' XFSZ; ulimit -f 1; exec \"$@\"")
        .arg("sh")
        .arg(common::BIN)
        .args(args);
    for (key, value) in clean.get_envs() {
        match value {
            Some(value) => sh.env(key, value),
            None => sh.env_remove(key),
        };
    }
    sh.stdin(Stdio::null());
    sh
}

/// The names in `dir`.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_init_writes_whole_files_or_nothing() {
    let env = Env::new().await;
    let dir = env.path("cfg");
    std::fs::create_dir_all(&dir).unwrap();
    let target = dir.join("conductor.toml");
    let target_arg = path_arg(&target);
    // A write that fails half way leaves no partial file and no temporary one.
    let out = run_with(
        with_file_size_cap(&env, &["config", "init", "--path", &target_arg]),
        None,
    )
    .await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot write"), "{}", stderr(&out));
    assert!(names_in(&dir).is_empty(), "{:?}", names_in(&dir));
    // With --force, the old file survives a failed write untouched.
    std::fs::write(&target, "model = \"mine\"\n").unwrap();
    let out = run_with(
        with_file_size_cap(&env, &["config", "init", "--force", "--path", &target_arg]),
        None,
    )
    .await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "model = \"mine\"\n"
    );
    assert_eq!(names_in(&dir), ["conductor.toml"]);
    // Written, it is the user's alone (it may come to hold a token).
    let out = env
        .run(&["config", "init", "--force", "--path", &target_arg])
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        std::fs::read_to_string(&target)
            .unwrap()
            .contains("# [chat]")
    );
    assert_eq!(names_in(&dir), ["conductor.toml"]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&target).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        // A directory it may not write into: a clear error, nothing left behind (root writes
        // anyway, so this part needs an unprivileged user).
        let locked = env.path("locked");
        std::fs::create_dir_all(&locked).unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o500)).unwrap();
        if std::fs::write(locked.join("probe"), "").is_err() {
            let out = env
                .run(&[
                    "config",
                    "init",
                    "--path",
                    &path_arg(&locked.join("c.toml")),
                ])
                .await;
            assert_eq!(code(&out), 2, "{}", stderr(&out));
            let err = stderr(&out);
            assert!(
                err.contains("cannot write") && err.contains("ermission denied"),
                "{err}"
            );
            assert!(names_in(&locked).is_empty(), "{:?}", names_in(&locked));
        }
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
}
