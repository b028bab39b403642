//! LPC addresses: "ip port" with a numeric ip (upstream's format), and host
//! names for `socket_connect` (resolved off the driver thread).

use std::net::{IpAddr, SocketAddr};

use super::CoreError;
use crate::error::Error;

/// Formats an address as LPC shows it: "127.0.0.1 4000", v4-mapped IPv6 as IPv4.
pub fn format(addr: &SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    format!("{} {}", ip, addr.port())
}

/// A connect target before resolution.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    Addr(SocketAddr),
    Host(String, u16),
}

/// Parses "host port" (also "host:port" for convenience, and "[v6]:port").
pub fn parse(text: &str) -> Result<Target, Error> {
    let bad = || -> Error {
        CoreError::BadAddress {
            text: text.to_string(),
        }
        .into()
    };
    let t = text.trim();
    let (host, port) = if let Some((h, p)) = t.rsplit_once(' ') {
        (h.trim(), p.trim())
    } else if let Some(rest) = t.strip_prefix('[') {
        let (h, p) = rest.split_once("]:").ok_or_else(bad)?;
        (h, p)
    } else {
        let (h, p) = t.rsplit_once(':').ok_or_else(bad)?;
        if h.contains(':') {
            return Err(bad());
        }
        (h, p)
    };
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() || host.len() > 253 {
        return Err(bad());
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(Target::Addr(SocketAddr::new(ip, port)));
    }
    let valid_name = host.split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    if !valid_name {
        return Err(bad());
    }
    Ok(Target::Host(host.to_string(), port))
}

/// Parses a numeric "ip port" (bind addresses and datagram targets).
pub fn parse_numeric(text: &str) -> Result<SocketAddr, Error> {
    match parse(text)? {
        Target::Addr(a) => Ok(a),
        Target::Host(..) => Err(CoreError::NotNumeric {
            text: text.to_string(),
        }
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lpc_forms() {
        assert_eq!(
            parse("127.0.0.1 4000").unwrap(),
            Target::Addr("127.0.0.1:4000".parse().unwrap())
        );
        assert_eq!(
            parse("::1 80").unwrap(),
            Target::Addr("[::1]:80".parse().unwrap())
        );
        assert_eq!(
            parse("localhost 80").unwrap(),
            Target::Host("localhost".into(), 80)
        );
        assert!(parse("127.0.0.1").is_err());
        assert!(parse("bad host 80x").is_err());
        assert!(parse("a..b 80").is_err());
    }

    #[test]
    fn formats_mapped_as_v4() {
        let a: SocketAddr = "[::ffff:127.0.0.1]:5".parse().unwrap();
        assert_eq!(format(&a), "127.0.0.1 5");
    }
}
