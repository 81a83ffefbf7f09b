//! One broker per data directory: a second broker on a directory in use
//! fails at once with a message naming it, touches nothing, and the first
//! keeps serving — for the binary and for in-process brokers.

mod common;

use std::process::{Command, Stdio};

use common::*;
use sluice::{Broker, Config};

/// Every file under `dir` with its length and modification time.
fn snapshot(dir: &std::path::Path) -> Vec<(std::path::PathBuf, u64, std::time::SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let entry = entry.expect("dir entry");
            let meta = entry.metadata().expect("metadata");
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                out.push((entry.path(), meta.len(), meta.modified().expect("mtime")));
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn a_second_in_process_broker_on_the_same_directory_fails_and_the_first_serves() {
    let mut first = start_broker().await;
    a_real_client_still_works(&first.bootstrap()).await;
    let before = snapshot(first.data_dir());
    let second = Broker::start(Config {
        listen: "127.0.0.1:0".into(),
        data_dir: first.data_dir().to_path_buf(),
        ..Config::default()
    })
    .await;
    let message = second
        .expect_err("the second broker must not start")
        .to_string();
    let dir = first.data_dir().canonicalize().unwrap();
    assert!(
        message.contains(&dir.display().to_string()) && message.contains("in use"),
        "{message}"
    );
    assert_eq!(
        snapshot(first.data_dir()),
        before,
        "the second broker touched files"
    );
    a_real_client_still_works(&first.bootstrap()).await;

    // Once the first has stopped, the directory is free again.
    first.stop().await;
    first.start_again().await;
    a_real_client_still_works(&first.bootstrap()).await;
}

#[tokio::test]
async fn a_second_binary_on_the_same_directory_exits_with_a_message_and_the_first_serves() {
    let (_keep, dir) = scratch_dir();
    let first = BrokerProcess::start(&dir, &[]);
    a_real_client_still_works(&first.bootstrap).await;
    let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start a second sluice");
    let output = blocking(move || wait_with_timeout(child, WAIT, "the second sluice")).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "the second broker exited successfully"
    );
    let shown = dir.canonicalize().unwrap().display().to_string();
    assert!(
        stderr.contains(&shown) && stderr.contains("in use"),
        "stderr of the second broker:\n{stderr}"
    );
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("sluice is ready"),
        "the second broker became ready"
    );
    a_real_client_still_works(&first.bootstrap).await;
    first.terminate();
}
