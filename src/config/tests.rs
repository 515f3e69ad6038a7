//! The settings table, the layering and the checks, and the README's table against them.

use super::*;

#[test]
fn defaults_need_no_configuration() {
    let c = Config::resolve(&CommonArgs::default(), &ServeArgs::default()).unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.databases, ["sqlite://./classcast-data/classcast.db"]);
    assert_eq!(c.api_hosts, [""]);
    assert_eq!(c.registration(), Registration::Approval);
}

#[test]
fn flags_beat_the_file_which_beats_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        "listen = \"127.0.0.1:9000\"\ndata_dir = \"/srv/cc\"\nrequest_timeout_ms = 2000\n\
         api_hosts = [\"https://file.example/\"]\n",
    )
    .unwrap();
    let common = CommonArgs {
        config: Some(path),
        ..Default::default()
    };
    let args = ServeArgs {
        listen: Some("127.0.0.1:9100".parse().unwrap()),
        // A blank list item (`CLASSCAST_API_HOSTS=`) gives no value: the file's counts.
        api_hosts: vec![" ".into()],
        ..Default::default()
    };
    let c = Config::resolve(&common, &args).unwrap();
    assert_eq!(c.listen.port(), 9100);
    assert_eq!(c.data_dir, PathBuf::from("/srv/cc"));
    assert_eq!(c.databases, ["sqlite:///srv/cc/classcast.db"]);
    assert_eq!(c.request_timeout_ms, 2000);
    assert_eq!(c.api_hosts, ["https://file.example"]);
    assert_eq!(c.session_ttl_secs, 30 * 86_400);
}

#[test]
fn an_unknown_key_in_the_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, "lisen = \"x\"\n").unwrap();
    let common = CommonArgs {
        config: Some(path),
        ..Default::default()
    };
    let Err(err) = Config::resolve(&common, &ServeArgs::default()) else {
        panic!("accepted");
    };
    assert!(
        err.to_string()
            .ends_with("unknown setting `lisen`: did you mean `listen`?"),
        "{err}"
    );
    std::fs::write(dir.path().join("c.toml"), "colour = \"x\"\n").unwrap();
    let Err(err) = Config::resolve(&common, &ServeArgs::default()) else {
        panic!("accepted");
    };
    assert!(err.to_string().contains("`colour`: no setting"), "{err}");
}

#[test]
fn metrics_are_never_served_on_the_public_listener() {
    let serve = |listen: &str, metrics: &str| ServeArgs {
        listen: Some(listen.parse().unwrap()),
        metrics_listen: Some(metrics.parse().unwrap()),
        ..Default::default()
    };
    let resolve = |args: ServeArgs| Config::resolve(&CommonArgs::default(), &args);
    let Err(err) = resolve(serve("127.0.0.1:8080", "127.0.0.1:8080")) else {
        panic!("accepted");
    };
    assert_eq!(
        err.to_string(),
        "invalid setting metrics_listen: 127.0.0.1:8080 is the public listener's address \
         (127.0.0.1:8080): /metrics is served on an address of its own only"
    );
    // All interfaces include loopback: the same port is the same listener.
    assert!(resolve(serve("0.0.0.0:8080", "127.0.0.1:8080")).is_err());
    let config = resolve(serve("0.0.0.0:8080", "127.0.0.1:9090")).unwrap();
    assert_eq!(config.metrics_listen.unwrap().port(), 9090);
    // Port 0 takes a free port each time: two listeners never share it.
    assert!(resolve(serve("127.0.0.1:0", "127.0.0.1:0")).is_ok());
    let off = Config::resolve(&CommonArgs::default(), &ServeArgs::default()).unwrap();
    assert!(off.metrics_listen.is_none(), "off by default");
}

/// The README's configuration table as (file key, flag, variable, default) rows.
fn readme_settings() -> Vec<[String; 4]> {
    let readme = include_str!("../../README.md");
    let table = readme
        .split("| file key | flag | environment | default | meaning |")
        .nth(1)
        .expect("the README's configuration table");
    table
        .lines()
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            let cells: Vec<String> = line
                .split(" | ")
                .map(|c| {
                    c.trim_matches(|c| c == '|' || c == ' ' || c == '`')
                        .to_owned()
                })
                .collect();
            [
                cells[0].clone(),
                cells[1].clone(),
                cells[2].clone(),
                cells[3].clone(),
            ]
        })
        .collect()
}

#[test]
fn the_readme_lists_every_setting_as_the_command_line_and_the_file_read_it() {
    use clap::Args as _;
    let command = ServeArgs::augment_args(CommonArgs::augment_args(clap::Command::new("t")));
    let mut declared: Vec<(String, String, Option<String>)> = command
        .get_arguments()
        .filter_map(|arg| {
            let env = arg.get_env()?.to_str()?.to_owned();
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            let default = help
                .split_once("[default: ")
                .map(|(_, d)| d.trim_end_matches(']').to_owned());
            Some((format!("--{}", arg.get_long()?), env, default))
        })
        .collect();
    declared.sort();
    let rows = readme_settings();
    let mut listed: Vec<(String, String)> =
        rows.iter().map(|r| (r[1].clone(), r[2].clone())).collect();
    listed.sort();
    let declared_pairs: Vec<(String, String)> = declared
        .iter()
        .map(|(f, e, _)| (f.clone(), e.clone()))
        .collect();
    assert_eq!(
        listed, declared_pairs,
        "README's flags and variables, and clap's"
    );
    for [key, flag, _, default] in &rows {
        if key == "—" {
            continue;
        }
        let err = toml::from_str::<FileConfig>(&format!("{key} = 0"))
            .err()
            .map(|e| e.message().to_owned())
            .unwrap_or_default();
        assert!(
            !err.starts_with("unknown field"),
            "README names `{key}`: {err}"
        );
        let said = declared
            .iter()
            .find(|(f, ..)| f == flag)
            .and_then(|d| d.2.clone())
            .unwrap_or_else(|| panic!("{flag}: --help names no [default: …]"));
        assert_eq!(
            said.replace("data-dir", "data_dir"),
            default.replace('`', ""),
            "the default of {flag} in --help and the README"
        );
    }
}

#[test]
fn mail_needs_a_public_address_and_makes_confirmation_the_default() {
    let resolve = |args: ServeArgs| Config::resolve(&CommonArgs::default(), &args);
    let smtp = || Some("smtp://127.0.0.1:2525".to_owned());
    let refused = |args, name: &str| match resolve(args) {
        Err(ConfigError::Setting { name: n, .. }) => assert_eq!(n, name),
        other => panic!("{name} refused, got {:?}", other.map(|_| ())),
    };
    refused(
        ServeArgs {
            smtp_url: smtp(),
            ..Default::default()
        },
        "public_url",
    );
    refused(
        ServeArgs {
            registration: Some(Registration::Confirm),
            ..Default::default()
        },
        "registration",
    );
    refused(
        ServeArgs {
            smtp_url: Some("mail.school.org".into()),
            public_url: Some("https://cc.school.org".into()),
            ..Default::default()
        },
        "smtp_url",
    );
    refused(
        ServeArgs {
            smtp_url: smtp(),
            public_url: Some("https://cc.school.org".into()),
            mail_from: Some("not a mailbox".into()),
            ..Default::default()
        },
        "mail_from",
    );
    let c = resolve(ServeArgs {
        smtp_url: smtp(),
        public_url: Some("https://cc.school.org/".into()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(c.registration(), Registration::Confirm);
    let mail = c.mail().unwrap();
    assert_eq!(mail.from.to_string(), "classcast <noreply@cc.school.org>");
    assert_eq!(mail.public_url, "https://cc.school.org");
}

#[test]
fn an_unknown_classcast_variable_is_refused_with_the_nearest_setting() {
    let vars = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    let known = vars(&["CLASSCAST_LISTEN", "CLASSCAST_DATA_DIR"]);
    let ok = vars(&["CLASSCAST_LISTEN", "CLASSCAST_LOG", "PATH", "CLASSCASTLE"]);
    assert!(check_environment(&known, ok).is_ok());
    let err = check_environment(&known, vars(&["CLASSCAST_LISTN"])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown environment variable CLASSCAST_LISTN: did you mean CLASSCAST_LISTEN?"
    );
    let err = check_environment(&known, vars(&["CLASSCAST_COLOUR"])).unwrap_err();
    assert!(err.to_string().contains("no setting is named so"), "{err}");
}
