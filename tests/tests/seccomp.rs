//! Issue 4: linux.seccomp through the runtime, black box. A denied syscall
//! gets its errno, KILL kills, NOTIFY delivers the listener fd to a socket
//! the test listens on, with the container process state.

use berth_tests::*;
use serde_json::json;
use std::io::IoSliceMut;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixListener;

fn profile(action: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut rule = json!({"names": ["mkdir", "mkdirat"], "action": action});
    if let (Some(r), Some(e)) = (rule.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            r.insert(k.clone(), v.clone());
        }
    }
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [rule],
    })
}

#[test]
fn denied_syscall_gets_its_errno() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    // errno 42 is ENOMSG: nothing else would make mkdir fail that way (the
    // rootfs is read-only, which would give EROFS).
    b.set(
        "/linux/seccomp",
        profile("SCMP_ACT_ERRNO", json!({"errnoRet": 42})),
    );
    b.sh("mkdir /tmp/x; echo rc=$?");
    let o = rt.run(&unique("scerrno"), &b);
    o.ok();
    assert!(
        o.stderr.contains("No message of desired type") && o.stdout.contains("rc=1"),
        "mkdir did not fail with ENOMSG:{o}"
    );
}

#[test]
fn kill_process_action_kills_with_sigsys() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.set(
        "/linux/seccomp",
        profile("SCMP_ACT_KILL_PROCESS", json!({})),
    );
    b.args(&["/bin/mkdir", "/tmp/x"]);
    let o = rt.run(&unique("sckill"), &b);
    o.code_is(128 + 31);
}

/// Receive one message with one fd on a connected unix stream.
fn recv_with_fd(sock: &std::os::unix::net::UnixStream) -> (Vec<u8>, OwnedFd) {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut anc = RecvAncillaryBuffer::new(&mut space);
    let mut buf = vec![0u8; 64 * 1024];
    let r = rustix::net::recvmsg(
        sock.as_fd(),
        &mut [IoSliceMut::new(&mut buf)],
        &mut anc,
        RecvFlags::CMSG_CLOEXEC,
    )
    .expect("recvmsg from the runtime");
    let mut fd = None;
    for m in anc.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = m {
            fd = fds.next();
        }
    }
    buf.truncate(r.bytes);
    (buf, fd.expect("an fd came with the message"))
}

#[test]
fn notify_delivers_the_listener_fd_and_state_to_listener_path() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seccomp.sock");
    let listener = UnixListener::bind(&path).unwrap();
    b.set("/linux/seccomp", {
        let mut p = profile("SCMP_ACT_NOTIFY", json!({}));
        p["listenerPath"] = json!(path.to_str().unwrap());
        p["listenerMetadata"] = json!("berth-test-metadata");
        p
    });
    b.sh("mkdir /tmp/x; echo rc=$?");
    let id = unique("scnotify");
    // The agent: take the fd, check the state, answer the one notification
    // with ENOMSG.
    let agent = std::thread::spawn(move || {
        let (sock, _) = listener.accept().unwrap();
        let (payload, fd) = recv_with_fd(&sock);
        let n = berth_sys::seccomp::notif_recv(fd.as_fd()).expect("a notification");
        berth_sys::seccomp::notif_respond(fd.as_fd(), n.id, 0, 42, false).unwrap();
        (String::from_utf8_lossy(&payload).into_owned(), n.pid)
    });
    let o = rt.run(&id, &b);
    // If the runtime never connected, this unblocks the agent (which then
    // fails on a message without an fd) instead of hanging the test.
    let _ = std::os::unix::net::UnixStream::connect(&path);
    let (payload, pid) = agent.join().expect("the agent got the listener fd");
    o.ok();
    assert!(
        o.stderr.contains("No message of desired type"),
        "agent's answer not seen:{o}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&payload).unwrap_or_else(|e| panic!("{e}: {payload}"));
    assert_eq!(v["fds"], json!(["seccompFd"]), "{payload}");
    assert_eq!(v["metadata"], "berth-test-metadata", "{payload}");
    assert_eq!(v["state"]["id"], id.as_str(), "{payload}");
    assert!(v["pid"].as_i64().unwrap_or(0) > 0, "{payload}");
    assert!(pid > 0);
}

#[test]
fn log_action_logs_and_allows() {
    use std::io::{Read, Seek, SeekFrom};
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.set("/linux/seccomp", profile("SCMP_ACT_LOG", json!({})));
    let dir = format!("/tmp/logged-{}", std::process::id());
    b.set("/root/readonly", json!(false));
    b.sh(&format!("mkdir {dir} && echo made"));
    // Records from now on only.
    let fd = rustix::fs::open(
        "/dev/kmsg",
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .expect("open /dev/kmsg");
    let mut kmsg = std::fs::File::from(fd);
    kmsg.seek(SeekFrom::End(0)).unwrap();
    let o = rt.run(&unique("sclog"), &b);
    o.ok();
    assert!(o.stdout.contains("made"), "LOG must allow the syscall:{o}");
    let mut seen = Vec::new();
    let mut rec = vec![0u8; 8192];
    // Each read returns one record; EAGAIN when there are no more.
    while let Ok(n) = kmsg.read(&mut rec) {
        if n == 0 {
            break;
        }
        seen.push(String::from_utf8_lossy(&rec[..n]).into_owned());
    }
    assert!(
        seen.iter()
            .any(|l| l.contains("type=1326") && l.contains("comm=\"mkdir\"")),
        "no seccomp audit record for mkdir in /dev/kmsg: {seen:?}"
    );
}
