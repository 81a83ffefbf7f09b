//! Programs run beside the tests: kcat, and the broker as a process of its own.

use super::*;

/// Runs kcat with `args` (plus IPv4), feeding `stdin`; returns stdout, panicking
/// with stderr on a non-zero exit or after [`WAIT`]. Callers first check
/// `tools::present(&tools::KCAT)` and skip when it is missing.
pub(crate) fn kcat(args: &[&str], stdin: &[u8]) -> String {
    let mut child = Command::new("kcat")
        .args(args)
        .args(["-X", "broker.address.family=v4"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kcat must be installed (apt-get install kcat)");
    let mut input = child.stdin.take().expect("stdin");
    let stdin = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let output = wait_with_timeout(child, WAIT, &format!("kcat {args:?}"));
    let _ = writer.join();
    let stdout = String::from_utf8(output.stdout).expect("kcat output is UTF-8");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "kcat {args:?} failed: {}\nstderr:\n{stderr}",
        output.status
    );
    stdout
}

/// Waits for a child's output, killing it after `limit`.
pub(crate) fn wait_with_timeout(child: Child, limit: Duration, what: &str) -> std::process::Output {
    let id = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(output) => output.expect("waiting for a child process"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &id.to_string()])
                .status();
            panic!("{what} did not finish within {limit:?}");
        }
    }
}

/// The `sluice` binary running as a child process.
#[derive(Debug)]
pub(crate) struct BrokerProcess {
    child: Child,
    pub(crate) bootstrap: String,
    /// Every stdout/stderr line so far, for failure messages.
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl BrokerProcess {
    /// Starts `sluice --listen 127.0.0.1:0 --data-dir <dir> <extra>` and waits
    /// (bounded) for its "sluice is ready addr=..." line.
    pub(crate) fn start(data_dir: &Path, extra: &[&str]) -> BrokerProcess {
        BrokerProcess::try_start_on("127.0.0.1:0", data_dir, extra)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts `sluice --listen <listen> --data-dir <dir> <extra>` and waits
    /// (bounded) for its "sluice is ready addr=..." line. An exit before that
    /// (e.g. the address is still in use) or no ready line within [`WAIT`] is
    /// an error carrying the broker's output; the process is gone by then.
    pub(crate) fn try_start_on(
        listen: &str,
        data_dir: &Path,
        extra: &[&str],
    ) -> Result<BrokerProcess, String> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["--listen", listen, "--data-dir"])
            .arg(data_dir)
            .args(extra)
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the sluice binary");
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel::<String>();
        // Keep draining both pipes for the child's whole life so it never blocks on a write.
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let mut drains = Vec::new();
        for (pipe, tx) in [
            (Box::new(stdout) as Box<dyn std::io::Read + Send>, Some(tx)),
            (Box::new(stderr), None),
        ] {
            let lines = lines.clone();
            drains.push(std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let line = strip_ansi(&line);
                    // Recorded before it is announced: whoever waits for a
                    // line finds it in `output()` too.
                    lines
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(line.clone());
                    if let Some(tx) = &tx {
                        let _ = tx.send(line);
                    }
                }
            }));
        }
        let deadline = Instant::now() + WAIT;
        let bootstrap = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains("sluice is ready") => {
                    break ready_addr(&line).unwrap_or_else(|| panic!("no addr= in {line:?}"));
                }
                Ok(_) => {}
                Err(e) => {
                    let _ = child.kill();
                    let status = child.wait();
                    // The pipes are closed now: collect the rest of the output.
                    for d in drains {
                        let _ = d.join();
                    }
                    let seen = lines.lock().unwrap_or_else(|e| e.into_inner()).join("\n");
                    return Err(match e {
                        mpsc::RecvTimeoutError::Timeout => {
                            format!("sluice did not become ready within {WAIT:?}; output:\n{seen}")
                        }
                        mpsc::RecvTimeoutError::Disconnected => {
                            format!(
                                "sluice exited ({status:?}) before it was ready; output:\n{seen}"
                            )
                        }
                    });
                }
            }
        };
        Ok(BrokerProcess {
            child,
            bootstrap,
            lines,
        })
    }

    /// SIGTERM, then waits (bounded) for a successful exit.
    pub(crate) fn terminate(mut self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM");
        assert!(status.success(), "kill -TERM {pid} failed");
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "sluice did not exit within {WAIT:?} of SIGTERM:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(
            status.success(),
            "sluice exited with {status} after SIGTERM:\n{}",
            self.output()
        );
    }

    /// SIGKILL: the process dies without any cleanup.
    pub(crate) fn crash(mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }

    /// The process id, e.g. to read `/proc/<pid>/status`.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the broker printed so far.
    pub(crate) fn output(&self) -> String {
        self.lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .join("\n")
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Removes ANSI colour sequences (ESC [ ... letter).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `127.0.0.1:PORT` from a line holding `addr=127.0.0.1:PORT`.
fn ready_addr(line: &str) -> Option<String> {
    let rest = &line[line.find("addr=")? + "addr=".len()..];
    let addr: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
    addr.parse::<std::net::SocketAddr>()
        .ok()
        .map(|a| a.to_string())
}
