//! Checking a [`Config`] before anything is started.

use std::net::SocketAddr;

use super::{Config, FlushMode, split_host_port};

impl Config {
    /// Checks every value, so that a bad setting stops start-up before anything is touched.
    pub fn validate(&self) -> Result<(), String> {
        self.check_listeners()?;
        self.check_connections()?;
        self.check_storage()
    }

    /// Addresses, listeners, security and the test cluster.
    fn check_listeners(&self) -> Result<(), String> {
        if let Some(addr) = self.http_address() {
            addr.parse::<SocketAddr>()
                .map_err(|e| format!("http_listen = {addr:?}: {e} (HOST:PORT or \"none\")"))?;
        }
        self.listen
            .parse::<SocketAddr>()
            .map_err(|e| format!("listen = {:?}: {e}", self.listen))?;
        if let Some(adv) = &self.advertised_listener {
            split_host_port(adv)?;
        }
        self.listener_specs()?;
        self.sasl.validate()?;
        if !(1..=64).contains(&self.brokers) {
            return Err(format!("brokers = {}: must be 1..=64", self.brokers));
        }
        if self.brokers > 1 && (!self.listeners.is_empty() || self.advertised_listener.is_some()) {
            return Err(
                "brokers > 1 serves PLAINTEXT on `listen` and the ports after it, advertised as bound; unset `listeners` and `advertised_listener`"
                    .into(),
            );
        }
        if let Some(bad) = self.super_users.iter().find(|p| {
            p.split_once(':')
                .is_none_or(|(kind, name)| kind.is_empty() || name.is_empty())
        }) {
            return Err(format!("super_users: {bad:?} is not of the form Type:name"));
        }
        if let Some(tls) = &self.tls {
            tls.validate()?;
        }
        Ok(())
    }

    /// The node id and the limits on connections and requests.
    fn check_connections(&self) -> Result<(), String> {
        if self.node_id < 0 {
            return Err(format!("node_id = {}: must be >= 0", self.node_id));
        }
        if self.socket_request_max_bytes < 1024 {
            return Err("socket_request_max_bytes must be at least 1024".into());
        }
        // At most 1 GiB, so that an answer with its headers fits the i32
        // size of a frame.
        if !(1024..=1 << 30).contains(&self.fetch_max_bytes) {
            return Err("fetch_max_bytes must be from 1024 to 1073741824".into());
        }
        if self.max_connections == 0 {
            return Err("max_connections must be at least 1".into());
        }
        if self.max_connections_per_ip == 0 {
            return Err("max_connections_per_ip must be at least 1".into());
        }
        if self.queued_max_request_bytes < 1024 {
            return Err("queued_max_request_bytes must be at least 1024".into());
        }
        if self.connections_max_idle_ms == 0 {
            return Err("connections_max_idle_ms must be > 0".into());
        }
        // Linux cuts a longer name to 15 bytes without a word.
        let cc = &self.loopback_congestion_control;
        if cc.len() > 15 || !cc.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "loopback_congestion_control = {cc:?}: must be an algorithm name of at most 15 printable ASCII characters, or empty"
            ));
        }
        Ok(())
    }

    /// Partitions, flushing, transactions, the cleaner, groups and topic defaults.
    fn check_storage(&self) -> Result<(), String> {
        if self.max_open_segment_files == 0 {
            return Err("max_open_segment_files must be at least 1".into());
        }
        if !(1..=100_000).contains(&self.num_partitions) {
            return Err(format!(
                "num_partitions = {}: must be 1..=100000",
                self.num_partitions
            ));
        }
        if self.flush == FlushMode::Interval && self.flush_interval_ms == 0 {
            return Err("flush_interval_ms must be > 0 when flush = \"interval\"".into());
        }
        if self.retention_check_interval_ms == 0 {
            return Err("retention_check_interval_ms must be > 0".into());
        }
        if self.transaction_max_timeout_ms < 1 {
            return Err("transaction_max_timeout_ms must be > 0".into());
        }
        if !(1..=64).contains(&self.log_cleaner_threads) {
            return Err(format!(
                "log_cleaner_threads = {}: must be 1..=64",
                self.log_cleaner_threads
            ));
        }
        if self.log_cleaner_backoff_ms == 0 {
            return Err("log_cleaner_backoff_ms must be > 0".into());
        }
        let per_thread = self.log_cleaner_dedupe_buffer_size / self.log_cleaner_threads as u64;
        if per_thread < 1024 * 1024 {
            return Err(format!(
                "log_cleaner_dedupe_buffer_size = {}: must give each cleaner thread at least 1 MiB",
                self.log_cleaner_dedupe_buffer_size
            ));
        }
        self.group.validate()?;
        self.log.validate()
    }
}
