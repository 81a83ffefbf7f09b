//! The congestion control of loopback connections.
//!
//! A loopback connection has no queue for a congestion controller to protect,
//! yet a pacing controller (BBR, the default on some machines, this one among
//! them) still spaces out its packets with a timer, under interrupts held
//! off. On the virtual machine measured, that was a third of the broker's
//! fetch time in the runs where pacing set in: iperf3's zero-copy sender
//! spent 0.7 s of CPU per GB with BBR and 0.12 s with Reno over loopback,
//! and the broker's fetches up to 0.67 s per GB against 0.15 s. Connections
//! from other addresses keep the system's choice.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};

/// Sets `algorithm` on `socket` when its peer address is loopback; an empty
/// name leaves the system's default. A failure (an algorithm the kernel
/// lacks or does not allow) keeps the default and is logged once.
pub(super) fn tune(socket: &impl AsRawFd, peer: SocketAddr, algorithm: &str) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if algorithm.is_empty() || !is_loopback(peer.ip()) {
        return;
    }
    if let Err(e) = set_congestion_control(socket, algorithm)
        && !WARNED.swap(true, Ordering::Relaxed)
    {
        tracing::warn!(
            algorithm,
            error = %e,
            "loopback_congestion_control: keeping the system's default"
        );
    }
}

/// 127.0.0.0/8 and ::1, also as an IPv4-mapped IPv6 address.
fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

#[cfg(target_os = "linux")]
fn set_congestion_control(socket: &impl AsRawFd, algorithm: &str) -> io::Result<()> {
    #[allow(unsafe_code)]
    // SAFETY: the descriptor is borrowed for the call, and the kernel reads
    // at most `len` bytes of the name.
    let done = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_CONGESTION,
            algorithm.as_ptr().cast(),
            algorithm.len() as libc::socklen_t,
        )
    };
    if done != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Elsewhere connections keep the system's choice, silently.
#[cfg(not(target_os = "linux"))]
fn set_congestion_control(_: &impl AsRawFd, _: &str) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_peers_are_told_apart() {
        for local in ["127.0.0.1", "127.5.5.5", "::1", "::ffff:127.0.0.1"] {
            assert!(is_loopback(local.parse().unwrap()), "{local}");
        }
        for remote in ["192.0.2.7", "10.0.0.1", "::ffff:192.0.2.7", "2001:db8::1"] {
            assert!(!is_loopback(remote.parse().unwrap()), "{remote}");
        }
    }

    #[cfg(target_os = "linux")]
    mod linux {
        use super::*;

        fn congestion_control(socket: &impl AsRawFd) -> String {
            let mut name = [0u8; 16];
            let mut len = name.len() as libc::socklen_t;
            #[allow(unsafe_code)]
            // SAFETY: `name` and `len` are live locals; the kernel writes at most `len` bytes.
            let done = unsafe {
                libc::getsockopt(
                    socket.as_raw_fd(),
                    libc::IPPROTO_TCP,
                    libc::TCP_CONGESTION,
                    name.as_mut_ptr().cast(),
                    &mut len,
                )
            };
            assert_eq!(done, 0, "{}", io::Error::last_os_error());
            let name = &name[..len as usize];
            let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
            String::from_utf8_lossy(&name[..end]).into_owned()
        }

        /// An accepted loopback socket (with its client, kept open) and its peer.
        fn accepted() -> (std::net::TcpStream, std::net::TcpStream, SocketAddr) {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (socket, peer) = listener.accept().unwrap();
            (socket, client, peer)
        }

        /// An algorithm this process may set other than the socket's
        /// default, if the system allows one.
        fn another_than(default: &str) -> Option<String> {
            let allowed =
                std::fs::read_to_string("/proc/sys/net/ipv4/tcp_allowed_congestion_control")
                    .ok()?;
            let other = allowed.split_whitespace().find(|a| *a != default);
            if other.is_none() {
                eprintln!("skipped: no congestion control allowed besides {default:?}");
            }
            other.map(str::to_string)
        }

        #[test]
        fn a_loopback_peer_gets_the_algorithm_and_others_keep_the_default() {
            let (socket, _client, peer) = accepted();
            let default = congestion_control(&socket);
            let Some(other) = another_than(&default) else {
                return;
            };
            let remote: SocketAddr = "192.0.2.7:9092".parse().unwrap();
            tune(&socket, remote, &other);
            assert_eq!(congestion_control(&socket), default);
            tune(&socket, peer, "");
            assert_eq!(congestion_control(&socket), default);
            tune(&socket, peer, &other);
            assert_eq!(congestion_control(&socket), other);
        }

        #[test]
        fn an_unknown_algorithm_keeps_the_default() {
            let (socket, _client, peer) = accepted();
            let default = congestion_control(&socket);
            tune(&socket, peer, "no_such_cc");
            assert_eq!(congestion_control(&socket), default);
            assert!(set_congestion_control(&socket, "no_such_cc").is_err());
        }
    }
}
