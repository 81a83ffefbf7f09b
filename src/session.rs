//! Who is connected: one [`Session`] per Kafka connection, registered in
//! [`Clients`] for as long as the connection lives, with what the client
//! said about itself (the client id of its requests, and the software name
//! and version that ApiVersions v3+ carries). The status page and the
//! metrics read the registry; the request path only touches its own
//! session, and takes the shared lock only when something changes.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;

use crate::security::sasl::Auth;
use crate::util::now_ms;

/// An address as Kafka's ACL bindings name hosts (Java's
/// `getHostAddress`): IPv4 dotted (also when it arrived mapped into IPv6),
/// IPv6 as eight groups without `::` compression.
fn acl_host(ip: std::net::IpAddr) -> String {
    match ip.to_canonical() {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => {
            let groups: Vec<String> = v6.segments().iter().map(|g| format!("{g:x}")).collect();
            groups.join(":")
        }
    }
}

/// What is known of one connected client.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct ClientInfo {
    pub(crate) address: String,
    /// "User:<name>" after SASL authentication, "User:ANONYMOUS" before.
    pub(crate) principal: String,
    pub(crate) client_id: String,
    pub(crate) software_name: String,
    pub(crate) software_version: String,
    pub(crate) connected_ms: i64,
    pub(crate) requests: u64,
}

#[derive(Debug, Default)]
struct Shared {
    info: Mutex<ClientInfo>,
    requests: AtomicU64,
}

/// Every open connection.
#[derive(Debug, Default)]
pub(crate) struct Clients {
    next_id: AtomicU64,
    live: Mutex<BTreeMap<u64, Arc<Shared>>>,
}

impl Clients {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, Arc<Shared>>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a connection from `peer`; it leaves when the session drops.
    /// On a SASL listener (`sasl`) it must authenticate first.
    pub(crate) fn open(self: &Arc<Self>, peer: SocketAddr, sasl: bool) -> Session {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::new(Shared::default());
        {
            let mut info = shared.info.lock().unwrap_or_else(|e| e.into_inner());
            info.address = peer.to_string();
            info.principal = crate::security::sasl::ANONYMOUS.to_string();
            info.connected_ms = now_ms();
        }
        self.lock().insert(id, shared.clone());
        Session {
            id,
            clients: self.clone(),
            shared,
            client_id: bytes::Bytes::new(),
            host: format!("/{}", peer.ip()),
            address: acl_host(peer.ip()),
            auth: Auth::new(sasl),
            stop: Default::default(),
        }
    }

    /// Open connections.
    pub(crate) fn count(&self) -> usize {
        self.lock().len()
    }

    /// Every open connection, oldest first.
    pub(crate) fn list(&self) -> Vec<ClientInfo> {
        self.lock()
            .values()
            .map(|s| {
                let mut info = s.info.lock().unwrap_or_else(|e| e.into_inner()).clone();
                info.requests = s.requests.load(Ordering::Relaxed);
                info
            })
            .collect()
    }
}

/// One connection's entry in [`Clients`].
#[derive(Debug)]
pub(crate) struct Session {
    id: u64,
    clients: Arc<Clients>,
    shared: Arc<Shared>,
    /// The last client id seen, as sent, to touch the shared entry only on a change.
    client_id: bytes::Bytes,
    /// The peer's address as Kafka's group descriptions show it: "/127.0.0.1".
    host: String,
    /// The peer's address as ACL bindings name hosts (Java's form).
    address: String,
    /// SASL authentication and the principal.
    pub(crate) auth: Auth,
    /// Set once the broker stops: the connection's long polls answer at once.
    pub(crate) stop: crate::shutdown::Stop,
}

impl Session {
    /// Counts a request of `header`'s client.
    pub(crate) fn request(&mut self, header: &crate::protocol::Header) {
        self.shared.requests.fetch_add(1, Ordering::Relaxed);
        let client_id = header.client_id_bytes.as_deref().unwrap_or_default();
        if client_id != &self.client_id[..] {
            self.client_id = bytes::Bytes::copy_from_slice(client_id);
            self.info().client_id = header.client_id().into_owned();
        }
    }

    /// The client's host, as group descriptions report it ("/127.0.0.1").
    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    /// The client's IP address, as ACL bindings name hosts ("127.0.0.1").
    pub(crate) fn address(&self) -> &str {
        &self.address
    }

    /// Records who the client authenticated as, for the status page.
    pub(crate) fn authenticated(&self) {
        self.info().principal = self.auth.principal().to_string();
    }

    /// What ApiVersions v3+ says the client is.
    pub(crate) fn software(&self, name: &str, version: &str) {
        let mut info = self.info();
        info.software_name = name.to_string();
        info.software_version = version.to_string();
    }

    fn info(&self) -> MutexGuard<'_, ClientInfo> {
        self.shared.info.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.clients.lock().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::acl_host;

    #[test]
    fn acl_hosts_are_written_as_java_writes_them() {
        let host = |ip: &str| acl_host(ip.parse().expect("an IP"));
        assert_eq!(host("127.0.0.1"), "127.0.0.1");
        assert_eq!(host("::ffff:10.0.0.1"), "10.0.0.1");
        assert_eq!(host("::1"), "0:0:0:0:0:0:0:1");
        assert_eq!(host("fe80::1:abcd"), "fe80:0:0:0:0:0:1:abcd");
    }
}
