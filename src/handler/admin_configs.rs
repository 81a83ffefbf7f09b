//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs for topics (and a
//! read-only view of the broker). Only the settings of [`topic_config::SETTINGS`] are accepted.

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, alter_configs_response,
    incremental_alter_configs_response,
};
use kafka_protocol::protocol::StrBytes;

use super::{Context, str_bytes};
use crate::error::{Error, Result};
use crate::topic_config::{self, ConfigType};

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
/// Kafka's ConfigSource values.
const DYNAMIC_TOPIC_CONFIG: i8 = 1;
const STATIC_BROKER_CONFIG: i8 = 4;
const DEFAULT_CONFIG: i8 = 5;

pub(super) async fn describe(
    ctx: &Context,
    req: DescribeConfigsRequest,
    version: i16,
) -> Result<DescribeConfigsResponse> {
    let mut response = DescribeConfigsResponse::default();
    for resource in req.resources {
        let mut out = DescribeConfigsResult::default();
        out.resource_type = resource.resource_type;
        out.resource_name = resource.resource_name.clone();
        let entries = match resource.resource_type {
            TOPIC => topic_entries(ctx, &resource.resource_name),
            BROKER => Ok(broker_entries(ctx)),
            other => Err(Error::api(
                ResponseError::InvalidRequest,
                format!("resource type {other} is not supported"),
            )),
        };
        match entries {
            Ok(entries) => {
                let keys = resource.configuration_keys.as_ref();
                out.configs = entries
                    .into_iter()
                    .filter(|(name, ..)| keys.is_none_or(|k| k.iter().any(|k| k.as_str() == *name)))
                    .map(|(name, value, source, read_only)| {
                        let mut c = DescribeConfigsResourceResult::default();
                        c.name = str_bytes(name);
                        c.value = Some(str_bytes(&value));
                        c.config_source = source;
                        c.read_only = read_only;
                        if version >= 3 {
                            c.config_type = config_type(name);
                        }
                        c
                    })
                    .collect();
            }
            Err(e) => {
                out.error_code = e.code();
                out.error_message = Some(str_bytes(&e.message()));
            }
        }
        response.results.push(out);
    }
    Ok(response)
}

type Entry = (&'static str, String, i8, bool);

fn topic_entries(ctx: &Context, name: &str) -> Result<Vec<Entry>> {
    let topic = ctx.catalog.topic(name).ok_or_else(|| {
        Error::api(
            ResponseError::UnknownTopicOrPartition,
            format!("no topic {name:?}"),
        )
    })?;
    let overrides = topic.overrides();
    Ok(topic_config::describe(ctx.catalog.defaults(), &overrides)
        .into_iter()
        .map(|(key, value)| {
            let source = if overrides.contains_key(key) {
                DYNAMIC_TOPIC_CONFIG
            } else {
                DEFAULT_CONFIG
            };
            (key, value, source, false)
        })
        .collect())
}

fn broker_entries(ctx: &Context) -> Vec<Entry> {
    let c = &ctx.config;
    let fixed = [
        (
            "auto.create.topics.enable",
            c.auto_create_topics_enable.to_string(),
        ),
        ("num.partitions", c.num_partitions.to_string()),
        (
            "socket.request.max.bytes",
            c.socket_request_max_bytes.to_string(),
        ),
        ("log.dirs", c.data_dir.display().to_string()),
    ];
    let defaults = topic_config::SETTINGS
        .iter()
        .map(|row| (row.broker_name, row.value(&c.log)));
    fixed
        .into_iter()
        .chain(defaults)
        .map(|(name, value)| (name, value, STATIC_BROKER_CONFIG, true))
        .collect()
}

/// Kafka's ConfigType of a topic setting or its broker default.
fn config_type(name: &str) -> i8 {
    let row = topic_config::SETTINGS
        .iter()
        .find(|r| r.name == name || r.broker_name == name);
    match (row, name) {
        (Some(row), _) => row.kind as i8,
        (None, "auto.create.topics.enable") => ConfigType::Boolean as i8,
        (None, "log.dirs") => ConfigType::String as i8,
        (None, _) => ConfigType::Int as i8,
    }
}

pub(super) async fn alter(
    ctx: &Context,
    req: AlterConfigsRequest,
    _version: i16,
) -> Result<AlterConfigsResponse> {
    let mut response = AlterConfigsResponse::default();
    for resource in req.resources {
        let configs: BTreeMap<String, String> = resource
            .configs
            .iter()
            .filter_map(|c| {
                c.value
                    .as_ref()
                    .map(|v| (c.name.to_string(), v.to_string()))
            })
            .collect();
        let result = alter_topic(
            ctx,
            resource.resource_type,
            &resource.resource_name,
            req.validate_only,
            |o| {
                *o = configs;
                Ok(())
            },
        );
        let mut out = alter_configs_response::AlterConfigsResourceResponse::default();
        out.resource_type = resource.resource_type;
        out.resource_name = resource.resource_name;
        if let Err(e) = result {
            out.error_code = e.code();
            out.error_message = Some(str_bytes(&e.message()));
        }
        response.responses.push(out);
    }
    Ok(response)
}

pub(super) async fn incremental_alter(
    ctx: &Context,
    req: IncrementalAlterConfigsRequest,
    _version: i16,
) -> Result<IncrementalAlterConfigsResponse> {
    let mut response = IncrementalAlterConfigsResponse::default();
    for resource in req.resources {
        let ops: Vec<(String, i8, Option<String>)> = resource
            .configs
            .iter()
            .map(|c| {
                (
                    c.name.to_string(),
                    c.config_operation,
                    c.value.as_ref().map(StrBytes::to_string),
                )
            })
            .collect();
        let result = alter_topic(
            ctx,
            resource.resource_type,
            &resource.resource_name,
            req.validate_only,
            |o| {
                ops.into_iter()
                    .try_for_each(|(name, op, value)| apply_op(o, name, op, value))
            },
        );
        let mut out = incremental_alter_configs_response::AlterConfigsResourceResponse::default();
        out.resource_type = resource.resource_type;
        out.resource_name = resource.resource_name;
        if let Err(e) = result {
            out.error_code = e.code();
            out.error_message = Some(str_bytes(&e.message()));
        }
        response.responses.push(out);
    }
    Ok(response)
}

/// One IncrementalAlterConfigs operation: SET 0, DELETE 1, APPEND 2, SUBTRACT 3 (lists).
fn apply_op(
    overrides: &mut BTreeMap<String, String>,
    name: String,
    op: i8,
    value: Option<String>,
) -> Result<()> {
    let invalid = |m: String| Error::api(ResponseError::InvalidConfig, m);
    match (op, value) {
        (0, Some(v)) => {
            overrides.insert(name, v);
        }
        (1, _) => {
            overrides.remove(&name);
        }
        (2 | 3, Some(v)) if name == "cleanup.policy" => {
            let current = overrides
                .get(&name)
                .cloned()
                .unwrap_or_else(|| "delete".into());
            let mut items: Vec<String> = current.split(',').map(|s| s.trim().to_string()).collect();
            for item in v.split(',').map(str::trim) {
                items.retain(|i| i != item);
                if op == 2 {
                    items.push(item.to_string());
                }
            }
            overrides.insert(name, items.join(","));
        }
        (op, _) => return Err(invalid(format!("operation {op} on {name} is not valid"))),
    }
    Ok(())
}

fn alter_topic(
    ctx: &Context,
    resource_type: i8,
    name: &str,
    validate_only: bool,
    change: impl FnOnce(&mut BTreeMap<String, String>) -> Result<()>,
) -> Result<()> {
    if resource_type != TOPIC {
        return Err(Error::api(
            ResponseError::InvalidRequest,
            "only topic configs can be altered; broker settings come from the config file",
        ));
    }
    ctx.catalog.alter_configs(name, change, validate_only)
}
