//! ConsumerGroupHeartbeat (v0–v1) and ConsumerGroupDescribe (v0–v1): the
//! consumer group protocol of KIP-848, served by [`crate::group::consumer`].

use std::collections::BTreeSet;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment as DescribedAssignment, DescribedGroup, Member, TopicPartitions as DescribedTopic,
};
use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResponse, TopicName,
};

use super::{Call, str_bytes};
use crate::acl::{op, resource};
use crate::catalog::TopicImage;
use crate::dynamic_config::{GROUP_HEARTBEAT_INTERVAL, GROUP_SESSION_TIMEOUT};
use crate::error::Result;
use crate::group::DescribedMember;
use crate::group::consumer::{self, HeartbeatRequest};
use crate::protocol::Request;

/// ConsumerGroupDescribe v1 `MemberType`: the member speaks the consumer protocol.
const MEMBER_TYPE_CONSUMER: i8 = 1;

pub(super) async fn heartbeat(
    ctx: &Call<'_>,
    req: &Request,
    host: &str,
) -> Result<ConsumerGroupHeartbeatResponse> {
    let body: ConsumerGroupHeartbeatRequest = req.decode()?;
    let version = req.version();
    let mut response = ConsumerGroupHeartbeatResponse::default();
    if version >= 1 && body.member_id.is_empty() {
        // KIP-1082: from v1 the client chooses its member id.
        response.error_code = ResponseError::InvalidRequest.code();
        response.error_message = Some(str_bytes("MemberId can't be empty."));
        return Ok(response);
    }
    if let Err(e) = ctx
        .check(op::READ, resource::GROUP, &body.group_id)
        .and_then(|()| ctx.coordinates_group(&body.group_id))
    {
        response.error_code = e.code();
        return Ok(response);
    }
    let request = heartbeat_request(body, req, host);
    let image = ctx.catalog.image();
    // Group configs (IncrementalAlterConfigs on the GROUP resource) win over the broker's.
    let set = ctx.dynamic.group(&request.group_id);
    let setting = |name| set.get(name).and_then(|v: &String| v.parse::<i32>().ok());
    let session_ms = setting(GROUP_SESSION_TIMEOUT);
    let interval_ms = setting(GROUP_HEARTBEAT_INTERVAL)
        .unwrap_or(ctx.config.group.consumer_heartbeat_interval_ms);
    match ctx.groups.consumer_heartbeat(request, &image, session_ms) {
        Ok(out) => {
            response.member_id = Some(str_bytes(&out.member_id));
            response.member_epoch = out.member_epoch;
            response.heartbeat_interval_ms = interval_ms;
            response.assignment = out.assignment.map(heartbeat_assignment);
        }
        Err((code, message)) => {
            response.error_code = code.code();
            response.error_message = Some(str_bytes(&message));
        }
    }
    Ok(response)
}

/// The coordinator's view of a heartbeat from `host`.
fn heartbeat_request(
    body: ConsumerGroupHeartbeatRequest,
    req: &Request,
    host: &str,
) -> HeartbeatRequest {
    let owned = body.topic_partitions.map(|tps| {
        let mut a = consumer::Assignment::new();
        for tp in tps {
            a.entry(tp.topic_id)
                .or_default()
                .extend(tp.partitions.iter().copied());
        }
        a
    });
    HeartbeatRequest {
        group_id: body.group_id.to_string(),
        member_id: body.member_id.to_string(),
        member_epoch: body.member_epoch,
        instance_id: body.instance_id.map(|s| s.to_string()),
        rack_id: body.rack_id.map(|s| s.to_string()),
        rebalance_timeout_ms: body.rebalance_timeout_ms,
        topic_names: body
            .subscribed_topic_names
            .map(|ts| ts.iter().map(|t| t.to_string()).collect()),
        topic_regex: body.subscribed_topic_regex.map(|s| s.to_string()),
        assignor: body.server_assignor.map(|s| s.to_string()),
        owned,
        client_id: req.header.client_id().into_owned(),
        client_host: host.to_string(),
    }
}

/// A member's assignment as the heartbeat answer gives it.
fn heartbeat_assignment(assigned: consumer::Assignment) -> Assignment {
    let mut assignment = Assignment::default();
    assignment.topic_partitions = assigned
        .into_iter()
        .map(|(id, ps)| {
            let mut tp = TopicPartitions::default();
            tp.topic_id = id;
            tp.partitions = ps.into_iter().collect();
            tp
        })
        .collect();
    assignment
}

pub(super) async fn describe(
    ctx: &Call<'_>,
    req: ConsumerGroupDescribeRequest,
    version: i16,
) -> Result<ConsumerGroupDescribeResponse> {
    let image = ctx.catalog.image();
    let mut response = ConsumerGroupDescribeResponse::default();
    for id in req.group_ids {
        let mut out = DescribedGroup::default();
        let allowed = ctx
            .check(op::DESCRIBE, resource::GROUP, &id)
            .and_then(|()| ctx.coordinates_group(&id));
        let described = match allowed {
            Ok(()) => ctx.groups.consumer_describe(&id),
            Err(e) => Err((e, String::new())),
        };
        match described {
            Err((code, message)) => {
                out.error_code = code.code();
                out.error_message = (!message.is_empty()).then(|| str_bytes(&message));
            }
            Ok(group) => {
                out.group_state = str_bytes(group.state);
                out.group_epoch = group.epoch;
                out.assignment_epoch = group.assignment_epoch;
                out.assignor_name = str_bytes(&group.assignor);
                out.members = group
                    .members
                    .iter()
                    .map(|m| described_member(m, version, &image))
                    .collect();
            }
        }
        // KIP-430: only for a group described without error.
        let asked = req.include_authorized_operations && out.error_code == 0;
        out.authorized_operations = ctx.operations(asked, resource::GROUP, &id);
        out.group_id = id;
        response.groups.push(out);
    }
    Ok(response)
}

/// ConsumerGroupDescribe's answer for one member, at `version`.
fn described_member(m: &DescribedMember, version: i16, image: &TopicImage) -> Member {
    let s = &m.subscription;
    let names: BTreeSet<&String> = s.topic_names.iter().collect();
    let mut d = Member::default();
    d.member_id = str_bytes(&m.member_id);
    d.instance_id = s.instance_id.as_deref().map(str_bytes);
    d.rack_id = s.rack_id.as_deref().map(str_bytes);
    d.member_epoch = m.epoch;
    d.client_id = str_bytes(&s.client_id);
    d.client_host = str_bytes(&s.client_host);
    d.subscribed_topic_names = names.into_iter().map(|n| TopicName(str_bytes(n))).collect();
    d.subscribed_topic_regex = s.topic_regex.as_deref().map(str_bytes);
    d.assignment = described_assignment(&m.assigned, image);
    d.target_assignment = described_assignment(&m.target, image);
    if version >= 1 {
        d.member_type = MEMBER_TYPE_CONSUMER;
    }
    d
}

/// An assignment as ConsumerGroupDescribe gives it: topics by id and name.
fn described_assignment(a: &consumer::Assignment, image: &TopicImage) -> DescribedAssignment {
    let name_of = |id: &uuid::Uuid| {
        image
            .topics
            .iter()
            .find(|(_, (tid, _))| tid == id)
            .map(|(name, _)| name.clone())
            .unwrap_or_default()
    };
    let mut out = DescribedAssignment::default();
    out.topic_partitions = a
        .iter()
        .map(|(id, ps)| {
            let mut tp = DescribedTopic::default();
            tp.topic_id = *id;
            tp.topic_name = TopicName(str_bytes(&name_of(id)));
            tp.partitions = ps.iter().copied().collect();
            tp
        })
        .collect();
    out
}
