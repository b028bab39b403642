//! DATAGRAM and DATAGRAM_BINARY: UDP with upstream semantics. Reads arrive as
//! `read_cb(id, data, "ip port")` once bound; writes need a target "ip port".
//! Text mode delivers a string when the datagram is valid UTF-8, else a buffer.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;

use mio::net::UdpSocket;
use mio::{Interest, Token};

use super::LegacyError;
use crate::core::addr;
use crate::core::{Cx, Endpoint, EventKind, State};
use crate::error::{Error, Result, ResultCode};
use crate::modes;
use crate::reactor::Readiness;
use crate::transport::tcp;
use crate::value::Value;

pub struct Datagram {
    mode: u8,
    sock: Option<(UdpSocket, Option<Token>)>,
}

impl Datagram {
    pub fn new(mode: u8) -> Datagram {
        Datagram { mode, sock: None }
    }
}

impl Endpoint for Datagram {
    fn bind(&mut self, cx: &mut Cx, addr: SocketAddr) -> Result<()> {
        let s = tcp::new_socket(&addr, true)?;
        tcp::bind(&s, &addr)?;
        cx.core.local = s.local_addr().ok().and_then(|a| a.as_socket());
        let mut udp = UdpSocket::from_std(s.into());
        let token = cx
            .register(&mut udp, Interest::READABLE)
            .map_err(|e| Error::io("register", ResultCode::EeBind, &e))?;
        self.sock = Some((udp, Some(token)));
        cx.core.state = State::Bound;
        Ok(())
    }

    fn ready(&mut self, cx: &mut Cx, _r: Readiness) {
        let Some((udp, _)) = &self.sock else { return };
        let mut buf = vec![0u8; 65536];
        loop {
            match udp.recv_from(&mut buf) {
                Ok((n, from)) => {
                    let bytes = buf[..n].to_vec();
                    let data = if modes::is_binary(self.mode) {
                        Value::Buffer(bytes)
                    } else {
                        Value::from_bytes_lossless(bytes)
                    };
                    cx.core.stats.bytes_in += n as u64;
                    cx.core.stats.messages_in += 1;
                    cx.emit(EventKind::Read, Some(data), Some(addr::format(&from)));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // ICMP errors from earlier sends surface here; upstream ignores them.
                Err(_) => {
                    cx.core.stats.errors += 1;
                    break;
                }
            }
        }
    }

    fn write(&mut self, cx: &mut Cx, data: &Value, target: Option<&str>) -> Result<ResultCode> {
        let target = target.ok_or(LegacyError::DatagramNeedsTarget)?;
        let to = addr::parse_numeric(target)?;
        let bytes = data
            .as_bytes()
            .ok_or_else(|| LegacyError::DatagramNotBytes {
                got: data.describe(),
            })?;
        if self.sock.is_none() {
            // Unbound: send from an ephemeral port, as an unbound UDP socket does.
            let any: SocketAddr = if to.is_ipv6() {
                (Ipv6Addr::UNSPECIFIED, 0).into()
            } else {
                (Ipv4Addr::UNSPECIFIED, 0).into()
            };
            let s = tcp::new_socket(&any, true)?;
            tcp::bind(&s, &any)?;
            self.sock = Some((UdpSocket::from_std(s.into()), None));
        }
        let (udp, _) = self.sock.as_ref().expect("created above");
        match udp.send_to(bytes, to) {
            Ok(n) => {
                cx.core.stats.bytes_out += n as u64;
                cx.core.stats.messages_out += 1;
                Ok(ResultCode::Ok)
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                Err(LegacyError::DatagramWouldBlock.into())
            }
            Err(e) => Err(Error::io(
                &format!("socket_write: sendto {target}"),
                ResultCode::EeSendto,
                &e,
            )),
        }
    }

    fn close(&mut self, _cx: &mut Cx) -> bool {
        true
    }

    fn abort(&mut self, cx: &mut Cx) {
        if let Some((mut udp, Some(token))) = self.sock.take() {
            cx.reactor.deregister(&mut udp, token);
        }
    }

    fn raw_fd(&self) -> i32 {
        self.sock.as_ref().map_or(-1, |(u, _)| u.as_raw_fd())
    }
}
