//! Issue 6, "tests show": the monitor's policies driven through the `berth` CLI, as a user
//! would: restart after a crash and the on-failure:N limit, a health check flipping to
//! unhealthy and --health-on-failure=restart replacing the container, --init reaping
//! zombies (counted), logs surviving the monitor.
//! Run as root: `cargo test -p berth --test engine_scenarios`.

mod common;
use common::engine::*;
use common::Registry;

fn fmt(e: &Engine, c: &str, f: &str) -> String {
    let o = e.run(&["inspect", "--type", "container", "--format", f, c]);
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn restart_on_failure_n_then_stays_exited() {
    let e = Engine::new();
    e.ok(&[
        "run",
        "-d",
        "--name",
        "crash",
        "--restart",
        "on-failure:3",
        IMAGE,
        "sh",
        "-c",
        "echo run; exit 2",
    ]);
    e.wait_for(20, "three restarts then exited", || {
        (fmt(
            &e,
            "crash",
            "{{.State.Status}} {{.RestartCount}} {{.State.ExitCode}}",
        ) == "exited 3 2")
            .then_some(())
    });
    // 1 run + 3 restarts, each logged; and no fourth restart afterwards.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(fmt(&e, "crash", "{{.RestartCount}}"), "3");
    assert_eq!(e.ok(&["logs", "crash"]), "run\n".repeat(4));
    let p = fmt(
        &e,
        "crash",
        "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}",
    );
    assert_eq!(p, "on-failure:3");
}

#[test]
fn restart_always_after_a_crash_and_not_after_stop() {
    let e = Engine::new();
    e.ok(&[
        "run",
        "-d",
        "--name",
        "always",
        "--restart",
        "always",
        IMAGE,
        "sh",
        "-c",
        "sleep 0.2; kill -9 $$",
    ]);
    e.wait_for(20, "two restarts", || {
        (fmt(&e, "always", "{{.RestartCount}}")
            .parse::<u32>()
            .unwrap_or(0)
            >= 2)
            .then_some(())
    });
    e.ok(&["stop", "-t", "1", "always"]);
    let n = fmt(&e, "always", "{{.RestartCount}}");
    assert_eq!(fmt(&e, "always", "{{.State.Status}}"), "exited");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(
        fmt(&e, "always", "{{.RestartCount}}"),
        n,
        "restarted after stop"
    );
    assert_eq!(fmt(&e, "always", "{{.State.Status}}"), "exited");
}

#[test]
fn health_turns_unhealthy_and_restart_on_unhealthy_replaces_it() {
    let e = Engine::new();
    // Healthy while /tmp/ok exists; the container removes it after a second.
    e.ok(&[
        "run",
        "-d",
        "--name",
        "hc",
        "--health-cmd",
        "test -f /tmp/ok",
        "--health-interval",
        "300ms",
        "--health-retries",
        "2",
        IMAGE,
        "sh",
        "-c",
        "touch /tmp/ok; sleep 1; rm /tmp/ok; exec sleep 60",
    ]);
    e.wait_for(10, "healthy", || {
        (fmt(&e, "hc", "{{.State.Health.Status}}") == "healthy").then_some(())
    });
    assert!(e.ok(&["ps"]).contains("(healthy)"));
    e.wait_for(10, "unhealthy", || {
        (fmt(&e, "hc", "{{.State.Health.Status}}") == "unhealthy").then_some(())
    });
    assert!(
        fmt(&e, "hc", "{{.State.Health.FailingStreak}}")
            .parse::<u32>()
            .unwrap()
            >= 2
    );
    // No policy: an unhealthy container keeps running, as docker's.
    assert_eq!(
        fmt(&e, "hc", "{{.State.Status}} {{.RestartCount}}"),
        "running 0"
    );

    e.ok(&[
        "run",
        "-d",
        "--name",
        "rs",
        "--health-cmd",
        "test -f /tmp/ok",
        "--health-interval",
        "300ms",
        "--health-retries",
        "2",
        "--health-on-failure",
        "restart",
        IMAGE,
        "sh",
        "-c",
        "touch /tmp/ok; sleep 1; rm /tmp/ok; exec sleep 60",
    ]);
    let pid0 = fmt(&e, "rs", "{{.State.Pid}}");
    e.wait_for(15, "a restart because of health", || {
        (fmt(&e, "rs", "{{.RestartCount}}")
            .parse::<u32>()
            .unwrap_or(0)
            >= 1)
            .then_some(())
    });
    e.wait_for(10, "running again with a new process", || {
        let s = fmt(&e, "rs", "{{.State.Status}} {{.State.Pid}}");
        (s.starts_with("running ") && !s.ends_with(&format!(" {pid0}"))).then_some(())
    });
    let ev = e.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        "0s",
        "--filter",
        "container=rs",
    ]);
    assert!(ev.contains("health_status: unhealthy"), "{ev}");
}

/// Five orphans whose parent exits; pid 1 is `sleep` (never reaps) unless --init.
const ZOMBIE_MAKER: &str = "for i in 1 2 3 4 5; do (sleep 0.2 &); done; exec sleep 60";

fn zombies(e: &Engine, c: &str) -> usize {
    e.ok(&["exec", c, "sh", "-c", "ps -o stat | grep -c Z || true"])
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn init_reaps_zombies_counted() {
    let e = Engine::new();
    e.ok(&[
        "run",
        "-d",
        "--name",
        "noinit",
        IMAGE,
        "sh",
        "-c",
        ZOMBIE_MAKER,
    ]);
    e.ok(&[
        "run",
        "-d",
        "--name",
        "withinit",
        "--init",
        IMAGE,
        "sh",
        "-c",
        ZOMBIE_MAKER,
    ]);
    e.wait_for(10, "5 zombies without --init", || {
        (zombies(&e, "noinit") == 5).then_some(())
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(zombies(&e, "withinit"), 0);
    assert_eq!(
        e.ok(&[
            "exec",
            "withinit",
            "sh",
            "-c",
            "cat /proc/1/cmdline | tr '\\0' ' '"
        ]),
        format!("/dev/init -- sh -c {ZOMBIE_MAKER} ")
    );
    // --init forwards stop's SIGTERM to the command: it dies of it (143), not after -t.
    let t = std::time::Instant::now();
    e.ok(&["stop", "-t", "10", "withinit"]);
    assert!(t.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(fmt(&e, "withinit", "{{.State.ExitCode}}"), "143");
}

/// `run` of an image that is not in the store pulls it from the registry (here Debian's
/// docker-registry on 127.0.0.1, fed by `berth push` from another root), as docker does.
#[test]
fn run_pulls_a_missing_image_from_the_local_registry() {
    let src = Engine::new();
    // In the engines' network namespace, where their 127.0.0.1 is.
    let reg = Registry::start_in(&src.netns);
    let image = format!("{}/engine/busybox:1", reg.addr);
    src.ok(&["push", IMAGE, &image]);
    let e = Engine::empty_sharing_netns(&src);
    let o = e.run(&["run", "--rm", &image, "echo", "pulled"]);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    );
    assert!(o.status.success(), "{out}\n{err}");
    assert_eq!(out, "pulled\n", "stderr: {err}");
    assert!(err.contains("Unable to find image"), "{err}");
    // Now it is local: no pull the second time.
    let (out, err) = e.code(0, &["run", "--rm", &image, "echo", "again"]);
    assert_eq!(out, "again\n");
    assert!(!err.contains("Unable to find image"), "{err}");
}
