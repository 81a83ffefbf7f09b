//! Sluice: a single-node broker that speaks the Apache Kafka protocol.
//!
//! ```text
//! client ─TCP─▶ server (one task per connection)
//!               connection  4-byte size-prefixed frames, bounded
//!               protocol    request header + body (kafka-protocol crate)
//!               handler/    one module per API, one version table
//!               catalog     topics → partitions → storage::Log (Mutex, never held across .await)
//!               storage/    record · store · index · segment · log, Kafka's on-disk format
//! ```
//!
//! Start one in-process with [`Broker::start`]; stop it with [`Broker::shutdown`].

mod acl;
pub mod alloc;
pub mod broker;
pub mod catalog;
mod cleaner;
mod cluster;
pub mod config;
mod connection;
mod data_dir;
mod dynamic_config;
pub mod error;
mod faults;
mod flush;
#[doc(hidden)]
pub mod fuzzing;
mod group;
pub mod handler;
mod internal_log;
mod memory;
mod observe;
mod protocol;
mod quotas;
pub mod security;
mod server;
mod session;
mod shutdown;
pub mod storage;
pub mod testing;
mod topic_config;
mod txn;
mod util;

pub use broker::Broker;
pub use config::Config;
pub use error::{Error, Result};
