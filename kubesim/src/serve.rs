//! Serving the API over TCP with TLS: a generated CA and server certificate, a
//! bearer token, HTTP/1.1 and HTTP/2, and a kubeconfig for kubectl and friends.

use crate::Kubesim;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Where and how to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    pub address: SocketAddr,
    /// Where to write the kubeconfig.
    pub kubeconfig: PathBuf,
}

impl ServeOptions {
    /// A free loopback port, the kubeconfig written to `kubeconfig`: what
    /// tests and the demo want.
    pub fn loopback(kubeconfig: PathBuf) -> ServeOptions {
        ServeOptions {
            address: SocketAddr::from(([127, 0, 0, 1], 0)),
            kubeconfig,
        }
    }
}

/// A running TLS server.
pub struct Served {
    /// The address it listens on.
    pub address: SocketAddr,
    /// The bearer token clients must send.
    pub token: String,
    /// Where the kubeconfig was written.
    pub kubeconfig: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Served {
    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://{}", self.address)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Why serving failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Binding or writing the kubeconfig failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Certificate generation failed.
    #[error("generating certificates: {0}")]
    Certificate(#[from] rcgen::Error),
    /// TLS configuration failed.
    #[error("configuring TLS: {0}")]
    Tls(#[from] rustls::Error),
}

impl Kubesim {
    /// Serves the API over HTTPS on `options.address` and writes a kubeconfig
    /// (CA data, server URL, bearer token) to `options.kubeconfig`.
    pub async fn serve(&self, options: ServeOptions) -> Result<Served, ServeError> {
        let ca_key = rcgen::KeyPair::generate()?;
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "kubesim-ca");
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let server_key = rcgen::KeyPair::generate()?;
        let mut server_params =
            rcgen::CertificateParams::new(vec!["localhost".to_string(), "kubernetes".to_string()])?;
        server_params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress(options.address.ip()));
        server_params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress(
                std::net::Ipv4Addr::LOCALHOST.into(),
            ));
        let server_cert = server_params.signed_by(&server_key, &issuer)?;

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                vec![server_cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into()),
            )?;
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));

        let listener = TcpListener::bind(options.address).await?;
        let address = listener.local_addr()?;
        let token = uuid::Uuid::new_v4().simple().to_string();
        write_kubeconfig(&options.kubeconfig, address, &ca_cert.pem(), &token)?;

        let sim = self.clone();
        let expected = format!("Bearer {token}");
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let sim = sim.clone();
                let expected = expected.clone();
                tokio::spawn(async move {
                    let Ok(tls_stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(
                        move |request: http::Request<hyper::body::Incoming>| {
                            let sim = sim.clone();
                            let authorized = request
                                .headers()
                                .get(http::header::AUTHORIZATION)
                                .and_then(|v| v.to_str().ok())
                                == Some(expected.as_str());
                            async move {
                                if !authorized {
                                    return Ok::<_, std::convert::Infallible>(unauthorized());
                                }
                                Ok(sim.handle(request).await)
                            }
                        },
                    );
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls_stream), service)
                        .await;
                });
            }
        });
        Ok(Served {
            address,
            token,
            kubeconfig: options.kubeconfig,
            task,
        })
    }
}

fn unauthorized() -> http::Response<crate::ResponseBody> {
    let body = serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "Unauthorized", "reason": "Unauthorized", "code": 401});
    http::Response::builder()
        .status(401)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())).boxed_unsync())
        .expect("valid response")
}

fn write_kubeconfig(
    path: &std::path::Path,
    address: SocketAddr,
    ca_pem: &str,
    token: &str,
) -> std::io::Result<()> {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kubesim", "cluster": {"server": format!("https://{address}"), "certificate-authority-data": ca}}],
        "users": [{"name": "kubesim", "user": {"token": token}}],
        "contexts": [{"name": "kubesim", "context": {"cluster": "kubesim", "user": "kubesim", "namespace": "default"}}],
        "current-context": "kubesim",
    });
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let yaml = serde_norway::to_string(&config).map_err(std::io::Error::other)?;
    write_private(path, &yaml)
}

/// Writes a file only the owner can read (the kubeconfig holds a token).
fn write_private(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    options.open(path)?.write_all(contents.as_bytes())
}
