//! Metadata: this one node leads every partition; unknown topics are created
//! when the client allows it and `auto_create_topics_enable` is on.
//!
//! The authorizer hides what the caller may not DESCRIBE: "all topics"
//! leaves those topics out, a named one answers TOPIC_AUTHORIZATION_FAILED
//! (whether or not it exists), and auto-creation needs CREATE on the cluster
//! or the topic.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};

use super::{Call, Context, str_bytes};
use crate::acl::{CLUSTER_NAME, op, resource};
use crate::catalog::Topic;
use crate::error::Result;

pub(super) async fn handle(
    ctx: &Call<'_>,
    req: MetadataRequest,
    version: i16,
) -> Result<MetadataResponse> {
    let mut response = MetadataResponse::default();
    response.brokers = brokers(ctx);
    if version >= 2 {
        response.cluster_id = Some(str_bytes(&ctx.config.cluster_id));
    }
    if version >= 1 {
        response.controller_id = BrokerId(ctx.nodes.controller());
    }
    if (8..=10).contains(&version) && req.include_cluster_authorized_operations {
        response.cluster_authorized_operations =
            match ctx.may(op::DESCRIBE, resource::CLUSTER, CLUSTER_NAME) {
                true => ctx.operations(true, resource::CLUSTER, CLUSTER_NAME),
                false => 0,
            };
    }
    let topic_operations = version >= 8 && req.include_topic_authorized_operations;
    let auto_create =
        ctx.config.auto_create_topics_enable && (version < 4 || req.allow_auto_topic_creation);
    let mut topics = match req.topics {
        // v0 uses an empty list for "all topics"; later versions use null.
        None => all_topics(ctx, version),
        Some(list) if list.is_empty() && version == 0 => all_topics(ctx, version),
        Some(list) => list
            .into_iter()
            .map(|t| match t.name {
                Some(name) => named_topic(ctx, &name, auto_create, version),
                None => topic_by_id(ctx, t.topic_id, version),
            })
            .collect(),
    };
    if topic_operations {
        // KIP-430: asked for, the operations this client may perform on each topic.
        for t in topics.iter_mut().filter(|t| t.error_code == 0) {
            let name = t.name.as_deref().map_or("", |n| n.as_str());
            t.topic_authorized_operations = ctx.operations(true, resource::TOPIC, name);
        }
    }
    response.topics = topics;
    Ok(response)
}

/// Every live node as this listener's clients reach it, as the answer lists brokers.
fn brokers(ctx: &Call<'_>) -> Vec<MetadataResponseBroker> {
    ctx.brokers()
        .into_iter()
        .map(|(id, host, port)| {
            let mut broker = MetadataResponseBroker::default();
            broker.node_id = BrokerId(id);
            broker.host = str_bytes(&host);
            broker.port = port;
            broker
        })
        .collect()
}

/// The topic with id `id`; UNKNOWN_TOPIC_ID if there is none, and
/// TOPIC_AUTHORIZATION_FAILED (with the id, not the name) if the client
/// may not describe it.
fn topic_by_id(ctx: &Call<'_>, id: uuid::Uuid, version: i16) -> MetadataResponseTopic {
    match ctx.catalog.topic_by_id(id) {
        Some(topic) if !ctx.may(op::DESCRIBE, resource::TOPIC, &topic.name) => {
            let mut t = error_topic(None, ResponseError::TopicAuthorizationFailed, version);
            t.topic_id = topic.id;
            t
        }
        Some(topic) => describe_topic(ctx, &topic, version),
        None => error_topic(None, ResponseError::UnknownTopicId, version),
    }
}

fn all_topics(ctx: &Call<'_>, version: i16) -> Vec<MetadataResponseTopic> {
    ctx.catalog
        .topics()
        .iter()
        .filter(|t| ctx.may(op::DESCRIBE, resource::TOPIC, &t.name))
        .map(|t| describe_topic(ctx, t, version))
        .collect()
}

fn named_topic(
    ctx: &Call<'_>,
    name: &TopicName,
    auto_create: bool,
    version: i16,
) -> MetadataResponseTopic {
    let refused = |code| error_topic(Some(name.clone()), code, version);
    if !ctx.may(op::DESCRIBE, resource::TOPIC, name) {
        return refused(ResponseError::TopicAuthorizationFailed);
    }
    if let Some(topic) = ctx.catalog.topic(name) {
        return describe_topic(ctx, &topic, version);
    }
    if auto_create
        && !ctx.may(op::CREATE, resource::CLUSTER, CLUSTER_NAME)
        && !ctx.may(op::CREATE, resource::TOPIC, name)
    {
        return refused(ResponseError::TopicAuthorizationFailed);
    }
    if !auto_create {
        return error_topic(
            Some(name.clone()),
            ResponseError::UnknownTopicOrPartition,
            version,
        );
    }
    let partitions = ctx.config.num_partitions;
    match ctx
        .catalog
        .create_topic(name, partitions, BTreeMap::new(), false)
    {
        Ok(topic) => {
            tracing::info!(topic = %topic.name, partitions, "auto-created topic");
            describe_topic(ctx, &topic, version)
        }
        // Another connection created it first.
        Err(_) if ctx.catalog.topic(name).is_some() => match ctx.catalog.topic(name) {
            Some(topic) => describe_topic(ctx, &topic, version),
            None => error_topic(
                Some(name.clone()),
                ResponseError::UnknownTopicOrPartition,
                version,
            ),
        },
        Err(e) => {
            let code =
                ResponseError::try_from_code(e.code()).unwrap_or(ResponseError::UnknownServerError);
            error_topic(Some(name.clone()), code, version)
        }
    }
}

fn describe_topic(ctx: &Context, topic: &Arc<Topic>, version: i16) -> MetadataResponseTopic {
    let replicas = ctx.replicas();
    let mut t = MetadataResponseTopic::default();
    t.name = Some(TopicName(str_bytes(&topic.name)));
    if version >= 10 {
        t.topic_id = topic.id;
    }
    t.partitions = topic
        .partitions()
        .iter()
        .map(|p| {
            let mut mp = MetadataResponsePartition::default();
            let leader = ctx.nodes.leader(&topic.name, p.index);
            mp.partition_index = p.index;
            mp.leader_id = BrokerId(leader.node);
            if !ctx.nodes.is_live(leader.node) {
                // Every node of a test cluster is down.
                mp.error_code = ResponseError::LeaderNotAvailable.code();
                mp.leader_id = BrokerId(-1);
            }
            if version >= 7 {
                mp.leader_epoch = leader.epoch;
            }
            mp.replica_nodes = replicas.clone();
            mp.isr_nodes = replicas.clone();
            mp
        })
        .collect();
    t
}

fn error_topic(
    name: Option<TopicName>,
    code: ResponseError,
    _version: i16,
) -> MetadataResponseTopic {
    let mut t = MetadataResponseTopic::default();
    t.name = name;
    t.error_code = code.code();
    t
}
