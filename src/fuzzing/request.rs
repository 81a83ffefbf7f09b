//! The `request` target: one request frame through the handler of a
//! scratch broker.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;

use super::{INPUTS_PER_SCRATCH, NOW_MS, Scratch, TOPIC, log_config};
use crate::catalog::Catalog;
use crate::config::Config;
use crate::group::Coordinator;
use crate::handler::{self, Context, Reply};
use crate::storage::TimestampType;

/// A request still waiting after this long (a JoinGroup waiting for its
/// rebalance, say) counts as handled.
const REQUEST_TIMEOUT: Duration = Duration::from_millis(20);

pub(super) static BROKER: Mutex<Option<Broker>> = Mutex::new(None);

pub(super) struct Broker {
    ctx: Context,
    inputs: u32,
    // Dropped last: the logs above still have files open in it.
    _dir: Scratch,
}

fn new_broker() -> Broker {
    let dir = Scratch::new("broker");
    let config = Config {
        data_dir: dir.0.clone(),
        ..Config::default()
    };
    let catalog = Catalog::open(&dir.0, log_config(TimestampType::CreateTime)).expect("catalog");
    let groups = Coordinator::open((&dir.0, catalog.files()), config.group.clone(), false)
        .expect("coordinator");
    // A topic to produce to and fetch from, with a few records.
    let topic = catalog
        .create_topic(TOPIC, 2, Default::default(), false)
        .expect("topic");
    for partition in topic.partitions() {
        let batch = crate::storage::testing::batch(&[(b"k", b"v"), (b"k2", b"v2")], NOW_MS);
        partition.append(&batch).expect("append");
    }
    let groups = Arc::new(groups);
    let txns = crate::txn::TxnCoordinator::recover(
        &catalog,
        groups.clone(),
        (false, config.transaction_max_timeout_ms),
    )
    .expect("transactions");
    let catalog = Arc::new(catalog);
    let clients = Arc::new(crate::session::Clients::default());
    let metrics = crate::observe::Metrics::new(catalog.clone(), groups.clone(), clients.clone());
    let ctx = Context {
        txns: Arc::new(txns),
        catalog,
        node: config.node_id,
        nodes: Arc::new(crate::cluster::Nodes::single(config.node_id)),
        faults: Arc::default(),
        config: Arc::new(config),
        advertised: ("127.0.0.1".to_string(), 9092),
        listener: crate::security::SecurityProtocol::Plaintext,
        groups,
        metrics: Arc::new(metrics),
        clients,
        quotas: Arc::new(crate::quotas::ClientQuotas::open(&dir.0).expect("quotas")),
        acls: Arc::new(crate::acl::Acls::open(&dir.0).expect("acls")),
        dynamic: Arc::new(
            crate::dynamic_config::DynamicConfigs::open(
                &dir.0,
                log_config(TimestampType::CreateTime),
            )
            .expect("dynamic configs"),
        ),
        credentials: Arc::new(
            crate::security::credentials::Credentials::open(
                &dir.0,
                &[("fuzz".into(), "fuzz-secret".into())],
            )
            .expect("credentials"),
        ),
        fetch_sessions: Arc::new(crate::handler::FetchSessions::new(8)),
    };
    Broker {
        ctx,
        inputs: 0,
        _dir: dir,
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime")
    })
}

/// Handles `data` as one request frame body (no size prefix). Panics if the
/// handler panics or answers with a malformed frame.
pub fn request(data: &[u8]) {
    let mut slot = BROKER.lock().unwrap_or_else(|e| e.into_inner());
    if slot.as_ref().is_none_or(|b| b.inputs >= INPUTS_PER_SCRATCH) {
        *slot = None;
        *slot = Some(new_broker());
    }
    let Some(broker) = slot.as_mut() else { return };
    broker.inputs += 1;
    let frame = Bytes::copy_from_slice(data);
    if creates_many_partitions(&frame) {
        return;
    }
    let handled = runtime().block_on(async {
        // An odd correlation id makes this a connection of a SASL listener,
        // so the SASL exchanges (and their refusals) are fuzzed too.
        let sasl = data.get(7).is_some_and(|b| b & 1 == 1);
        let mut session = broker.ctx.clients.open(([127, 0, 0, 1], 9).into(), sasl);
        // A stopping broker's fetch answers at once instead of long-polling.
        session.stop.set();
        tokio::time::timeout(
            REQUEST_TIMEOUT,
            handler::handle(&broker.ctx, frame, &mut session),
        )
        .await
    });
    if let Ok(Ok(Reply::Frame(parts))) = handled {
        let response: Vec<u8> = parts
            .iter()
            .map(|part| part.to_bytes().expect("read a fetched file range"))
            .collect::<Vec<_>>()
            .concat();
        assert!(response.len() >= 8, "response of {} bytes", response.len());
        let size = i32::from_be_bytes([response[0], response[1], response[2], response[3]]);
        assert_eq!(size as usize, response.len() - 4, "size prefix");
        assert_eq!(response[4..8], data[4..8], "correlation id");
    }
}

/// Partitions one input may create. Each costs a directory, three files and
/// fsyncs, done synchronously by the handler: a request for the allowed
/// 100,000 takes minutes on a real disk and would dominate the fuzzer's time
/// while exercising nothing new.
const MAX_NEW_PARTITIONS: i64 = 64;

/// True for a CreateTopics or CreatePartitions request asking for more than
/// [`MAX_NEW_PARTITIONS`]; such inputs are skipped.
fn creates_many_partitions(frame: &Bytes) -> bool {
    use kafka_protocol::messages::{ApiKey, CreatePartitionsRequest, CreateTopicsRequest};
    let Ok(req) = crate::protocol::Request::parse(frame.clone()) else {
        return false;
    };
    let wanted: i64 = match req.api_key {
        ApiKey::CreateTopics => req.decode::<CreateTopicsRequest>().map_or(0, |r| {
            r.topics
                .iter()
                .map(|t| i64::from(t.num_partitions).max(t.assignments.len() as i64))
                .sum()
        }),
        ApiKey::CreatePartitions => req
            .decode::<CreatePartitionsRequest>()
            .map_or(0, |r| r.topics.iter().map(|t| i64::from(t.count)).sum()),
        _ => 0,
    };
    wanted > MAX_NEW_PARTITIONS
}
