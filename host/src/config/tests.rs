//! The config's parsing, validation and starter, tested on text.
use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(Path::new("config/roost.toml"), text)
}

fn err(text: &str) -> ConfigError {
    match parse(text) {
        Ok(c) => panic!("expected an error, got {c:#?}"),
        Err(e) => e,
    }
}

#[test]
fn an_empty_file_is_a_valid_config_with_defaults() {
    let c = parse("").expect("empty config");
    assert_eq!(c.host, HostConfig::default());
    assert_eq!(c.limits, Limits::default());
    assert_eq!(c.roles.admin, vec!["console".to_string()]);
    assert!(c.gateways.console.enabled);
    assert!(c.host.autoload);
    assert_eq!(c.host.prefix, "!");
    assert!(c.plugins.is_empty());
    assert_eq!(c.path, Path::new("config/roost.toml"));
}

#[test]
fn a_syntax_error_points_at_its_line_and_column() {
    let e = err("[host]\nprefix = \"!\"\nlog = \"info\n");
    assert!(matches!(e, ConfigError::Syntax { .. }), "{e:?}");
    assert_eq!(e.line_col().map(|(l, _)| l), Some(3), "{e}");
    let e = err("[host]\nprefix = = \"!\"\n");
    assert_eq!(e.line_col(), Some((2, 10)), "{e}");
    assert!(e.to_string().starts_with("config/roost.toml:2:10: "), "{e}");
}

#[test]
fn columns_count_characters_not_bytes() {
    // "é" is two bytes but one column: the stray `x` is the line's 10th byte, column 9.
    let e = err("[host]\nlog=\"é\" x\n");
    assert_eq!(e.line_col(), Some((2, 9)), "{e}");
    assert_eq!(line_col("é=", 2), (1, 2));
    assert_eq!(line_col("aé\nxy", 5), (2, 2));
}

#[test]
fn an_unknown_top_level_key_names_the_expected_sections() {
    let text = "[host]\nprefix = \"!\"\n\n\n\n\n[plugin.bot]\nenabled = true\n";
    let e = err(text);
    assert!(matches!(e, ConfigError::Schema { .. }), "{e:?}");
    let shown = e.to_string();
    assert!(
        shown.starts_with("config/roost.toml:7:2: unknown field `plugin`, expected one of"),
        "{shown}"
    );
    assert!(shown.contains("`plugins`"), "{shown}");
    assert!(shown.contains("`host`"), "{shown}");
}

#[test]
fn a_misspelt_nested_key_names_its_table_line_and_the_expected_keys() {
    let text =
        "[channels.announce]\ntargets = [\"console\"]\n\n[plugins.bot.grants]\nchanels = []\n";
    let e = err(text);
    assert_eq!(e.line_col(), Some((5, 1)), "{e}");
    assert_eq!(
        e.to_string(),
        "config/roost.toml:5:1: plugins.bot.grants: unknown field `chanels`, expected one of `channels`, `admin`, `sqlite_read`, `sqlite_write`, `dns_servers`, `dns_system`, `dns_queries_per_minute`, `watch_roots`, `programs`, `process_dirs`, `env`, `shell`, `read_files`, `secrets`, `http_hosts`, `http_private`, `http_timeout_ms`, `http_response_kb`, `http_requests_per_minute`, `http_concurrent`, `webhooks`, `webhook_kb`"
    );
}

#[test]
fn a_bad_role_value_lists_the_roles() {
    let e = err("[commands.reload]\nrole = \"owner\"\n");
    assert_eq!(e.line_col(), Some((2, 8)), "{e}");
    let shown = e.to_string();
    assert!(
        shown.contains("commands.reload.role: unknown variant `owner`"),
        "{shown}"
    );
    assert!(
        shown.contains("`anyone`") && shown.contains("`admin`"),
        "{shown}"
    );
}

#[test]
fn a_value_of_the_wrong_type_says_what_was_expected() {
    let e = err("[limits]\nmemory_mb = \"lots\"\n");
    assert_eq!(e.line_col(), Some((2, 13)), "{e}");
    assert!(
        e.to_string()
            .contains("limits.memory_mb: invalid type: string \"lots\", expected u64"),
        "{e}"
    );
}

#[test]
fn memory_mb_zero_is_out_of_range_with_its_position() {
    let e = err("[limits]\nmemory_mb = 0\n");
    assert!(matches!(e, ConfigError::Invalid { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "config/roost.toml:2:13: limits.memory_mb: 0 is out of range; expected 1 to 4096 MiB"
    );
    let e = err("[plugins.x.limits]\ncall_timeout_ms = 5\n");
    assert_eq!(e.line_col(), Some((2, 19)), "{e}");
    assert!(
        e.to_string().contains("plugins.x.limits.call_timeout_ms"),
        "{e}"
    );
}

#[test]
fn a_grant_naming_a_missing_channel_alias_points_at_that_value() {
    let text = "[channels.announce]\ntargets = [\"console\"]\n\n[plugins.bot]\nenabled = true\n\n[plugins.bot.grants]\nadmin = true\nchannels = [\"announce\", \"anounce\"]\n";
    let e = err(text);
    assert_eq!(
        e.to_string(),
        "config/roost.toml:9:25: plugins.bot.grants.channels[1]: no channel alias `anounce` (known: announce)"
    );
}

#[test]
fn watch_and_process_grants_are_checked_with_their_positions() {
    let e = err("[plugins.tw.grants]\nprograms = [\"pytest\", \"bin/pytest\"]\n");
    assert_eq!(
        e.to_string(),
        "config/roost.toml:2:23: plugins.tw.grants.programs[1]: `bin/pytest` is not a program; write a name found on PATH (\"pytest\") or an absolute path"
    );
    let e = err("[plugins.tw.grants]\nenv = [\"PYTHONPATH\", \"MY-VAR\"]\n");
    assert_eq!(e.line_col(), Some((2, 22)), "{e}");
    assert!(e.to_string().contains("grants.env[1]"), "{e}");
    let e = err("[plugins.tw.grants]\nwatch_roots = [\"\"]\n");
    assert_eq!(e.line_col(), Some((2, 16)), "{e}");
    let e = err("[plugins.tw.limits]\njob_timeout_ms = 5\n");
    assert!(
        e.to_string()
            .contains("plugins.tw.limits.job_timeout_ms: 5 is out of range"),
        "{e}"
    );
    let c = Config::parse(
        Path::new("/etc/roost/roost.toml"),
        "[plugins.tw.grants]\nwatch_roots = [\"../api\"]\nprocess_dirs = [\"../api\"]\nread_files = [\"../api/.roost\"]\nprograms = [\"pytest\", \"/usr/bin/cargo\"]\nenv = [\"PYTHONPATH\"]\nshell = true\n",
    )
    .expect("valid");
    let g = &c.plugin("tw").expect("tw").grants;
    assert_eq!(g.watch_roots, vec![PathBuf::from("/etc/api")]);
    assert_eq!(g.process_dirs, vec![PathBuf::from("/etc/api")]);
    assert_eq!(g.read_files, vec![PathBuf::from("/etc/api/.roost")]);
    assert_eq!(c.base_dir(), Path::new("/etc/roost"));
    assert!(g.shell);
    assert_eq!(c.limits_for("tw").job_timeout_ms, 600_000);
}

#[test]
fn the_first_mistake_in_the_file_is_reported() {
    let text = "[plugins.bot.grants]\nchannels = [\"nope\"]\n[limits]\nmailbox = 0\n";
    let e = err(text);
    assert_eq!(e.line_col(), Some((2, 13)), "{e}");
}

#[test]
fn bad_names_and_targets_are_rejected() {
    let e = err("[plugins.Bot]\n");
    assert_eq!(e.line_col(), Some((1, 10)), "{e}");
    assert!(e.to_string().contains("not a plugin name"), "{e}");
    let e = err(&format!("[plugins.{}]\n", "a".repeat(65)));
    assert!(e.to_string().contains("not a plugin name"), "{e}");
    assert!(parse(&format!("[plugins.{}]\n", "a".repeat(64))).is_ok());
    assert!(parse("[plugins.db-diff_2]\n").is_ok());

    let e = err("[channels.a]\ntargets = [\"console\", \"discord\"]\n");
    assert_eq!(e.line_col(), Some((2, 23)), "{e}");
    let e = err("[channels.a]\ntargets = []\n");
    assert!(e.to_string().contains("at least one target"), "{e}");
    let e = err("[channels.a]\n");
    assert_eq!(e.line_col(), Some((1, 1)), "{e}");
    assert!(parse("[channels.a]\ntargets = [\"console\", \"discord:123\"]\n").is_ok());

    let e = err("[host]\nprefix = \"\"\n");
    assert_eq!(e.line_col(), Some((2, 10)), "{e}");
    let e = err("[commands.\"!reload\"]\nrole = \"trusted\"\n");
    assert!(e.to_string().contains("without the prefix"), "{e}");
}

#[test]
fn starter_parses_and_enables_the_bot_with_its_grants() {
    let c = parse(&Config::starter()).expect("starter config");
    let bot = c.plugin("bot").expect("bot section");
    assert!(bot.enabled);
    assert!(bot.grants.admin);
    assert_eq!(bot.grants.channels, vec!["announce".to_string()]);
    assert_eq!(
        c.channel_targets("announce"),
        Some(&["console".to_string()][..])
    );
    assert_eq!(c.role_of("console"), Role::Admin);
    assert!(c.gateways.console.enabled);
    assert_eq!(c.host.data_dir, Path::new("data"));
    // Every section is spelt out, so users see what they can set.
    let starter = Config::starter();
    let doc = DeTable::parse(&starter).expect("starter parses");
    for section in [
        "host",
        "limits",
        "rate_limit",
        "roles",
        "commands",
        "gateways",
        "channels",
        "plugins",
    ] {
        assert!(
            doc.get_ref().contains_key(section),
            "starter lacks [{section}]"
        );
    }
}

#[test]
fn the_repository_config_is_the_starter_with_data_at_the_repo_root() {
    let repo = include_str!("../../../config/roost.toml");
    let c = Config::parse(Path::new("config/roost.toml"), repo).expect("config/roost.toml");
    assert_eq!(c.data_dir(), Path::new("data"));
    assert_eq!(
        Config::starter().replace("data_dir = \"data\"", "data_dir = \"../data\""),
        repo,
        "config/roost.toml must stay the starter config with data_dir = \"../data\""
    );
}

#[test]
fn starter_for_keeps_data_in_the_directory_init_ran_in() {
    let repo = include_str!("../../../config/roost.toml");
    assert_eq!(Config::starter_for(Path::new(DEFAULT_CONFIG_PATH)), repo);
    assert_eq!(
        Config::starter_for(Path::new("roost.toml")),
        Config::starter()
    );
    assert_eq!(
        Config::starter_for(Path::new("./roost.toml")),
        Config::starter()
    );
    assert_eq!(
        Config::starter_for(Path::new("/etc/roost/roost.toml")),
        Config::starter()
    );
    assert_eq!(
        Config::starter_for(Path::new("../x/roost.toml")),
        Config::starter()
    );
    let deep = Config::starter_for(Path::new("a/b/roost.toml"));
    let c = Config::parse(Path::new("a/b/roost.toml"), &deep).expect("parses");
    assert_eq!(c.data_dir(), Path::new("data"));
}

#[test]
fn gateway_instances_are_named_tables_with_their_kind_and_token_sources() {
    let text = "[gateways.console]\nenabled = false\n[gateways.discord]\napi_base = \"http://127.0.0.1:9\"\ntoken_file = \"secrets/d.token\"\n[gateways.slack-work]\n[gateways.team-chat]\nkind = \"slack\"\n";
    let c = Config::parse(Path::new("/etc/roost/roost.toml"), text).expect("config");
    assert!(!c.gateways.console.enabled);
    let d = &c.gateways.instances["discord"];
    assert_eq!(d.kind_for("discord"), Some(GatewayKind::Discord));
    assert_eq!(
        d.token_file.as_deref(),
        Some(Path::new("/etc/roost/secrets/d.token"))
    );
    assert_eq!(d.token_env_for("discord"), "ROOST_DISCORD_TOKEN");
    let s = &c.gateways.instances["slack-work"];
    assert_eq!(s.kind_for("slack-work"), Some(GatewayKind::Slack));
    assert_eq!(
        s.app_token_env_for("slack-work"),
        "ROOST_SLACK_WORK_APP_TOKEN"
    );
    assert_eq!(
        c.gateways.instances["team-chat"].kind_for("team-chat"),
        Some(GatewayKind::Slack)
    );

    let e = err("[gateways.chat]\nenabled = true\n");
    assert_eq!(e.line_col(), Some((1, 11)), "{e}");
    assert!(e.to_string().contains("set kind = \"discord\""), "{e}");
    let e = err("[gateways.discord]\napi_base = \"discord.example\"\n");
    assert_eq!(e.line_col(), Some((2, 12)), "{e}");
    let e = err("[gateways.discord]\ntoken = \"secret\"\n");
    assert!(e.to_string().contains("unknown field `token`"), "{e}");
}

#[test]
fn role_of_prefers_admin_then_trusted_then_anyone() {
    let c = parse("[roles]\nadmin = [\"discord:1\"]\ntrusted = [\"discord:1\", \"slack:2\"]\n")
        .expect("config");
    assert_eq!(c.role_of("discord:1"), Role::Admin);
    assert_eq!(c.role_of("slack:2"), Role::Trusted);
    assert_eq!(c.role_of("console"), Role::Anyone);
    assert!(Role::Admin > Role::Trusted && Role::Trusted > Role::Anyone);
}

#[test]
fn command_overrides_are_looked_up_by_name() {
    let c = parse("[commands.reload]\nrole = \"trusted\"\n").expect("config");
    assert_eq!(c.command_role("reload"), Some(Role::Trusted));
    assert_eq!(c.command_role("ping"), None);
}

#[test]
fn limits_for_merges_plugin_fields_over_the_globals() {
    let text = "[limits]\nmemory_mb = 128\nmailbox = 10\n[plugins.big.limits]\nmemory_mb = 512\n";
    let c = parse(text).expect("config");
    assert_eq!(
        c.limits_for("big"),
        Limits {
            memory_mb: 512,
            call_timeout_ms: 2000,
            mailbox: 10,
            ..Limits::default()
        }
    );
    assert_eq!(
        c.limits_for("unknown"),
        Limits {
            memory_mb: 128,
            call_timeout_ms: 2000,
            mailbox: 10,
            ..Limits::default()
        }
    );
}

#[test]
fn a_python_plugin_gets_python_memory_mb_unless_its_own_limits_set_memory_mb() {
    use crate::runtime::component_kind::ComponentKind::{Native, Python};
    let c = parse("[plugins.own.limits]\nmemory_mb = 40\n").expect("config");
    assert_eq!(c.limits_for_component("py", Python).memory_mb, 128);
    assert_eq!(c.limits_for_component("rs", Native).memory_mb, 64);
    assert_eq!(c.limits_for_component("own", Python).memory_mb, 40);
    assert_eq!(c.limits_for_component("own", Native).memory_mb, 40);

    let c = parse("[limits]\nmemory_mb = 32\npython_memory_mb = 96\n").expect("config");
    assert_eq!(c.limits_for_component("py", Python).memory_mb, 96);
    assert_eq!(c.limits_for_component("rs", Native).memory_mb, 32);
    // A global memory_mb above python_memory_mb is not lowered for Python plugins.
    let c = parse("[limits]\nmemory_mb = 512\n").expect("config");
    assert_eq!(c.limits_for_component("py", Python).memory_mb, 512);
}

#[test]
fn python_memory_mb_is_range_checked_and_only_global() {
    let e = err("[limits]\npython_memory_mb = 0\n");
    assert_eq!(
        e.to_string(),
        "config/roost.toml:2:20: limits.python_memory_mb: 0 is out of range; expected 1 to 4096 MiB"
    );
    let e = err("[plugins.x.limits]\npython_memory_mb = 100\n");
    assert!(e.to_string().contains("python_memory_mb"), "{e}");
}

#[test]
fn relative_paths_resolve_against_the_config_files_directory() {
    let text = "[host]\ndata_dir = \"../data\"\n[plugins.x]\npath = \"wasm/x.wasm\"\n[plugins.y]\npath = \"/abs/y.wasm\"\n";
    let c = Config::parse(Path::new("/etc/roost/roost.toml"), text).expect("config");
    assert_eq!(c.data_dir(), Path::new("/etc/data"));
    assert_eq!(c.plugins_dir(), Path::new("/etc/data/plugins"));
    assert_eq!(c.socket_path(), Path::new("/etc/data/roost.sock"));
    assert_eq!(
        c.plugin("x").and_then(|p| p.path.as_deref()),
        Some(Path::new("/etc/roost/wasm/x.wasm"))
    );
    assert_eq!(
        c.plugin("y").and_then(|p| p.path.as_deref()),
        Some(Path::new("/abs/y.wasm"))
    );

    let c = Config::parse(
        Path::new("/etc/roost/roost.toml"),
        "[host]\nplugins_dir = \"enabled\"\n",
    )
    .expect("config");
    assert_eq!(c.plugins_dir(), Path::new("/etc/roost/enabled"));
    // A bare file name has no directory: paths stay relative to the working directory.
    let c = Config::parse(Path::new("roost.toml"), "").expect("config");
    assert_eq!(c.data_dir(), Path::new("data"));
    // `..` that has nothing to fold into stays.
    let c =
        Config::parse(Path::new("roost.toml"), "[host]\ndata_dir = \"../d\"\n").expect("config");
    assert_eq!(c.data_dir(), Path::new("../d"));
}

#[test]
fn plugin_config_becomes_json() {
    let text = "[plugins.w.config]\nroot = \"src\"\nn = 3\nratio = 0.5\nwhen = 1979-05-27T07:32:00Z\nlist = [1, \"a\"]\n[plugins.w.config.nested]\nok = true\n";
    let c = parse(text).expect("config");
    let json: serde_json::Value =
        serde_json::from_str(&c.plugin("w").expect("w").config_json()).expect("json");
    assert_eq!(
        json,
        serde_json::json!({
            "root": "src", "n": 3, "ratio": 0.5, "when": "1979-05-27T07:32:00Z",
            "list": [1, "a"], "nested": {"ok": true}
        })
    );
    assert_eq!(PluginConfig::default().config_json(), "{}");
}

#[test]
fn load_reports_a_missing_file_with_its_path() {
    let e = Config::load(Path::new("/nonexistent/roost.toml")).expect_err("missing file");
    assert!(matches!(e, ConfigError::Io { .. }));
    assert!(
        e.to_string().starts_with("/nonexistent/roost.toml: "),
        "{e}"
    );
    assert_eq!(e.line_col(), None);
}

#[test]
fn a_reload_can_compare_plugin_sections() {
    let a = parse("[plugins.x.config]\nk = 1\n").expect("a");
    let b = parse("[plugins.x.config]\nk = 2\n").expect("b");
    assert_ne!(a.plugin("x"), b.plugin("x"));
    assert_eq!(a.limits_for("x"), b.limits_for("x"));
}

#[test]
fn the_http_server_is_off_by_default_and_loopback_needs_no_token() {
    assert_eq!(parse("").expect("empty").http.listen_addr(), None);
    let c = parse("[http]\nlisten = \"127.0.0.1:8750\"\n").expect("loopback");
    assert_eq!(
        c.http.listen_addr(),
        Some("127.0.0.1:8750".parse().unwrap())
    );
    let c = parse("[http]\nlisten = \"[::1]:0\"\n").expect("ipv6 loopback");
    assert!(c.http.token_file.is_none());
}

#[test]
fn a_non_loopback_http_address_needs_a_token_file() {
    let e = err("[http]\nlisten = \"0.0.0.0:8750\"\n");
    assert_eq!(e.line_col(), Some((2, 10)), "{e}");
    assert!(e.to_string().contains("set token_file"), "{e}");
    let c = parse("[http]\nlisten = \"0.0.0.0:8750\"\ntoken_file = \"secrets/http.token\"\n")
        .expect("with a token");
    assert_eq!(
        c.http.token_file.as_deref(),
        Some(Path::new("config/secrets/http.token"))
    );
    let e = err("[http]\nlisten = \"localhost\"\n");
    assert!(e.to_string().contains("not an address"), "{e}");
}

#[test]
fn a_store_url_is_parsed_and_its_password_file_resolved() {
    let c = parse(
        "[store]\nurl = \"postgres://roost@db.example:5432/roost\"\npassword_file = \"pg.pw\"\n",
    )
    .expect("valid");
    assert_eq!(
        c.store.url.as_deref(),
        Some("postgres://roost@db.example:5432/roost")
    );
    assert_eq!(
        c.store.password_file.as_deref(),
        Some(Path::new("config/pg.pw"))
    );
    assert_eq!(parse("").expect("valid").store, StoreConfig::default());
}

#[test]
fn a_store_url_with_a_password_is_refused_without_echoing_it() {
    let e = err("[store]\nurl = \"postgres://roost:hunter2@db.example/roost\"\n");
    let text = e.to_string();
    assert!(
        text.starts_with(
            "config/roost.toml:2:7: store.url: must not hold the password; set ROOST_STORE_PASSWORD"
        ),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn a_store_url_that_is_not_postgres_points_at_its_value() {
    let e = err("[store]\nurl = \"mysql://roost@db/roost\"\n");
    assert!(
        e.to_string()
            .starts_with("config/roost.toml:2:7: store.url: must be a Postgres URL"),
        "{e}"
    );
    let e = err("[store]\npassword_file = \"pw\"\n");
    assert!(
        e.to_string()
            .contains("store.password_file: is only used with url"),
        "{e}"
    );
}

#[test]
fn run_on_names_a_hub_of_a_shared_store() {
    let shared = "[store]\nurl = \"postgres://roost@db.example/roost\"\n";
    let c = parse(&format!("{shared}[plugins.tw]\nrun_on = \"laptop\"\n")).expect("valid");
    assert_eq!(
        c.plugin("tw").and_then(|p| p.run_on.as_deref()),
        Some("laptop")
    );
    let e = err("[plugins.tw]\nrun_on = \"laptop\"\n").to_string();
    assert!(
        e.starts_with(
            "config/roost.toml:2:10: plugins.tw.run_on: pins the plugin to one of several hubs"
        ),
        "{e}"
    );
    let e = err(&format!("{shared}[plugins.tw]\nrun_on = \"my laptop\"\n")).to_string();
    assert!(
        e.contains("plugins.tw.run_on: \"my laptop\" is not a hub name"),
        "{e}"
    );
}
