//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs: topics (the
//! settings of [`topic_config::SETTINGS`]), the broker's dynamic configs
//! and the consumer group protocol's group configs ([`dynamic`]). The
//! authorizer needs DESCRIBE_CONFIGS or ALTER_CONFIGS on the topic, the
//! group, or the cluster for the broker's configs.

mod dynamic;

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

use super::{Call, Context, str_bytes};
use crate::acl::{self, op};
use crate::error::{Error, Result};
use crate::topic_config::{self, ConfigType};

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const GROUP: i8 = 32;
/// Kafka's ConfigSource values.
const DYNAMIC_TOPIC_CONFIG: i8 = 1;
const STATIC_BROKER_CONFIG: i8 = 4;
const DEFAULT_CONFIG: i8 = 5;

pub(super) async fn describe(
    ctx: &Call<'_>,
    req: DescribeConfigsRequest,
    version: i16,
) -> Result<DescribeConfigsResponse> {
    let mut response = DescribeConfigsResponse::default();
    for resource in req.resources {
        let mut out = DescribeConfigsResult::default();
        out.resource_type = resource.resource_type;
        out.resource_name = resource.resource_name.clone();
        let allowed = authorize(
            ctx,
            op::DESCRIBE_CONFIGS,
            out.resource_type,
            &out.resource_name,
        );
        let entries = match resource.resource_type {
            _ if allowed.is_err() => allowed.map(|()| Vec::new()),
            TOPIC => topic_entries(ctx, &resource.resource_name),
            BROKER => dynamic::broker_entries(ctx, &resource.resource_name),
            GROUP => Ok(dynamic::group_entries(ctx, &resource.resource_name)),
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
    let defaults = &defaults;
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
                let source = match ctx.dynamic.broker_value(broker_name) {
                    Some((_, crate::dynamic_config::Scope::Broker)) => 2,
                    Some((_, crate::dynamic_config::Scope::Cluster)) => 3,
                    None => DEFAULT_CONFIG,
                };
                synonyms.push((broker_name, default, source));
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

pub(super) async fn alter(
    ctx: &Call<'_>,
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
        let mut out = alter_configs_response::AlterConfigsResourceResponse::default();
        out.resource_type = resource.resource_type;
        out.resource_name = resource.resource_name;
        let result = alter_resource(
            ctx,
            (out.resource_type, &out.resource_name),
            req.validate_only,
            |o, _| {
                *o = configs;
                Ok(())
            },
        );
        if let Err(e) = result {
            out.error_code = e.code();
            out.error_message = Some(str_bytes(&e.message()));
        }
        response.responses.push(out);
    }
    Ok(response)
}

pub(super) async fn incremental_alter(
    ctx: &Call<'_>,
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
        let mut out = incremental_alter_configs_response::AlterConfigsResourceResponse::default();
        out.resource_type = resource.resource_type;
        out.resource_name = resource.resource_name;
        let result = alter_resource(
            ctx,
            (out.resource_type, &out.resource_name),
            req.validate_only,
            |o, list_value| {
                ops.into_iter()
                    .try_for_each(|op| apply_op(o, list_value, op))
            },
        );
        if let Err(e) = result {
            out.error_code = e.code();
            out.error_message = Some(str_bytes(&e.message()));
        }
        response.responses.push(out);
    }
    Ok(response)
}

/// Whether the caller may do `operation` on the configs of the resource
/// (`resource_type`, `name`): the topic, the group, or the cluster for the broker's.
fn authorize(ctx: &Call<'_>, operation: i8, resource_type: i8, name: &str) -> Result<()> {
    match resource_type {
        TOPIC => ctx.require(operation, acl::resource::TOPIC, name),
        GROUP => ctx.require(operation, acl::resource::GROUP, name),
        BROKER => ctx.require(operation, acl::resource::CLUSTER, acl::CLUSTER_NAME),
        // Refused later as a type without configs.
        _ => Ok(()),
    }
}

/// One IncrementalAlterConfigs operation: SET 0, DELETE 1, APPEND 2 and
/// SUBTRACT 3 (list settings only, starting from the value in force, which
/// `list_value` gives for a list setting and `None` otherwise).
fn apply_op(
    overrides: &mut BTreeMap<String, String>,
    list_value: &dyn Fn(&str) -> Option<String>,
    (name, op, value): (String, i8, Option<String>),
) -> Result<()> {
    let invalid = |m: String| Error::api(ResponseError::InvalidConfig, m);
    match (op, value) {
        (0, Some(v)) => {
            overrides.insert(name, v);
        }
        (1, _) => {
            overrides.remove(&name);
        }
        (2 | 3, Some(v)) if list_value(&name).is_some() => {
            let current = match overrides.get(&name) {
                Some(set) => set.clone(),
                None => list_value(&name).unwrap_or_default(),
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

/// A change of one resource's settings: the settings map to change, and the
/// value in force of each list setting.
type Change<'a> =
    dyn FnOnce(&mut BTreeMap<String, String>, &dyn Fn(&str) -> Option<String>) -> Result<()> + 'a;

/// Applies `change` to the settings of the resource (`resource_type`,
/// `name`), once the authorizer allows ALTER_CONFIGS on it.
fn alter_resource(
    ctx: &Call<'_>,
    (resource_type, name): (i8, &str),
    validate_only: bool,
    change: impl FnOnce(&mut BTreeMap<String, String>, &dyn Fn(&str) -> Option<String>) -> Result<()>,
) -> Result<()> {
    authorize(ctx, op::ALTER_CONFIGS, resource_type, name)?;
    let change: Box<Change<'_>> = Box::new(change);
    match resource_type {
        TOPIC => {
            let defaults = ctx.catalog.defaults();
            let list_value = |n: &str| {
                topic_config::setting(n)
                    .filter(|r| r.kind == ConfigType::List)
                    .map(|r| r.value(&defaults))
            };
            ctx.catalog
                .alter_configs(name, |o| change(o, &list_value), validate_only)
        }
        BROKER => dynamic::alter_broker(ctx, name, validate_only, change),
        GROUP => dynamic::alter_group(ctx, name, validate_only, |o| change(o, &|_| None)),
        other => Err(Error::api(
            ResponseError::InvalidRequest,
            format!("resource type {other} has no configs to alter"),
        )),
    }
}
