//! A faulty proxy in front of a real registry: 503s, connections cut mid-blob, and
//! corrupted blob bytes. Pulls must retry the first two and refuse the third.

mod common;
use common::*;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Flaky,
    Corrupt,
}

fn proxy(upstream: String, mode: Mode) -> (String, Arc<Mutex<Vec<String>>>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = log.clone();
    let seen: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(c) = c else { break };
            let (up, log, seen) = (upstream.clone(), log2.clone(), seen.clone());
            std::thread::spawn(move || serve(c, &up, mode, &log, &seen));
        }
    });
    (addr, log)
}

fn serve(
    mut c: TcpStream,
    up: &str,
    mode: Mode,
    log: &Mutex<Vec<String>>,
    seen: &Mutex<HashMap<String, u32>>,
) {
    let mut r = BufReader::new(c.try_clone().unwrap());
    let mut head = String::new();
    loop {
        let mut l = String::new();
        if r.read_line(&mut l).unwrap_or(0) == 0 {
            return;
        }
        if l == "\r\n" {
            break;
        }
        if !l.to_ascii_lowercase().starts_with("connection:") {
            head.push_str(&l);
        }
    }
    let first = head.lines().next().unwrap_or("").to_string();
    let path = first.split_whitespace().nth(1).unwrap_or("").to_string();
    let is_get = first.starts_with("GET ");
    let n = {
        let mut s = seen.lock().unwrap();
        let e = s.entry(first.clone()).or_insert(0);
        *e += 1;
        *e
    };
    let blob = is_get && path.contains("/blobs/sha256:");
    let manifest = is_get && path.contains("/manifests/");
    if mode == Mode::Flaky && n == 1 && (blob || manifest) {
        log.lock().unwrap().push(format!("503 {path}"));
        let _ = c.write_all(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        return;
    }
    let mut u = TcpStream::connect(up).unwrap();
    u.write_all(format!("{head}Connection: close\r\n\r\n").as_bytes())
        .unwrap();
    let mut resp = Vec::new();
    u.read_to_end(&mut resp).unwrap();
    let body_at = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .unwrap_or(resp.len());
    let body_len = resp.len() - body_at;
    if blob && body_len > 1000 {
        if mode == Mode::Flaky && n == 2 {
            log.lock().unwrap().push(format!("cut {path}"));
            let _ = c.write_all(&resp[..body_at + body_len / 2]);
            return; // connection closes mid-body
        }
        if mode == Mode::Corrupt {
            log.lock().unwrap().push(format!("corrupt {path}"));
            let i = body_at + body_len / 2;
            resp[i] ^= 0xff;
        }
    }
    let _ = c.write_all(&resp);
}

fn setup(t: &std::path::Path) -> (Registry, String, Berth) {
    let reg = Registry::start(None);
    let a = Berth::new(&t.join("a"));
    let img = format!("{}/px/bb:v1", reg.addr);
    let p = t.join("in.tar");
    std::fs::write(&p, docker_archive(&img, &random_bytes(200_000, 3))).unwrap();
    a.ok(&["load", "-i", p.to_str().unwrap()]);
    a.ok(&["push", &img]);
    let id = a.inspect(&img)["Id"].as_str().unwrap().to_string();
    (reg, id, a)
}

#[test]
fn pull_retries_503_and_cut_connections() {
    let t = tempfile::tempdir().unwrap();
    let (reg, id, _a) = setup(t.path());
    let (paddr, log) = proxy(reg.addr.clone(), Mode::Flaky);
    let b = Berth::new(&t.path().join("b"));
    let img = format!("{paddr}/px/bb:v1");
    b.ok(&["pull", &img]);
    assert_eq!(b.inspect(&img)["Id"], id.as_str());
    let log = log.lock().unwrap().clone();
    assert!(
        log.iter().filter(|l| l.starts_with("503")).count() >= 4,
        "{log:#?}"
    );
    assert!(log.iter().any(|l| l.starts_with("cut")), "{log:#?}");
    assert_blobs_verified(&b.root);
}

#[test]
fn corrupted_blob_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let (reg, _id, _a) = setup(t.path());
    let (paddr, log) = proxy(reg.addr.clone(), Mode::Corrupt);
    let b = Berth::new(&t.path().join("b"));
    let img = format!("{paddr}/px/bb:v1");
    let err = b.fails(&["pull", &img]);
    assert!(err.contains("digest mismatch"), "{err}");
    assert!(!log.lock().unwrap().is_empty());
    assert_blobs_verified(&b.root);
    assert!(b.run(&["inspect", &img]).status.code() == Some(1));
}
