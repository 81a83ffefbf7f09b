//! CreateTopics: partitions, config overrides, validate-only. The authorizer
//! needs CREATE on the cluster or the topic, and DESCRIBE_CONFIGS on the
//! topic for the answer to carry its configs.

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};

use super::{Call, on_catalog, str_bytes};
use crate::acl::{CLUSTER_NAME, op, resource};
use crate::error::{Error, Result};
use crate::topic_config;

pub(super) async fn handle(
    ctx: &Call<'_>,
    req: CreateTopicsRequest,
    version: i16,
) -> Result<CreateTopicsResponse> {
    let mut response = CreateTopicsResponse::default();
    for topic in req.topics {
        let mut out = CreatableTopicResult::default();
        out.name = topic.name.clone();
        match create(ctx, &topic, req.validate_only).await {
            Ok((id, partitions, configs)) => {
                if version >= 7 {
                    out.topic_id = id;
                }
                if version >= 5 {
                    out.num_partitions = partitions;
                    out.replication_factor = ctx.nodes.live().len() as i16;
                    match ctx.check(op::DESCRIBE_CONFIGS, resource::TOPIC, &topic.name) {
                        Ok(()) => out.configs = Some(configs),
                        Err(refused) => out.topic_config_error_code = refused.code(),
                    }
                }
            }
            Err(e) => {
                out.error_code = e.code();
                out.error_message = Some(str_bytes(&e.message()));
                if version >= 5 {
                    out.num_partitions = -1;
                    out.replication_factor = -1;
                }
            }
        }
        response.topics.push(out);
    }
    Ok(response)
}

type Created = (uuid::Uuid, i32, Vec<CreatableTopicConfigs>);

async fn create(ctx: &Call<'_>, topic: &CreatableTopic, validate_only: bool) -> Result<Created> {
    if !ctx.may(op::CREATE, resource::CLUSTER, CLUSTER_NAME) {
        ctx.require(op::CREATE, resource::TOPIC, &topic.name)?;
    }
    // Every live node holds every partition (one for a single broker).
    let brokers = ctx.nodes.live().len() as i16;
    if topic.replication_factor != -1 && !(1..=brokers).contains(&topic.replication_factor) {
        return Err(Error::api(
            ResponseError::InvalidReplicationFactor,
            format!(
                "replication factor {} is larger than the {brokers} available broker(s)",
                topic.replication_factor
            ),
        ));
    }
    let partitions = match (topic.num_partitions, topic.assignments.len()) {
        (-1, 0) => ctx.config.num_partitions,
        (-1, n) => n as i32,
        (n, 0) => n,
        _ => {
            return Err(Error::api(
                ResponseError::InvalidRequest,
                "give either a partition count or assignments, not both",
            ));
        }
    };
    let mut overrides = BTreeMap::new();
    for c in &topic.configs {
        if let Some(value) = &c.value {
            overrides.insert(c.name.to_string(), value.to_string());
        }
    }
    let (name, set) = (topic.name.to_string(), overrides.clone());
    let created = on_catalog(ctx, move |catalog| {
        catalog.create_topic(&name, partitions, set, validate_only)
    })
    .await?;
    if !validate_only {
        tracing::info!(topic = %created.name, partitions, "created topic");
    }
    let configs = topic_config::describe(&ctx.catalog.defaults(), &overrides)
        .into_iter()
        .map(|(name, value)| {
            let mut c = CreatableTopicConfigs::default();
            c.name = str_bytes(name);
            c.value = Some(str_bytes(&value));
            c.config_source = if overrides.contains_key(name) { 1 } else { 5 };
            c
        })
        .collect();
    Ok((created.id, partitions, configs))
}
