//! The lab's certificate authority: created once per state directory
//! (`<state dir>/ca/lab-ca.pem` and its key), trusted by clients through
//! `VNET_LAB_CA_FILE`; each service host signs its own certificate with it
//! for the service's public and privatelink names.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// The CA certificate file under the state directory.
pub fn ca_files(state_dir: &Path) -> (PathBuf, PathBuf) {
    let dir = state_dir.join("ca");
    (dir.join("lab-ca.pem"), dir.join("lab-ca.key"))
}

/// The CA's parameters. Deterministic, so a host can rebuild the issuer
/// from the key alone (the issuer name must match the certificate's subject).
fn ca_params() -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "vnet-agent lab CA");
    dn.push(DnType::OrganizationName, "vnet-agent");
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p
}

/// Creates the CA if the state directory has none; returns (cert, key) paths.
pub fn ensure(state_dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let (cert, key) = ca_files(state_dir);
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    std::fs::create_dir_all(cert.parent().expect("ca dir"))?;
    let kp = KeyPair::generate().context("generating the lab CA key")?;
    let ca = ca_params().self_signed(&kp).context("signing the lab CA")?;
    crate::store::write_atomic(&key, kp.serialize_pem().as_bytes())?;
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    crate::store::write_atomic(&cert, ca.pem().as_bytes())?;
    Ok((cert, key))
}

/// A TLS server configuration for `names`, with a fresh key and a
/// certificate signed by the lab CA whose key is in `ca_key`.
pub fn server_config(ca_key: &Path, names: &[String]) -> Result<Arc<rustls::ServerConfig>> {
    let pem = std::fs::read_to_string(ca_key)
        .with_context(|| format!("reading the lab CA key {}", ca_key.display()))?;
    let issuer = Issuer::new(ca_params(), KeyPair::from_pem(&pem)?);
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(names.to_vec())?;
    params.distinguished_name.push(
        DnType::CommonName,
        names.first().cloned().unwrap_or_default(),
    );
    params.use_authority_key_identifier_extension = true;
    let cert = params.signed_by(&key, &issuer)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )?;
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_is_made_once_and_signs_service_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = ensure(dir.path()).unwrap();
        let first = std::fs::read(&cert).unwrap();
        ensure(dir.path()).unwrap();
        assert_eq!(
            std::fs::read(&cert).unwrap(),
            first,
            "made once per state dir"
        );
        server_config(&key, &["acct1.blob.core.windows.net".into()]).unwrap();
    }
}
