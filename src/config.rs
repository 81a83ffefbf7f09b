//! Configuration: defaults < TOML file < `SLUICE_*` environment < command-line flags.
//!
//! This is the only module that knows about clap and TOML; everything below it
//! receives the typed, validated [`Config`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Parser;
use serde::Deserialize;

pub use crate::group::GroupConfig;
use crate::storage::LogConfig;

/// Command-line flags. Every flag is optional so that an absent flag never hides the file.
#[derive(Debug, Parser)]
#[command(
    name = "sluice",
    version,
    about = "A single-node broker that speaks the Apache Kafka protocol"
)]
pub struct Cli {
    /// TOML configuration file (see config/sluice.toml for every setting and its default).
    #[arg(long, env = "SLUICE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:9092].
    #[arg(long, env = "SLUICE_LISTEN", value_name = "HOST:PORT")]
    pub listen: Option<String>,
    /// Address that Metadata tells clients to connect to [default: the listen address].
    #[arg(long, env = "SLUICE_ADVERTISED_LISTENER", value_name = "HOST:PORT")]
    pub advertised_listener: Option<String>,
    /// Listeners, comma-separated PROTOCOL://HOST:PORT (PLAINTEXT, SSL,
    /// SASL_PLAINTEXT, SASL_SSL); replaces --listen.
    #[arg(
        long,
        env = "SLUICE_LISTENERS",
        value_name = "PROTOCOL://HOST:PORT,...",
        value_delimiter = ','
    )]
    pub listeners: Option<Vec<String>>,
    /// What Metadata tells the clients of each listener, in the same order.
    #[arg(
        long,
        env = "SLUICE_ADVERTISED_LISTENERS",
        value_name = "PROTOCOL://HOST:PORT,...",
        value_delimiter = ','
    )]
    pub advertised_listeners: Option<Vec<String>>,
    /// Directory holding the partition logs and topic metadata [default: ./data].
    #[arg(long, env = "SLUICE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Node id this broker reports in Metadata [default: 1].
    #[arg(long, env = "SLUICE_NODE_ID", value_name = "N")]
    pub node_id: Option<i32>,
    /// Log filter, e.g. `info` or `sluice=debug` [default: info].
    #[arg(long, env = "SLUICE_LOG_LEVEL", value_name = "FILTER")]
    pub log_level: Option<String>,
    /// The HTTP server (status page, /metrics, /healthz), or `none` [default: 127.0.0.1:9644].
    #[arg(long, env = "SLUICE_HTTP", value_name = "HOST:PORT|none")]
    pub http: Option<String>,
    /// Serve a test cluster of N nodes (ids 1..=N) on the --listen port and
    /// the N-1 after it, over one data directory [default: 1].
    #[arg(long, env = "SLUICE_BROKERS", value_name = "N")]
    pub brokers: Option<usize>,
}

/// Where the binary serves its status page and metrics unless told otherwise.
pub const DEFAULT_HTTP: &str = "127.0.0.1:9644";

/// When appended data is fsynced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FlushMode {
    /// Leave it to the operating system (Kafka's default).
    #[default]
    Os,
    /// fsync every `flush_interval_ms`.
    Interval,
    /// fsync before acknowledging a produce request (group commit).
    Always,
}

/// Broker settings. Field comments give the Kafka name where there is one.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `listeners`: the address to bind.
    pub listen: String,
    /// `advertised.listeners`: the address given to clients; the bound address when unset.
    pub advertised_listener: Option<String>,
    /// `log.dirs`: where partitions and topic metadata live.
    pub data_dir: PathBuf,
    /// `node.id`.
    pub node_id: i32,
    /// Tracing filter.
    pub log_level: String,
    /// Cluster id reported to clients.
    pub cluster_id: String,
    /// `socket.request.max.bytes`: the largest request frame accepted.
    pub socket_request_max_bytes: u32,
    /// `max.connections`: concurrent client connections.
    pub max_connections: usize,
    /// `max.connections.per.ip`: connections from one address; more are closed at once.
    pub max_connections_per_ip: usize,
    /// `queued.max.request.bytes`: request bytes read but not yet answered,
    /// across all connections. Beyond it the broker stops reading sockets.
    pub queued_max_request_bytes: u64,
    /// `connections.max.idle.ms`: a connection silent this long, or whose
    /// client takes no byte of a reply for this long, is closed.
    pub connections_max_idle_ms: u64,
    /// Once the broker stops, how long a connection's unsent replies may
    /// take to go out before it is closed without them (Sluice's own).
    pub shutdown_reply_timeout_ms: u64,
    /// The TCP congestion control of connections whose peer address is
    /// loopback (Sluice's own): a pacing one such as BBR costs timers and
    /// buys nothing there. Empty: the system's default. Connections from
    /// other addresses keep it.
    pub loopback_congestion_control: String,
    /// `fetch.max.bytes`: the most record bytes one fetch answer carries,
    /// whatever the client asks for (its first batch may exceed it).
    pub fetch_max_bytes: u32,
    /// `max.incremental.fetch.session.cache.slots`: fetch sessions (KIP-227)
    /// kept at once; 0 turns them off.
    pub max_incremental_fetch_session_cache_slots: usize,
    /// Sealed segment `.log` files held open at once, across all partitions
    /// (Sluice's own; Kafka keeps every one open). Past it, the one least
    /// recently read is closed, and opened again when read again.
    pub max_open_segment_files: usize,
    /// `auto.create.topics.enable`.
    pub auto_create_topics_enable: bool,
    /// `num.partitions`: partitions of an auto-created topic.
    pub num_partitions: i32,
    /// `log.flush.*`: when data is fsynced.
    pub flush: FlushMode,
    /// `log.flush.interval.ms`: the period when `flush = "interval"`.
    pub flush_interval_ms: u64,
    /// `log.retention.check.interval.ms`.
    pub retention_check_interval_ms: u64,
    /// The HTTP server's address (status page, `/metrics`, `/healthz`), or
    /// `"none"`. Unset, an in-process broker has none; the binary listens on
    /// [`DEFAULT_HTTP`].
    pub http_listen: Option<String>,
    /// True when `http_listen` is the binary's default, not a choice: a
    /// taken port then only warns.
    #[serde(skip)]
    pub http_default: bool,
    /// `transaction.max.timeout.ms`: the longest `transaction.timeout.ms` a
    /// transactional producer may ask for (INVALID_TRANSACTION_TIMEOUT beyond).
    pub transaction_max_timeout_ms: i32,
    /// `log.cleaner.enable`: compact the topics whose `cleanup.policy` says so.
    pub log_cleaner_enable: bool,
    /// `log.cleaner.threads`: threads cleaning partitions, each with its own dedupe buffer.
    pub log_cleaner_threads: usize,
    /// `log.cleaner.backoff.ms`: pause between two cleaner passes over the partitions.
    pub log_cleaner_backoff_ms: u64,
    /// `log.cleaner.dedupe.buffer.size`: bytes of key → offset map, shared by
    /// the cleaner threads; a pass maps as many keys as fit.
    pub log_cleaner_dedupe_buffer_size: u64,
    /// Defaults for every topic (`log.*` broker settings); topics may
    /// override them. The `[log]` keys are the rows of [`crate::topic_config::SETTINGS`].
    #[serde(deserialize_with = "crate::topic_config::deserialize_defaults")]
    pub log: LogConfig,
    /// The group coordinator (`group.*` and `offsets.*` broker settings).
    pub group: GroupConfig,
    /// `listeners`: `PROTOCOL://host:port` each (PLAINTEXT, SSL,
    /// SASL_PLAINTEXT, SASL_SSL).
    /// When set, it replaces `listen`.
    pub listeners: Vec<String>,
    /// `advertised.listeners`: what Metadata gives clients of each listener,
    /// in the same order; each listener's bound address when unset.
    pub advertised_listeners: Vec<String>,
    /// SASL mechanisms, re-authentication and users (the `[sasl]` table).
    pub sasl: crate::security::SaslConfig,
    /// Certificate, key and client authentication of SSL and SASL_SSL
    /// listeners (the `[tls]` table).
    pub tls: Option<crate::security::TlsConfig>,
    /// `authorizer.class.name`: check every request against the ACLs.
    pub authorizer: bool,
    /// `super.users`: principals ("User:name") the authorizer allows everything.
    pub super_users: Vec<String>,
    /// Nodes of a test cluster served over one data directory: node ids
    /// 1..=N on `listen`'s port and the ports after it (1: one broker).
    pub brokers: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:9092".into(),
            advertised_listener: None,
            data_dir: PathBuf::from("./data"),
            node_id: 1,
            log_level: "info".into(),
            cluster_id: "sluice-cluster".into(),
            socket_request_max_bytes: 100 * 1024 * 1024,
            max_connections: 1000,
            max_connections_per_ip: 1000,
            queued_max_request_bytes: 128 * 1024 * 1024,
            fetch_max_bytes: 55 * 1024 * 1024,
            max_incremental_fetch_session_cache_slots: 1000,
            max_open_segment_files: 1000,
            connections_max_idle_ms: 600_000,
            shutdown_reply_timeout_ms: 5_000,
            loopback_congestion_control: "reno".into(),
            auto_create_topics_enable: true,
            num_partitions: 1,
            flush: FlushMode::Os,
            flush_interval_ms: 1000,
            retention_check_interval_ms: 300_000,
            http_listen: None,
            http_default: false,
            transaction_max_timeout_ms: 15 * 60 * 1000,
            log_cleaner_enable: true,
            log_cleaner_threads: 1,
            log_cleaner_backoff_ms: 1000,
            log_cleaner_dedupe_buffer_size: 32 * 1024 * 1024,
            log: LogConfig::default(),
            group: GroupConfig::default(),
            listeners: Vec::new(),
            advertised_listeners: Vec::new(),
            sasl: crate::security::SaslConfig::default(),
            tls: None,
            authorizer: false,
            super_users: Vec::new(),
            brokers: 1,
        }
    }
}

impl Config {
    /// Builds the configuration from the file named by `--config` (if any), then the flags.
    pub fn load(cli: &Cli) -> Result<Config, String> {
        let mut config = match &cli.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        if let Some(v) = &cli.listen {
            config.listen = v.clone();
        }
        if let Some(v) = &cli.advertised_listener {
            config.advertised_listener = Some(v.clone());
        }
        if let Some(v) = &cli.listeners {
            config.listeners = v.clone();
        }
        if let Some(v) = &cli.advertised_listeners {
            config.advertised_listeners = v.clone();
        }
        if let Some(v) = &cli.data_dir {
            config.data_dir = v.clone();
        }
        if let Some(v) = cli.node_id {
            config.node_id = v;
        }
        if let Some(v) = &cli.log_level {
            config.log_level = v.clone();
        }
        if let Some(v) = &cli.http {
            config.http_listen = Some(v.clone());
        }
        if let Some(v) = cli.brokers {
            config.brokers = v;
        }
        if config.http_listen.is_none() {
            config.http_listen = Some(DEFAULT_HTTP.to_string());
            config.http_default = true;
        }
        config.validate()?;
        Ok(config)
    }

    /// Every listener: (security protocol, bind address, advertised address
    /// or `None` for the bound one). Without `listeners`, one PLAINTEXT
    /// listener on `listen`, advertised as `advertised_listener`.
    pub fn listener_specs(
        &self,
    ) -> Result<Vec<(crate::security::SecurityProtocol, String, Option<String>)>, String> {
        use crate::security::{SecurityProtocol, parse_listener};
        if self.listeners.is_empty() {
            return Ok(vec![(
                SecurityProtocol::Plaintext,
                self.listen.clone(),
                self.advertised_listener.clone(),
            )]);
        }
        if !self.advertised_listeners.is_empty()
            && self.advertised_listeners.len() != self.listeners.len()
        {
            return Err("advertised_listeners must name one address per listener, in order".into());
        }
        let mut out = Vec::new();
        for (i, spec) in self.listeners.iter().enumerate() {
            let (protocol, bind) = parse_listener(spec)?;
            if protocol.tls() && self.tls.is_none() {
                return Err(format!(
                    "listener {spec:?}: {} needs a [tls] table (cert_file, key_file)",
                    protocol.name()
                ));
            }
            bind.parse::<SocketAddr>()
                .map_err(|e| format!("listener {spec:?}: {e}"))?;
            let advertised = match self.advertised_listeners.get(i) {
                Some(adv) => {
                    let (adv_protocol, address) = parse_listener(adv)?;
                    if adv_protocol != protocol {
                        return Err(format!(
                            "advertised listener {adv:?} does not match listener {spec:?}"
                        ));
                    }
                    Some(address)
                }
                None => None,
            };
            out.push((protocol, bind, advertised));
        }
        Ok(out)
    }

    /// Parses a TOML file; unknown keys are an error.
    pub fn from_file(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The address the HTTP server should listen on, if any (`":PORT"`
    /// means `127.0.0.1:PORT`).
    pub fn http_address(&self) -> Option<String> {
        match self.http_listen.as_deref().map(str::trim) {
            None | Some("none") | Some("") => None,
            Some(a) if a.starts_with(':') => Some(format!("127.0.0.1{a}")),
            Some(a) => Some(a.to_string()),
        }
    }
}

/// Splits `host:port` (the host may be a name); the port must be a number.
pub fn split_host_port(value: &str) -> Result<(String, u16), String> {
    let (host, port) = value
        .rsplit_once(':')
        .ok_or_else(|| format!("{value:?}: expected HOST:PORT"))?;
    let port = port
        .parse::<u16>()
        .map_err(|e| format!("{value:?}: port: {e}"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("{value:?}: empty host"));
    }
    Ok((host.to_string(), port))
}

mod validate;

#[cfg(test)]
mod tests;
