//! The `sluice` binary stopped with SIGTERM or killed with SIGKILL mid-stream,
//! and refusing bad start-up input.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::*;

#[test]
fn the_binary_keeps_acknowledged_records_and_settings_across_sigterm() {
    let (_dir, data) = scratch_dir();
    let topic = unique_topic("bin-term");
    let first = BrokerProcess::start(&data, &[]);
    let acked = block_on(async {
        create_topic(&first.bootstrap, &topic, 2, &CONFIGS).await;
        let mut acked = produce_rich(&first.bootstrap, &topic, 0, 0, 1500).await;
        acked.extend(produce_rich(&first.bootstrap, &topic, 1, 0, 10).await);
        acked
    });
    assert_eq!(acked.len(), 1510);
    first.terminate();

    let second = BrokerProcess::start(&data, &[]);
    let records = read_all(&second.bootstrap, &topic, &[0, 1]);
    check_rich(&records, 0, 1500);
    check_rich(&records, 1, 10);
    assert_eq!(
        block_on(overrides(&second.bootstrap, &topic)),
        map(&CONFIGS)
    );
    second.terminate();
}

#[test]
fn the_binary_keeps_every_acknowledged_record_after_sigkill_mid_stream() {
    const SENT: usize = 30_000;
    let (_dir, data) = scratch_dir();
    let config = data.join("sluice.toml");
    // flush = "always": acknowledgements wait for fsync; a small segment size makes the
    // log roll while the kill can land.
    std::fs::write(
        &config,
        "flush = \"always\"\n[log]\nsegment_bytes = 131072\n",
    )
    .expect("config file");
    let config = config.to_str().expect("utf-8 path").to_string();
    let topic = unique_topic("bin-kill");
    let broker = BrokerProcess::start(&data, &["--config", &config]);
    block_on(create_topic(&broker.bootstrap, &topic, 1, &[]));

    let acked: Arc<Mutex<BTreeMap<i64, String>>> = Arc::default();
    let (bootstrap, t, a) = (broker.bootstrap.clone(), topic.clone(), acked.clone());
    let producing = std::thread::spawn(move || {
        block_on(async move {
            let producer = producer(
                &bootstrap,
                &[
                    ("linger.ms", "2"),
                    ("message.timeout.ms", "5000"),
                    ("retries", "0"),
                ],
            );
            let values: Vec<String> = (0..SENT).map(|i| format!("record-{i}")).collect();
            let pending = send_values(&producer, &t, &values);
            for (value, p) in values.into_iter().zip(pending) {
                if let Ok((_, offset)) = await_delivery(p).await {
                    a.lock().expect("lock").insert(offset, value);
                }
            }
        })
    });
    // Kill once a good share is acknowledged but (almost certainly) not all.
    let deadline = Instant::now() + WAIT;
    while acked.lock().expect("lock").len() < SENT / 10 {
        assert!(
            Instant::now() < deadline,
            "only {} acknowledgements within {WAIT:?}",
            acked.lock().expect("lock").len()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    broker.crash();
    producing.join().expect("producer thread");
    let acked = std::mem::take(&mut *acked.lock().expect("lock"));
    assert!(acked.len() >= SENT / 10);

    let broker = BrokerProcess::start(&data, &["--config", &config]);
    let records = read_all(&broker.bootstrap, &topic, &[0]);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(
            r.offset, i as i64,
            "offsets after recovery must be dense from 0"
        );
    }
    eprintln!(
        "SIGKILL after {} of {SENT} acknowledgements; {} records recovered",
        acked.len(),
        records.len()
    );
    let stored: BTreeMap<i64, &str> = records.iter().map(|r| (r.offset, r.value_str())).collect();
    let missing: Vec<_> = acked
        .iter()
        .filter(|(o, v)| stored.get(o) != Some(&v.as_str()))
        .take(5)
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged records are missing or different after SIGKILL, e.g. {missing:?} (stored {} records)",
        acked
            .iter()
            .filter(|(o, v)| stored.get(o) != Some(&v.as_str()))
            .count(),
        records.len()
    );
    // The recovered log accepts appends at its end.
    let end = records.len() as i64;
    let more = block_on(async {
        let producer = producer(&broker.bootstrap, &[]);
        produce_n(&producer, &topic, 0, 2).await
    });
    assert_eq!(more, vec![end, end + 1]);
    broker.terminate();
}

#[test]
fn the_binary_refuses_bad_startup_input_with_a_non_zero_exit() {
    let (_dir, data) = scratch_dir();
    let run = |args: &[&str]| {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(args)
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start sluice");
        let out = wait_with_timeout(child, WAIT, &format!("sluice {args:?}"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status, text)
    };

    let file = data.join("not-a-directory");
    std::fs::write(&file, "x").expect("file");
    let (status, text) = run(&[
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        file.to_str().expect("utf-8"),
    ]);
    assert!(!status.success(), "a file as data dir must fail:\n{text}");
    assert!(
        text.contains("not-a-directory"),
        "the error must name the path:\n{text}"
    );

    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let dir = data.join("d1");
    let (status, text) = run(&[
        "--listen",
        &addr,
        "--data-dir",
        dir.to_str().expect("utf-8"),
    ]);
    assert!(!status.success(), "a port in use must fail:\n{text}");
    assert!(
        text.contains(&addr),
        "the error must name the address:\n{text}"
    );

    let config = data.join("bad.toml");
    std::fs::write(&config, "no_such_setting = 1\n").expect("config");
    let (status, text) = run(&["--config", config.to_str().expect("utf-8")]);
    assert_eq!(
        status.code(),
        Some(2),
        "an unknown setting is a usage error:\n{text}"
    );
    assert!(
        text.contains("no_such_setting"),
        "the error must name the key:\n{text}"
    );
}
