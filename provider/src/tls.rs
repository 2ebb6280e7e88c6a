//! The plugin's side of go-plugin's automatic mutual TLS.
//!
//! Terraform hands the provider its client certificate in
//! `PLUGIN_CLIENT_CERT` (PEM: ECDSA P-521, SHA-512, self-signed) and trusts
//! the server certificate the provider prints in its handshake line. The
//! server here presents a fresh self-signed P-256 certificate for
//! `localhost` and accepts a client only if it presents exactly Terraform's
//! certificate and proves it holds its key. ring cannot verify P-521
//! signatures, so those are checked with the pure-Rust `p521` crate;
//! without that, Go would send no certificate at all.

use p521::ecdsa::signature::Verifier;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, Error, ServerConfig,
    SignatureScheme,
};
use std::sync::Arc;

/// The server's certificate (DER) and the TLS configuration that uses it.
pub struct ServerTls {
    /// The certificate, for the handshake line.
    pub certificate: Vec<u8>,
    /// rustls' server configuration (HTTP/2 only, client certificate required).
    pub config: Arc<ServerConfig>,
}

/// Builds the server side for Terraform's client certificate `client_pem`.
pub fn server_tls(client_pem: &str) -> Result<ServerTls, String> {
    let client = CertificateDer::from_pem_slice(client_pem.as_bytes())
        .map_err(|e| format!("PLUGIN_CLIENT_CERT is not a PEM certificate: {e}"))?;
    let verifier = OnlyTerraform::new(client.into_owned())?;
    let key = rcgen::KeyPair::generate().map_err(|e| format!("generating a key: {e}"))?;
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .map_err(|e| format!("certificate parameters: {e}"))?;
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "terraform-provider-karpenter");
    let cert = params
        .self_signed(&key)
        .map_err(|e| format!("self-signing the server certificate: {e}"))?;
    let der = cert.der().to_vec();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS versions: {e}"))?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(
            vec![CertificateDer::from(der.clone())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .map_err(|e| format!("server certificate: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(ServerTls {
        certificate: der,
        config: Arc::new(config),
    })
}

/// Accepts exactly one client certificate, with P-521 signatures checked in
/// pure Rust and every other scheme by ring.
#[derive(Debug)]
struct OnlyTerraform {
    expected: CertificateDer<'static>,
    p521_key: Option<p521::ecdsa::VerifyingKey>,
    ring: Arc<CryptoProvider>,
}

impl OnlyTerraform {
    fn new(expected: CertificateDer<'static>) -> Result<Self, String> {
        let (_, parsed) = x509_parser::parse_x509_certificate(expected.as_ref())
            .map_err(|e| format!("PLUGIN_CLIENT_CERT does not parse: {e}"))?;
        let point = &parsed.public_key().subject_public_key.data;
        let p521_key = p521::ecdsa::VerifyingKey::from_sec1_bytes(point).ok();
        Ok(OnlyTerraform {
            expected,
            p521_key,
            ring: Arc::new(rustls::crypto::ring::default_provider()),
        })
    }

    fn verify(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
        tls13: bool,
    ) -> Result<HandshakeSignatureValid, Error> {
        if cert.as_ref() != self.expected.as_ref() {
            return Err(Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ));
        }
        if dss.scheme == SignatureScheme::ECDSA_NISTP521_SHA512 {
            let key = self
                .p521_key
                .as_ref()
                .ok_or(Error::InvalidCertificate(CertificateError::BadSignature))?;
            let signature = p521::ecdsa::DerSignature::from_bytes(dss.signature())
                .map_err(|_| Error::InvalidCertificate(CertificateError::BadSignature))?;
            let signature = p521::ecdsa::Signature::try_from(signature)
                .map_err(|_| Error::InvalidCertificate(CertificateError::BadSignature))?;
            return key
                .verify(message, &signature)
                .map(|()| HandshakeSignatureValid::assertion())
                .map_err(|_| Error::InvalidCertificate(CertificateError::BadSignature));
        }
        let algorithms = &self.ring.signature_verification_algorithms;
        if tls13 {
            rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
        } else {
            rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
        }
    }
}

impl ClientCertVerifier for OnlyTerraform {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        if end_entity.as_ref() == self.expected.as_ref() {
            Ok(ClientCertVerified::assertion())
        } else {
            Err(Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.verify(message, cert, dss, false)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.verify(message, cert, dss, true)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        let mut schemes = self
            .ring
            .signature_verification_algorithms
            .supported_schemes();
        schemes.push(SignatureScheme::ECDSA_NISTP521_SHA512);
        schemes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate() -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.self_signed(&key).unwrap().der().clone()
    }

    #[test]
    fn only_terraforms_certificate_is_accepted() {
        let (terraform, other) = (certificate(), certificate());
        let verifier = OnlyTerraform::new(terraform.clone()).unwrap();
        let now = UnixTime::now();
        assert!(verifier.verify_client_cert(&terraform, &[], now).is_ok());
        assert!(verifier.verify_client_cert(&other, &[], now).is_err());
        assert!(verifier.client_auth_mandatory());
        assert!(
            verifier
                .supported_verify_schemes()
                .contains(&SignatureScheme::ECDSA_NISTP521_SHA512),
            "Go only sends its P-521 certificate to a server that can check it"
        );
    }

    #[test]
    fn a_client_certificate_that_is_not_pem_is_refused_with_the_variable_named() {
        let err = server_tls("not a certificate").err().unwrap();
        assert!(err.contains("PLUGIN_CLIENT_CERT"), "{err}");
    }
}
