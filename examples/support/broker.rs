//! The `sluice` binary run as a child process by the examples that measure
//! it from outside (its CPU and memory from `/proc`).

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub(crate) struct Broker {
    binary: PathBuf,
    config: PathBuf,
    pub(crate) address: String,
    child: Option<Child>,
}

impl Broker {
    /// A broker on a free loopback port with its data in `dir/data`; its
    /// configuration, `dir/sluice.toml`, says so and adds the lines in
    /// `extra`. The binary is `$binary_var`, else `target/release/sluice`.
    pub(crate) fn prepare(dir: &Path, binary_var: &str, extra: &str) -> Broker {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let address = format!("127.0.0.1:{port}");
        let config = dir.join("sluice.toml");
        let data = dir.join("data");
        std::fs::write(
            &config,
            format!(
                "data_dir = {:?}\nlisten = {address:?}\nhttp_listen = \"none\"\n{extra}",
                data.to_string_lossy(),
            ),
        )
        .expect("config");
        let binary = std::env::var(binary_var).unwrap_or("target/release/sluice".into());
        Broker {
            binary: binary.into(),
            config,
            address,
            child: None,
        }
    }

    /// Starts it; how long until it listened, and its pid.
    pub(crate) fn start(&mut self) -> (Duration, u32) {
        let started = Instant::now();
        let child = Command::new(&self.binary)
            .args(["--config", &self.config.to_string_lossy()])
            .env("RUST_LOG", "warn")
            .spawn()
            .expect("start the sluice binary (cargo build --release first)");
        let pid = child.id();
        self.child = Some(child);
        while TcpStream::connect(&self.address).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "never listened"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        (started.elapsed(), pid)
    }

    /// SIGTERM, then waits for a clean exit.
    pub(crate) fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        #[allow(unsafe_code)]
        // SAFETY: kill(2) on the pid of a child this process has not reaped.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let status = child.wait().expect("wait for the broker");
        assert!(status.success(), "the broker stopped with {status}");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// User plus system CPU of `pid` so far, from `/proc/<pid>/stat` (10 ms ticks).
#[allow(dead_code)]
pub(crate) fn cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let ticks: u64 = fields
        .get(11..13)
        .map_or(0, |f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum());
    #[allow(unsafe_code)]
    // SAFETY: sysconf only reads a system constant.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_millis(ticks * 1000 / per_second)
}

/// CPU of process `pid` so far, in nanoseconds: every thread's, those that
/// have exited too (the kernel's per-process CPU clock).
#[allow(dead_code)]
pub(crate) fn cpu_ns(pid: u32) -> u64 {
    let mut clock: libc::clockid_t = 0;
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    #[allow(unsafe_code)]
    // SAFETY: both calls only write the values passed by pointer.
    let read = unsafe {
        libc::clock_getcpuclockid(pid as libc::pid_t, &mut clock) == 0
            && libc::clock_gettime(clock, &mut now) == 0
    };
    assert!(read, "the CPU clock of process {pid}");
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}
