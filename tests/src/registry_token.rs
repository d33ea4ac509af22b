//! A token server for docker-registry's `auth: token:` mode, as Docker's registry token
//! specification describes it: a client the registry turned away with a `Bearer` challenge asks
//! the realm for a token (`GET ?service=…&scope=…` with basic credentials, or, as containerd's
//! client tries first, an OAuth2 password grant `POST`), then shows the token to the registry.
//!
//! The token is a JWT signed ES256 with a key whose self-signed certificate is the registry's
//! `rootcertbundle`; the header carries that certificate (`x5c`), which is how docker-registry
//! 2.8 finds the key (it also accepts a `kid` equal to the key's libtrust fingerprint, which would
//! mean computing that fingerprint here). The registry then checks `iss`, `aud` (a string, in 2.8),
//! `exp`/`nbf` and that `access` grants what the request needs.
//!
//! Only the user given to [`TokenServer::start`] gets a token; anyone else is answered 401, so a
//! pull that succeeds proves the client sent its credentials to the realm. Every request is kept
//! ([`TokenServer::requests`]).
//!
//! The key and certificate are made with the `openssl` command ([`crate::openssl`]; the caller
//! checks it is there); signing uses `ring`, already the TLS crypto of our `ctr`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

use crate::openssl;

/// The `iss` of every token, and the registry's `issuer`.
pub const ISSUER: &str = "rcontainerd-test-token-issuer";
/// The `aud` of every token, and the registry's `service`.
pub const SERVICE: &str = "rcontainerd-test-registry";

/// One request the token server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// `GET` or `POST`.
    pub method: String,
    /// The user the request named (basic credentials or the form's `username`), right password or not.
    pub user: Option<String>,
    /// `scope` values, each `repository:<name>:<actions>`.
    pub scopes: Vec<String>,
    /// The HTTP status answered: 200 with a token, 401 without.
    pub status: u16,
}

struct Issuer {
    key: EcdsaKeyPair,
    /// The certificate, DER in standard base64, for the JWT header's `x5c`.
    x5c: String,
    user: String,
    password: String,
    rng: SystemRandom,
}

/// Serves tokens on 127.0.0.1 until dropped.
pub struct TokenServer {
    addr: SocketAddr,
    dir: tempfile::TempDir,
    requests: Arc<Mutex<Vec<TokenRequest>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TokenServer {
    /// Makes a signing key and its certificate, and starts serving tokens to `user` with
    /// `password`.
    pub fn start(user: &str, password: &str) -> TokenServer {
        let dir = tempfile::Builder::new()
            .prefix("rcd-token-")
            .tempdir()
            .expect("temporary directory");
        openssl::run(
            dir.path(),
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "key.pem",
                "-out",
                "cert.pem",
                "-days",
                "2",
                "-subj",
                &format!("/CN={ISSUER}"),
            ],
        );
        openssl::run(
            dir.path(),
            &[
                "pkcs8", "-topk8", "-nocrypt", "-in", "key.pem", "-outform", "DER", "-out",
                "key.der",
            ],
        );
        openssl::run(
            dir.path(),
            &[
                "x509", "-in", "cert.pem", "-outform", "DER", "-out", "cert.der",
            ],
        );
        let read = |name: &str| std::fs::read(dir.path().join(name)).expect("openssl's output");
        let rng = SystemRandom::new();
        let key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &read("key.der"), &rng)
                .expect("a P-256 key in PKCS#8");
        let issuer = Arc::new(Issuer {
            key,
            x5c: base64::engine::general_purpose::STANDARD.encode(read("cert.der")),
            user: user.to_string(),
            password: password.to_string(),
            rng,
        });
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the token server");
        let addr = listener.local_addr().expect("its address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (requests, stop) = (requests.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (issuer, requests) = (issuer.clone(), requests.clone());
                    std::thread::spawn(move || serve(stream, &issuer, &requests));
                }
            })
        };
        TokenServer {
            addr,
            dir,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    /// Where clients ask for tokens (the challenge's `realm`).
    pub fn realm(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    /// The certificate of the signing key, PEM: the registry's `rootcertbundle`.
    pub fn root_cert_bundle(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// The `auth:` section of a docker-registry config trusting this server.
    pub fn registry_auth_yaml(&self) -> String {
        format!(
            "auth:\n  token:\n    realm: {}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    \
             rootcertbundle: {}\n",
            self.realm(),
            self.root_cert_bundle().display()
        )
    }

    /// Every request answered so far, in order.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.requests.lock().expect("requests lock").clone()
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Answers one request, then closes the connection.
fn serve(stream: TcpStream, issuer: &Issuer, requests: &Mutex<Vec<TokenRequest>>) {
    // A client that connects and says nothing must not keep a thread forever.
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Some(request) = read_request(&stream) else {
        return;
    };
    let (status, body) = answer(&request, issuer, requests);
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Bad Request",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if status == 401 {
        head.push_str("WWW-Authenticate: Basic realm=\"rcontainerd-test\"\r\n");
    }
    head.push_str("\r\n");
    let mut stream = stream;
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body.as_bytes());
}

struct HttpRequest {
    method: String,
    path: String,
    /// Query parameters, then (POST) form fields; a name may repeat (`scope`).
    params: Vec<(String, String)>,
    headers: HashMap<String, String>,
}

fn read_request(stream: &TcpStream) -> Option<HttpRequest> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut words = line.split_whitespace();
    let method = words.next()?.to_string();
    let target = words.next()?.to_string();
    let mut headers = HashMap::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 {
            return None;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut params = parse_form(query);
    if method == "POST" {
        let len: usize = headers.get("content-length")?.parse().ok()?;
        let mut body = vec![0; len];
        reader.read_exact(&mut body).ok()?;
        params.extend(parse_form(&String::from_utf8_lossy(&body)));
    }
    Some(HttpRequest {
        method,
        path: path.to_string(),
        params,
        headers,
    })
}

/// `(status, JSON body)` for a token request, which is recorded.
fn answer(
    request: &HttpRequest,
    issuer: &Issuer,
    requests: &Mutex<Vec<TokenRequest>>,
) -> (u16, String) {
    if request.path != "/token" {
        return (404, r#"{"error":"not found"}"#.to_string());
    }
    let param = |name: &'static str| {
        request
            .params
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    // GET carries basic credentials; containerd's OAuth2 POST a password grant, its
    // scopes space-separated.
    let (credentials, scopes) = if request.method == "POST" {
        let credentials = match (param("grant_type").next(), param("username").next()) {
            (Some("password"), Some(user)) => Some((
                user.to_string(),
                param("password").next().unwrap_or("").to_string(),
            )),
            _ => None,
        };
        let scopes: Vec<String> = param("scope")
            .flat_map(str::split_whitespace)
            .map(str::to_string)
            .collect();
        (credentials, scopes)
    } else {
        let credentials = request
            .headers
            .get("authorization")
            .and_then(|h| h.strip_prefix("Basic "))
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                s.split_once(':')
                    .map(|(u, p)| (u.to_string(), p.to_string()))
            });
        (credentials, param("scope").map(str::to_string).collect())
    };
    let service_ok = param("service").next() == Some(SERVICE);
    let allowed = credentials
        .as_ref()
        .is_some_and(|(u, p)| *u == issuer.user && *p == issuer.password);
    let status = match (service_ok, allowed) {
        (false, _) => 400,
        (true, false) => 401,
        (true, true) => 200,
    };
    requests.lock().expect("requests lock").push(TokenRequest {
        method: request.method.clone(),
        user: credentials.map(|(u, _)| u),
        scopes: scopes.clone(),
        status,
    });
    match status {
        200 => {
            let token = issuer.token(&scopes);
            let body = serde_json::json!({
                "token": token,
                "access_token": token,
                "expires_in": 300,
            });
            (200, body.to_string())
        }
        400 => (400, r#"{"error":"unknown service"}"#.to_string()),
        _ => (401, r#"{"error":"bad credentials"}"#.to_string()),
    }
}

impl Issuer {
    /// A JWT granting the user every action each scope asks for.
    fn token(&self, scopes: &[String]) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs();
        let access: Vec<serde_json::Value> = scopes
            .iter()
            .filter_map(|scope| {
                // `repository:<name>:<actions>`; the name may hold a `:` (a port).
                let (kind, rest) = scope.split_once(':')?;
                let (name, actions) = rest.rsplit_once(':')?;
                Some(serde_json::json!({
                    "type": kind,
                    "name": name,
                    "actions": actions.split(',').collect::<Vec<_>>(),
                }))
            })
            .collect();
        let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [self.x5c]});
        let claims = serde_json::json!({
            "iss": ISSUER,
            "sub": self.user,
            "aud": SERVICE,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": format!("{now}-{}", scopes.join(" ")),
            "access": access,
        });
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let signed = format!(
            "{}.{}",
            url.encode(header.to_string()),
            url.encode(claims.to_string())
        );
        let signature = self
            .key
            .sign(&self.rng, signed.as_bytes())
            .expect("ES256 signing");
        format!("{signed}.{}", url.encode(signature.as_ref()))
    }
}

/// `application/x-www-form-urlencoded` pairs (a query string or a form body).
fn parse_form(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push((high * 16 + low) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_as_go_encodes_them() {
        assert_eq!(
            parse_form("scope=repository%3Atest%2Fimg%3Apull+repository%3Ax%3Apull&service=s"),
            [
                (
                    "scope".to_string(),
                    "repository:test/img:pull repository:x:pull".to_string()
                ),
                ("service".to_string(), "s".to_string()),
            ]
        );
        assert_eq!(percent_decode("a%2"), "a%2");
    }
}
