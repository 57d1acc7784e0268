//! The SSRF guard and the guarded HTTP client behind `ctx.http.fetch`.
//!
//! Reusable on its own (webhook delivery uses the same guard): a host must
//! match the manifest's `allowed_hosts` (and the platform allowlist, if any);
//! every address a name resolves to is classified and loopback, private,
//! link-local, CGNAT, multicast, unspecified and cloud-metadata addresses are
//! refused. The check happens in our own DNS resolver, so the address that is
//! checked is the address that is connected to (no DNS rebinding window), and
//! redirects are followed by hand so each hop is checked again.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::{Method, Url};
use serde::{Deserialize, Serialize};

use crate::config::{NetworkPolicy, PrivateNetworks};
use crate::error::JsError;

/// A response body larger than this is cut off with an error: plugins get
/// JSON APIs, not downloads.
pub const HTTP_RESPONSE_BYTES_MAX: usize = 5 * 1024 * 1024;
/// Request bodies are bounded for the same reason.
pub const HTTP_REQUEST_BYTES_MAX: usize = 1024 * 1024;
/// No single request may take longer than this, whatever the deadline left.
pub const HTTP_TIMEOUT_MS_MAX: u64 = 10_000;
/// Redirect hops followed, each re-checked.
pub const HTTP_REDIRECTS_MAX: usize = 5;

/// What an address is, for the purpose of deciding whether plugins may reach it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressClass {
    Public,
    Loopback,
    Private,
    LinkLocal,
    Cgnat,
    Multicast,
    Unspecified,
    /// Cloud instance metadata endpoints (169.254.169.254, fd00:ec2::254, …).
    Metadata,
    /// Broadcast, documentation, benchmarking and other reserved ranges.
    Reserved,
}

pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => classify_v4(v4),
            None => classify_v6(v6),
        },
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let o = ip.octets();
    if ip == Ipv4Addr::new(169, 254, 169, 254) || ip == Ipv4Addr::new(100, 100, 100, 200) {
        AddressClass::Metadata
    } else if ip.is_unspecified() || o[0] == 0 {
        AddressClass::Unspecified
    } else if ip.is_loopback() {
        AddressClass::Loopback
    } else if ip.is_private() {
        AddressClass::Private
    } else if ip.is_link_local() {
        AddressClass::LinkLocal
    } else if o[0] == 100 && (64..128).contains(&o[1]) {
        AddressClass::Cgnat
    } else if ip.is_multicast() {
        AddressClass::Multicast
    } else if ip.is_broadcast()
        || ip.is_documentation()
        || o[0] >= 240
        || (o[0] == 198 && (o[1] & 0xfe) == 18)
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)
    {
        AddressClass::Reserved
    } else {
        AddressClass::Public
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    let s = ip.segments();
    if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        AddressClass::Metadata
    } else if ip.is_unspecified() {
        AddressClass::Unspecified
    } else if ip.is_loopback() {
        AddressClass::Loopback
    } else if (s[0] & 0xfe00) == 0xfc00 {
        AddressClass::Private
    } else if (s[0] & 0xffc0) == 0xfe80 {
        AddressClass::LinkLocal
    } else if ip.is_multicast() {
        AddressClass::Multicast
    } else if s[0] == 0x2001 && s[1] == 0x0db8 || s[0] == 0x0064 && s[1] == 0xff9b {
        // Documentation, and NAT64 which can tunnel to any IPv4 address.
        AddressClass::Reserved
    } else {
        AddressClass::Public
    }
}

/// Decides which hosts and addresses outbound requests may reach.
#[derive(Clone, Debug, Default)]
pub struct NetGuard {
    policy: NetworkPolicy,
}

impl NetGuard {
    pub fn new(policy: NetworkPolicy) -> NetGuard {
        NetGuard { policy }
    }

    /// `Err(reason)` when the address may not be connected to.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), String> {
        let class = classify(ip);
        let allowed = match class {
            AddressClass::Public => true,
            AddressClass::Loopback | AddressClass::Private => {
                self.policy.private_networks == PrivateNetworks::Allow
            }
            _ => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(format!("address {ip} is {class:?} and may not be reached"))
        }
    }

    /// `Err(reason)` unless `host` matches a plugin pattern and the platform
    /// allowlist (when one is set). Patterns are exact names or `*.suffix`.
    pub fn check_host(&self, host: &str, plugin_patterns: &[String]) -> Result<(), String> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if !plugin_patterns.iter().any(|p| host_matches(&host, p)) {
            return Err(format!(
                "host `{host}` is not in the plugin's allowed_hosts"
            ));
        }
        if let Some(platform) = &self.policy.platform_allowed_hosts
            && !platform.iter().any(|p| host_matches(&host, p))
        {
            return Err(format!("host `{host}` is not in the platform's allowlist"));
        }
        Ok(())
    }

    /// Checks a URL's scheme, host and (for IP literals) address.
    pub fn check_url(&self, url: &Url, plugin_patterns: &[String]) -> Result<(), String> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("scheme `{}` is not allowed", url.scheme()));
        }
        let host = match url.host() {
            None => return Err("URL has no host".into()),
            Some(url::Host::Domain(d)) => d.to_owned(),
            Some(url::Host::Ipv4(ip)) => {
                self.check_ip(IpAddr::V4(ip))?;
                ip.to_string()
            }
            Some(url::Host::Ipv6(ip)) => {
                self.check_ip(IpAddr::V6(ip))?;
                ip.to_string()
            }
        };
        self.check_host(&host, plugin_patterns)
    }
}

pub fn host_matches(host: &str, pattern: &str) -> bool {
    let pattern = pattern.to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(suffix) => host.len() > suffix.len() + 1 && host.ends_with(&format!(".{suffix}")),
        None => host == pattern,
    }
}

/// reqwest DNS resolver that drops every address the guard refuses, and
/// fails the lookup when none is left.
struct GuardedResolver {
    guard: NetGuard,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.guard.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refusals = Vec::new();
            let ok: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| match guard.check_ip(a.ip()) {
                    Ok(()) => true,
                    Err(why) => {
                        refusals.push(why);
                        false
                    }
                })
                .collect();
            if ok.is_empty() {
                let why = format!(
                    "`{host}` resolves only to refused addresses: {}",
                    refusals.join("; ")
                );
                return Err(Box::new(Refused(why)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(ok.into_iter()) as Addrs)
        })
    }
}

#[derive(Debug)]
struct Refused(String);
impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for Refused {}

/// `ctx.http.fetch(url, init)` arguments.
#[derive(Debug, Default, Deserialize)]
pub struct FetchRequest {
    pub url: String,
    #[serde(default)]
    pub init: FetchInit,
}

#[derive(Debug, Default, Deserialize)]
pub struct FetchInit {
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct FetchResponse {
    pub status: u16,
    pub url: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

/// The SSRF-guarded HTTP client.
pub struct GuardedHttp {
    guard: NetGuard,
    client: reqwest::Client,
}

impl GuardedHttp {
    pub fn new(policy: NetworkPolicy) -> Result<GuardedHttp, JsError> {
        let guard = NetGuard::new(policy);
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver {
                guard: guard.clone(),
            }))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(|e| JsError::Internal(format!("http client: {e}")))?;
        Ok(GuardedHttp { guard, client })
    }

    pub fn guard(&self) -> &NetGuard {
        &self.guard
    }

    /// The guarded client itself, for callers with their own request shape
    /// (webhook deliveries): every connection still goes through the
    /// guarded resolver, and redirects are never followed.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Performs the request, following and re-checking redirects.
    pub async fn fetch(
        &self,
        req: FetchRequest,
        allowed_hosts: &[String],
        deadline: Instant,
    ) -> Result<FetchResponse, JsError> {
        let mut url = Url::parse(&req.url).map_err(|e| {
            bad(format!(
                "`{}` is not a URL: {e}",
                crate::logs::cut(&req.url, 200)
            ))
        })?;
        let mut method = match &req.init.method {
            Some(m) => Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                .map_err(|_| bad(format!("bad method `{m}`")))?,
            None => Method::GET,
        };
        let mut body = req.init.body.clone();
        if body
            .as_ref()
            .is_some_and(|b| b.len() > HTTP_REQUEST_BYTES_MAX)
        {
            return Err(bad(format!(
                "request body over {HTTP_REQUEST_BYTES_MAX} bytes"
            )));
        }
        for _hop in 0..=HTTP_REDIRECTS_MAX {
            self.guard.check_url(&url, allowed_hosts).map_err(denied)?;
            let resp = self
                .send_once(&url, &method, &req.init.headers, body.clone(), deadline)
                .await?;
            let status = resp.status();
            if !status.is_redirection() {
                return read_response(resp, deadline).await;
            }
            let Some(location) = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
            else {
                return read_response(resp, deadline).await;
            };
            url = url
                .join(location)
                .map_err(|e| bad(format!("bad redirect location: {e}")))?;
            if status.as_u16() == 303
                || (matches!(status.as_u16(), 301 | 302) && method == Method::POST)
            {
                method = Method::GET;
                body = None;
            }
        }
        Err(bad(format!("more than {HTTP_REDIRECTS_MAX} redirects")))
    }

    async fn send_once(
        &self,
        url: &Url,
        method: &Method,
        headers: &BTreeMap<String, String>,
        body: Option<String>,
        deadline: Instant,
    ) -> Result<reqwest::Response, JsError> {
        let left = deadline.saturating_duration_since(Instant::now())
            + Duration::from_millis(crate::config::HOST_TIMEOUT_SLACK_MS);
        let timeout = left.min(Duration::from_millis(HTTP_TIMEOUT_MS_MAX));
        let mut rb = self
            .client
            .request(method.clone(), url.clone())
            .timeout(timeout);
        for (k, v) in headers {
            rb = rb.header(k.as_str(), v.as_str());
        }
        if let Some(b) = body {
            rb = rb.body(b);
        }
        rb.send().await.map_err(send_error)
    }
}

async fn read_response(
    mut resp: reqwest::Response,
    deadline: Instant,
) -> Result<FetchResponse, JsError> {
    let status = resp.status().as_u16();
    let url = resp.url().to_string();
    let headers = resp
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let mut bytes = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now())
            + Duration::from_millis(crate::config::HOST_TIMEOUT_SLACK_MS);
        let chunk = tokio::time::timeout(left, resp.chunk())
            .await
            .map_err(|_| host("response body not complete before the deadline".into()))?
            .map_err(send_error)?;
        let Some(chunk) = chunk else { break };
        if bytes.len() + chunk.len() > HTTP_RESPONSE_BYTES_MAX {
            return Err(host(format!(
                "response body over {HTTP_RESPONSE_BYTES_MAX} bytes"
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(FetchResponse {
        status,
        url,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

/// The guard's reason when `e` is a refused address, `None` otherwise.
pub fn refusal_reason(e: &reqwest::Error) -> Option<String> {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<Refused>() {
            return Some(r.0.clone());
        }
        source = s.source();
    }
    None
}

/// Surfaces a resolver refusal as `NetworkDenied`, anything else as a host error.
fn send_error(e: reqwest::Error) -> JsError {
    let mut source: Option<&dyn std::error::Error> = Some(&e);
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<Refused>() {
            return denied(r.0.clone());
        }
        source = s.source();
    }
    // reqwest's text carries the whole URL (a secret the plugin put in a
    // query or path among it): name the host at most.
    host(extensor_core::redact::urls_to_hosts(&e.to_string()))
}

fn denied(reason: String) -> JsError {
    JsError::NetworkDenied { reason }
}

fn bad(message: String) -> JsError {
    JsError::InvalidArgument {
        op: "ctx.http.fetch",
        message,
    }
}

fn host(message: String) -> JsError {
    JsError::Host {
        op: "ctx.http.fetch",
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_classified() {
        let c = |s: &str| classify(s.parse().unwrap());
        assert_eq!(c("127.0.0.1"), AddressClass::Loopback);
        assert_eq!(c("10.1.2.3"), AddressClass::Private);
        assert_eq!(c("172.16.0.1"), AddressClass::Private);
        assert_eq!(c("192.168.1.1"), AddressClass::Private);
        assert_eq!(c("169.254.169.254"), AddressClass::Metadata);
        assert_eq!(c("169.254.1.1"), AddressClass::LinkLocal);
        assert_eq!(c("100.64.0.1"), AddressClass::Cgnat);
        assert_eq!(c("224.0.0.1"), AddressClass::Multicast);
        assert_eq!(c("0.0.0.0"), AddressClass::Unspecified);
        assert_eq!(c("::1"), AddressClass::Loopback);
        assert_eq!(c("::ffff:127.0.0.1"), AddressClass::Loopback);
        assert_eq!(c("fd00:ec2::254"), AddressClass::Metadata);
        assert_eq!(c("fc00::1"), AddressClass::Private);
        assert_eq!(c("fe80::1"), AddressClass::LinkLocal);
        assert_eq!(c("8.8.8.8"), AddressClass::Public);
        assert_eq!(c("2606:4700::1111"), AddressClass::Public);
    }

    #[test]
    fn private_networks_only_when_allowed_and_metadata_never() {
        let strict = NetGuard::default();
        let onprem = NetGuard::new(NetworkPolicy {
            private_networks: PrivateNetworks::Allow,
            platform_allowed_hosts: None,
        });
        for ip in ["127.0.0.1", "10.0.0.1"] {
            assert!(strict.check_ip(ip.parse().unwrap()).is_err());
            assert!(onprem.check_ip(ip.parse().unwrap()).is_ok());
        }
        for ip in ["169.254.169.254", "100.64.1.1", "0.0.0.0", "fe80::1"] {
            assert!(onprem.check_ip(ip.parse().unwrap()).is_err(), "{ip}");
        }
    }

    #[test]
    fn host_patterns() {
        assert!(host_matches("api.example.com", "*.example.com"));
        assert!(!host_matches("example.com", "*.example.com"));
        assert!(!host_matches("evilexample.com", "*.example.com"));
        assert!(host_matches("hooks.slack.com", "hooks.slack.com"));
        let g = NetGuard::new(NetworkPolicy {
            private_networks: PrivateNetworks::Refuse,
            platform_allowed_hosts: Some(vec!["*.example.com".into()]),
        });
        let plugin = vec!["*.example.com".to_string(), "other.org".to_string()];
        assert!(g.check_host("a.example.com", &plugin).is_ok());
        assert!(
            g.check_host("other.org", &plugin)
                .unwrap_err()
                .contains("platform")
        );
        assert!(
            g.check_host("nope.net", &plugin)
                .unwrap_err()
                .contains("allowed_hosts")
        );
    }
}
