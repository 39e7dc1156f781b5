//! `berth serve` under test: the server on a socket in the engine's directory, curl and
//! Debian's docker CLI against it.

use super::engine::Engine;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Debian's docker CLI (docker.io 20.10), the client the issue names.
pub const DOCKER: &str = "/usr/bin/docker";

/// A running `berth serve` on a socket in the engine's directory; SIGTERM at drop.
pub struct Serve {
    pub child: Child,
    pub sock: String,
}

impl Serve {
    pub fn start(e: &Engine, extra: &[&str]) -> Serve {
        let sock = e.dir.path().join("api.sock").display().to_string();
        let host = format!("unix://{sock}");
        let mut args = vec!["serve", "-H", &host];
        args.extend_from_slice(extra);
        let child = e
            .cmd(&args)
            .stderr(Stdio::null())
            .spawn()
            .expect("berth serve");
        let t = Instant::now();
        while std::os::unix::net::UnixStream::connect(&sock).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "berth serve did not listen"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Serve { child, sock }
    }

    /// curl against the socket: (status, body).
    pub fn curl(&self, e: &Engine, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        let mut c = e.in_netns("curl");
        c.args(["-s", "-m", "30", "--unix-socket", &self.sock]);
        if method == "HEAD" {
            c.arg("-I");
        } else {
            c.args(["-X", method]);
        }
        c.args(["-w", "\n%{http_code}"]);
        if let Some(b) = body {
            c.args(["-H", "Content-Type: application/json", "-d", b]);
        }
        c.arg(format!("http://berth{path}"));
        let o = c.output().unwrap();
        let out = String::from_utf8_lossy(&o.stdout).to_string();
        let (body, code) = out.rsplit_once('\n').unwrap_or(("", &out));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    pub fn docker(&self, e: &Engine, args: &[&str]) -> Output {
        // A request the server never answers fails the test instead of hanging it.
        e.in_netns("timeout")
            .args(["60", DOCKER, "-H"])
            .arg(format!("unix://{}", self.sock))
            .args(args)
            .env("DOCKER_CONFIG", e.dir.path().join("docker-config"))
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    pub fn docker_ok(&self, e: &Engine, args: &[&str]) -> String {
        let o = self.docker(e, args);
        assert!(
            o.status.success(),
            "docker {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).to_string()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .stderr(Stdio::null())
            .status();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn have_docker() -> bool {
    if std::path::Path::new(DOCKER).exists() {
        return true;
    }
    eprintln!("skipped: {DOCKER} (Debian's docker.io) is not installed");
    false
}

/// Debian's python3-docker (the Docker SDK for Python), for Debian's python3.
pub fn have_sdk() -> bool {
    let ok = Command::new("/usr/bin/python3")
        .args(["-c", "import docker"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped: python3-docker is not installed");
    }
    ok
}
