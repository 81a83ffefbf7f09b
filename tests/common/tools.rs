//! What the interoperability tests need from outside the crate, and what they
//! do when it is missing.
//!
//! - kcat comes from the system's package manager, which needs privileges:
//!   [`present`] tells whether it runs here, and if not says why the calling
//!   test is skipped.
//! - kafka-python and confluent-kafka are provisioned by the tests
//!   themselves, once, into the build directory (`target/test-tools/`) with
//!   `python3 -m pip install --target`: see [`kafka_python`] and
//!   [`confluent_kafka`].
//! - [`root`] is for tests that need root (mounting a tmpfs).
//!
//! A test that cannot run says so in one line on stderr and returns early; it
//! does not fail. The line is written to stderr directly, not through
//! `eprintln!`, so that the test harness does not swallow it.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// A program the tests run but cannot install themselves.
#[derive(Debug)]
pub(crate) struct Tool {
    /// The command's name, looked up on the PATH.
    pub(crate) name: &'static str,
    /// Arguments that make it print its version and exit 0.
    pub(crate) probe: &'static [&'static str],
    /// How a person installs it.
    pub(crate) install: &'static str,
}

/// kcat, a command-line client on librdkafka (Debian's package).
pub(crate) const KCAT: Tool = Tool {
    name: "kcat",
    probe: &["-V"],
    install: "apt-get install kcat",
};

/// Writes `skipped <test>: <why>` as one line on stderr, past the harness's capture.
pub(crate) fn skip(why: &str) {
    let thread = std::thread::current();
    let test = thread.name().filter(|n| *n != "main").unwrap_or("test");
    let _ = writeln!(std::io::stderr(), "skipped {test}: {why}");
}

/// Whether `tool` runs here. When it does not, says so (with the command that
/// installs it) and the caller returns early: `if !present(&KCAT) { return; }`.
pub(crate) fn present(tool: &Tool) -> bool {
    let runs = Command::new(tool.name)
        .args(tool.probe)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !runs {
        skip(&format!(
            "{} is not on the PATH (install it with `{}`)",
            tool.name, tool.install
        ));
    }
    runs
}

/// Whether this process runs as root. When not, says that the calling test
/// needs root to `need_it_for`, and the caller returns early.
pub(crate) fn root(need_it_for: &str) -> bool {
    // SAFETY: geteuid has no preconditions, touches no memory and cannot fail.
    #[allow(unsafe_code)]
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        skip(&format!(
            "needs root to {need_it_for} (running as uid {euid}; run the tests as root to include it)"
        ));
    }
    euid == 0
}

/// Debian's Chromium, for the status page test (`tests/status_page.rs`).
pub(crate) const CHROMIUM: Tool = Tool {
    name: "chromium",
    probe: &["--version"],
    install: "apt-get install chromium",
};

/// The playwright-core release that drives Chromium in the browser test.
pub(crate) const PLAYWRIGHT_VERSION: &str = "1.65.1";

/// The @platformatic/kafka release that is the second client of the
/// consumer group protocol (the 1.x line still runs on Node.js 20).
pub(crate) const PLATFORMATIC_KAFKA_VERSION: &str = "1.35.0";

/// A `node_modules` directory holding playwright-core [`PLAYWRIGHT_VERSION`]
/// (it downloads no browser). See [`npm_package`].
pub(crate) fn playwright(for_test: &str) -> Option<PathBuf> {
    npm_package(for_test, "playwright-core", PLAYWRIGHT_VERSION)
}

/// A `node_modules` directory holding @platformatic/kafka
/// [`PLATFORMATIC_KAFKA_VERSION`]. See [`npm_package`].
pub(crate) fn platformatic_kafka(for_test: &str) -> Option<PathBuf> {
    npm_package(for_test, "@platformatic/kafka", PLATFORMATIC_KAFKA_VERSION)
}

/// A `node_modules` directory holding `package@version`, installed on first
/// use into `target/test-tools/<package>-<version>` with npm and reused after
/// that. `None`, after a one-line skip message, when node or npm is missing
/// or npm cannot install it.
fn npm_package(for_test: &str, package: &str, version: &str) -> Option<PathBuf> {
    static FOUND: Mutex<BTreeMap<String, Result<PathBuf, String>>> = Mutex::new(BTreeMap::new());
    let mut found = FOUND.lock().unwrap_or_else(|e| e.into_inner());
    let result = found
        .entry(format!("{package}@{version}"))
        .or_insert_with(|| install_npm(for_test, package, version));
    match result {
        Ok(dir) => Some(dir.clone()),
        Err(why) => {
            skip(why);
            None
        }
    }
}

fn install_npm(for_test: &str, package: &str, version: &str) -> Result<PathBuf, String> {
    let name = package.trim_start_matches('@').replace('/', "-");
    let dir = build_dir()
        .join("test-tools")
        .join(format!("{name}-{version}"));
    let modules = dir.join("node_modules");
    let installed = modules.join(package);
    if installed.is_dir() {
        return Ok(modules);
    }
    let node = Command::new("node")
        .arg("--version")
        .stdin(Stdio::null())
        .output();
    if !node.as_ref().is_ok_and(|o| o.status.success()) {
        return Err(
            "node is not on the PATH (install Node.js and npm: `apt-get install nodejs npm`)"
                .to_string(),
        );
    }
    let _ = writeln!(
        std::io::stderr(),
        "installing {package} {version} into {} for {for_test} (once)",
        shown(&dir)
    );
    let parent = dir.parent().expect("test-tools dir");
    std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("create {}: {e}", parent.display()));
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let staging = parent.join(format!(
        ".{name}-{version}.{}.{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&staging)
        .unwrap_or_else(|e| panic!("create {}: {e}", staging.display()));
    let npm = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--silent", "--prefix"])
        .arg(&staging)
        .arg(format!("{package}@{version}"))
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .stdin(Stdio::null())
        .output();
    if !npm.as_ref().is_ok_and(|out| out.status.success()) {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(format!(
            "{package} {version} is missing and npm could not install it ({}); \
             it needs npm and access to the npm registry",
            last_line(&npm)
        ));
    }
    match std::fs::rename(&staging, &dir) {
        Ok(()) => {}
        // Another test process got there first.
        Err(_) if installed.is_dir() => {
            let _ = std::fs::remove_dir_all(&staging);
        }
        Err(e) => panic!("rename {} to {}: {e}", staging.display(), dir.display()),
    }
    Ok(modules)
}

/// The kafka-python release the tests (and `.ci/run`) use.
pub(crate) const KAFKA_PYTHON_VERSION: &str = "3.0.12";

/// A Python 3 that can import a client package (kafka-python
/// [`KAFKA_PYTHON_VERSION`], or confluent-kafka [`CONFLUENT_KAFKA_VERSION`]).
#[derive(Debug, Clone)]
pub(crate) struct Python {
    /// Put first on the child's PYTHONPATH; `None` when the system Python
    /// already has the right package.
    path: Option<PathBuf>,
}

impl Python {
    /// `python3`, set up to import the package.
    pub(crate) fn command(&self) -> Command {
        let mut command = Command::new("python3");
        if let Some(dir) = &self.path {
            let mut paths = vec![dir.clone()];
            if let Some(old) = std::env::var_os("PYTHONPATH") {
                paths.extend(std::env::split_paths(&old));
            }
            command.env(
                "PYTHONPATH",
                std::env::join_paths(paths).expect("PYTHONPATH entries"),
            );
        }
        command
    }
}

/// kafka-python for the calling test, installed on first use into
/// `target/test-tools/kafka-python-<version>` and reused after that (by every
/// test process, whichever gets there first). `None` (after a one-line skip
/// message) when python3 is missing or pip cannot install it, e.g. offline.
pub(crate) fn kafka_python(for_test: &str) -> Option<Python> {
    static FOUND: OnceLock<Result<Python, String>> = OnceLock::new();
    let package = ("kafka-python", KAFKA_PYTHON_VERSION, "kafka");
    match FOUND.get_or_init(|| find_or_install_python_package(for_test, package)) {
        Ok(python) => Some(python.clone()),
        Err(why) => {
            skip(why);
            None
        }
    }
}

/// confluent-kafka (Python over librdkafka) [`CONFLUENT_KAFKA_VERSION`], as
/// [`kafka_python`] provides kafka-python.
pub(crate) fn confluent_kafka(for_test: &str) -> Option<Python> {
    static FOUND: OnceLock<Result<Python, String>> = OnceLock::new();
    let package = (
        "confluent-kafka",
        CONFLUENT_KAFKA_VERSION,
        "confluent_kafka",
    );
    match FOUND.get_or_init(|| find_or_install_python_package(for_test, package)) {
        Ok(python) => Some(python.clone()),
        Err(why) => {
            skip(why);
            None
        }
    }
}

/// The confluent-kafka release the Python cluster tests use.
pub(crate) const CONFLUENT_KAFKA_VERSION: &str = "2.12.1";

/// A Python that imports `module` of `dist` at `version`: the system's,
/// or one installed on first use into `target/test-tools/<dist>-<version>`.
fn find_or_install_python_package(
    for_test: &str,
    (dist, version, module): (&str, &str, &str),
) -> Result<Python, String> {
    let dir = build_dir()
        .join("test-tools")
        .join(format!("{dist}-{version}"));
    let has_version = |python: &Python| {
        // confluent-kafka reports version() as a (string, int) pair.
        let check = format!(
            "import {module}, sys; v = getattr({module}, '__version__', None) or {module}.version()[0]; sys.exit(v != {version:?})"
        );
        python
            .command()
            .args(["-c", &check])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
    };
    let provisioned = Python {
        path: Some(dir.clone()),
    };
    let no_python = |e: std::io::Error| {
        format!(
            "python3 is not on the PATH ({e}); install Python 3 with pip (`apt-get install python3 python3-pip`)"
        )
    };
    if dir.is_dir() {
        return match has_version(&provisioned) {
            Ok(s) if s.success() => Ok(provisioned),
            Err(e) => Err(no_python(e)),
            Ok(_) => panic!(
                "{} does not hold a working {dist} {version}: remove it and run the test again",
                dir.display()
            ),
        };
    }
    let system = Python { path: None };
    match has_version(&system) {
        Ok(s) if s.success() => return Ok(system),
        Ok(_) => {}
        Err(e) => return Err(no_python(e)),
    }

    let _ = writeln!(
        std::io::stderr(),
        "installing {dist} {version} into {} for {for_test} (once)",
        shown(&dir)
    );
    let parent = dir.parent().expect("test-tools dir");
    std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("create {}: {e}", parent.display()));
    // Install beside the final place, then rename: the directory appears whole
    // or not at all, so test processes racing here never see half an install.
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let staging = parent.join(format!(
        ".{dist}-{version}.{}.{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let pip = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(["--no-input", "--target"])
        .arg(&staging)
        .arg(format!("{dist}=={version}"))
        .stdin(Stdio::null())
        .output();
    let installed = pip.as_ref().is_ok_and(|out| out.status.success());
    if !installed {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(format!(
            "{dist} {version} is missing and pip could not install it ({}); \
             install it with `python3 -m pip install {dist}=={version}` \
             (needs pip, `apt-get install python3-pip`, and access to PyPI)",
            last_line(&pip)
        ));
    }
    if let Err(e) = std::fs::rename(&staging, &dir) {
        // Another test process finished first; its copy is as good as ours.
        let _ = std::fs::remove_dir_all(&staging);
        if !dir.is_dir() {
            panic!("move {} to {}: {e}", staging.display(), dir.display());
        }
    }
    Ok(provisioned)
}

/// The build directory (`target/`, or wherever `CARGO_TARGET_DIR` or the
/// cargo configuration put it): test binaries live in `<it>/<profile>/deps/`.
fn build_dir() -> PathBuf {
    let from_exe = std::env::current_exe().ok().and_then(|exe| {
        let deps = exe.parent()?;
        if deps.file_name()? != "deps" {
            return None;
        }
        Some(deps.parent()?.parent()?.to_path_buf())
    });
    from_exe
        .or_else(|| std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from))
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// `path` relative to the crate when it is inside it (`target/...`).
fn shown(path: &Path) -> String {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    path.strip_prefix(crate_dir)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The last non-empty line pip printed, to say why it failed.
fn last_line(pip: &std::io::Result<Output>) -> String {
    match pip {
        Err(e) => format!("could not run python3 -m pip: {e}"),
        Ok(out) => {
            let last = |bytes: &[u8]| {
                let text = String::from_utf8_lossy(bytes);
                text.lines()
                    .map(str::trim)
                    .rfind(|l| !l.is_empty())
                    .map(str::to_string)
            };
            last(&out.stderr)
                .or_else(|| last(&out.stdout))
                .unwrap_or_else(|| format!("pip exited with {}", out.status))
        }
    }
}
