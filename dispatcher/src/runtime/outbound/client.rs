//! Sending one outgoing request to the internet, SSRF-safe: the host name is resolved
//! once, every address is checked against the [`AddressPolicy`], and the connection goes
//! to a checked address (so a DNS answer that changes between check and connect cannot
//! redirect it). TLS with the webpki roots; connect, first-byte and between-bytes
//! timeouts; the caller's connection permit is held for as long as the connection lives.

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::BodyExt as _;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use wasmtime_wasi_http::{Error as HttpError, WasiBody};

use super::policy::AddressPolicy;
use super::{SendResult, refusal};

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(10);
pub const BETWEEN_BYTES_TIMEOUT: Duration = Duration::from_secs(10);

static TLS: LazyLock<tokio_rustls::TlsConnector> = LazyLock::new(|| {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.into(),
    };
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
});

/// Sends `request` (absolute URI) over a new connection to a checked address.
pub async fn send(
    mut request: http::Request<WasiBody>,
    addresses: &AddressPolicy,
    permit: OwnedSemaphorePermit,
) -> SendResult {
    let uri = request.uri().clone();
    let tls = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
    let host = uri.host().ok_or(HttpError::HttpRequestUriInvalid)?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });

    let targets = resolve(&host, port, addresses).await?;
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&targets[..]))
        .await
        .map_err(|_| HttpError::ConnectionTimeout)?
        .map_err(HttpError::Connect)?;
    let io: Box<dyn Stream> = if tls {
        let name = match host.parse::<IpAddr>() {
            Ok(ip) => rustls::pki_types::ServerName::from(ip),
            Err(_) => rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|_| HttpError::HttpRequestUriInvalid)?,
        };
        let connecting = TLS.connect(name, stream);
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|_| HttpError::ConnectionTimeout)?
            .map_err(HttpError::Tls)?;
        Box::new(stream)
    } else {
        Box::new(stream)
    };
    let (mut sender, connection) = tokio::time::timeout(
        CONNECT_TIMEOUT,
        hyper::client::conn::http1::handshake(TokioIo::new(io)),
    )
    .await
    .map_err(|_| HttpError::ConnectionTimeout)??;

    // On the wire the request line carries the path only; `Host` was set by wasi-http.
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    *request.uri_mut() = path.parse().map_err(|_| HttpError::HttpRequestUriInvalid)?;

    // The connection runs in its own task (holding the permit) until both sides are done.
    let driver = tokio::spawn(async move {
        let result = connection.await;
        drop(permit);
        result
    });
    let response = tokio::time::timeout(FIRST_BYTE_TIMEOUT, sender.send_request(request))
        .await
        .map_err(|_| HttpError::ConnectionReadTimeout)??;
    let response = response.map(|body| {
        TimedBody {
            body,
            idle: Box::pin(tokio::time::sleep(BETWEEN_BYTES_TIMEOUT)),
        }
        .boxed_unsync()
    });
    let io = Box::new(async move {
        match driver.await {
            Ok(result) => result.map_err(HttpError::from),
            Err(join) => Err(HttpError::InternalError(Some(join.to_string()))),
        }
    });
    Ok((response, io))
}

trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Stream for T {}

/// The checked addresses of `host`, resolved once.
async fn resolve(
    host: &str,
    port: u16,
    addresses: &AddressPolicy,
) -> Result<Vec<SocketAddr>, HttpError> {
    let resolved: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::lookup_host((host, port)))
            .await
            .map_err(|_| HttpError::DnsTimeout)?
            .map_err(|_| HttpError::DnsError {
                rcode: None,
                info_code: None,
            })?
            .map(|addr| addr.ip())
            .collect(),
    };
    let mut refusals = Vec::new();
    let mut allowed = Vec::new();
    for ip in resolved {
        match addresses.check(ip) {
            Ok(ip) => allowed.push(SocketAddr::new(ip, port)),
            Err(why) => refusals.push(why),
        }
    }
    if allowed.is_empty() {
        return Err(refusal(match refusals.first() {
            Some(why) => format!("outbound request to `{host}` refused: {why}"),
            None => format!("outbound request to `{host}` refused: no address"),
        }));
    }
    Ok(allowed)
}

/// A response body that fails when no frame arrives for `BETWEEN_BYTES_TIMEOUT`.
struct TimedBody {
    body: hyper::body::Incoming,
    idle: Pin<Box<tokio::time::Sleep>>,
}

impl Body for TimedBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        match Pin::new(&mut self.body).poll_frame(cx) {
            Poll::Ready(frame) => {
                let deadline = tokio::time::Instant::now() + BETWEEN_BYTES_TIMEOUT;
                self.idle.as_mut().reset(deadline);
                Poll::Ready(frame.map(|f| f.map_err(HttpError::from)))
            }
            Poll::Pending => {
                ready!(self.idle.as_mut().poll(cx));
                Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }
}
