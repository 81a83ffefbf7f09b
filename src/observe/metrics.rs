//! Prometheus metrics (`GET /metrics`), through `prometheus-client`.
//!
//! The request path only increments counters and observes histograms whose
//! handles were looked up once (per API at start, per topic on its first
//! use): atomics, no label hashing per request. Everything that is state
//! rather than a count — partition offsets and sizes, group members and
//! lag, open connections — is read from the catalog, the group
//! coordinator and the client registry when Prometheus scrapes.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};
use std::time::Duration;

use kafka_protocol::messages::ApiKey;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::view;
use crate::catalog::Catalog;
use crate::group::Coordinator;
use crate::handler::SUPPORTED;
use crate::session::Clients;

type Label = [(&'static str, String); 1];

/// fsync latency of every log in the process (a partition's fsync does not
/// know which broker it belongs to; a process runs one broker outside tests).
static FSYNC_SECONDS: LazyLock<Histogram> =
    LazyLock::new(|| Histogram::new(exponential_buckets(0.000_05, 2.0, 16)));

/// Records one fsync's duration.
pub(crate) fn observe_fsync(took: Duration) {
    FSYNC_SECONDS.observe(took.as_secs_f64());
}

/// Registers the requests' counters and durations, by API; gives each
/// supported API's pair.
fn request_metrics(registry: &mut Registry) -> HashMap<i16, (Counter, Histogram)> {
    let requests_total: Family<Label, Counter> = Family::default();
    let durations: Family<Label, Histogram> =
        Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.000_01, 2.0, 20)));
    registry.register(
        "sluice_requests",
        "Kafka requests handled, by API",
        requests_total.clone(),
    );
    registry.register(
        "sluice_request_duration_seconds",
        "Time to handle a Kafka request (until its answer is ready), by API",
        durations.clone(),
    );
    SUPPORTED
        .iter()
        .map(|(key, _, _)| {
            let label = [("api", format!("{key:?}"))];
            let pair = (
                requests_total.get_or_create(&label).clone(),
                durations.get_or_create(&label).clone(),
            );
            (*key as i16, pair)
        })
        .collect()
}

/// Counters of one topic.
#[derive(Debug, Clone)]
struct TopicCounters {
    bytes_in: Counter,
    bytes_out: Counter,
    messages_in: Counter,
}

/// The broker's metrics.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    /// By API key: requests and their durations.
    requests: HashMap<i16, (Counter, Histogram)>,
    bytes_in: Family<Label, Counter>,
    bytes_out: Family<Label, Counter>,
    messages_in: Family<Label, Counter>,
    topics: RwLock<HashMap<String, TopicCounters>>,
}

impl Metrics {
    pub(crate) fn new(
        catalog: Arc<Catalog>,
        groups: Arc<Coordinator>,
        clients: Arc<Clients>,
    ) -> Metrics {
        let mut registry = Registry::default();
        let requests = request_metrics(&mut registry);
        let (bytes_in, bytes_out, messages_in) =
            (Family::default(), Family::default(), Family::default());
        registry.register(
            "sluice_topic_bytes_in",
            "Record batch bytes appended, by topic",
            Family::clone(&bytes_in),
        );
        registry.register(
            "sluice_topic_bytes_out",
            "Record batch bytes sent to consumers, by topic",
            Family::clone(&bytes_out),
        );
        registry.register(
            "sluice_topic_messages_in",
            "Records appended, by topic",
            Family::clone(&messages_in),
        );
        registry.register(
            "sluice_fsync_duration_seconds",
            "Time of each fsync of a partition log",
            FSYNC_SECONDS.clone(),
        );
        registry.register_collector(Box::new(State {
            catalog,
            groups,
            clients,
        }));
        Metrics {
            registry,
            requests,
            bytes_in,
            bytes_out,
            messages_in,
            topics: RwLock::new(HashMap::new()),
        }
    }

    /// Counts a request of `api` that took `took`.
    pub(crate) fn request(&self, api: ApiKey, took: Duration) {
        if let Some((count, duration)) = self.requests.get(&(api as i16)) {
            count.inc();
            duration.observe(took.as_secs_f64());
        }
    }

    /// Requests of `api` handled so far.
    pub(crate) fn request_count(&self, api: ApiKey) -> u64 {
        self.requests
            .get(&(api as i16))
            .map_or(0, |(count, _)| count.get())
    }

    fn topic(&self, topic: &str) -> TopicCounters {
        if let Some(c) = self
            .topics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(topic)
        {
            return c.clone();
        }
        let label = [("topic", topic.to_string())];
        let counters = TopicCounters {
            bytes_in: self.bytes_in.get_or_create(&label).clone(),
            bytes_out: self.bytes_out.get_or_create(&label).clone(),
            messages_in: self.messages_in.get_or_create(&label).clone(),
        };
        self.topics
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(topic.to_string(), counters.clone());
        counters
    }

    /// Counts an append of `messages` records in `bytes` to `topic`.
    pub(crate) fn produced(&self, topic: &str, bytes: usize, messages: u64) {
        let c = self.topic(topic);
        c.bytes_in.inc_by(bytes as u64);
        c.messages_in.inc_by(messages);
    }

    /// Counts `bytes` of `topic` sent to a consumer.
    pub(crate) fn fetched(&self, topic: &str, bytes: usize) {
        if bytes > 0 {
            self.topic(topic).bytes_out.inc_by(bytes as u64);
        }
    }

    /// The text exposition format.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "cannot encode metrics");
        }
        out
    }
}

/// What is read at scrape time.
#[derive(Debug)]
struct State {
    catalog: Arc<Catalog>,
    groups: Arc<Coordinator>,
    clients: Arc<Clients>,
}

fn gauges<L: prometheus_client::encoding::EncodeLabelSet>(
    encoder: &mut DescriptorEncoder<'_>,
    (name, help): (&str, &str),
    values: impl IntoIterator<Item = (L, i64)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in values {
        ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for State {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let connections = [(Vec::<(&str, String)>::new(), self.clients.count() as i64)];
        gauges(
            &mut encoder,
            ("sluice_connections", "Open Kafka connections"),
            connections,
        )?;
        self.encode_partitions(&mut encoder)?;
        self.encode_groups(&mut encoder)
    }
}

impl State {
    /// Each partition's offsets and size.
    fn encode_partitions(
        &self,
        encoder: &mut DescriptorEncoder<'_>,
    ) -> Result<(), std::fmt::Error> {
        let topics = view::topics(&self.catalog);
        let partitions = || {
            topics.iter().flat_map(|t| {
                t.partitions
                    .iter()
                    .map(move |p| (t.name.clone(), p.partition.to_string(), p))
            })
        };
        gauges(
            encoder,
            (
                "sluice_partition_log_start_offset",
                "First offset of each partition",
            ),
            partitions().map(|(t, p, v)| ([("topic", t), ("partition", p)], v.log_start_offset)),
        )?;
        gauges(
            encoder,
            (
                "sluice_partition_log_end_offset",
                "Offset the next record of each partition gets",
            ),
            partitions().map(|(t, p, v)| ([("topic", t), ("partition", p)], v.log_end_offset)),
        )?;
        gauges(
            encoder,
            (
                "sluice_partition_high_watermark",
                "Offset consumers can read up to in each partition",
            ),
            partitions().map(|(t, p, v)| ([("topic", t), ("partition", p)], v.high_watermark)),
        )?;
        gauges(
            encoder,
            (
                "sluice_partition_size_bytes",
                "Bytes of each partition's segments",
            ),
            partitions().map(|(t, p, v)| ([("topic", t), ("partition", p)], v.size_bytes as i64)),
        )?;
        Ok(())
    }

    /// Each group's members and lag.
    fn encode_groups(&self, encoder: &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let groups = view::groups(&self.catalog, &self.groups);
        gauges(
            encoder,
            ("sluice_group_members", "Members of each consumer group"),
            groups
                .iter()
                .map(|g| ([("group", g.group.clone())], g.members.len() as i64)),
        )?;
        gauges(
            encoder,
            (
                "sluice_group_lag",
                "Log end offset minus the group's committed offset",
            ),
            groups.iter().flat_map(|g| {
                g.offsets.iter().filter_map(move |o| {
                    let labels = [
                        ("group", g.group.clone()),
                        ("topic", o.topic.clone()),
                        ("partition", o.partition.to_string()),
                    ];
                    Some((labels, o.lag?))
                })
            }),
        )
    }
}
