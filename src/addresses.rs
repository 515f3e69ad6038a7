//! Where teachers reach this server: the configured `public_url`, or, when the server listens
//! on every interface, the machine's network addresses (what a phone on the school network
//! can open), or else the address it listens on. For the start-up message and for the boards'
//! pairing screen; it knows nothing of HTTP.

use std::net::{IpAddr, SocketAddr};

/// The addresses to tell teachers, best first. Loopback ones only when nothing else exists.
pub fn teacher_urls(listen: SocketAddr, public_url: Option<&str>) -> Vec<String> {
    if let Some(url) = public_url {
        return vec![url.to_owned()];
    }
    if !listen.ip().is_unspecified() {
        return vec![url_of(listen.ip(), listen.port())];
    }
    let mut ips: Vec<IpAddr> = interface_addresses()
        .into_iter()
        .filter(|ip| !ip.is_loopback() && !is_link_local(ip))
        .filter(|ip| listen.is_ipv6() || ip.is_ipv4())
        .collect();
    // IPv4 first: what people type.
    ips.sort_by_key(|ip| (ip.is_ipv6(), *ip));
    ips.dedup();
    match ips.is_empty() {
        true => vec![url_of(IpAddr::from([127, 0, 0, 1]), listen.port())],
        false => ips
            .into_iter()
            .map(|ip| url_of(ip, listen.port()))
            .collect(),
    }
}

/// The address the boards show teachers: the configured one, or the machine's first network
/// address when listening on every interface; `None` when the board's own address is best
/// (it was opened on an address the server chose to listen on).
pub fn board_url(listen: SocketAddr, public_url: Option<&str>) -> Option<String> {
    if public_url.is_none() && !listen.ip().is_unspecified() {
        return None;
    }
    let first = teacher_urls(listen, public_url).into_iter().next()?;
    let loopback = first.starts_with("http://127.") || first.starts_with("http://[::1]");
    (public_url.is_some() || !loopback).then_some(first)
}

/// Whether only this machine can reach an address the server listens on.
pub fn loopback_only(listen: SocketAddr) -> bool {
    listen.ip().is_loopback()
}

fn url_of(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(v4) => format!("http://{v4}:{port}"),
        IpAddr::V6(v6) => format!("http://[{v6}]:{port}"),
    }
}

fn is_link_local(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// The addresses of the machine's interfaces that are up and running.
fn interface_addresses() -> Vec<IpAddr> {
    if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter(if_addrs::Interface::is_oper_up)
        .map(|interface| interface.ip())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_url_wins_then_the_listen_address() {
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(
            teacher_urls(any, Some("https://classcast.school.org")),
            ["https://classcast.school.org"]
        );
        let one: SocketAddr = "10.1.2.3:8080".parse().unwrap();
        assert_eq!(teacher_urls(one, None), ["http://10.1.2.3:8080"]);
        assert!(loopback_only("127.0.0.1:8080".parse().unwrap()));
        let public = Some("https://classcast.school.org");
        assert_eq!(board_url(one, public).as_deref(), public);
        assert_eq!(
            board_url(one, None),
            None,
            "the board's own address will do"
        );
        assert!(!loopback_only(any));
    }

    #[test]
    fn on_every_interface_the_machines_addresses_are_named() {
        let urls = teacher_urls("0.0.0.0:8080".parse().unwrap(), None);
        assert!(!urls.is_empty());
        for url in &urls {
            assert!(
                url.starts_with("http://") && url.ends_with(":8080"),
                "{url}"
            );
            assert!(
                !url.contains('['),
                "IPv4 only when listening on 0.0.0.0: {url}"
            );
        }
    }
}
