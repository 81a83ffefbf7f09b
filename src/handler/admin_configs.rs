//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs for topics (and a
//! read-only view of the broker). Only the settings of [`topic_config::SETTINGS`] are accepted.

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, alter_configs_response,
    incremental_alter_configs_response,
};
use kafka_protocol::protocol::StrBytes;

use super::{Context, str_bytes};
use crate::catalog::LogConfig;
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
                    .filter(|e| keys.is_none_or(|k| k.iter().any(|k| k.as_str() == e.name)))
                    .map(|e| e.encode(version, req.include_synonyms, req.include_documentation))
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

/// The documentation of a setting Sluice checks and keeps but does not act on.
const KEPT_ONLY: &str = "(Sluice checks, stores and reports it, but does not act on it.)";

/// One described config: its value and where it comes from, the synonyms
/// that could set it (most specific first) and its documentation.
#[derive(Debug)]
struct Entry {
    name: &'static str,
    value: String,
    source: i8,
    read_only: bool,
    kind: ConfigType,
    doc: Option<String>,
    synonyms: Vec<(&'static str, String, i8)>,
}

impl Entry {
    fn encode(
        self,
        version: i16,
        synonyms: bool,
        documentation: bool,
    ) -> DescribeConfigsResourceResult {
        let mut c = DescribeConfigsResourceResult::default();
        c.name = str_bytes(self.name);
        c.value = Some(str_bytes(&self.value));
        c.config_source = self.source;
        c.read_only = self.read_only;
        if version >= 1 && synonyms {
            c.synonyms = self
                .synonyms
                .into_iter()
                .map(|(name, value, source)| {
                    let mut s = DescribeConfigsSynonym::default();
                    s.name = str_bytes(name);
                    s.value = Some(str_bytes(&value));
                    s.source = source;
                    s
                })
                .collect();
        }
        if version >= 3 {
            c.config_type = self.kind as i8;
            if documentation {
                c.documentation = self.doc.as_deref().map(str_bytes);
            }
        }
        c
    }
}

fn topic_entries(ctx: &Context, name: &str) -> Result<Vec<Entry>> {
    let topic = ctx.catalog.topic(name).ok_or_else(|| {
        Error::api(
            ResponseError::UnknownTopicOrPartition,
            format!("no topic {name:?}"),
        )
    })?;
    let overrides = topic.overrides();
    let defaults = ctx.catalog.defaults();
    Ok(topic_config::SETTINGS
        .iter()
        .map(|row| {
            let default = row.value(defaults);
            let mut synonyms = Vec::new();
            let (value, source) = match overrides.get(row.name) {
                Some(value) => {
                    synonyms.push((row.name, value.clone(), DYNAMIC_TOPIC_CONFIG));
                    (value.clone(), DYNAMIC_TOPIC_CONFIG)
                }
                None => (default.clone(), DEFAULT_CONFIG),
            };
            if let Some(broker_name) = row.broker_name {
                synonyms.push((broker_name, default, DEFAULT_CONFIG));
            }
            Entry {
                name: row.name,
                value,
                source,
                read_only: false,
                kind: row.kind,
                doc: Some(if row.acted_on {
                    row.doc.to_string()
                } else {
                    format!("{} {KEPT_ONLY}", row.doc)
                }),
                synonyms,
            }
        })
        .collect())
}

fn broker_entries(ctx: &Context) -> Vec<Entry> {
    let c = &ctx.config;
    let fixed = [
        (
            "auto.create.topics.enable",
            c.auto_create_topics_enable.to_string(),
            ConfigType::Boolean,
        ),
        (
            "num.partitions",
            c.num_partitions.to_string(),
            ConfigType::Int,
        ),
        (
            "socket.request.max.bytes",
            c.socket_request_max_bytes.to_string(),
            ConfigType::Int,
        ),
        (
            "log.dirs",
            c.data_dir.display().to_string(),
            ConfigType::String,
        ),
    ];
    let defaults = topic_config::SETTINGS.iter().filter_map(|row| {
        let name = row.broker_name?;
        Some((name, row.value(&c.log), row.kind))
    });
    let mut seen = std::collections::HashSet::new();
    fixed
        .into_iter()
        .chain(defaults)
        .filter(|(name, ..)| seen.insert(*name))
        .map(|(name, value, kind)| Entry {
            name,
            synonyms: vec![(name, value.clone(), STATIC_BROKER_CONFIG)],
            value,
            source: STATIC_BROKER_CONFIG,
            read_only: true,
            kind,
            doc: None,
        })
        .collect()
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
                    .try_for_each(|op| apply_op(o, ctx.catalog.defaults(), op))
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

/// One IncrementalAlterConfigs operation: SET 0, DELETE 1, APPEND 2 and
/// SUBTRACT 3 (list settings only, starting from the value in force).
fn apply_op(
    overrides: &mut BTreeMap<String, String>,
    defaults: &LogConfig,
    (name, op, value): (String, i8, Option<String>),
) -> Result<()> {
    let invalid = |m: String| Error::api(ResponseError::InvalidConfig, m);
    let row = topic_config::setting(&name);
    match (op, value) {
        (0, Some(v)) => {
            overrides.insert(name, v);
        }
        (1, _) => {
            overrides.remove(&name);
        }
        (2 | 3, Some(v)) if row.is_some_and(|r| r.kind == ConfigType::List) => {
            let current = match (overrides.get(&name), row) {
                (Some(set), _) => set.clone(),
                (None, Some(row)) => row.value(defaults),
                (None, None) => String::new(),
            };
            let mut items: Vec<String> = current
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
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
