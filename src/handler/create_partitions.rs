//! CreatePartitions: grow a topic's partition count. The authorizer needs
//! ALTER on each topic.

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};

use super::{Call, on_catalog, str_bytes};
use crate::acl::{op, resource};
use crate::error::Result;

pub(super) async fn handle(
    ctx: &Call<'_>,
    req: CreatePartitionsRequest,
    _version: i16,
) -> Result<CreatePartitionsResponse> {
    let mut response = CreatePartitionsResponse::default();
    for topic in req.topics {
        let mut out = CreatePartitionsTopicResult::default();
        out.name = topic.name.clone();
        let (name, count, validate_only) = (topic.name.to_string(), topic.count, req.validate_only);
        let grown = match ctx.require(op::ALTER, resource::TOPIC, &name) {
            Ok(()) => {
                on_catalog(ctx, move |catalog| {
                    catalog.create_partitions(&name, count, validate_only)
                })
                .await
            }
            refused => refused,
        };
        if let Err(e) = grown {
            out.error_code = e.code();
            out.error_message = Some(str_bytes(&e.message()));
        }
        response.results.push(out);
    }
    Ok(response)
}
