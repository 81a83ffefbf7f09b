//! A full disk: the broker's data directory is a small tmpfs. Produce gets
//! KAFKA_STORAGE_ERROR, reads keep working, no segment is left corrupt, and
//! producing works again once space is back. Needs root (to mount tmpfs):
//! without it, or where mounting is not allowed, the test says it is skipped.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use bytes::Bytes;
use common::raw::*;
use common::*;
use rdkafka::Offset;

/// A tmpfs mounted for the test's lifetime.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// A tmpfs of `size` at `at`, or `None` (after a one-line skip message)
    /// when not root or when the mount is refused (e.g. in a container).
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        if !tools::root("mount a tmpfs") {
            return None;
        }
        std::fs::create_dir_all(at).expect("mount point");
        let mount = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .stdin(Stdio::null())
            .output();
        match mount {
            Ok(out) if out.status.success() => Some(Tmpfs(at.to_path_buf())),
            Ok(out) => {
                let stderr = String::from_utf8_lossy(&out.stderr);
                let why = stderr.lines().map(str::trim).find(|l| !l.is_empty());
                tools::skip(&format!(
                    "`mount -t tmpfs` failed ({}); it needs root allowed to mount (CAP_SYS_ADMIN)",
                    why.map_or_else(|| out.status.to_string(), str::to_string)
                ));
                None
            }
            Err(e) => {
                tools::skip(&format!(
                    "could not run `mount` ({e}); install it with `apt-get install mount`"
                ));
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn big_batch(tag: usize) -> Bytes {
    let value = format!("{tag:08}").repeat(12_500); // 100 kB
    batch(&[record(0, 1_700_000_000_000, None, Some(&value))])
}

#[tokio::test]
async fn a_full_disk_refuses_writes_keeps_reads_and_recovers() {
    let scratch = tempfile::tempdir().expect("scratch");
    let Some(mount) = Tmpfs::mount(&scratch.path().join("disk"), "6m") else {
        return;
    };
    let ballast = mount.0.join("ballast");
    std::fs::write(&ballast, vec![0u8; 1 << 20]).expect("ballast");
    let data = mount.0.join("data");
    let mut broker = start_broker_with(|c| {
        c.data_dir = data.clone();
        c.log.segment_bytes = 1 << 20;
        c.log.segment_index_bytes = 64 << 10;
    })
    .await;
    let topic = unique_topic("disk-full");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;

    let mut raw = Raw::connect(&broker.bootstrap()).await;
    let mut acked = 0usize;
    let refused = loop {
        let (code, offset) = produce(&mut raw, 9, &topic, 0, big_batch(acked)).await;
        if code != 0 {
            break code;
        }
        assert_eq!(offset, acked as i64);
        acked += 1;
        assert!(acked < 200, "a 6 MB disk never filled up");
    };
    assert_eq!(refused, 56, "KAFKA_STORAGE_ERROR on a full disk");
    assert!(acked > 10, "only {acked} batches fit");

    // Reads keep working, and return exactly what was acknowledged.
    let read_back = |bootstrap: String, topic: String, n: usize| {
        blocking(move || {
            let consumer = consumer(&bootstrap, &[("fetch.message.max.bytes", "200000")]);
            assign(&consumer, &topic, &[0], Offset::Beginning);
            consume_exactly(&consumer, n, WAIT)
        })
    };
    let records = read_back(broker.bootstrap(), topic.clone(), acked).await;
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.offset, i as i64);
        assert!(r.value_str().starts_with(&format!("{i:08}")));
    }

    // Space comes back: producing continues right after the last acknowledged batch.
    std::fs::remove_file(&ballast).expect("free space");
    let (code, offset) = produce(&mut raw, 9, &topic, 0, big_batch(acked)).await;
    assert_eq!((code, offset), (0, acked as i64));
    acked += 1;

    // Nothing is corrupt: a clean restart reads every acknowledged batch back.
    drop(raw);
    broker.restart().await;
    let records = read_back(broker.bootstrap(), topic.clone(), acked).await;
    assert_eq!(records.len(), acked);
    broker.stop().await;
}
