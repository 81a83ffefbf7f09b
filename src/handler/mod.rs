//! One handler per Kafka API, one dispatch `match`, one version table.
//!
//! [`SUPPORTED`] is the single source of truth: ApiVersions is built from it
//! and dispatch refuses anything outside it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;

use crate::catalog::Catalog;
use crate::config::Config;
use crate::connection::Chunk;
use crate::error::{Error, Result};
use crate::faults::FaultKind;
use crate::protocol::{Request, encode_response};
use crate::session::Session;
pub(crate) use fetch::Sessions as FetchSessions;

pub(crate) use call::Call;

mod acls;
mod add_offsets_to_txn;
mod add_partitions_to_txn;
mod admin_configs;
mod api_versions;
mod call;
mod consumer_group;
mod create_partitions;
mod create_topics;
mod delete_groups;
mod delete_records;
mod delete_topics;
mod describe_cluster;
mod describe_groups;
mod describe_log_dirs;
mod end_txn;
mod fetch;
mod find_coordinator;
mod heartbeat;
mod init_producer_id;
mod join_group;
mod leave_group;
mod list_groups;
mod list_offsets;
mod metadata;
mod offset_commit;
mod offset_delete;
mod offset_fetch;
mod offset_for_leader_epoch;
mod partitions_admin;
mod placement;
mod produce;
mod quotas;
pub(crate) mod refuse;
mod sasl;
mod sync_group;
mod transactions;
mod txn_offset_commit;

/// The APIs Sluice serves and the version range of each.
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 11),
    (ApiKey::Fetch, 4, 16),
    (ApiKey::ListOffsets, 1, 8),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::DescribeLogDirs, 1, 4),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeCluster, 0, 1),
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::AddPartitionsToTxn, 0, 3),
    (ApiKey::AddOffsetsToTxn, 0, 3),
    (ApiKey::EndTxn, 0, 3),
    (ApiKey::TxnOffsetCommit, 0, 3),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::ListTransactions, 0, 1),
    (ApiKey::ConsumerGroupHeartbeat, 0, 1),
    (ApiKey::ConsumerGroupDescribe, 0, 1),
    (ApiKey::DescribeTopicPartitions, 0, 0),
    (ApiKey::DescribeProducers, 0, 0),
    (ApiKey::ElectLeaders, 0, 2),
    (ApiKey::ListPartitionReassignments, 0, 0),
    (ApiKey::DescribeClientQuotas, 0, 1),
    (ApiKey::AlterClientQuotas, 0, 1),
    (ApiKey::CreateAcls, 1, 3),
    (ApiKey::DescribeAcls, 1, 3),
    (ApiKey::DeleteAcls, 1, 3),
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
    (ApiKey::DescribeUserScramCredentials, 0, 0),
    (ApiKey::AlterUserScramCredentials, 0, 0),
];

/// The supported version range of `key`, if it is served at all.
pub fn supported_range(key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|&(_, min, max)| (min, max))
}

/// Everything a handler may use: shared by the connections of one listener.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    pub catalog: Arc<Catalog>,
    pub config: Arc<Config>,
    /// The node this listener serves (`node_id`, or a test cluster's node).
    pub node: i32,
    /// The cluster's nodes and who leads what (one node for a single broker).
    pub nodes: Arc<crate::cluster::Nodes>,
    /// Faults injected for tests, consulted before each request.
    pub faults: Arc<crate::faults::Faults>,
    /// The host and port Metadata advertises (the listener's).
    pub advertised: (String, i32),
    /// The security protocol of the listener.
    pub listener: crate::security::SecurityProtocol,
    /// The group coordinator.
    pub groups: Arc<crate::group::Coordinator>,
    /// The transaction coordinator.
    pub txns: Arc<crate::txn::TxnCoordinator>,
    /// Request counts and durations, bytes in and out.
    pub metrics: Arc<crate::observe::Metrics>,
    /// The open connections and what their clients said about themselves.
    pub clients: Arc<crate::session::Clients>,
    /// Client quotas (stored and reported).
    pub quotas: Arc<crate::quotas::ClientQuotas>,
    /// ACL bindings.
    pub acls: Arc<crate::acl::Acls>,
    /// Broker and group settings changed at run time.
    pub dynamic: Arc<crate::dynamic_config::DynamicConfigs>,
    /// SCRAM credentials of the SASL users.
    pub credentials: Arc<crate::security::credentials::Credentials>,
    /// Incremental fetch sessions (KIP-227).
    pub fetch_sessions: Arc<FetchSessions>,
}

/// The chunks of a response frame, once a deferred reply is ready.
pub(crate) type ReplyFuture = Pin<Box<dyn Future<Output = Result<Vec<Chunk>>> + Send>>;

/// What the connection does after a request.
pub(crate) enum Reply {
    /// Send these chunks as one response frame.
    Frame(Vec<Chunk>),
    /// Send nothing (Produce with acks = 0).
    Nothing,
    /// The request's effects are done; its answer waits for something else
    /// (a group-commit fsync). Later requests are read and handled meanwhile,
    /// and answers still leave in request order.
    Deferred(ReplyFuture),
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reply::Frame(parts) => f.debug_tuple("Frame").field(parts).finish(),
            Reply::Nothing => f.write_str("Nothing"),
            Reply::Deferred(_) => f.write_str("Deferred"),
        }
    }
}

impl Reply {
    fn frame(buf: BytesMut) -> Reply {
        Reply::Frame(vec![buf.freeze().into()])
    }
}

/// Decodes the body, calls `module::handle` (or the named function), encodes the answer.
macro_rules! route {
    ($ctx:expr, $req:expr, $module:ident) => {
        route!($ctx, $req, $module::handle)
    };
    ($ctx:expr, $req:expr, $module:ident :: $function:ident) => {{
        let body = $req.decode()?;
        let response = $module::$function($ctx, body, $req.version()).await?;
        Reply::frame(encode_response(
            $req.api_key,
            $req.version(),
            $req.header.correlation_id,
            &response,
        )?)
    }};
}

/// Handles one request frame of `session`'s connection, and counts it. An
/// `Err` means the connection must be closed.
pub(crate) async fn handle(ctx: &Context, frame: Bytes, session: &mut Session) -> Result<Reply> {
    let started = std::time::Instant::now();
    if session.auth.expects_raw_token() {
        return sasl::raw_token(ctx, &frame, session);
    }
    let req = Request::parse(frame)?;
    session.request(&req.header);
    let api = req.api_key;
    let reply = dispatch(ctx, req, session).await;
    ctx.metrics.request(api, started.elapsed());
    reply
}

async fn dispatch(ctx: &Context, req: Request, session: &mut Session) -> Result<Reply> {
    if let Some(reply) = admit(ctx, &req, session).await? {
        return Ok(reply);
    }
    let call = &Call {
        ctx,
        principal: session.auth.principal(),
        host: session.address(),
        stop: &session.stop,
    };
    route(call, &req, session.host()).await
}

/// What happens to `req` before its handler: a version outside the table
/// or anything but SASL before authenticating closes the connection, an
/// injected fault takes effect, and the APIs a client may send before
/// authenticating are answered (`Some`).
async fn admit(ctx: &Context, req: &Request, session: &mut Session) -> Result<Option<Reply>> {
    let version = req.version();
    let in_range =
        supported_range(req.api_key).is_some_and(|(min, max)| (min..=max).contains(&version));
    if !in_range {
        if req.api_key == ApiKey::ApiVersions {
            return Ok(Some(Reply::frame(api_versions::unsupported(
                req.header.correlation_id,
            )?)));
        }
        return Err(Error::Protocol(format!(
            "{:?} v{version} is not supported",
            req.api_key
        )));
    }
    if !session.auth.allows(req.api_key) {
        // Kafka closes a SASL connection that sends anything else before
        // authenticating (or after its session lifetime, KIP-368).
        return Err(Error::Protocol(format!(
            "{:?} before SASL authentication",
            req.api_key
        )));
    }
    tracing::trace!(api = ?req.api_key, version, correlation_id = req.header.correlation_id, "request");
    if let Some(fault) = ctx.faults.take(req.api_key, ctx.node) {
        tracing::debug!(api = ?req.api_key, ?fault, "injected fault");
        match fault {
            FaultKind::Delay(delay) => tokio::time::sleep(delay).await,
            FaultKind::Disconnect => return Err(Error::Protocol("injected disconnect".into())),
            FaultKind::Error(error) => return refuse::refuse(req, error).map(Some),
        }
    }
    pre_auth(ctx, req, session).await
}

/// The answer to an API a client may send before authenticating, or `None`
/// for any other.
async fn pre_auth(ctx: &Context, req: &Request, session: &mut Session) -> Result<Option<Reply>> {
    let version = req.version();
    Ok(Some(match req.api_key {
        ApiKey::ApiVersions => {
            if version >= 3
                && let Ok(body) = req.decode::<kafka_protocol::messages::ApiVersionsRequest>()
            {
                session.software(&body.client_software_name, &body.client_software_version);
            }
            route!(ctx, req, api_versions)
        }
        ApiKey::SaslHandshake => {
            let response = sasl::handshake(ctx, req.decode()?, version, session);
            answer(req, &response)?
        }
        ApiKey::SaslAuthenticate => {
            let response = sasl::authenticate(ctx, req.decode()?, version, session);
            answer(req, &response)?
        }
        _ => return Ok(None),
    }))
}

/// Calls the handler of `req`'s API.
async fn route(ctx: &Call<'_>, req: &Request, host: &str) -> Result<Reply> {
    Ok(match req.api_key {
        ApiKey::Produce => return produce::handle(ctx, req).await,
        ApiKey::Fetch => return fetch::handle(ctx, req).await,
        ApiKey::Metadata => route!(ctx, req, metadata),
        ApiKey::ListOffsets => route!(ctx, req, list_offsets),
        ApiKey::CreateTopics => route!(ctx, req, create_topics),
        ApiKey::DeleteTopics => route!(ctx, req, delete_topics),
        ApiKey::CreatePartitions => route!(ctx, req, create_partitions),
        ApiKey::DeleteRecords => route!(ctx, req, delete_records),
        ApiKey::InitProducerId => route!(ctx, req, init_producer_id),
        ApiKey::OffsetForLeaderEpoch => route!(ctx, req, offset_for_leader_epoch),
        ApiKey::DescribeCluster => route!(ctx, req, describe_cluster),
        ApiKey::DescribeLogDirs => route!(ctx, req, describe_log_dirs),
        ApiKey::FindCoordinator => route!(ctx, req, find_coordinator),
        ApiKey::JoinGroup => return join_group::handle(ctx, req, host).await,
        ApiKey::SyncGroup => route!(ctx, req, sync_group),
        ApiKey::Heartbeat => route!(ctx, req, heartbeat),
        ApiKey::LeaveGroup => route!(ctx, req, leave_group),
        ApiKey::OffsetCommit => route!(ctx, req, offset_commit),
        ApiKey::OffsetFetch => route!(ctx, req, offset_fetch),
        ApiKey::OffsetDelete => route!(ctx, req, offset_delete),
        ApiKey::ListGroups => route!(ctx, req, list_groups),
        ApiKey::DescribeGroups => route!(ctx, req, describe_groups),
        ApiKey::ConsumerGroupHeartbeat => {
            let response = consumer_group::heartbeat(ctx, req, host).await?;
            answer(req, &response)?
        }
        ApiKey::ConsumerGroupDescribe => route!(ctx, req, consumer_group::describe),
        ApiKey::DescribeTopicPartitions => {
            route!(ctx, req, partitions_admin::describe_topic_partitions)
        }
        ApiKey::DescribeProducers => route!(ctx, req, partitions_admin::describe_producers),
        ApiKey::ElectLeaders => route!(ctx, req, partitions_admin::elect_leaders),
        ApiKey::ListPartitionReassignments => {
            route!(ctx, req, partitions_admin::list_partition_reassignments)
        }
        ApiKey::DescribeClientQuotas => route!(ctx, req, quotas::describe),
        ApiKey::AlterClientQuotas => route!(ctx, req, quotas::alter),
        ApiKey::AlterUserScramCredentials => route!(ctx, req, sasl::alter_users),
        ApiKey::DescribeUserScramCredentials => route!(ctx, req, sasl::describe_users),
        ApiKey::CreateAcls => route!(ctx, req, acls::create),
        ApiKey::DescribeAcls => route!(ctx, req, acls::describe),
        ApiKey::DeleteAcls => route!(ctx, req, acls::delete),
        ApiKey::DeleteGroups => route!(ctx, req, delete_groups),
        ApiKey::AddPartitionsToTxn => route!(ctx, req, add_partitions_to_txn),
        ApiKey::AddOffsetsToTxn => route!(ctx, req, add_offsets_to_txn),
        ApiKey::EndTxn => route!(ctx, req, end_txn),
        ApiKey::TxnOffsetCommit => route!(ctx, req, txn_offset_commit),
        ApiKey::DescribeTransactions => route!(ctx, req, transactions::describe),
        ApiKey::ListTransactions => route!(ctx, req, transactions::list),
        ApiKey::DescribeConfigs => route!(ctx, req, admin_configs::describe),
        ApiKey::AlterConfigs => route!(ctx, req, admin_configs::alter),
        ApiKey::IncrementalAlterConfigs => route!(ctx, req, admin_configs::incremental_alter),
        other => return Err(Error::Protocol(format!("{other:?} has no handler"))),
    })
}

/// The frame of `response` to `req` (for handlers that need more than `route!` gives).
fn answer<R>(req: &Request, response: &R) -> Result<Reply>
where
    R: kafka_protocol::protocol::Encodable,
{
    Ok(Reply::frame(encode_response(
        req.api_key,
        req.version(),
        req.header.correlation_id,
        response,
    )?))
}

/// A topic name as the protocol's string type.
pub(crate) fn str_bytes(s: &str) -> kafka_protocol::protocol::StrBytes {
    kafka_protocol::protocol::StrBytes::from_string(s.to_string())
}

/// Runs catalog work that touches many files (creating or deleting
/// partitions) on a blocking thread, off the async workers.
pub(crate) async fn on_catalog<T: Send + 'static>(
    ctx: &Context,
    work: impl FnOnce(&Catalog) -> Result<T> + Send + 'static,
) -> Result<T> {
    let catalog = ctx.catalog.clone();
    tokio::task::spawn_blocking(move || work(&catalog))
        .await
        .map_err(|e| {
            Error::api(
                kafka_protocol::ResponseError::UnknownServerError,
                e.to_string(),
            )
        })?
}
