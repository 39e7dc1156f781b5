//! The Python Docker SDK (Debian's python3-docker) against `berth serve`: one script of
//! more than 40 calls across the API's groups (system, containers, exec, images,
//! networks, volumes), streamed logs and exec output among them, every answer checked.

mod common;
use common::api::*;
use common::engine::*;
use common::*;
use std::process::Command;

#[test]
fn python_sdk_script_of_forty_calls() {
    if !have_sdk() {
        return;
    }
    let e = Engine::new();
    let reg = Registry::start_in(&e.netns);
    let s = Serve::start(&e, &[]);
    let script = format!(
        r#"
import docker, io, tarfile, time, json
calls = 0
def call(what, f, *a, **k):
    global calls
    calls += 1
    try:
        return f(*a, **k)
    except Exception as e:
        raise SystemExit(f"call {{calls}} ({{what}}) failed: {{e!r}}")
def check(ok, what):
    if not ok:
        raise SystemExit(f"check failed: {{what}}")

c = docker.DockerClient(base_url="unix://{sock}", version="1.41")
api = c.api
REG = "{reg}"
# system
check(call("ping", c.ping) is True, "ping")
check(call("version", c.version)["ApiVersion"] == "1.41", "version")
check("Containers" in call("info", c.info), "info")
since = int(time.time()) - 1
# containers
ct = call("run -d", c.containers.run, "busybox", ["sh", "-c", "echo one; echo two >&2; sleep 300"],
          name="sdk1", detach=True, network_mode="none", labels={{"app": "sdk"}})
call("reload", ct.reload)
check(ct.status == "running", f"status {{ct.status}}")
check(call("get", c.containers.get, "sdk1").id == ct.id, "get")
check(len(call("list filtered", c.containers.list, filters={{"label": "app=sdk"}})) == 1, "list")
time.sleep(0.5)
check(call("logs", ct.logs, stdout=True, stderr=False) == b"one\n", "logs stdout")
check(call("logs stderr", ct.logs, stdout=False, stderr=True) == b"two\n", "logs stderr")
stream = call("logs stream", ct.logs, stream=True, follow=True)
first = next(stream)
check(first == b"one\n", f"streamed {{first!r}}")
stream.close()
r = call("exec_run", ct.exec_run, ["sh", "-c", "echo hi; exit 3"])
check(r.exit_code == 3 and r.output == b"hi\n", f"exec_run {{r}}")
r = call("exec_run demux", ct.exec_run, ["sh", "-c", "echo o; echo e >&2"], demux=True)
check(r.output == (b"o\n", b"e\n"), f"demux {{r.output}}")
r = call("exec_run stream", ct.exec_run, ["sh", "-c", "for i in 1 2 3; do echo $i; done"], stream=True)
check(b"".join(r.output) == b"1\n2\n3\n", "exec stream")
r = call("exec_run env workdir user", ct.exec_run, "sh -c 'echo $X $(pwd) $(id -u)'", environment=["X=7"], workdir="/tmp", user="65534")
check(r.output == b"7 /tmp 65534\n", f"exec opts {{r.output}}")
eid = call("exec_create", api.exec_create, ct.id, ["true"])["Id"]
call("exec_start", api.exec_start, eid)
check(call("exec_inspect", api.exec_inspect, eid)["ExitCode"] == 0, "exec inspect")
check(call("top", ct.top)["Processes"], "top")
st = call("stats", ct.stats, stream=False)
check(st["memory_stats"].get("usage", 0) > 0, "stats memory")
call("pause", ct.pause); call("reload", ct.reload)
check(ct.status == "paused", ct.status)
call("unpause", ct.unpause)
call("rename", ct.rename, "sdk1b"); call("reload", ct.reload)
check(ct.name == "sdk1b", ct.name)
call("update", ct.update, mem_limit="64m")
check(call("inspect", api.inspect_container, ct.id)["HostConfig"]["Memory"] == 64 << 20, "update")
ct.exec_run(["sh", "-c", "echo x > /added"])
diff = call("diff", ct.diff)
check({{"Path": "/added", "Kind": 1}} in diff, f"diff {{diff}}")
call("restart", ct.restart, timeout=0)
call("stop", ct.stop, timeout=0)
check(call("wait", ct.wait)["StatusCode"] == 137, "wait 137")
call("start", ct.start)
call("kill", ct.kill)
call("wait", ct.wait)
call("remove", ct.remove, force=True)
out = call("run attached", c.containers.run, "busybox", ["echo", "attached"], network_mode="none", remove=True)
check(out == b"attached\n", f"run attached {{out!r}}")
c2 = call("create", c.containers.create, "busybox", ["true"], network_mode="none")
call("start", c2.start); call("wait", c2.wait)
check(call("prune", c.containers.prune)["ContainersDeleted"] == [c2.id], "prune")
# events between then and now
evs = call("events", c.events, since=since, until=int(time.time()) + 1, decode=True)
kinds = {{e.get("status") for e in evs}}
check({{"create", "start", "die"}} <= kinds, f"events {{kinds}}")
check(call("df", c.df)["Images"], "df")
# images
imgs = call("images list", c.images.list)
check(any("busybox:latest" in i.tags for i in imgs), "images")
img = call("images get", c.images.get, "busybox")
call("tag", img.tag, f"{{REG}}/sdk/bb", "1")
for line in call("push", c.images.push, f"{{REG}}/sdk/bb", "1", stream=True, decode=True):
    check("error" not in line, f"push {{line}}")
call("remove image", c.images.remove, f"{{REG}}/sdk/bb:1")
pulled = call("pull", c.images.pull, f"{{REG}}/sdk/bb", tag="1")
check(pulled.id == img.id, "pull id")
hist = call("history", img.history)
check(len(hist) >= 1, "history")
# networks and volumes
net = call("network create", c.networks.create, "sdknet", labels={{"app": "sdk"}})
check(call("networks list", c.networks.list, names=["sdknet"])[0].id == net.id, "networks list")
nc = c.containers.run("busybox", ["sleep", "300"], name="sdk2", detach=True)
call("connect", net.connect, nc)
call("reload", net.reload)
check(nc.id in [x.id for x in net.containers], "connected")
call("disconnect", net.disconnect, nc)
nc.remove(force=True)
call("network remove", net.remove)
vol = call("volume create", c.volumes.create, "sdkvol", labels={{"app": "sdk"}})
check(call("volume get", c.volumes.get, "sdkvol").name == "sdkvol", "volume get")
check(any(v.name == "sdkvol" for v in call("volumes list", c.volumes.list)), "volumes list")
call("volume remove", vol.remove)
call("volumes prune", c.volumes.prune)
call("networks prune", c.networks.prune)
print(calls)
"#,
        sock = s.sock,
        reg = reg.addr
    );
    let o = Command::new("timeout")
        .args(["300", "/usr/bin/python3", "-c", &script])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let calls: usize = out.trim().parse().unwrap();
    eprintln!("MEASURED the SDK script made {calls} calls");
    assert!(calls >= 40, "{calls}");
    for id in e.ok(&["ps", "-aq"]).lines() {
        e.ok(&["rm", "-f", id]);
    }
}
