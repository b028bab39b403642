//! Client side: the URL a request goes to (http:// or https://), parsed by the
//! `url` crate, and what the connection and request line need from it.

use url::{Host, Url};

#[derive(Clone, Debug)]
pub struct Target {
    pub url: Url,
    pub tls: bool,
    /// Host to resolve and connect to (IPv6 without brackets).
    pub host: String,
    pub port: u16,
}

impl Target {
    pub fn parse(s: &str) -> Result<Target, String> {
        let url = Url::parse(s).map_err(|e| format!("bad URL {s:?}: {e}"))?;
        Target::from_url(url)
    }

    fn from_url(url: Url) -> Result<Target, String> {
        let tls = match url.scheme() {
            "http" => false,
            "https" => true,
            other => return Err(format!("URL scheme {other:?} is not http or https")),
        };
        let host = match url.host() {
            Some(Host::Domain(d)) => d.to_string(),
            Some(Host::Ipv4(a)) => a.to_string(),
            Some(Host::Ipv6(a)) => a.to_string(),
            None => return Err(format!("URL {url} has no host")),
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err("URLs with user:password are not sent; use an Authorization header in SO_HTTP_HEADERS".into());
        }
        let port = url
            .port_or_known_default()
            .unwrap_or(if tls { 443 } else { 80 });
        Ok(Target {
            url,
            tls,
            host,
            port,
        })
    }

    /// A redirect's Location, relative to this URL.
    pub fn join(&self, location: &str) -> Result<Target, String> {
        let url = self
            .url
            .join(location)
            .map_err(|e| format!("bad redirect Location {location:?}: {e}"))?;
        Target::from_url(url)
    }

    /// The request target: path and query (never the fragment).
    pub fn path_and_query(&self) -> String {
        let mut s = self.url.path().to_string();
        if let Some(q) = self.url.query() {
            s.push('?');
            s.push_str(q);
        }
        s
    }

    /// The Host header: the host, with the port when it is not the default.
    pub fn host_header(&self) -> String {
        let host = self.url.host_str().unwrap_or("");
        match self.url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        }
    }

    /// Same scheme, host and port: one connection can carry both.
    pub fn same_origin(&self, other: &Target) -> bool {
        self.tls == other.tls
            && self.host.eq_ignore_ascii_case(&other.host)
            && self.port == other.port
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts() {
        let t = Target::parse("http://Example.org:8080/a%20b?x=1#frag").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.tls),
            ("example.org", 8080, false)
        );
        assert_eq!(t.path_and_query(), "/a%20b?x=1");
        assert_eq!(t.host_header(), "example.org:8080");
        let t = Target::parse("https://[::1]/").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 443));
        assert_eq!(t.host_header(), "[::1]");
        assert!(Target::parse("ftp://x/").is_err());
        assert!(Target::parse("http://u:p@x/").is_err());
    }

    #[test]
    fn redirects_resolve() {
        let t = Target::parse("http://a.test/x/y?q").unwrap();
        assert_eq!(t.join("z").unwrap().url.as_str(), "http://a.test/x/z");
        assert_eq!(t.join("/r").unwrap().url.as_str(), "http://a.test/r");
        let other = t.join("https://b.test/").unwrap();
        assert!(other.tls && !t.same_origin(&other));
        assert!(t.same_origin(&t.join("/").unwrap()));
    }
}
