//! Where Hearth's own outbound requests (webhook deliveries, plugins' HTTP) may go. They never
//! reach loopback, private, link-local, shared (CGNAT), multicast or unspecified addresses
//! unless the server is configured to allow them: a URL someone else chose is the classic
//! server-side request forgery, and a hostname can resolve to anything (and change between a
//! check and the request). So the check runs on every address the resolver returns, inside the
//! HTTP client's own DNS step, and on IP literals before a request is made; redirects are not
//! followed.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Who sends the requests, for error messages: what they are and the setting that allows
/// internal addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Egress {
    /// `webhooks`, `plugins`.
    pub who: &'static str,
    /// `webhooks.allow_internal_targets`.
    pub setting: &'static str,
}

/// Whether an address is one that outbound requests must not reach by default.
pub fn is_internal(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal_v4(v4);
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // fc00::/7 unique local, fe80::/10 link-local.
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                // 64:ff9b::/96 NAT64 can embed any IPv4 address.
                || (first == 0x64 && v6.segments()[1] == 0xff9b)
        }
    }
}

fn is_internal_v4(v4: Ipv4Addr) -> bool {
    let [a, b, ..] = v4.octets();
    v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || a == 0
        // 100.64.0.0/10, shared address space (carrier-grade NAT).
        || (a == 100 && (64..128).contains(&b))
        // 198.18.0.0/15, benchmarking; 240.0.0.0/4, reserved.
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240
}

/// Why a URL is refused.
pub fn check_url(url: &str, allow_internal: bool, egress: Egress) -> Result<reqwest::Url, String> {
    let who = egress.who;
    let parsed =
        reqwest::Url::parse(url).map_err(|error| format!("`{url}` is not a URL: {error}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "{who} reach http or https URLs, not `{}`",
            parsed.scheme()
        ));
    }
    if url.len() > 2048 {
        return Err(format!("{who} reach URLs of at most 2048 bytes"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("put no credentials in the URL".into());
    }
    let Some(host) = parsed.host_str() else {
        return Err(format!("`{url}` has no host"));
    };
    if !allow_internal {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let literal = match bare.parse::<IpAddr>() {
            Ok(address) => Some(address),
            Err(_) if bare.eq_ignore_ascii_case("localhost") || bare.ends_with(".localhost") => {
                Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
            }
            Err(_) => None,
        };
        if let Some(address) = literal.filter(|address| is_internal(*address)) {
            return Err(format!(
                "`{url}` points at an internal address ({address}); {who} reach only public \
                 addresses unless {} is set",
                egress.setting
            ));
        }
    }
    Ok(parsed)
}

/// The HTTP client's resolver: the system's, with internal addresses removed (and an error
/// when none is left).
#[derive(Debug, Clone, Copy)]
pub struct PublicOnly(pub Egress);

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        let Egress { who, setting } = self.0;
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|address| !is_internal(address.ip()))
                .collect();
            if found.is_empty() {
                return Err(format!(
                    "`{host}` resolves to no public address; {who} reach only public \
                     addresses unless {setting} is set"
                )
                .into());
            }
            let addresses: Addrs = Box::new(found.into_iter());
            Ok(addresses)
        })
    }
}

/// A client for outbound requests: no redirects, a timeout, a user agent naming the sender,
/// and (unless internal targets are allowed) the public-only resolver.
pub fn client(
    allow_internal: bool,
    timeout: std::time::Duration,
    egress: Egress,
) -> Result<reqwest::Client, reqwest::Error> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(std::time::Duration::from_secs(10)))
        .user_agent(format!(
            "hearth-{}/{}",
            egress.who,
            env!("CARGO_PKG_VERSION")
        ));
    if !allow_internal {
        builder = builder.dns_resolver(Arc::new(PublicOnly(egress)));
    }
    builder.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_refused_and_public_ones_pass() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "64:ff9b::7f00:1",
        ] {
            assert!(is_internal(internal.parse().unwrap()), "{internal}");
        }
        for public in ["93.184.216.34", "1.1.1.1", "2606:4700::1111"] {
            assert!(!is_internal(public.parse().unwrap()), "{public}");
        }
    }

    const TEST: Egress = Egress {
        who: "webhooks",
        setting: "webhooks.allow_internal_targets",
    };

    #[test]
    fn urls_are_checked_for_scheme_credentials_and_internal_hosts() {
        assert!(check_url("https://hooks.example.com/in", false, TEST).is_ok());
        for refused in [
            "ftp://example.com/",
            "http://user:pw@example.com/",
            "http://127.0.0.1:8080/hook",
            "http://[::1]/hook",
            "http://localhost/hook",
            "http://169.254.169.254/latest/meta-data",
            "not a url",
        ] {
            assert!(check_url(refused, false, TEST).is_err(), "{refused}");
        }
        assert!(check_url("http://127.0.0.1:8080/hook", true, TEST).is_ok());
        let refused = check_url("http://10.0.0.1/", false, TEST).unwrap_err();
        assert!(
            refused.contains("webhooks.allow_internal_targets"),
            "{refused}"
        );
    }
}
