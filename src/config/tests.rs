use super::*;

#[test]
fn example_file_documents_the_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/sluice.toml");
    assert_eq!(Config::from_file(&path).unwrap(), Config::default());
}

#[test]
fn listeners_are_checked() {
    let with = |listeners: &[&str], advertised: &[&str]| Config {
        listeners: listeners.iter().map(|s| s.to_string()).collect(),
        advertised_listeners: advertised.iter().map(|s| s.to_string()).collect(),
        ..Config::default()
    };
    let ok = with(
        &["PLAINTEXT://127.0.0.1:0", "SASL_PLAINTEXT://127.0.0.1:0"],
        &[],
    );
    assert_eq!(ok.listener_specs().map(|l| l.len()), Ok(2));
    for bad in [
        with(&["SSL://127.0.0.1:0"], &[]), // no [tls] table
        with(&["KERBEROS://127.0.0.1:0"], &[]),
        with(&["127.0.0.1:0"], &[]),
        with(&["PLAINTEXT://127.0.0.1:0"], &["SASL_PLAINTEXT://h:1"]),
        with(
            &["PLAINTEXT://127.0.0.1:0"],
            &["PLAINTEXT://h:1", "PLAINTEXT://h:2"],
        ),
    ] {
        assert!(bad.validate().is_err(), "{:?}", bad.listeners);
    }
}

#[test]
fn defaults_are_valid() {
    Config::default().validate().unwrap();
}

#[test]
fn unknown_keys_and_bad_values_are_rejected() {
    assert!(toml::from_str::<Config>("no_such_key = 1").is_err());
    let bad = Config {
        listen: "nowhere".into(),
        ..Config::default()
    };
    assert!(bad.validate().is_err());
    assert!(toml::from_str::<Config>("[log]\nmessage_timestamp_type = \"Sometime\"").is_err());
    assert!(toml::from_str::<Config>("[log]\nno_such_setting = 1").is_err());
    let bad = Config {
        log: LogConfig {
            segment_bytes: 1,
            ..LogConfig::default()
        },
        ..Config::default()
    };
    assert!(bad.validate().is_err());
}

#[test]
fn the_loopback_congestion_control_is_a_name_or_empty() {
    let with = |name: &str| Config {
        loopback_congestion_control: name.into(),
        ..Config::default()
    };
    with("").validate().unwrap();
    with("cubic").validate().unwrap();
    with("fifteen-chars.x").validate().unwrap();
    let err = with("reno\0x").validate().unwrap_err();
    assert!(err.contains("loopback_congestion_control"), "{err}");
    with("sixteen-chars.xy").validate().unwrap_err();
    with("re no").validate().unwrap_err();
}

#[test]
fn flags_override_the_file() {
    let cli = Cli::parse_from(["sluice", "--listen", "127.0.0.1:19092", "--node-id", "7"]);
    let config = Config::load(&cli).unwrap();
    assert_eq!(config.listen, "127.0.0.1:19092");
    assert_eq!(config.node_id, 7);
}
