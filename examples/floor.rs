//! The machine's own floor under the broker's produce figures: the CPU, per
//! GB, of only the kernel work that storing produced bytes cannot avoid,
//! with nothing of a broker around it. It receives bytes over loopback TCP
//! into one reused 1 MiB buffer and `write`s each piece to a file: the two
//! copies of a produce (socket to process, process to page cache). A second
//! run adds the CRC-32C check Kafka makes of every produced byte (with
//! Sluice's own `crc32c`), done between the two copies, as a broker does.
//! Neither keeps an index or parses a request.
//!
//! The figure is the CPU of the receiving thread only, from
//! `/proc/thread-self/schedstat` (nanoseconds), as a broker's figure leaves
//! out its client's. Run it beside the broker's runs: on a virtual machine
//! the same copies cost from 0.4 to several seconds per GB from one hour to
//! the next, most when page-cache pages are new to the host, so only
//! figures from one sitting compare.
//!
//! The file goes in `FLOOR_DIR`, which should be on the broker's data disk
//! (the default, a temporary directory, may be a tmpfs: memory, not a disk).
//!
//! ```text
//! cargo run --release --example floor                       # 2 GiB, in a temp dir
//! FLOOR_BYTES=216000000 FLOOR_DIR=/var/lib/sluice cargo run --release --example floor
//! ```

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::Instant;

const PIECE: usize = 1 << 20;

/// `name` as a positive whole number, `default` when unset.
fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).map_or(default, |v| {
        v.parse()
            .ok()
            .filter(|&n| n > 0)
            .unwrap_or_else(|| panic!("{name} must be a positive whole number of bytes, not {v:?}"))
    })
}

/// CPU time of the calling thread so far, in nanoseconds.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .expect("/proc/thread-self/schedstat")
}

fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let client = TcpStream::connect(listener.local_addr().expect("address")).expect("connect");
    let (server, _) = listener.accept().expect("accept");
    (client, server)
}

fn report(name: &str, bytes: u64, cpu_ns: u64, wall: std::time::Duration) {
    let gb = bytes as f64 / 1e9;
    let cpu = cpu_ns as f64 / 1e9;
    println!(
        "{name}: {gb:.2} GB in {:.0} ms, {:.2} GB/s; CPU {:.0} ms, {:.3} s per GB",
        wall.as_secs_f64() * 1e3,
        gb / wall.as_secs_f64(),
        cpu * 1e3,
        cpu / gb
    );
}

/// Receive `bytes` and write them to a file in `dir`, checking a CRC-32C of
/// each piece first if `check`; CPU of the receiving thread.
fn produce(dir: &Path, bytes: u64, check: bool) {
    let (mut client, mut server) = pair();
    let sender = std::thread::spawn(move || {
        let piece = vec![7u8; PIECE];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(PIECE as u64) as usize;
            client.write_all(&piece[..n]).expect("send");
            left -= n as u64;
        }
    });
    let path = dir.join("floor-produce");
    let mut file = File::create(&path).expect("create");
    let _remove = RemoveOnDrop(&path);
    let mut buf = vec![0u8; PIECE];
    let (start, cpu) = (Instant::now(), thread_cpu_ns());
    let mut got = 0u64;
    while got < bytes {
        let n = server.read(&mut buf).expect("receive");
        assert!(n > 0, "sender closed early");
        if check {
            std::hint::black_box(sluice::storage::crc32c(&buf[..n]));
        }
        file.write_all(&buf[..n]).expect("write");
        got += n as u64;
    }
    let name = if check {
        "produce floor (receive + CRC-32C + write)"
    } else {
        "produce floor (receive + write)"
    };
    report(name, got, thread_cpu_ns() - cpu, start.elapsed());
    sender.join().expect("sender");
}

/// Removes the file at its path when dropped, on a panic too.
struct RemoveOnDrop<'a>(&'a Path);

impl Drop for RemoveOnDrop<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.0);
    }
}

fn main() {
    let bytes = env("FLOOR_BYTES", 2 << 30);
    let scratch = tempfile::tempdir().expect("temp dir");
    let dir = std::env::var("FLOOR_DIR").map_or(scratch.path().to_path_buf(), Into::into);
    produce(&dir, bytes, false);
    produce(&dir, bytes, true);
}
