//! DeleteTopics: by name (all versions) or by id (v6+). The authorizer needs
//! DELETE on each topic.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};

use super::{Call, on_catalog, str_bytes};
use crate::acl::{op, resource};
use crate::error::{Error, Result};

pub(super) async fn handle(
    ctx: &Call<'_>,
    req: DeleteTopicsRequest,
    version: i16,
) -> Result<DeleteTopicsResponse> {
    let targets: Vec<(Option<TopicName>, uuid::Uuid)> = if version >= 6 {
        req.topics
            .into_iter()
            .map(|t| (t.name, t.topic_id))
            .collect()
    } else {
        req.topic_names
            .into_iter()
            .map(|n| (Some(n), uuid::Uuid::nil()))
            .collect()
    };
    let mut response = DeleteTopicsResponse::default();
    for (name, id) in targets {
        response
            .responses
            .push(delete_one(ctx, name, id, version).await);
    }
    Ok(response)
}

/// Deletes the topic called `name`, or with id `id` when unnamed.
async fn delete_one(
    ctx: &Call<'_>,
    name: Option<TopicName>,
    id: uuid::Uuid,
    version: i16,
) -> DeletableTopicResult {
    let mut out = DeletableTopicResult::default();
    let by_id = name.is_none();
    let name = name.or_else(|| {
        ctx.catalog
            .topic_by_id(id)
            .map(|t| TopicName(str_bytes(&t.name)))
    });
    // By id, a topic the caller may not describe keeps its name secret.
    if by_id
        && name
            .as_ref()
            .is_some_and(|n| !ctx.may(op::DESCRIBE, resource::TOPIC, n))
    {
        out.topic_id = id;
        out.error_code = ResponseError::TopicAuthorizationFailed.code();
        return out;
    }
    let result = match &name {
        Some(name) => match ctx.require(op::DELETE, resource::TOPIC, name) {
            Ok(()) => {
                let existed = ctx.catalog.topic(name).is_some();
                let owned = name.to_string();
                let deleted = on_catalog(ctx, move |catalog| catalog.delete_topic(&owned)).await;
                // Gone, even when answered with an error (a directory fsync
                // that failed after topics.toml was replaced): its leaders go too.
                if existed && ctx.catalog.topic(name).is_none() {
                    ctx.nodes.forget(name);
                }
                deleted
            }
            Err(refused) => Err(refused),
        },
        None => Err(Error::api(
            ResponseError::UnknownTopicId,
            "unknown topic id",
        )),
    };
    match result {
        Ok(topic) => {
            tracing::info!(topic = %topic.name, "deleted topic");
            if version >= 6 {
                out.topic_id = topic.id;
            }
        }
        Err(e) => {
            out.error_code = e.code();
            if version >= 5 {
                out.error_message = Some(str_bytes(&e.message()));
            }
        }
    }
    out.name = name;
    out
}
