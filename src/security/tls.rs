//! TLS for SSL and SASL_SSL listeners (rustls, TLS 1.2 and 1.3), with
//! optional client certificates (mTLS): a verified client certificate's
//! subject becomes the connection's principal, as Kafka's default
//! principal builder makes it (`User:CN=app,O=org`).

use std::path::PathBuf;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};

/// The `[tls]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain of the broker [ssl.keystore.location].
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, RSA or EC) [ssl.keystore.location].
    pub key_file: PathBuf,
    /// PEM CA certificates that sign client certificates [ssl.truststore.location].
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    /// "none", "requested" or "required" [ssl.client.auth].
    #[serde(default = "no_client_auth")]
    pub client_auth: String,
    /// A client that has not finished its TLS handshake after this long is
    /// disconnected.
    #[serde(default = "handshake_timeout")]
    pub handshake_timeout_ms: u64,
}

fn no_client_auth() -> String {
    "none".into()
}

/// The default of [`TlsConfig::handshake_timeout_ms`].
pub const DEFAULT_HANDSHAKE_TIMEOUT_MS: u64 = 10_000;

fn handshake_timeout() -> u64 {
    DEFAULT_HANDSHAKE_TIMEOUT_MS
}

impl TlsConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.handshake_timeout_ms == 0 {
            return Err("tls.handshake_timeout_ms must be > 0".into());
        }
        match self.client_auth.as_str() {
            "none" => Ok(()),
            "requested" | "required" if self.client_ca_file.is_some() => Ok(()),
            "requested" | "required" => {
                Err("tls.client_auth needs tls.client_ca_file to check client certificates".into())
            }
            other => Err(format!(
                "tls.client_auth = {other:?}: must be \"none\", \"requested\" or \"required\""
            )),
        }
    }

    /// Loads the certificates and key and builds the acceptor every TLS
    /// listener shares.
    pub(crate) fn acceptor(&self) -> Result<TlsAcceptor, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certs = read_certs(&self.cert_file)?;
        let key = PrivateKeyDer::from_pem_file(&self.key_file)
            .map_err(|e| format!("tls.key_file {}: {e}", self.key_file.display()))?;
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| e.to_string())?;
        let builder = match (&self.client_ca_file, self.client_auth.as_str()) {
            (Some(ca), "requested" | "required") => {
                let mut roots = RootCertStore::empty();
                for cert in read_certs(ca)? {
                    roots
                        .add(cert)
                        .map_err(|e| format!("tls.client_ca_file {}: {e}", ca.display()))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                let verifier = if self.client_auth == "requested" {
                    verifier.allow_unauthenticated()
                } else {
                    verifier
                };
                let verifier = verifier.build().map_err(|e| e.to_string())?;
                builder.with_client_cert_verifier(verifier)
            }
            _ => builder.with_no_client_auth(),
        };
        let config = builder
            .with_single_cert(certs, key)
            .map_err(|e| format!("tls.cert_file and tls.key_file: {e}"))?;
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

fn read_certs(path: &PathBuf) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate", path.display()));
    }
    Ok(certs)
}

/// `User:<subject>` of a client certificate, as Kafka's default principal
/// builder writes it (Java's RFC 2253 form): the last RDN first, the
/// attributes of a multi-valued RDN joined by `+`, special characters
/// escaped, and an attribute without an RFC 2253 keyword as its dotted OID
/// and the hex of its DER value. `None` if the subject cannot be read.
pub(crate) fn principal(cert: &[u8]) -> Option<String> {
    let (_, cert_body) = der(cert, 0x30)?;
    let (_, mut tbs) = der(cert_body, 0x30)?;
    // [0] version, serial, signature algorithm, issuer, validity, subject.
    if tbs.first() == Some(&0xa0) {
        tbs = der(tbs, 0xa0)?.0;
    }
    for tag in [0x02, 0x30, 0x30, 0x30] {
        tbs = der(tbs, tag)?.0;
    }
    let (_, mut rdns) = der(tbs, 0x30)?;
    let mut parts = Vec::new();
    while !rdns.is_empty() {
        let (rest, mut set) = der(rdns, 0x31)?;
        rdns = rest;
        let mut attributes = Vec::new();
        while !set.is_empty() {
            let (rest, attribute) = der(set, 0x30)?;
            set = rest;
            let (value, oid) = der(attribute, 0x06)?;
            let name = keyword(oid).map_or_else(|| dotted(oid), |k| Some(k.to_string()))?;
            let value = match (keyword(oid), any_string(value)) {
                (Some(_), Some(text)) => escape(&text),
                // No keyword, or not a string Java prints: the DER value in hex.
                _ => format!("#{}", hex(value)),
            };
            attributes.push(format!("{name}={value}"));
        }
        parts.push(attributes.join("+"));
    }
    parts.reverse();
    Some(format!("User:{}", parts.join(",")))
}

/// The RFC 2253 keyword of an attribute type.
fn keyword(oid: &[u8]) -> Option<&'static str> {
    Some(match oid {
        [0x55, 0x04, 0x03] => "CN",
        [0x55, 0x04, 0x06] => "C",
        [0x55, 0x04, 0x07] => "L",
        [0x55, 0x04, 0x08] => "ST",
        [0x55, 0x04, 0x09] => "STREET",
        [0x55, 0x04, 0x0a] => "O",
        [0x55, 0x04, 0x0b] => "OU",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19] => "DC",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01] => "UID",
        _ => return None,
    })
}

/// RFC 2253 escaping of an attribute value, as Java writes it: the
/// special characters `,=+<>#;"\` wherever they are, every leading and
/// trailing space, and NUL as `\00`.
fn escape(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    let leading = chars.iter().take_while(|c| **c == ' ').count();
    let trailing = chars.iter().rev().take_while(|c| **c == ' ').count();
    let mut out = String::with_capacity(value.len());
    for (i, &c) in chars.iter().enumerate() {
        let edge_space = c == ' ' && (i < leading || i >= chars.len() - trailing);
        match c {
            '\0' => out.push_str("\\00"),
            ',' | '=' | '+' | '<' | '>' | '#' | ';' | '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            _ if edge_space => out.push_str("\\ "),
            _ => out.push(c),
        }
    }
    out
}

/// An OID's dotted form ("2.5.4.5"); `None` if it is truncated.
fn dotted(oid: &[u8]) -> Option<String> {
    let mut values = Vec::new();
    let mut value = 0u64;
    for (i, &b) in oid.iter().enumerate() {
        value = value.checked_mul(128)? | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            values.push(value);
            value = 0;
        } else if i == oid.len() - 1 {
            return None;
        }
    }
    // The first value holds the first two arcs: 40 × X + Y (X at most 2).
    let first = *values.first()?;
    let x = (first / 40).min(2);
    let mut arcs = vec![x, first - x * 40];
    arcs.extend(&values[1..]);
    Some(
        arcs.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join("."),
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One DER element of `tag` at the start of `input`: (what follows, its content).
fn der(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&t, rest) = input.split_first()?;
    if t != tag {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let bytes = rest.get(..n)?;
        let len = bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, rest.get(n..)?)
    };
    Some((rest.get(len..)?, rest.get(..len)?))
}

/// The text of a DER string of the kinds Java prints as text: UTF8,
/// printable, IA5, T61 (as Latin-1) or BMP (UTF-16). Others are `None`.
fn any_string(input: &[u8]) -> Option<String> {
    let tag = *input.first()?;
    let (_, bytes) = der(input, tag)?;
    match tag {
        0x0c | 0x13 | 0x16 => Some(String::from_utf8_lossy(bytes).into_owned()),
        0x14 => Some(bytes.iter().map(|&b| char::from(b)).collect()),
        0x1e => {
            let units = bytes
                .chunks_exact(2)
                .map(|u| u16::from_be_bytes([u[0], u[1]]));
            Some(
                char::decode_utf16(units)
                    .map(|c| c.unwrap_or('\u{fffd}'))
                    .collect(),
            )
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};

    fn principal_of(subject: &[(DnType, &str)]) -> Option<String> {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        let mut dn = DistinguishedName::new();
        for (kind, value) in subject {
            dn.push(kind.clone(), *value);
        }
        params.distinguished_name = dn;
        let key = KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("certificate");
        super::principal(cert.der())
    }

    #[test]
    fn the_subject_is_written_as_rfc_2253_with_its_special_characters_escaped() {
        assert_eq!(
            principal_of(&[
                (DnType::CountryName, "NL"),
                (DnType::OrganizationName, "Acme, Inc."),
                (DnType::CommonName, " a+b=\"c\"<d>;e\\ "),
            ])
            .as_deref(),
            Some(r#"User:CN=\ a\+b\=\"c\"\<d\>\;e\\\ ,O=Acme\, Inc.,C=NL"#)
        );
        assert_eq!(
            principal_of(&[
                (DnType::CustomDnType(vec![2, 5, 4, 5]), "42"),
                (DnType::CommonName, "#app#1"),
            ])
            .as_deref(),
            Some(r"User:CN=\#app\#1,2.5.4.5=#0c023432")
        );
    }

    #[test]
    fn oids_and_edge_spaces_are_written_as_java_writes_them() {
        assert_eq!(
            super::dotted(&[0x55, 0x04, 0x05]).as_deref(),
            Some("2.5.4.5")
        );
        assert_eq!(
            super::dotted(&[0x88, 0x37, 0x01]).as_deref(),
            Some("2.999.1")
        );
        assert_eq!(super::dotted(&[0x55, 0x84]), None, "truncated");
        assert_eq!(super::escape("  a b  "), r"\ \ a b\ \ ");
        assert_eq!(super::escape("nul\0"), r"nul\00");
    }
}
