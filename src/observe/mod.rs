//! A look inside the broker: Prometheus metrics ([`metrics`]), the status
//! page and its JSON ([`view`], [`http`]), and the test cluster's fault
//! endpoints ([`control`]).

pub(crate) mod control;
pub(crate) mod http;
pub(crate) mod metrics;
pub(crate) mod view;

pub(crate) use metrics::{Metrics, observe_fsync};
