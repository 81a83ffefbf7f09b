//! Sending a file range to a TCP socket without copying it through user
//! space: `sendfile(2)` on Linux. Elsewhere, or when the file's filesystem
//! cannot do `sendfile`, the caller reads and writes the range itself.

use std::io;

use tokio::net::TcpStream;

use super::{FileRange, Progress};

/// Sends all of `range` to `socket`, waiting whenever the socket is full
/// and counting what goes out in `progress`; false when nothing was sent
/// because `sendfile` cannot be used here.
#[cfg(target_os = "linux")]
pub(super) async fn file_range(
    socket: &TcpStream,
    range: &FileRange,
    progress: &Progress,
) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    use tokio::io::Interest;

    let end = range.position + range.len as u64;
    let mut position = range.position;
    while position < end {
        socket.writable().await?;
        let count = (end - position).min(MAX_SEND) as usize;
        let sent = socket.try_io(Interest::WRITABLE, || {
            sendfile(socket.as_raw_fd(), range.file.as_raw_fd(), position, count)
        });
        match sent {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file ended before the range to send",
                ));
            }
            Ok(n) => {
                position += n as u64;
                progress.add(n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e)
                if position == range.position
                    && matches!(
                        e.raw_os_error(),
                        Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP)
                    ) =>
            {
                return Ok(false);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// The most one `sendfile` call is asked for (Linux sends at most ~2 GiB).
#[cfg(target_os = "linux")]
const MAX_SEND: u64 = 1 << 30;

/// One `sendfile(2)` of up to `count` bytes of `file` from `position`: the
/// number sent. The file's own offset is left alone, so readers can share it.
#[cfg(target_os = "linux")]
fn sendfile(
    socket: std::os::fd::RawFd,
    file: std::os::fd::RawFd,
    position: u64,
    count: usize,
) -> io::Result<usize> {
    let mut offset = libc::off_t::try_from(position).map_err(io::Error::other)?;
    #[allow(unsafe_code)]
    // SAFETY: both descriptors belong to objects the caller borrows for the
    // whole call, and `offset` is a live local the kernel may update.
    let sent = unsafe { libc::sendfile(socket, file, &mut offset, count) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(sent as usize)
}

/// Elsewhere the connection reads and writes the range itself.
#[cfg(not(target_os = "linux"))]
pub(super) async fn file_range(_: &TcpStream, _: &FileRange, _: &Progress) -> io::Result<bool> {
    Ok(false)
}
