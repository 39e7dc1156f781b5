//! `berth serve` under load and under bad input (issue 14, items 4 and 5): 100
//! concurrent create+start calls, a long `logs -f` that blocks nobody, size limits, and
//! a fuzz of request paths, headers and bodies after which the server still answers.

mod common;
use common::api::*;
use common::engine::*;
use std::process::Command;
use std::time::Instant;

fn python(script: &str) -> String {
    let o = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "python: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

#[test]
fn a_hundred_concurrent_creates_and_starts_while_a_log_follow_streams() {
    if !have_sdk() {
        return;
    }
    let e = Engine::new();
    let s = Serve::start(&e, &[]);
    e.ok(&[
        "run",
        "-d",
        "--name",
        "talker",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "while true; do echo tick; sleep 0.1; done",
    ]);
    let t = Instant::now();
    let out = python(&format!(
        r#"
import docker, threading, time
from concurrent.futures import ThreadPoolExecutor
sock = "unix://{sock}"
# A long logs -f on its own connection all along.
follow = docker.APIClient(base_url=sock, version="1.41")
ticks = []
def tail():
    for chunk in follow.logs("talker", stream=True, follow=True):
        ticks.append(chunk)
threading.Thread(target=tail, daemon=True).start()
def one(i):
    c = docker.APIClient(base_url=sock, version="1.41", timeout=120)
    r = c.create_container("busybox", ["sleep", "60"], name=f"par{{i}}",
                           host_config=c.create_host_config(network_mode="none"))
    c.start(r["Id"])
    return r["Id"]
with ThreadPoolExecutor(100) as ex:
    ids = list(ex.map(one, range(100)))
print(len(set(ids)), len(ticks))
"#,
        sock = s.sock
    ));
    eprintln!("MEASURED 100 concurrent create+start in {:?}", t.elapsed());
    let mut f = out.split_whitespace();
    assert_eq!(f.next(), Some("100"), "{out}");
    let ticks: usize = f.next().unwrap().parse().unwrap();
    assert!(ticks > 0, "the log follow streamed meanwhile: {out}");
    // Every one runs, under its own name, seen by the berth CLI.
    let names = e.ok(&["ps", "--format", "{{.Names}}", "--filter", "name=par"]);
    let mut names: Vec<&str> = names.lines().collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 100, "{names:?}");
    let ids = e.ok(&["ps", "-aq"]);
    let ids: Vec<&str> = ids.lines().collect();
    let mut rm = vec!["rm", "-f"];
    rm.extend(ids);
    e.ok(&rm);
}

#[test]
fn limits_and_a_fuzz_of_bad_requests_never_kill_the_server() {
    let e = Engine::new();
    let mut s = Serve::start(&e, &[]);
    let secs: u64 = std::env::var("BERTH_API_FUZZ_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let out = python(&format!(
        r#"
import socket, random, json, time, sys
SOCK = {sock:?}
rnd = random.Random(14)
def req(raw, timeout=10):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(SOCK)
    data = b""
    try:
        try:
            # No half-close: hyper takes a read EOF before the answer for a client gone.
            s.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            # The server answered (413, 400) before it read it all: the answer is there.
            pass
        while True:
            d = s.recv(65536)
            if not d: break
            data += d
            if len(data) > 1 << 20: break
    except (BrokenPipeError, ConnectionResetError, socket.timeout):
        pass
    finally:
        s.close()
    return data
def status(data):
    try: return int(data.split(b" ", 2)[1])
    except Exception: return 0
def http(method, path, body=b"", headers=""):
    return req(f"{{method}} {{path}} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{{headers}}Content-Length: {{len(body)}}\r\n\r\n".encode() + body)
def alive():
    return status(http("GET", "/_ping")) == 200

# Size limits: a body over the limit is refused, a huge header too; the server lives.
big = http("POST", "/containers/create", b"{{" + b" " * (5 << 20) + b"}}", "Content-Type: application/json\r\n")
print("big-body", status(big))
hdr = http("GET", "/_ping", b"", "X-Big: " + "a" * (1 << 20) + "\r\n")
print("big-header", status(hdr))
assert alive()
# Malformed JSON where JSON is expected: 400.
bad = [status(http("POST", p, b, "Content-Type: application/json\r\n")) for p, b in [
    ("/containers/create", b"{{not json"),
    ("/containers/create", b"[1,2,3]"),
    ("/containers/create", b'{{"Image": 7}}'),
    ("/networks/create", b"\xff\xfe"),
    ("/volumes/create", b'{{"Name": {{}}}}'),
]]
print("bad-json", *bad)

paths = ["/_ping", "/version", "/info", "/containers/json", "/containers/create",
         "/containers/x/json", "/containers/x/start", "/containers/x/logs", "/containers/x/wait",
         "/containers/x/attach", "/containers/x/exec", "/exec/x/json", "/images/json",
         "/images/x/json", "/networks", "/networks/create", "/volumes", "/volumes/create",
         "/v1.41/containers/json", "/v9.99/info", "/v1.x/info"]
methods = ["GET", "POST", "DELETE", "PUT", "HEAD", "PATCH", "OPTIONS", "G\x00T", ""]
junk = ["%00", "%ff%fe", "..%2f..%2f", "?" + "a=" * 50, "?filters=%7B", "?filters={{\"x\":1}}",
        "/" * 30, "\u00e9", "?all=maybe", "?t=-5", "?signal=SIGNOPE", "?h=70000&w=-1"]
bodies = [b"", b"{{", b"null", b"{{}}", b'{{"Cmd": "x"}}', b'{{"HostConfig": {{"Memory": -1}}}}',
          bytes(rnd.getrandbits(8) for _ in range(300)), b'{{"Image":"busybox","Cmd":[' + b'"a",' * 2000 + b'"b"]}}']
counts = {{}}
fives = []
t0 = time.time(); n = 0
while time.time() - t0 < {secs}:
    m = rnd.choice(methods)
    p = rnd.choice(paths)
    if rnd.random() < 0.6: p += rnd.choice(junk)
    b = rnd.choice(bodies) if rnd.random() < 0.7 else b""
    kind = rnd.random()
    if kind < 0.7:
        raw = f"{{m}} {{p}} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {{len(b)}}\r\n\r\n".encode("utf-8", "surrogateescape") + b
    elif kind < 0.8:
        # A lying Content-Length, then a hang-up.
        raw = f"POST {{p}} HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n".encode() + b
    elif kind < 0.9:
        raw = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 2000)))
    else:
        raw = f"{{m}} {{p}} HTTP/1.1\r\n".encode() + b"X: " + bytes(rnd.getrandbits(8) for _ in range(100)) + b"\r\n\r\n"
    st = status(req(raw, timeout=1))
    counts[st // 100] = counts.get(st // 100, 0) + 1
    if st >= 500 and len(fives) < 5: fives.append(raw[:160])
    n += 1
    if n % 200 == 0:
        assert alive(), f"dead after {{n}} requests"
assert alive()
print("fuzz", n, json.dumps(counts, sort_keys=True))
for f in fives: print("5xx", f)
"#,
        sock = s.sock,
        secs = secs
    ));
    eprintln!("MEASURED {out}");
    let line = |k: &str| {
        out.lines()
            .find(|l| l.starts_with(k))
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(line("big-body"), "big-body 413", "{out}");
    // hyper answers an oversized header with 431, or closes the connection.
    assert!(
        ["big-header 431", "big-header 0"].contains(&line("big-header").as_str()),
        "{out}"
    );
    assert_eq!(line("bad-json"), "bad-json 400 400 400 400 400", "{out}");
    assert!(line("fuzz").starts_with("fuzz "), "{out}");
    // Bad input is the client's error (4xx), never the server's.
    assert!(!out.contains("5xx "), "{out}");
    // The server is the same process, still serving.
    assert!(s.child.try_wait().unwrap().is_none(), "berth serve exited");
    assert_eq!(s.curl(&e, "GET", "/_ping", None).0, 200);
    // A fuzzed body may be a valid create: those containers go.
    for id in e.ok(&["ps", "-aq"]).lines() {
        e.ok(&["rm", "-f", id]);
    }
}

/// SIGTERM with a stream open (`docker events`, `logs -f`): requests in flight get a
/// short grace, then the server exits; its containers run on under their monitors.
#[test]
fn sigterm_with_a_stream_open_exits_and_leaves_the_containers() {
    let e = Engine::new();
    let mut s = Serve::start(&e, &[]);
    e.ok(&[
        "run",
        "-d",
        "--name",
        "stays",
        "--network",
        "none",
        "busybox",
        "sleep",
        "300",
    ]);
    let mut follow = e
        .in_netns("curl")
        .args(["-s", "-N", "--unix-socket", &s.sock])
        .arg("http://berth/containers/stays/logs?follow=1&stdout=1")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let t = Instant::now();
    Command::new("kill")
        .args(["-TERM", &s.child.id().to_string()])
        .status()
        .unwrap();
    let st = e.wait_for(15, "berth serve to exit", || s.child.try_wait().unwrap());
    eprintln!("MEASURED exit {:?} after SIGTERM in {:?}", st, t.elapsed());
    assert!(st.success(), "{st:?}");
    assert!(t.elapsed().as_secs() < 8, "{:?}", t.elapsed());
    assert!(
        !std::path::Path::new(&s.sock).exists(),
        "the socket is removed"
    );
    let _ = follow.kill();
    let _ = follow.wait();
    assert_eq!(e.inspect("stays")["State"]["Running"], true);
    e.ok(&["rm", "-f", "stays"]);
}

/// openssl: a CA, a certificate it signs for `cn` (`ext`: its extensions), and the key.
fn issue(dir: &std::path::Path, ca: &str, name: &str, ext: &str) {
    let sh = format!(
        "set -e; cd {d}
         openssl req -new -newkey rsa:2048 -nodes -keyout {name}-key.pem -subj /CN={name} -out {name}.csr 2>/dev/null
         printf '%s\n' '{ext}' > {name}.ext
         openssl x509 -req -in {name}.csr -CA {ca}.pem -CAkey {ca}-key.pem -CAcreateserial -days 2 -extfile {name}.ext -out {name}.pem 2>/dev/null",
        d = dir.display()
    );
    assert!(Command::new("sh")
        .args(["-c", &sh])
        .status()
        .unwrap()
        .success());
}

fn make_ca(dir: &std::path::Path, ca: &str) {
    let sh = format!(
        "set -e; cd {d}; openssl req -x509 -newkey rsa:2048 -nodes -keyout {ca}-key.pem -subj /CN={ca} -days 2 -out {ca}.pem 2>/dev/null",
        d = dir.display()
    );
    assert!(Command::new("sh")
        .args(["-c", &sh])
        .status()
        .unwrap()
        .success());
}

/// Item 4: TCP only with mutual TLS, as dockerd's --tlsverify: the docker CLI with a
/// client certificate the CA signed gets in; without one, or with another CA's, the
/// handshake fails; tcp without --tlsverify is refused.
#[test]
fn tcp_needs_mutual_tls() {
    let e = Engine::new();
    let o = e.run(&["serve", "-H", "tcp://127.0.0.1:2376"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--tlsverify"),
        "{o:?}"
    );
    let d = e.dir.path().join("pki");
    std::fs::create_dir_all(&d).unwrap();
    make_ca(&d, "ca");
    make_ca(&d, "other");
    issue(
        &d,
        "ca",
        "server",
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth",
    );
    issue(&d, "ca", "client", "extendedKeyUsage=clientAuth");
    issue(&d, "other", "stranger", "extendedKeyUsage=clientAuth");
    let port = common::free_port();
    let host = format!("tcp://127.0.0.1:{port}");
    let p = |f: &str| d.join(f).display().to_string();
    let mut child = e
        .cmd(&[
            "serve",
            "-H",
            &host,
            "--tlsverify",
            "--tlscacert",
            &p("ca.pem"),
            "--tlscert",
            &p("server.pem"),
            "--tlskey",
            &p("server-key.pem"),
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let docker = |cert: &str| {
        e.in_netns("timeout")
            .args(["30", DOCKER, "--tlsverify", "--tlscacert"])
            .arg(p("ca.pem"))
            .arg("--tlscert")
            .arg(p(&format!("{cert}.pem")))
            .arg("--tlskey")
            .arg(p(&format!("{cert}-key.pem")))
            .args(["-H", &host, "version", "--format", "{{.Server.APIVersion}}"])
            .env("DOCKER_CONFIG", e.dir.path().join("docker-config"))
            .output()
            .unwrap()
    };
    let o = e.wait_for(10, "the TLS listener", || {
        let o = docker("client");
        o.status.success().then_some(o)
    });
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "1.41");
    let o = docker("stranger");
    assert!(!o.status.success(), "another CA's client got in: {o:?}");
    // No client certificate at all: curl trusts the server but shows nothing.
    let o = e
        .in_netns("curl")
        .args(["-s", "-m", "10", "--cacert", &p("ca.pem")])
        .arg(format!("https://127.0.0.1:{port}/_ping"))
        .output()
        .unwrap();
    assert!(!o.status.success(), "{o:?}");
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let st = e.wait_for(10, "the server to exit", || child.try_wait().unwrap());
    assert!(st.success(), "{st:?}");
}
