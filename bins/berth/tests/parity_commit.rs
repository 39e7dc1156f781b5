//! Issue 17 item 5 (docker parity): `commit` and `diff`, black-box. A commit's image holds
//! exactly what the container added, changed and deleted (overlay whiteouts and opaque
//! directories turned into OCI whiteouts), its config and history follow docker's.
//! Run as root: `scripts/in-netns.sh cargo nextest run -p berth --test parity_commit`.

mod common;
use common::engine::*;

/// A base image with two directory trees to delete (`/tree`) and to delete and make again
/// (`/tree2`): built by a commit, so it also checks a commit of a commit.
fn base(e: &Engine) {
    e.ok(&[
        "run",
        "--name",
        "c0",
        IMAGE,
        "sh",
        "-c",
        "mkdir -p /tree/a/b /tree2 && echo deep > /tree/a/b/f && echo k > /tree/k \
         && echo old > /tree2/old",
    ]);
    e.ok(&["commit", "c0", "base:1"]);
}

const CHANGES: &str = "echo new > /etc/added && echo changed >> /etc/passwd && rm /etc/group \
     && rm -rf /tree /tree2 && mkdir /tree2 && echo fresh > /tree2/only";

/// docker diff: A/C/D lines, sorted by path; a deleted and re-made directory is D (docker
/// 20.10's overlay driver) and its new contents A.
#[test]
fn item5_diff_lines() {
    let e = Eng::new();
    base(&e);
    assert_eq!(
        e.ok(&["diff", "c0"]),
        "A /tree\nA /tree/a\nA /tree/a/b\nA /tree/a/b/f\nA /tree/k\nA /tree2\nA /tree2/old\n"
    );
    e.ok(&["run", "--name", "c1", "base:1", "sh", "-c", CHANGES]);
    assert_eq!(
        e.ok(&["diff", "c1"]),
        "C /etc\nA /etc/added\nD /etc/group\nC /etc/passwd\nD /tree\nD /tree2\nA /tree2/only\n"
    );
    // A container that changed nothing has no lines (the runtime's /etc/hosts etc. are
    // not the container's changes).
    e.ok(&["run", "--name", "c2", IMAGE, "true"]);
    assert_eq!(e.ok(&["diff", "c2"]), "");
}

/// A run of the committed image sees exactly the container's changes.
#[test]
fn item5_commit_keeps_exactly_the_changes() {
    let e = Eng::new();
    base(&e);
    e.ok(&["run", "--name", "c1", "base:1", "sh", "-c", CHANGES]);
    let id = e.ok(&["commit", "c1", "snap:1"]);
    assert!(
        id.trim().starts_with("sha256:") && id.trim().len() == 71,
        "{id}"
    );
    let look = "cat /etc/added; tail -n1 /etc/passwd; ls /etc/group /tree 2>&1; ls /tree2; \
                cat /tree2/only; grep -c root /etc/passwd";
    let out = e.ok(&["run", "--rm", "snap:1", "sh", "-c", look]);
    assert_eq!(
        out,
        "new\nchanged\nls: /etc/group: No such file or directory\n\
         ls: /tree: No such file or directory\nonly\nfresh\n1\n",
    );
    // The base is untouched.
    let out = e.ok(&[
        "run",
        "--rm",
        "base:1",
        "cat",
        "/tree/a/b/f",
        "/tree2/old",
        "/etc/group",
    ]);
    assert!(out.starts_with("deep\nold\nroot:x:0:"), "{out}");
    // The image ID is the one inspect shows; one more layer than the base.
    let v: serde_json::Value =
        serde_json::from_str(&e.ok(&["image", "inspect", "snap:1"])).unwrap();
    assert_eq!(v[0]["Id"], id.trim());
    let b: serde_json::Value =
        serde_json::from_str(&e.ok(&["image", "inspect", "base:1"])).unwrap();
    assert_eq!(
        v[0]["RootFS"]["Layers"].as_array().unwrap().len(),
        b[0]["RootFS"]["Layers"].as_array().unwrap().len() + 1
    );
}

fn config_blob(e: &Engine, id: &str) -> serde_json::Value {
    let p = e
        .root()
        .join("blobs/sha256")
        .join(id.trim().trim_start_matches("sha256:"));
    serde_json::from_slice(&std::fs::read(&p).unwrap_or_else(|x| panic!("{p:?}: {x}"))).unwrap()
}

/// -c, -m and -a reach the image (Config, Comment, Author, history); the container's own
/// command, env and labels are kept as docker keeps them.
#[test]
fn item5_commit_change_message_author() {
    let e = Eng::new();
    e.ok(&[
        "run",
        "--name",
        "c1",
        "-e",
        "FOO=bar",
        "-l",
        "k=v",
        "-w",
        "/tmp",
        IMAGE,
        "sh",
        "-c",
        "echo hi > /tmp/x",
    ]);
    let id = e.ok(&[
        "commit",
        "-m",
        "a message",
        "-a",
        "Me <me@x>",
        "-c",
        r#"CMD ["cat", "x"]"#,
        "-c",
        "ENV ONE=1",
        "c1",
        "withcmd:latest",
    ]);
    let f = |t: &str| e.ok(&["image", "inspect", "-f", t, "withcmd"]);
    assert_eq!(f("{{json .Config.Cmd}}"), "[\"cat\",\"x\"]\n");
    assert_eq!(f("{{.Comment}}"), "a message\n");
    assert_eq!(f("{{.Author}}"), "Me <me@x>\n");
    assert_eq!(
        f("{{json .Config.Env}}"),
        "[\"PATH=/bin\",\"FOO=bar\",\"ONE=1\"]\n"
    );
    assert_eq!(f("{{.Config.WorkingDir}}"), "/tmp\n");
    assert_eq!(f("{{json .Config.Labels}}"), "{\"k\":\"v\"}\n");
    assert_eq!(e.ok(&["run", "--rm", "withcmd"]), "hi\n");
    let h = config_blob(&e, &id)["history"].clone();
    let last = h.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["comment"], "a message");
    assert_eq!(last["author"], "Me <me@x>");
    assert_eq!(last["created_by"], "sh -c echo hi > /tmp/x");
    // Without -c the container's command is the image's.
    e.ok(&["commit", "c1", "plain"]);
    let cmd: serde_json::Value =
        serde_json::from_str(&e.ok(&["image", "inspect", "-f", "{{json .Config.Cmd}}", "plain"]))
            .unwrap();
    assert_eq!(cmd, serde_json::json!(["sh", "-c", "echo hi > /tmp/x"]));
    // A bad -c line is an error naming it, and makes no image.
    let (_, err) = e.code(1, &["commit", "-c", "RUN true", "c1", "bad:1"]);
    assert!(err.contains("RUN is not a valid change command"), "{err}");
}

/// A running container is committed (paused meanwhile by default, or not with
/// --pause=false) and keeps running.
#[test]
fn item5_commit_running_container() {
    let e = Eng::new();
    e.ok(&[
        "run",
        "-d",
        "--name",
        "live",
        IMAGE,
        "sh",
        "-c",
        "echo up > /up; sleep 1000",
    ]);
    e.wait_for(10, "/up written", || {
        e.ok(&["diff", "live"]).contains("A /up").then_some(())
    });
    e.ok(&["commit", "live", "live:1"]);
    e.ok(&["commit", "--pause=false", "live", "live:2"]);
    let st = e.inspect("live")["State"].clone();
    assert_eq!(st["Status"], "running", "{st}");
    assert_eq!(st["Paused"], false);
    for t in ["live:1", "live:2"] {
        assert_eq!(e.ok(&["run", "--rm", t, "cat", "/up"]), "up\n");
    }
    e.ok(&["rm", "-f", "live"]);
}

/// docker's errors: an unknown container exits 1 ("No such container"); a bad reference
/// is refused before anything is made.
#[test]
fn item5_commit_errors() {
    let e = Eng::new();
    let (_, err) = e.code(1, &["commit", "nosuch", "x:1"]);
    assert!(err.contains("No such container: nosuch"), "{err}");
    let (_, err) = e.code(1, &["diff", "nosuch"]);
    assert!(err.contains("No such container: nosuch"), "{err}");
    e.ok(&["run", "--name", "c1", IMAGE, "touch", "/x"]);
    let before = e.ok(&["images", "-q"]);
    let (_, err) = e.code(1, &["commit", "c1", "bb:lat:est"]);
    assert!(err.contains("bb:lat:est"), "{err}");
    let (_, err) = e.code(1, &["commit", "c1", "Upper:1"]);
    assert!(err.contains("Upper:1"), "{err}");
    assert_eq!(e.ok(&["images", "-q"]), before);
}
