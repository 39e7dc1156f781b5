//! Token auth against a real docker-registry: a small token server (this test) signs
//! RS256 JWTs with a test CA that the registry trusts (`auth.token.rootcertbundle`).
//! Anonymous clients get pull-only tokens; bob:pw gets pull+push.

mod common;
use base64::Engine as _;
use common::*;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

fn b64url(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn sign(key: &Path, input: &[u8]) -> Vec<u8> {
    let mut c = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl");
    c.stdin.take().unwrap().write_all(input).unwrap();
    let o = c.wait_with_output().unwrap();
    assert!(o.status.success());
    o.stdout
}

fn query_params(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| {
            let dec = |s: &str| {
                let mut out = Vec::new();
                let b = s.as_bytes();
                let mut i = 0;
                while i < b.len() {
                    if b[i] == b'%' && i + 2 < b.len() {
                        out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                        i += 3;
                    } else {
                        out.push(if b[i] == b'+' { b' ' } else { b[i] });
                        i += 1;
                    }
                }
                String::from_utf8(out).unwrap()
            };
            (dec(k), dec(v))
        })
        .collect()
}

/// Serves `GET /token`; returns its address and a log of (scopes, user) per request.
fn token_server(dir: &Path) -> (String, Arc<Mutex<Vec<String>>>) {
    let key = dir.join("ca.key");
    let st = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=berth-test-token",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(dir.join("ca.crt"))
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let der = Command::new("openssl")
        .args(["x509", "-outform", "der", "-in"])
        .arg(dir.join("ca.crt"))
        .output()
        .unwrap()
        .stdout;
    let x5c = base64::engine::general_purpose::STANDARD.encode(der);
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = log.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { break };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            if r.read_line(&mut line).is_err() {
                continue;
            }
            let mut auth = String::new();
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
                if h.to_ascii_lowercase().starts_with("authorization:") {
                    auth = h[14..].trim().to_string();
                }
            }
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            let q = path.split_once('?').map(|x| x.1).unwrap_or("");
            let params = query_params(q);
            let user = match auth.as_str() {
                "" => Some("anonymous"),
                "Basic Ym9iOnB3" => Some("bob"),
                _ => None,
            };
            let scopes: Vec<String> = params
                .iter()
                .filter(|(k, _)| k == "scope")
                .map(|(_, v)| v.clone())
                .collect();
            log2.lock()
                .unwrap()
                .push(format!("{} {}", user.unwrap_or("denied"), scopes.join(" ")));
            let Some(user) = user else {
                let _ = s.write_all(
                    b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                continue;
            };
            let service = params
                .iter()
                .find(|(k, _)| k == "service")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            let access: Vec<serde_json::Value> = scopes
                .iter()
                .flat_map(|s| s.split(' ').map(str::to_string).collect::<Vec<_>>())
                .filter_map(|s| {
                    let mut it = s.splitn(3, ':');
                    let (t, name, actions) = (it.next()?, it.next()?, it.next()?);
                    let actions: Vec<&str> = actions
                        .split(',')
                        .filter(|a| user == "bob" || *a == "pull")
                        .collect();
                    Some(serde_json::json!({"type": t, "name": name, "actions": actions}))
                })
                .collect();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [x5c]});
            let claims = serde_json::json!({"iss": "berth-test", "sub": user, "aud": service,
                "exp": now + 300, "nbf": now - 10, "iat": now, "jti": format!("{now}-{}", scopes.len()), "access": access});
            let input = format!(
                "{}.{}",
                b64url(header.to_string().as_bytes()),
                b64url(claims.to_string().as_bytes())
            );
            let jwt = format!("{input}.{}", b64url(&sign(&key, input.as_bytes())));
            let body = serde_json::json!({"token": jwt, "expires_in": 300}).to_string();
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (addr, log)
}

#[test]
fn token_auth_with_real_registry() {
    let t = tempfile::tempdir().unwrap();
    let (taddr, log) = token_server(t.path());
    let reg = Registry::start_with(Some(Auth::Token {
        realm: format!("http://{taddr}/token"),
        ca: t.path().join("ca.crt"),
    }));
    let a = Berth::new(&t.path().join("a"));
    let img = format!("{}/tok/bb:v1", reg.addr);
    let p = t.path().join("in.tar");
    std::fs::write(&p, docker_archive(&img, b"token")).unwrap();
    a.ok(&["load", "-i", p.to_str().unwrap()]);

    // Anonymous tokens carry pull only: push is refused.
    let err = a.fails(&["push", &img]);
    assert!(err.contains("authentication required"), "{err}");
    assert!(a
        .fails(&["login", "-u", "bob", "-p", "bad", &reg.addr])
        .contains("rejected the credentials"));
    a.ok(&["login", "-u", "bob", "-p", "pw", &reg.addr]);
    a.ok(&["push", &img]);

    // Anonymous pull with a pull-only token.
    let b = Berth::new(&t.path().join("b"));
    b.ok(&["pull", &img]);
    assert_eq!(b.inspect(&img)["Id"], a.inspect(&img)["Id"]);

    // Cross-repository mount asks for both scopes in one token.
    let other = format!("{}/tok/other:v1", reg.addr);
    a.ok(&["tag", &img, &other]);
    let o = a.run(&["push", &other]);
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("Mounted from other repository"), "{err}");

    let log = log.lock().unwrap().clone();
    assert!(
        log.iter().any(|l| l == "anonymous repository:tok/bb:pull"),
        "{log:#?}"
    );
    assert!(
        log.iter().any(|l| l == "bob repository:tok/bb:pull,push"),
        "{log:#?}"
    );
    assert!(
        log.iter()
            .any(|l| l == "bob repository:tok/other:pull,push repository:tok/bb:pull"),
        "{log:#?}"
    );
    assert!(log.iter().any(|l| l.starts_with("denied")), "{log:#?}");
}
