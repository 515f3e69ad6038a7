//! Request extractors that fail with the API's own error envelope instead of axum's plain
//! text: JSON bodies, ids in paths, the bearer session and `If-Match`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use parking_lot::Mutex;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::error::ApiError;
use super::AppState;
use crate::auth::{Authenticated, IssuedToken};
use crate::domain::{json_depth_within, ValidationError, JSON_DEPTH_MAX};

/// The request body's media type: its `Content-Type` without parameters, in lowercase.
pub fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = value.split(';').next().unwrap_or_default();
    Some(essence.trim().to_ascii_lowercase())
}

/// A JSON body. Syntax errors answer 400; well-formed JSON of the wrong shape answers 422 with
/// the path of the offending field; a missing or foreign content type answers 415.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let is_json = media_type(req.headers())
            .is_some_and(|mime| mime == "application/json" || mime.ends_with("+json"));
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            match rejection.status() {
                axum::http::StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge {
                    limit: state.http.max_body_bytes,
                },
                _ => {
                    ApiError::bad_request("unreadable_body", "The request body could not be read.")
                }
            }
        })?;
        if !json_depth_within(&bytes, JSON_DEPTH_MAX) {
            return Err(ApiError::bad_request(
                "malformed_json",
                format!("The request body nests deeper than {JSON_DEPTH_MAX} levels."),
            ));
        }
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        match serde_path_to_error::deserialize(de) {
            Ok(value) => Ok(Json(value)),
            Err(e) => {
                let path = e.path().to_string();
                let inner = e.into_inner();
                if inner.is_data() {
                    let field = if path == "." { "body".to_owned() } else { path };
                    Err(ValidationError::single(&field, describe_serde(&inner)).into())
                } else {
                    Err(ApiError::bad_request(
                        "malformed_json",
                        format!(
                            "The request body is not valid JSON ({}).",
                            describe_serde(&inner)
                        ),
                    ))
                }
            }
        }
    }
}

/// serde's message without the "at line 1 column 7" tail, which means nothing to a person.
fn describe_serde(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// The ids in a path, each a UUID; anything else answers 400 naming the bad segment.
pub struct Ids<const N: usize>(pub [Uuid; N]);

impl<S: Send + Sync, const N: usize> FromRequestParts<S> for Ids<N> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let raw = axum::extract::RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::NotFound)?;
        let mut ids = [Uuid::nil(); N];
        let mut count = 0;
        for (i, (name, value)) in raw.iter().enumerate().take(N) {
            ids[i] = Uuid::parse_str(value).map_err(|_| {
                ApiError::bad_request(
                    "invalid_id",
                    format!("{value:?} is not a valid {name}: ids are UUIDs."),
                )
            })?;
            count += 1;
        }
        if count != N {
            return Err(ApiError::NotFound);
        }
        Ok(Ids(ids))
    }
}

/// Where a token renewed during this request is parked until the response goes out
/// (see `session_renewal` in the router).
#[derive(Clone, Default)]
pub struct RenewalSlot(pub Arc<Mutex<Option<IssuedToken>>>);

/// The signed-in teacher: a valid `Authorization: Bearer` session, or 401. With `RENEW`
/// (the default) a session near its end is renewed; logging out must not be.
pub struct Auth<const RENEW: bool = true>(pub Authenticated);

impl<const RENEW: bool> FromRequestParts<AppState> for Auth<RENEW> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(&parts.headers).ok_or(ApiError::Unauthorized)?;
        let auth = state.accounts.authenticate(token, RENEW).await?;
        if let (Some(renewed), Some(slot)) = (&auth.renewed, parts.extensions.get::<RenewalSlot>())
        {
            *slot.0.lock() = Some(renewed.clone());
        }
        Ok(Auth(auth))
    }
}

/// The token of an `Authorization: Bearer` header, if there is a plausible one.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|t| !t.is_empty() && t.len() <= 128)
}

/// A board page, identified by its board token as a bearer token; 401 otherwise.
pub struct BoardAuth(pub Uuid);

impl FromRequestParts<AppState> for BoardAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(&parts.headers).ok_or(ApiError::Unauthorized)?;
        match state.live.board_for_token(token).await {
            Ok(Some(board)) => Ok(BoardAuth(board)),
            Ok(None) => Err(ApiError::Unauthorized),
            Err(e) => Err(e.into()),
        }
    }
}

/// The client's address, for per-address rate limits: the TCP peer, or, when the peer is
/// one of the configured `trusted_proxies`, the address its `X-Forwarded-For` names (the
/// right-most entry that is not itself a trusted proxy; entries further left are the
/// client's own claims and are ignored); as [`counted_as`] counts it.
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(a)| a.ip())
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        Ok(ClientIp(counted_as(client_address(
            peer,
            &parts.headers,
            &state.http.trusted_proxies,
        ))))
    }
}

/// The address a client's per-address limits count against: an IPv4 address as it is, an
/// IPv6 one as its /64 network (one household or machine holds a whole /64, so counting its
/// addresses apart would give it 2^64 budgets), an IPv4-mapped IPv6 one as its IPv4.
pub fn counted_as(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let network = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(network.into())
            }
        },
    }
}

fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[ipnet::IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect::<Vec<_>>();
    for entry in forwarded.iter().rev() {
        match entry.trim().parse::<IpAddr>() {
            Ok(ip) if is_trusted(&ip) => continue,
            Ok(ip) => return ip,
            // A malformed entry: nothing left of it can be trusted.
            Err(_) => break,
        }
    }
    peer
}

/// `If-Match: "<version>"`. `None` when absent or `*` (no precondition); anything but a
/// quoted version (as sent in `ETag`) is a 400, so a client bug is not mistaken for a conflict.
pub struct IfMatch(pub Option<Uuid>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(raw) = parts.headers.get(header::IF_MATCH) else {
            return Ok(IfMatch(None));
        };
        let raw = raw.to_str().unwrap_or("").trim();
        if raw == "*" {
            return Ok(IfMatch(None));
        }
        raw.strip_prefix('"')
            .and_then(|r| r.strip_suffix('"'))
            .and_then(|tag| Uuid::parse_str(tag).ok())
            .map(|v| IfMatch(Some(v)))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_if_match",
                    "If-Match must be the lesson's version in quotes, exactly as sent in its ETag.",
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append("x-forwarded-for", v.parse().unwrap());
        }
        headers
    }

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.5".parse().unwrap();
        let trusted = ["10.0.0.0/8".parse().unwrap()];
        let client: IpAddr = "203.0.113.7".parse().unwrap();
        let headers = forwarded(&["198.51.100.1, 203.0.113.7", "10.0.0.9"]);
        assert_eq!(client_address(proxy, &headers, &trusted), client);
        let stranger: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(client_address(stranger, &headers, &trusted), stranger);
        assert_eq!(
            client_address(proxy, &forwarded(&["bogus"]), &trusted),
            proxy
        );
        assert_eq!(client_address(proxy, &HeaderMap::new(), &trusted), proxy);
    }

    #[test]
    fn an_ipv6_client_counts_as_its_slash_64() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(counted_as(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(
            counted_as(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")),
            ip("2001:db8:1:2::")
        );
        assert_ne!(counted_as(ip("2001:db8:1:3::1")), ip("2001:db8:1:2::"));
        assert_eq!(counted_as(ip("::ffff:192.0.2.9")), ip("192.0.2.9"));
        assert_eq!(counted_as(ip("192.0.2.9")), ip("192.0.2.9"));
    }
}
