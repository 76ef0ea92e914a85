use super::*;
use std::collections::HashMap;
use std::path::Path;

#[test]
fn a_bad_address_in_the_environment_is_quoted_without_its_password() {
    let err = ConfigLayer::from_env(&env(&[("OLLAMA_HOST", "http://me:hunter2@bad host")]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("OLLAMA_HOST") && !err.contains("hunter2"),
        "{err}"
    );
}

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |k| map.get(k).cloned()
}

#[test]
fn precedence_is_flags_then_env_then_file_then_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(
        &file,
        "model = \"from-file\"\npersonality = \"tutor\"\n[ollama]\nhost = \"file-host:1\"\n",
    )
    .unwrap();
    let sources = ConfigSources {
        config_file: Some(file.clone()),
        flags: ConfigLayer {
            model: Some("from-flag".into()),
            ..ConfigLayer::default()
        },
        ignore_file: false,
    };
    let loaded = LoadedConfig::load_with(
        sources,
        &env(&[("CONDUCTOR_MODEL", "from-env"), ("OLLAMA_HOST", "env-host")]),
        None,
    )
    .unwrap();
    let s = &loaded.settings;
    assert_eq!(s.model, "from-flag");
    assert_eq!(s.host.to_string(), "http://env-host:11434");
    assert_eq!(s.personality.as_str(), "tutor");
    assert_eq!(s.gpu_policy, GpuPolicy::Enforce);
    let lines = loaded.explain();
    let origin = |key: &str| {
        lines
            .iter()
            .find(|l| l.key == key)
            .map(|l| l.origin.clone())
    };
    assert_eq!(origin("model"), Some(Origin::Flag));
    assert_eq!(origin("ollama.host"), Some(Origin::Env));
    assert_eq!(origin("personality"), Some(Origin::File(file)));
    assert_eq!(origin("gpu.policy"), Some(Origin::Default));
}

#[test]
fn defaults_without_any_source() {
    let loaded = LoadedConfig::load_with(ConfigSources::default(), &env(&[]), None).unwrap();
    assert_eq!(loaded.settings.model, DEFAULT_MODEL);
    assert_eq!(loaded.settings.personality.as_str(), DEFAULT_PERSONALITY);
    assert_eq!(loaded.settings.host.to_string(), "http://127.0.0.1:11434");
    assert_eq!(Settings::defaults().model, DEFAULT_MODEL);
}

#[test]
fn file_errors_name_file_line_and_column() {
    let path = Path::new("/etc/conductor.toml");
    let err =
        ConfigLayer::from_toml(path, "model = \"x\"\n[gpu]\npolicy = \"maybe\"\n").unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("/etc/conductor.toml:3:10: "), "{text}");
    assert!(text.contains("enforce"), "{text}");

    let err = ConfigLayer::from_toml(path, "modle = \"x\"\n").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("/etc/conductor.toml:1:1: unknown field `modle`"),
        "{err}"
    );

    let err = ConfigLayer::from_toml(path, "[options]\nnum_ctx = \"big\"\n").unwrap_err();
    assert!(
        err.to_string().starts_with("/etc/conductor.toml:2:11: "),
        "{err}"
    );

    let err = ConfigLayer::from_toml(path, "[ollama]\nhost = \"ftp://x\"\n").unwrap_err();
    assert!(err.to_string().contains("unsupported scheme"), "{err}");

    let err = ConfigLayer::from_toml(path, "[gpu]\nmin_fraction = 1.5\n").unwrap_err();
    assert!(err.to_string().contains("between 0.0 and 1.0"), "{err}");

    let err = ConfigLayer::from_toml(path, "personality = \"../etc/passwd\"\n").unwrap_err();
    assert!(
        err.to_string().contains("invalid personality name"),
        "{err}"
    );
}

#[test]
fn env_errors_name_the_variable() {
    let err = ConfigLayer::from_env(&env(&[("OLLAMA_HOST", "x:notaport")])).unwrap_err();
    assert!(
        err.to_string().contains("environment variable OLLAMA_HOST"),
        "{err}"
    );
    let err = ConfigLayer::from_env(&env(&[("CONDUCTOR_GPU_POLICY", "sometimes")])).unwrap_err();
    assert!(err.to_string().contains("CONDUCTOR_GPU_POLICY"), "{err}");
}

#[test]
fn an_explicit_config_file_must_exist() {
    let sources = ConfigSources {
        config_file: Some(PathBuf::from("/nonexistent/conductor.toml")),
        ..ConfigSources::default()
    };
    let err = LoadedConfig::load_with(sources, &env(&[]), None).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
}

#[test]
fn token_never_shows() {
    let loaded = LoadedConfig::load_with(
        ConfigSources::default(),
        &env(&[("CONDUCTOR_OLLAMA_TOKEN", "sk-very-secret")]),
        None,
    )
    .unwrap();
    let debug = format!("{:?}", loaded);
    assert!(!debug.contains("sk-very-secret"));
    let explained = format!("{:?}", loaded.explain());
    assert!(!explained.contains("sk-very-secret"));
    assert_eq!(
        loaded.settings.token.as_ref().map(Secret::expose),
        Some("sk-very-secret")
    );
}

fn load(file_text: &str, vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, file_text).unwrap();
    let sources = ConfigSources {
        config_file: Some(file),
        ..ConfigSources::default()
    };
    LoadedConfig::load_with(sources, &env(vars), None).map(|c| c.settings)
}

#[test]
fn a_pool_in_the_file_is_pinned_to_one_host_by_ollama_host_and_replaced_by_its_variable() {
    let file = "[ollama]\nhosts = [\"gpu1:11434\", \"gpu2:11434\"]\n";
    let pool = load(file, &[]).unwrap();
    assert_eq!(pool.hosts.len(), 2);
    assert_eq!(pool.host.to_string(), "http://gpu1:11434");
    let pinned = load(file, &[("OLLAMA_HOST", "other:1")]).unwrap();
    assert!(pinned.hosts.is_empty());
    assert_eq!(pinned.host.to_string(), "http://other:1");
    let from_env = load(
        file,
        &[
            ("CONDUCTOR_OLLAMA_HOSTS", "a:1, b:2,c:3"),
            ("OLLAMA_HOST", "x:1"),
        ],
    )
    .unwrap();
    let names: Vec<String> = from_env.hosts.iter().map(ToString::to_string).collect();
    assert_eq!(names, ["http://a:1", "http://b:2", "http://c:3"]);
    // One host in the list is a single host, not a pool.
    let one = load("[ollama]\nhosts = [\"solo:5\"]\n", &[]).unwrap();
    assert!(one.hosts.is_empty());
    assert_eq!(one.host.to_string(), "http://solo:5");
}

#[test]
fn a_bad_pool_names_the_key_or_the_variable() {
    let empty = load("[ollama]\nhosts = []\n", &[]).unwrap_err().to_string();
    assert!(empty.contains("ollama.hosts"), "{empty}");
    let twice = load("[ollama]\nhosts = [\"a:1\", \"http://a:1\"]\n", &[])
        .unwrap_err()
        .to_string();
    assert!(twice.contains("listed twice"), "{twice}");
    let bad = load("", &[("CONDUCTOR_OLLAMA_HOSTS", "a:1,bad host")])
        .unwrap_err()
        .to_string();
    assert!(bad.contains("CONDUCTOR_OLLAMA_HOSTS"), "{bad}");
}

#[test]
fn backend_kind_from_file_env_and_default() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(
        &file,
        "[backend]\nkind = \"openai\"\n[ollama]\nhost = \"http://gpu:8000/v1\"\n",
    )
    .unwrap();
    let load = |vars: &[(&str, &str)]| {
        LoadedConfig::load_with(
            ConfigSources {
                config_file: Some(file.clone()),
                ..ConfigSources::default()
            },
            &env(vars),
            None,
        )
    };
    let loaded = load(&[]).unwrap();
    assert_eq!(loaded.settings.backend, BackendKind::OpenAi);
    assert_eq!(
        loaded.settings.host.join("/chat/completions"),
        "http://gpu:8000/v1/chat/completions"
    );
    assert!(
        loaded
            .explain()
            .iter()
            .any(|l| l.key == "backend.kind" && l.value == "openai")
    );
    let loaded = load(&[("CONDUCTOR_BACKEND", "ollama")]).unwrap();
    assert_eq!(loaded.settings.backend, BackendKind::Ollama);
    let err = load(&[("CONDUCTOR_BACKEND", "vllm")])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("CONDUCTOR_BACKEND") && err.contains("ollama or openai"),
        "{err}"
    );
    assert_eq!(Settings::defaults().backend, BackendKind::Ollama);
    std::fs::write(&file, "[backend]\nkind = \"tgi\"\n").unwrap();
    let err = load(&[]).unwrap_err().to_string();
    assert!(
        err.contains("c.toml:2:") && err.contains("ollama or openai"),
        "{err}"
    );
}

#[test]
fn chat_theme_is_layered_file_then_env_then_flags() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "[chat]\ntheme = \"light\"\n").unwrap();
    let load = |env_pairs: &[(&str, &str)], flag: Option<ThemeChoice>| {
        let sources = ConfigSources {
            config_file: Some(file.clone()),
            flags: ConfigLayer {
                chat: ChatLayer { theme: flag },
                ..ConfigLayer::default()
            },
            ignore_file: false,
        };
        let loaded = LoadedConfig::load_with(sources, &env(env_pairs), None).unwrap();
        let line = loaded
            .explain()
            .into_iter()
            .find(|l| l.key == "chat.theme")
            .unwrap();
        (loaded.settings.theme, line.value, line.origin)
    };
    assert_eq!(
        load(&[], None),
        (
            ThemeChoice::Light,
            "light".into(),
            Origin::File(file.clone())
        )
    );
    assert_eq!(
        load(&[("CONDUCTOR_THEME", "Dark")], None),
        (ThemeChoice::Dark, "dark".into(), Origin::Env)
    );
    assert_eq!(
        load(&[("CONDUCTOR_THEME", "dark")], Some(ThemeChoice::Auto)),
        (ThemeChoice::Auto, "auto".into(), Origin::Flag)
    );
    // An empty variable counts as unset.
    assert_eq!(load(&[("CONDUCTOR_THEME", "")], None).0, ThemeChoice::Light);
}

#[test]
fn chat_theme_defaults_to_auto() {
    let loaded = LoadedConfig::load_with(ConfigSources::default(), &env(&[]), None).unwrap();
    assert_eq!(loaded.settings.theme, ThemeChoice::Auto);
    let line = loaded
        .explain()
        .into_iter()
        .find(|l| l.key == "chat.theme")
        .unwrap();
    assert_eq!(
        (line.value.as_str(), line.origin),
        ("auto", Origin::Default)
    );
    assert_eq!(Settings::defaults().theme, ThemeChoice::Auto);
}

#[test]
fn a_bad_chat_theme_names_its_source_and_the_choices() {
    let err = ConfigLayer::from_env(&env(&[("CONDUCTOR_THEME", "solarized")]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("CONDUCTOR_THEME")
            && err.contains("solarized")
            && err.contains("auto, dark, light"),
        "{err}"
    );
    let err = ConfigLayer::from_toml(Path::new("c.toml"), "[chat]\ntheme = \"blue\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("c.toml:2:") && err.contains("blue") && err.contains("`light`"),
        "{err}"
    );
    let err = ConfigLayer::from_toml(Path::new("c.toml"), "[chat]\ncolours = \"x\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("colours"), "{err}");
}
