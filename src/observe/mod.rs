//! A look inside the broker: Prometheus metrics ([`metrics`]), the status
//! page and its JSON ([`view`], [`http`]).

pub(crate) mod http;
pub(crate) mod metrics;
pub(crate) mod view;

pub(crate) use metrics::{Metrics, observe_fsync};
