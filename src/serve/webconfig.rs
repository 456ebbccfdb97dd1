//! `--web.config.file`: the Prometheus exporter-toolkit web configuration (the file
//! node_exporter and ebpf_exporter read): TLS server settings and basic-auth users with bcrypt
//! hashes. Relative file names are relative to the web config file's directory. Every problem
//! is a config error (exit 2) naming the file and the key.
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use tokio_rustls::rustls;

use crate::error::config_err;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    tls_server_config: Option<TlsFile>,
    #[serde(default)]
    basic_auth_users: Option<BTreeMap<String, String>>,
    #[serde(default)]
    http_server_config: Option<HttpFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    #[serde(default)]
    cert_file: Option<PathBuf>,
    #[serde(default)]
    key_file: Option<PathBuf>,
    #[serde(default)]
    client_ca_file: Option<PathBuf>,
    #[serde(default)]
    client_auth_type: Option<String>,
    #[serde(default)]
    min_version: Option<String>,
    #[serde(default)]
    max_version: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpFile {
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
}

/// The web configuration in force.
#[derive(Default)]
pub struct WebConfig {
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub auth: Option<BasicAuth>,
    /// Extra response headers (`http_server_config.headers`).
    pub headers: Vec<(String, String)>,
}

impl WebConfig {
    /// Reads and checks `path`: certificates and keys are loaded now, bcrypt hashes parsed.
    pub fn load(path: &Path) -> anyhow::Result<WebConfig> {
        let shown = path.display();
        let text = std::fs::read_to_string(path)
            .map_err(|e| config_err(format!("--web.config.file {shown}: cannot read it: {e}")))?;
        let file: File = if text.trim().is_empty() {
            File::default()
        } else {
            serde_yaml::from_str(&text).map_err(|e| config_err(format!("--web.config.file {shown}: {e}")))?
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        let tls = file.tls_server_config.map(|t| tls_config(&t, dir, &shown.to_string())).transpose()?;
        let auth = match file.basic_auth_users {
            Some(users) if !users.is_empty() => Some(BasicAuth::new(users, &shown.to_string())?),
            _ => None,
        };
        let mut headers = Vec::new();
        for (k, v) in file.http_server_config.and_then(|h| h.headers).unwrap_or_default() {
            let ok_name = !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            let ok_value = v.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b));
            if !ok_name || !ok_value {
                return Err(config_err(format!(
                    "--web.config.file {shown}: http_server_config.headers: {k:?} is not a valid header"
                )));
            }
            headers.push((k, v));
        }
        Ok(WebConfig { tls: tls.map(Arc::new), auth, headers })
    }
}

fn resolve(dir: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        dir.join(p)
    }
}

fn tls_config(t: &TlsFile, dir: &Path, shown: &str) -> anyhow::Result<rustls::ServerConfig> {
    let key_err =
        |key: &str, msg: String| config_err(format!("--web.config.file {shown}: tls_server_config.{key}: {msg}"));
    let (Some(cert_file), Some(key_file)) = (&t.cert_file, &t.key_file) else {
        return Err(key_err("cert_file", "cert_file and key_file are both needed for TLS".into()));
    };
    let cert_path = resolve(dir, cert_file);
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| key_err("cert_file", format!("{}: {e}", cert_path.display())))?;
    if certs.is_empty() {
        return Err(key_err("cert_file", format!("{}: no certificate in it", cert_path.display())));
    }
    let key_path = resolve(dir, key_file);
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .map_err(|e| key_err("key_file", format!("{}: {e}", key_path.display())))?;
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = {
        let parse = |k: &str, v: &Option<String>, default: u8| -> anyhow::Result<u8> {
            match v.as_deref() {
                None | Some("") => Ok(default),
                Some("TLS12") => Ok(12),
                Some("TLS13") => Ok(13),
                Some(other) => Err(key_err(k, format!("{other:?}: ebpfx supports TLS12 and TLS13"))),
            }
        };
        let min = parse("min_version", &t.min_version, 12)?;
        let max = parse("max_version", &t.max_version, 13)?;
        if min > max {
            return Err(key_err("min_version", "is above max_version".into()));
        }
        let mut v = Vec::new();
        if min <= 12 {
            v.push(&rustls::version::TLS12);
        }
        if max >= 13 {
            v.push(&rustls::version::TLS13);
        }
        v
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| key_err("min_version", e.to_string()))?;
    let auth_type = t.client_auth_type.as_deref().unwrap_or("");
    let verifier = match (auth_type, &t.client_ca_file) {
        ("" | "NoClientCert", None) => None,
        ("" | "NoClientCert", Some(_)) if auth_type.is_empty() => {
            // exporter-toolkit's default with a CA file: verify client certificates.
            Some(true)
        }
        ("NoClientCert", Some(_)) => None,
        ("RequireAndVerifyClientCert", _) => Some(true),
        ("VerifyClientCertIfGiven", _) => Some(false),
        ("RequestClientCert" | "RequireAnyClientCert", _) => {
            return Err(key_err(
                "client_auth_type",
                format!("{auth_type}: client certificates that are not verified are not supported; use RequireAndVerifyClientCert or VerifyClientCertIfGiven"),
            ))
        }
        (other, _) => {
            return Err(key_err(
                "client_auth_type",
                format!("{other:?}: expected NoClientCert, RequireAndVerifyClientCert or VerifyClientCertIfGiven"),
            ))
        }
    };
    let builder = match verifier {
        None => builder.with_no_client_auth(),
        Some(required) => {
            let Some(ca) = &t.client_ca_file else {
                return Err(key_err("client_ca_file", format!("needed by client_auth_type {auth_type}")));
            };
            let ca_path = resolve(dir, ca);
            let mut roots = rustls::RootCertStore::empty();
            let cas = CertificateDer::pem_file_iter(&ca_path)
                .and_then(|i| i.collect::<Result<Vec<_>, _>>())
                .map_err(|e| key_err("client_ca_file", format!("{}: {e}", ca_path.display())))?;
            for c in cas {
                roots.add(c).map_err(|e| key_err("client_ca_file", format!("{}: {e}", ca_path.display())))?;
            }
            if roots.is_empty() {
                return Err(key_err("client_ca_file", format!("{}: no certificate in it", ca_path.display())));
            }
            let v = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let v = if required { v } else { v.allow_unauthenticated() };
            builder.with_client_cert_verifier(v.build().map_err(|e| key_err("client_ca_file", e.to_string()))?)
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| key_err("key_file", format!("does not fit cert_file: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Basic-auth users and their bcrypt hashes. Successful checks are remembered (by a digest of
/// user, password and hash, never the password) so that a scrape every second does not cost
/// a bcrypt each time; the memory is bounded.
pub struct BasicAuth {
    users: HashMap<String, String>,
    /// A hash of nothing anyone sends, checked for unknown users: the same cost as a known one.
    dummy: String,
    good: Mutex<std::collections::HashSet<[u8; 32]>>,
}

/// Remembered successful logins at most (then forgotten all at once).
const GOOD_MAX: usize = 256;

impl BasicAuth {
    fn new(users: BTreeMap<String, String>, shown: &str) -> anyhow::Result<BasicAuth> {
        for (user, hash) in &users {
            if hash.parse::<bcrypt::HashParts>().is_err() {
                return Err(config_err(format!(
                    "--web.config.file {shown}: basic_auth_users.{user}: not a bcrypt hash (expected $2y$...)"
                )));
            }
        }
        let cost = users.values().filter_map(|h| h.parse::<bcrypt::HashParts>().ok()).map(|p| p.get_cost()).max();
        let dummy = bcrypt::hash(format!("{:?}", std::time::SystemTime::now()), cost.unwrap_or(bcrypt::DEFAULT_COST))
            .map_err(|e| config_err(format!("--web.config.file {shown}: basic_auth_users: {e}")))?;
        Ok(BasicAuth { users: users.into_iter().collect(), dummy, good: Mutex::new(Default::default()) })
    }

    fn digest(user: &str, password: &str, hash: &str) -> [u8; 32] {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        for part in [user, password, hash] {
            ctx.update(&(part.len() as u64).to_le_bytes());
            ctx.update(part.as_bytes());
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        out
    }

    /// Whether the `Authorization` header value admits the request. Runs bcrypt (slow, on
    /// purpose) unless this user and password were checked before.
    pub fn check(&self, header: Option<&[u8]>) -> bool {
        let Some((user, password)) = header.and_then(parse_basic) else { return false };
        // An unknown user costs a bcrypt too, so timing does not tell users apart.
        let known = self.users.get(&user);
        let hash = known.map(String::as_str).unwrap_or(&self.dummy);
        let key = Self::digest(&user, &password, hash);
        if known.is_some() && self.good.lock().map(|g| g.contains(&key)).unwrap_or(false) {
            return true;
        }
        let ok = bcrypt::verify(&password, hash).unwrap_or(false) && known.is_some();
        if ok {
            if let Ok(mut g) = self.good.lock() {
                if g.len() >= GOOD_MAX {
                    g.clear();
                }
                g.insert(key);
            }
        }
        ok
    }
}

/// `Basic base64(user:password)` → (user, password).
fn parse_basic(header: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(header).ok()?;
    let (scheme, rest) = text.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64_decode(rest.trim())?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (u, p) = decoded.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// Standard base64 with padding (RFC 4648), as HTTP basic auth uses.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes = s.trim_end_matches('=').as_bytes();
    if s.len() % 4 != 0 || s.len() - bytes.len() > 2 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= val(*c)? << (18 - 6 * i);
        }
        let b = n.to_be_bytes();
        match chunk.len() {
            4 => out.extend_from_slice(&b[1..4]),
            3 => out.extend_from_slice(&b[1..3]),
            2 => out.push(b[1]),
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_header() {
        assert_eq!(parse_basic(b"Basic dXNlcjpwYSc6c3M="), Some(("user".into(), "pa':ss".into())));
        assert_eq!(parse_basic(b"Basic dTpw"), Some(("u".into(), "p".into())));
        assert_eq!(parse_basic(b"Bearer dTpw"), None);
        assert_eq!(parse_basic(b"Basic !!!!"), None);
        assert_eq!(parse_basic(b"Basic dTp"), None);
    }

    #[test]
    fn users_checked_by_bcrypt_and_bad_files_named() {
        let dir = tempfile::tempdir().expect("dir");
        let hash = bcrypt::hash("secret", 4).expect("hash");
        let path = dir.path().join("web.yml");
        std::fs::write(&path, format!("basic_auth_users:\n  alice: '{hash}'\n")).expect("write");
        let web = WebConfig::load(&path).expect("loads");
        let auth = web.auth.expect("auth");
        assert!(auth.check(Some(b"Basic YWxpY2U6c2VjcmV0")));
        assert!(auth.check(Some(b"Basic YWxpY2U6c2VjcmV0")));
        assert!(!auth.check(Some(b"Basic YWxpY2U6d3Jvbmc=")));
        assert!(!auth.check(None));
        std::fs::write(&path, "basic_auth_users:\n  bob: plain\n").expect("write");
        let err = WebConfig::load(&path).err().expect("refused");
        assert!(format!("{err}").contains("basic_auth_users.bob") && crate::error::exit_code(&err) == 2, "{err}");
        std::fs::write(&path, "tls_server_config:\n  cert_file: nope.crt\n  key_file: nope.key\n").expect("write");
        let err = WebConfig::load(&path).err().expect("refused");
        assert!(
            format!("{err}").contains("tls_server_config.cert_file") && format!("{err}").contains("nope.crt"),
            "{err}"
        );
        std::fs::write(&path, "tls_config: {}\n").expect("write");
        let err = WebConfig::load(&path).err().expect("refused");
        assert!(format!("{err}").contains("tls_config"), "{err}");
    }
}
