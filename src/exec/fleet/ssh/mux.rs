//! The one message of OpenSSH's connection-sharing protocol that runbook sends itself:
//! "terminate", to the master of a shared connection, over its control socket. It is what
//! `ssh -O exit` sends (OpenSSH's PROTOCOL.mux: a hello each way, then `MUX_C_TERMINATE`,
//! answered by `MUX_S_OK`), without a process per host: closing 1,000 connections this way
//! takes milliseconds, not the seconds of 1,000 ssh processes. Anything unexpected is an
//! error, and the caller falls back to `ssh -O exit`.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

const MUX_MSG_HELLO: u32 = 0x0000_0001;
const MUX_C_TERMINATE: u32 = 0x1000_0005;
const MUX_S_OK: u32 = 0x8000_0001;
/// The protocol version OpenSSH speaks (since 5.x).
const MUX_VERSION: u32 = 4;
/// How long the master may take to answer.
const WAIT: Duration = Duration::from_secs(2);
/// Longest packet read from the master: a hello with a few extensions.
const MAX_PACKET: usize = 64 * 1024;

/// Asks the master listening at `socket` to close its connection and exit.
pub(super) fn terminate(socket: &Path) -> io::Result<()> {
    let mut s = UnixStream::connect(socket)?;
    s.set_read_timeout(Some(WAIT))?;
    s.set_write_timeout(Some(WAIT))?;
    send(&mut s, &[MUX_MSG_HELLO, MUX_VERSION])?;
    let hello = receive(&mut s)?;
    if word(&hello, 0) != Some(MUX_MSG_HELLO) {
        return Err(io::Error::other("no hello from the ssh master"));
    }
    let request = 1;
    send(&mut s, &[MUX_C_TERMINATE, request])?;
    match receive(&mut s) {
        Ok(reply) => match (word(&reply, 0), word(&reply, 4)) {
            (Some(MUX_S_OK), Some(r)) if r == request => Ok(()),
            _ => Err(io::Error::other("the ssh master refused to terminate")),
        },
        // The master usually exits before its answer is sent, and `ssh -O exit` takes that
        // as done too.
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::BrokenPipe
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// One packet: its length, then big-endian words.
fn send(s: &mut UnixStream, words: &[u32]) -> io::Result<()> {
    let mut packet = Vec::with_capacity(4 + 4 * words.len());
    packet.extend_from_slice(&((4 * words.len()) as u32).to_be_bytes());
    for w in words {
        packet.extend_from_slice(&w.to_be_bytes());
    }
    s.write_all(&packet)
}

fn receive(s: &mut UnixStream) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_PACKET {
        return Err(io::Error::other("an ssh master packet too long"));
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)?;
    Ok(body)
}

/// The big-endian word at `at`, if the packet is that long.
fn word(packet: &[u8], at: usize) -> Option<u32> {
    let b: [u8; 4] = packet.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_be_bytes(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    /// A master that answers as OpenSSH's does (`reply` 0: it exits before answering, as
    /// OpenSSH's usually does).
    fn master(
        reply: u32,
    ) -> (
        tempfile::TempDir,
        std::path::PathBuf,
        std::thread::JoinHandle<Vec<u8>>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let listener = UnixListener::bind(&path).unwrap();
        let t = std::thread::spawn(move || {
            let (mut c, _) = listener.accept().unwrap();
            let mut got = receive(&mut c).unwrap();
            send(&mut c, &[MUX_MSG_HELLO, MUX_VERSION]).unwrap();
            got.extend(receive(&mut c).unwrap());
            if reply != 0 {
                send(&mut c, &[reply, 1]).unwrap();
            }
            got
        });
        (dir, path, t)
    }

    #[test]
    fn terminate_says_hello_then_terminate_and_wants_ok() {
        let (_d, path, t) = master(MUX_S_OK);
        terminate(&path).unwrap();
        let got = t.join().unwrap();
        assert_eq!(word(&got, 0), Some(MUX_MSG_HELLO));
        assert_eq!(word(&got, 4), Some(MUX_VERSION));
        assert_eq!(word(&got, 8), Some(MUX_C_TERMINATE));
        let (_d, path, t) = master(0);
        terminate(&path).unwrap();
        t.join().unwrap();
        let (_d, path, t) = master(0x8000_0002);
        assert!(terminate(&path).is_err(), "anything but ok is an error");
        t.join().unwrap();
    }
}
