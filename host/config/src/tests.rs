//! Loading real files from a temp dir: errors, imports and merge rules, rendering round trips, warnings.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::*;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(&path, text).unwrap();
    path
}

fn table(text: &str) -> toml::Table {
    text.parse().unwrap()
}

/// Defaults shaped like the in-tree plugins', for render and check.
fn known_plugins() -> BTreeMap<String, toml::Table> {
    BTreeMap::from([
        (
            "io.containerd.snapshotter.v1.overlayfs".to_owned(),
            table("root_path = \"\"\nupperdir_label = false\nsync_remove = false\nmount_options = []\n"),
        ),
        (
            "io.containerd.snapshotter.v1.native".to_owned(),
            table("root_path = \"\"\n"),
        ),
        ("io.containerd.content.v1.content".to_owned(), toml::Table::new()),
        (
            "io.containerd.gc.v1.scheduler".to_owned(),
            table("pause_threshold = 0.02\ndeletion_threshold = 0\nmutation_threshold = 100\nschedule_delay = \"0s\"\nstartup_delay = \"100ms\"\n"),
        ),
        (
            "io.containerd.example.v1.nested".to_owned(),
            table("[limits]\nmax = 1\n[labels]\n"),
        ),
    ])
}

fn load_text(text: &str) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    load(&write(dir.path(), "config.toml", text))
}

fn load_err(text: &str) -> (ConfigError, String) {
    let err = load_text(text).expect_err("the config should be refused");
    let message = err.to_string();
    assert!(!message.contains('\n'), "one line: {message}");
    (err, message)
}

#[test]
fn rendered_default_loads_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let known = known_plugins();
    let rendered = render(&Config::default(), &known);
    let path = write(dir.path(), "config.toml", &rendered);
    let loaded = load(&path).unwrap();
    assert_eq!(render(&loaded, &known), rendered);
    assert_eq!(loaded.root, Path::new(DEFAULT_ROOT));
    assert_eq!(loaded.state, Path::new(DEFAULT_STATE));
    assert_eq!(loaded.grpc, GrpcConfig::default());
    assert_eq!(loaded.ttrpc, TtrpcConfig::default());
    assert_eq!(loaded.debug, DebugConfig::default());
    assert_eq!(loaded.plugins, known);
    assert_eq!(loaded.sources, vec![path]);
    assert!(check_plugin_tables(&loaded, &known).is_empty());
}

#[test]
fn render_shows_every_daemon_key_and_every_known_plugin() {
    let rendered = render(&Config::default(), &known_plugins());
    for line in [
        "version = 2",
        "root = \"/var/lib/rcontainerd\"",
        "state = \"/run/rcontainerd\"",
        "plugin_dirs = []",
        "[grpc]",
        "address = \"/run/rcontainerd/rcontainerd.sock\"",
        "max_recv_message_size = 16777216",
        "[ttrpc]",
        "[debug]",
        "level = \"info\"",
        "disabled_plugins = []",
        "required_plugins = []",
        "[plugins.\"io.containerd.snapshotter.v1.overlayfs\"]",
        "upperdir_label = false",
        "[plugins.\"io.containerd.content.v1.content\"]",
        "[plugins.\"io.containerd.example.v1.nested\".limits]",
        "pause_threshold = 0.02",
    ] {
        assert!(
            rendered.lines().any(|l| l.trim() == line),
            "{line:?} missing from:\n{rendered}"
        );
    }
    // Keys the daemon does not use stay out of a default config.
    for absent in [
        "oom_score",
        "[metrics]",
        "[cgroup]",
        "tcp_address",
        "plugin_dir =",
    ] {
        assert!(!rendered.contains(absent), "{absent:?} in:\n{rendered}");
    }
}

#[test]
fn full_config_round_trips_through_render() {
    let config = load_text(
        r#"
version = 2
root = "/data/root"
state = "/data/state"
temp = "/data/tmp"
plugin_dir = "/opt/one"
plugin_dirs = ["/opt/a", "/opt/b"]
oom_score = -999
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs"]
required_plugins = ["io.containerd.snapshotter.v1.overlayfs"]

[grpc]
address = "/data/sock"
tcp_address = "127.0.0.1:1"
uid = 10
gid = 20
max_recv_message_size = 1024
max_send_message_size = 2048

[ttrpc]
address = "/data/ttrpc.sock"
uid = 11

[debug]
address = "/data/debug.sock"
level = "debug"
format = "json"

[metrics]
address = "127.0.0.1:2"
grpc_histogram = true

[cgroup]
path = "/rcontainerd"

[timeouts]
"io.containerd.timeout.shim.shutdown" = "3s"

[proxy_plugins.remote]
type = "snapshot"
address = "/run/remote.sock"

[stream_processors."io.containerd.ocicrypt.decoder.v1.tar"]
accepts = ["application/vnd.oci.image.layer.v1.tar+encrypted"]
returns = "application/vnd.oci.image.layer.v1.tar"
path = "ctd-decoder"
args = ["--decryption-keys-path", "/keys"]
env = ["A=1"]

[plugins."io.containerd.snapshotter.v1.overlayfs"]
upperdir_label = true
mount_options = ["volatile"]

[plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]
endpoint = ["https://mirror.example"]
"#,
    )
    .unwrap();
    assert_eq!(config.oom_score, -999);
    assert_eq!(config.grpc.uid, 10);
    assert_eq!(config.grpc.max_send_message_size, 2048);
    assert_eq!(config.ttrpc.address, Path::new("/data/ttrpc.sock"));
    assert_eq!(config.debug.format, "json");
    assert!(config.metrics.grpc_histogram);
    assert_eq!(config.proxy_plugins["remote"].plugin_type, "snapshot");
    assert_eq!(
        config.stream_processors["io.containerd.ocicrypt.decoder.v1.tar"].args,
        ["--decryption-keys-path", "/keys"]
    );

    let known = known_plugins();
    let first = render(&config, &known);
    let dir = tempfile::tempdir().unwrap();
    let again = load(&write(dir.path(), "dump.toml", &first)).unwrap();
    assert_eq!(render(&again, &known), first);
    // The dump carries the plugin's defaults under the config's own values.
    let overlay = &again.plugins["io.containerd.snapshotter.v1.overlayfs"];
    assert_eq!(overlay["upperdir_label"], toml::Value::Boolean(true));
    assert_eq!(overlay["sync_remove"], toml::Value::Boolean(false));
    assert!(
        first.contains("[plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"docker.io\"]")
    );
    let mut expected = config.clone();
    expected.plugins = again.plugins.clone();
    expected.sources = again.sources.clone();
    expected.origins = again.origins.clone();
    assert_eq!(again, expected);
}

#[test]
fn missing_file_names_the_file_and_the_os_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.toml");
    let err = load(&path).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, ConfigError::Read { .. }), "{err:?}");
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("No such file or directory"), "{message}");
}

#[test]
fn unreadable_file_names_the_file_and_the_os_error() {
    // A directory cannot be read as a file, even by root (who ignores permission bits).
    let dir = tempfile::tempdir().unwrap();
    let message = load(dir.path()).unwrap_err().to_string();
    assert!(
        message.contains(&dir.path().display().to_string()),
        "{message}"
    );
    assert!(message.contains("Is a directory"), "{message}");
}

#[test]
fn syntax_error_names_file_and_line() {
    let (err, message) = load_err("version = 2\n\n[grpc\naddress = \"/x\"\n");
    assert!(
        matches!(err, ConfigError::Syntax { line: 3, .. }),
        "{err:?}"
    );
    assert!(message.contains("config.toml, line 3"), "{message}");
}

#[test]
fn wrong_types_name_file_key_and_line() {
    let cases = [
        (
            "version = 2\nroot = 5\n",
            "root",
            2,
            "must be a string, found integer 5",
        ),
        (
            "version = 2\n[grpc]\naddress = \"/s\"\nuid = \"x\"\n",
            "grpc.uid",
            4,
            "must be an integer, found string \"x\"",
        ),
        (
            "version = 2\ndisabled_plugins = \"x\"\n",
            "disabled_plugins",
            2,
            "must be an array of strings, found string \"x\"",
        ),
        (
            "version = 2\nrequired_plugins = [1]\n",
            "required_plugins",
            2,
            "found an array holding integer 1",
        ),
        ("version = 2\ngrpc = 1\n", "grpc", 2, "must be a table"),
        ("version = \"2\"\n", "version", 1, "must be an integer"),
        (
            "version = 2\n[metrics]\ngrpc_histogram = \"yes\"\n",
            "metrics.grpc_histogram",
            3,
            "must be true or false",
        ),
    ];
    for (text, key, line, problem) in cases {
        let (err, message) = load_err(text);
        match &err {
            ConfigError::WrongType {
                key: k, line: l, ..
            } => {
                assert_eq!(k, key, "{message}");
                assert_eq!(*l, Some(line), "{message}");
            }
            other => panic!("expected a type error for {key}, got {other:?}"),
        }
        assert!(
            message.contains(&format!("config.toml, line {line}: `{key}`")),
            "{message}"
        );
        assert!(message.contains(problem), "{message}");
    }
}

#[test]
fn out_of_range_and_unknown_values_are_refused() {
    let (_, message) = load_err("version = 2\n[grpc]\ngid = -1\n");
    assert!(message.contains("line 3: `grpc.gid` is -1"), "{message}");
    let (_, message) = load_err("version = 2\n[debug]\nlevel = \"verbose\"\n");
    assert!(
        message.contains("`debug.level` is \"verbose\""),
        "{message}"
    );
    let (_, message) = load_err("version = 2\n[debug]\nformat = \"xml\"\n");
    assert!(message.contains("`debug.format`"), "{message}");
    let (_, message) = load_err("version = 2\ndisabled_plugins = [\"overlayfs\"]\n");
    assert!(
        message.contains("line 2: `disabled_plugins` lists \"overlayfs\""),
        "{message}"
    );
    // A version-1 style table name in a version-2 file.
    let (err, message) = load_err("version = 2\n[plugins.overlayfs]\nroot_path = \"\"\n");
    assert!(
        matches!(&err, ConfigError::InvalidValue { key, line: Some(2), .. } if key == "plugins.overlayfs"),
        "{err:?}"
    );
    assert!(message.contains("URI"), "{message}");
}

#[test]
fn proxy_plugins_need_a_known_type_and_an_address() {
    let (_, message) = load_err(
        "version = 2\n[proxy_plugins.remote]\ntype = \"snapshotter\"\naddress = \"/run/r.sock\"\n",
    );
    assert!(
        message.contains("line 3: `proxy_plugins.remote.type` is \"snapshotter\"")
            && message.contains("\"snapshot\" or \"content\""),
        "{message}"
    );
    let (_, message) =
        load_err("version = 2\n[proxy_plugins.remote]\ntype = \"content\"\naddress = \"\"\n");
    assert!(
        message.contains("line 4: `proxy_plugins.remote.address` is empty"),
        "{message}"
    );
    let (_, message) = load_err("version = 2\n[proxy_plugins.remote]\ntype = \"content\"\n");
    assert!(
        message.contains("`proxy_plugins.remote.address` is empty"),
        "{message}"
    );
    let (_, message) = load_err(
        "version = 2\n[proxy_plugins.c]\ntype = \"content\"\naddress = \"/a\"\nsnapshotter = \"x\"\n",
    );
    assert!(message.contains("snapshot proxies only"), "{message}");
    // containerd's plugin types are accepted as well as the short names.
    let config = load_text(
        "version = 2\n[proxy_plugins.s]\ntype = \"io.containerd.snapshotter.v1\"\naddress = \"unix:///a\"\nsnapshotter = \"native\"\n",
    )
    .unwrap();
    assert_eq!(config.proxy_plugins["s"].snapshotter, "native");
    let rendered = render(&config, &BTreeMap::new());
    assert!(rendered.contains("snapshotter = \"native\""), "{rendered}");
}

#[test]
fn other_config_versions_are_refused_with_an_explanation() {
    let (err, message) = load_err("version = 3\nroot = \"/x\"\n");
    assert!(matches!(
        err,
        ConfigError::Version {
            found: Some(3),
            line: Some(1),
            ..
        }
    ));
    assert!(
        message.contains("config.toml, line 1: uses config version 3"),
        "{message}"
    );
    assert!(message.contains("rcontainerd reads version 2"), "{message}");

    let (_, message) = load_err("version = 1\n[plugins.cri]\n");
    assert!(message.contains("uses config version 1"), "{message}");
    assert!(message.contains("rcontainerd reads version 2"), "{message}");

    let (err, message) = load_err("root = \"/x\"\n");
    assert!(matches!(err, ConfigError::Version { found: None, .. }));
    assert!(message.contains("no `version` key"), "{message}");
    assert!(message.contains("version 1"), "{message}");
    assert!(message.contains("add `version = 2`"), "{message}");
}

#[test]
fn imports_merge_with_containerds_rules() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(
        dir.path(),
        "config.toml",
        r#"
version = 2
root = "/main/root"
state = "/main/state"
imports = ["conf.d/*.toml"]
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs"]
[grpc]
uid = 5
[debug]
level = "debug"
[plugins."io.containerd.snapshotter.v1.overlayfs"]
root_path = "/main"
sync_remove = true
"#,
    );
    // Read in name order: 10 before 20.
    write(
        dir.path(),
        "conf.d/20-last.toml",
        "root = \"/last/root\"\n[grpc]\nuid = 7\n",
    );
    write(
        dir.path(),
        "conf.d/10-first.toml",
        r#"
root = "/first/root"
state = ""
disabled_plugins = ["io.containerd.snapshotter.v1.native", "io.containerd.snapshotter.v1.btrfs"]
required_plugins = ["io.containerd.content.v1.content"]
[grpc]
uid = 0
[debug]
level = ""
[plugins."io.containerd.snapshotter.v1.overlayfs"]
upperdir_label = true
"#,
    );
    let config = load(&main).unwrap();
    // Later files win for scalars they set to non-zero values ...
    assert_eq!(config.root, Path::new("/last/root"));
    assert_eq!(config.grpc.uid, 7);
    // ... and zero values (0, "") do not override.
    assert_eq!(config.state, Path::new("/main/state"));
    assert_eq!(config.debug.level, "debug");
    // Lists append (each URI once).
    assert_eq!(
        config.disabled_plugins,
        [
            "io.containerd.snapshotter.v1.btrfs",
            "io.containerd.snapshotter.v1.native"
        ]
    );
    assert_eq!(
        config.required_plugins,
        ["io.containerd.content.v1.content"]
    );
    // A plugin table in an import replaces the whole table.
    assert_eq!(
        config.plugins["io.containerd.snapshotter.v1.overlayfs"],
        table("upperdir_label = true\n")
    );
    assert_eq!(
        config.sources,
        [
            main.clone(),
            dir.path().join("conf.d/10-first.toml"),
            dir.path().join("conf.d/20-last.toml")
        ]
    );
    assert_eq!(config.imports, ["conf.d/*.toml"]);
}

#[test]
fn relative_imports_are_relative_to_the_importing_file() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(
        dir.path(),
        "etc/config.toml",
        "version = 2\nimports = [\"extra/a.toml\"]\n",
    );
    write(
        dir.path(),
        "etc/extra/a.toml",
        "imports = [\"b/*.toml\"]\nroot = \"/from/a\"\n",
    );
    write(dir.path(), "etc/extra/b/b.toml", "state = \"/from/b\"\n");
    let config = load(&main).unwrap();
    assert_eq!(config.root, Path::new("/from/a"));
    assert_eq!(config.state, Path::new("/from/b"));
    assert_eq!(config.sources.len(), 3);
}

#[test]
fn glob_without_matches_is_fine_but_a_missing_exact_import_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(
        dir.path(),
        "config.toml",
        "version = 2\nimports = [\"nothing/*.toml\"]\n",
    );
    assert_eq!(load(&main).unwrap().sources, [main]);

    let main = write(
        dir.path(),
        "config.toml",
        "version = 2\n\nimports = [\"/nonexistent/rcontainerd-extra.toml\"]\n",
    );
    let err = load(&main).unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, ConfigError::Import { line: Some(3), .. }),
        "{err:?}"
    );
    assert!(message.contains(&main.display().to_string()), "{message}");
    assert!(
        message.contains("/nonexistent/rcontainerd-extra.toml"),
        "{message}"
    );
    assert!(message.contains("No such file or directory"), "{message}");
}

#[test]
fn import_cycles_read_each_file_once() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(
        dir.path(),
        "a.toml",
        "version = 2\nimports = [\"b.toml\", \"./a.toml\"]\ndisabled_plugins = [\"io.containerd.x.v1.a\"]\n",
    );
    let b = write(
        dir.path(),
        "b.toml",
        "imports = [\"a.toml\", \"*.toml\"]\ndisabled_plugins = [\"io.containerd.x.v1.b\"]\n",
    );
    let config = load(&a).unwrap();
    assert_eq!(config.sources, [a, b]);
    assert_eq!(
        config.disabled_plugins,
        ["io.containerd.x.v1.a", "io.containerd.x.v1.b"]
    );
}

#[test]
fn errors_in_an_import_name_the_import() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(
        dir.path(),
        "config.toml",
        "version = 2\nimports = [\"x.toml\"]\n",
    );
    let import = write(dir.path(), "x.toml", "version = 3\n");
    let message = load(&main).unwrap_err().to_string();
    assert!(
        message.starts_with(&format!(
            "{}, line 1: uses config version 3",
            import.display()
        )),
        "{message}"
    );
    write(dir.path(), "x.toml", "\n[grpc]\nuid = true\n");
    let message = load(&main).unwrap_err().to_string();
    assert!(
        message.starts_with(&format!("{}, line 3: `grpc.uid`", import.display())),
        "{message}"
    );
}

#[test]
fn check_warns_about_unknown_keys_with_file_line_and_close_match() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(
        dir.path(),
        "config.toml",
        r#"version = 2
rot = "/x"
imports = ["extra.toml"]
[grpc]
adress = "/s"
[plugins."io.containerd.snapshotter.v1.overlayfs"]
upperdir_lable = true
sync_remove = "yes"
[plugins."io.containerd.snapshotter.v1.overlayfz"]
[plugins."io.containerd.example.v1.nested".limits]
mx = 2
[plugins."io.containerd.example.v1.nested".labels]
anything = "goes"
"#,
    );
    let extra = write(
        dir.path(),
        "extra.toml",
        "\n[plugins.\"io.containerd.snapshotter.v1.native\"]\nroot_pth = \"/n\"\n",
    );
    let config = load(&main).unwrap();
    let warnings: Vec<String> = check_plugin_tables(&config, &known_plugins())
        .iter()
        .map(ToString::to_string)
        .collect();
    let main = main.display();
    let extra = extra.display();
    let expected = [
        format!("{main}, line 2: unknown key rot; did you mean `root`?"),
        format!("{main}, line 5: unknown key grpc.adress; did you mean `address`?"),
        format!("{main}, line 11: unknown key plugins.\"io.containerd.example.v1.nested\".limits.mx; did you mean `max`?"),
        format!("{main}, line 8: plugins.\"io.containerd.snapshotter.v1.overlayfs\".sync_remove is a string, but the plugin expects true or false"),
        format!("{main}, line 7: unknown key plugins.\"io.containerd.snapshotter.v1.overlayfs\".upperdir_lable; did you mean `upperdir_label`?"),
        format!("{main}, line 9: table plugins.\"io.containerd.snapshotter.v1.overlayfz\" configures no known plugin; did you mean `io.containerd.snapshotter.v1.overlayfs`?"),
        format!("{extra}, line 3: unknown key plugins.\"io.containerd.snapshotter.v1.native\".root_pth; did you mean `root_path`?"),
    ];
    for line in &expected {
        assert!(warnings.contains(line), "missing {line:?} in {warnings:#?}");
    }
    assert_eq!(warnings.len(), expected.len(), "{warnings:#?}");
}

#[test]
fn check_without_origins_still_names_the_key() {
    let mut config = Config::default();
    config.plugins.insert(
        "io.containerd.snapshotter.v1.native".into(),
        table("rootpath = \"\"\n"),
    );
    let warnings = check_plugin_tables(&config, &known_plugins());
    assert_eq!(
        warnings.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["unknown key plugins.\"io.containerd.snapshotter.v1.native\".rootpath; did you mean `root_path`?"]
    );
}

/// The shipped files: the default must be a rendered default (so `render(load(..))` gives it back byte for byte),
/// and every example must load.
#[test]
fn shipped_config_files_load() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
    let default_path = dir.join("config.toml");
    let text = fs::read_to_string(&default_path).unwrap();
    let loaded = load(&default_path).unwrap();
    assert_eq!(render(&Config::default(), &loaded.plugins), text);
    assert_eq!(render(&loaded, &loaded.plugins), text);

    let mut examples = 0;
    for entry in fs::read_dir(dir.join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            load(&path).unwrap_or_else(|e| panic!("{e}"));
            examples += 1;
        }
    }
    assert!(examples > 0);
}

/// A config from Debian's containerd 1.6 (`containerd config default`, installed by `scripts/setup.sh`) loads,
/// keeps containerd's carried sections, and its dump round-trips.
#[test]
fn containerd_default_config_loads_and_round_trips() {
    let output = std::process::Command::new("containerd")
        .args(["config", "default"])
        .output()
        .expect("containerd must be installed for this test (scripts/setup.sh installs it)");
    assert!(output.status.success(), "{output:?}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("containerd.toml");
    fs::write(&path, &output.stdout).unwrap();
    let config = load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        config.grpc.address,
        Path::new("/run/containerd/containerd.sock")
    );
    assert_eq!(
        config.debug.level, "info",
        "an empty level keeps the default"
    );
    assert!(config.plugins.contains_key("io.containerd.grpc.v1.cri"));
    assert!(!config.stream_processors.is_empty());
    assert!(!config.timeouts.is_empty());

    let none = BTreeMap::new();
    let dump = render(&config, &none);
    let again = load(&write(dir.path(), "dump.toml", &dump)).unwrap();
    assert_eq!(render(&again, &none), dump);
    // Nothing in containerd's own default is an unknown key; only its plugins are unknown to us.
    let warnings = check_plugin_tables(&config, &none);
    assert!(
        warnings
            .iter()
            .all(|w| matches!(w.kind, WarningKind::UnknownPlugin { .. })),
        "{warnings:#?}"
    );
}
