//! An in-process broker on a runtime of its own, stopped when dropped.

use super::*;

/// An in-process broker in a temporary directory, running on a runtime of its
/// own so that blocking client calls in the test never starve it.
#[derive(Debug)]
pub(crate) struct TestBroker {
    broker: Option<Broker>,
    runtime: Option<Runtime>,
    config: Config,
    dir: TempDir,
    disk: Arc<dyn Disk>,
}

/// A broker with the default configuration (listening on 127.0.0.1:0).
pub(crate) async fn start_broker() -> TestBroker {
    start_broker_with(|_| {}).await
}

/// A broker whose configuration `adjust` may change (data_dir and listen are preset).
pub(crate) async fn start_broker_with(adjust: impl FnOnce(&mut Config)) -> TestBroker {
    start_broker_on(Arc::new(RealDisk), adjust).await
}

/// [`start_broker_with`] with the partition logs on `disk` (a `FaultyDisk`).
pub(crate) async fn start_broker_on(
    disk: Arc<dyn Disk>,
    adjust: impl FnOnce(&mut Config),
) -> TestBroker {
    init_tracing();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    adjust(&mut config);
    let runtime = new_runtime();
    let broker = start_on(&runtime, config.clone(), disk.clone()).await;
    TestBroker {
        broker: Some(broker),
        runtime: Some(runtime),
        config,
        dir,
        disk,
    }
}

async fn start_on(runtime: &Runtime, config: Config, disk: Arc<dyn Disk>) -> Broker {
    runtime
        .spawn(Broker::start_on(config, disk))
        .await
        .expect("Broker::start panicked")
        .expect("Broker::start failed")
}

impl TestBroker {
    fn broker(&self) -> &Broker {
        self.broker.as_ref().expect("broker is running")
    }

    /// `host:port` of the first listener of `protocol`.
    pub(crate) fn listener(&self, protocol: sluice::security::SecurityProtocol) -> String {
        self.broker()
            .listeners()
            .iter()
            .find(|(p, _)| *p == protocol)
            .map(|(_, addr)| addr.to_string())
            .expect("a listener of that protocol")
    }

    /// `host:port` for `bootstrap.servers`.
    pub(crate) fn bootstrap(&self) -> String {
        self.broker().bootstrap()
    }

    /// The HTTP server's address, when the config asked for one.
    pub(crate) fn http_addr(&self) -> Option<std::net::SocketAddr> {
        self.broker().http_addr()
    }

    /// The broker's data directory.
    pub(crate) fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the broker cleanly (Broker::shutdown must succeed) and keeps the directory.
    pub(crate) async fn stop(&mut self) {
        self.try_stop().await.expect("Broker::shutdown failed");
    }

    /// Stops the broker with Broker::shutdown, which may fail (a log that
    /// cannot close cleanly), and keeps the directory.
    #[allow(dead_code)]
    pub(crate) async fn try_stop(&mut self) -> sluice::Result<()> {
        let broker = self.broker.take().expect("broker is running");
        let runtime = self.runtime.as_ref().expect("runtime");
        runtime
            .spawn(broker.shutdown())
            .await
            .expect("Broker::shutdown panicked")
    }

    /// Drops the broker without [`Broker::shutdown`]: its runtime is torn down
    /// (every task dropped), so the next start finds logs not marked clean.
    pub(crate) async fn kill(&mut self) {
        self.broker.take();
        if let Some(runtime) = self.runtime.take() {
            blocking(move || runtime.shutdown_timeout(Duration::from_secs(10))).await;
        }
        self.runtime = Some(new_runtime());
    }

    /// Starts the broker again on the same directory (a new port: make new clients).
    pub(crate) async fn start_again(&mut self) {
        assert!(self.broker.is_none(), "stop() or kill() the broker first");
        let runtime = self.runtime.as_ref().expect("runtime");
        self.broker = Some(start_on(runtime, self.config.clone(), self.disk.clone()).await);
    }

    /// A clean stop followed by a start on the same directory.
    pub(crate) async fn restart(&mut self) {
        self.stop().await;
        self.start_again().await;
    }
}

fn new_runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("sluice-test-broker")
        .enable_all()
        .build()
        .expect("broker runtime")
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        self.broker.take();
        if let Some(runtime) = self.runtime.take() {
            // Allowed inside an async test, unlike dropping a runtime.
            runtime.shutdown_background();
        }
    }
}
