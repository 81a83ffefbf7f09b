//! The status page in a real browser: headless Chromium (Debian's package,
//! driven by playwright-core, which the test installs into the build
//! directory once) loads the page of a broker where rdkafka produced 30
//! records and a group committed offset 20, and finds the topic, the group
//! and its lag of 10, and the connected librdkafka client, on the rendered
//! page. It leaves a screenshot at `target/status-page.png`. Skipped (one
//! line) without Chromium or Node.js.

mod common;

use std::process::Stdio;

use common::*;

#[tokio::test]
async fn chromium_shows_the_topic_the_group_and_its_lag() {
    if !tools::present(&tools::CHROMIUM) {
        return;
    }
    let Some(modules) = tools::playwright(file!()) else {
        return;
    };
    let broker = start_broker_with(|c| c.http_listen = Some("127.0.0.1:0".into())).await;
    let http = broker.http_addr().expect("the HTTP server runs");
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("page");
    create_topic(&bootstrap, &topic, 1, &[]).await;
    let group = unique_topic("page-group");
    let member = produce_and_commit(&bootstrap, (&topic, &group), 30, 20).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/status_page.js");
    let screenshot = concat!(env!("CARGO_MANIFEST_DIR"), "/target/status-page.png");
    let child = std::process::Command::new("node")
        .args([
            script,
            &format!("http://{http}/"),
            &topic,
            &group,
            "10",
            screenshot,
        ])
        .env("NODE_PATH", &modules)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node must be installed");
    let output =
        blocking(move || wait_with_timeout(child, WAIT * 2, "tests/browser/status_page.js")).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("status page: all checks passed"),
        "the status page check failed ({})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    drop(member);
}
