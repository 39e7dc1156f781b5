//! berth-cri-check: speaks the CRI (runtime.v1) to containerd's socket as the kubelet
//! does, with one runtime handler, and prints every step as PASS or FAIL (issue 15,
//! item 1). scripts/cri-check.sh starts containerd in a throwaway network namespace
//! and runs this inside the same namespace (the streaming server listens on its lo).
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::security_profile::ProfileType;
use k8s_cri::v1::*;
use tokio::net::UnixStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tonic::transport::{Channel, Endpoint, Uri};

#[derive(Parser)]
#[command(about = "CRI conformance steps against containerd, for one runtime handler")]
struct Args {
    /// containerd's gRPC socket
    #[arg(long)]
    socket: PathBuf,
    /// the runtime handler (RuntimeClass handler) every pod runs with
    #[arg(long)]
    handler: String,
    /// the image the containers run (a busybox rootfs)
    #[arg(long)]
    image: String,
    /// the sandbox (pause) image containerd is configured with
    #[arg(long)]
    pause_image: String,
    /// cgroup parent of the pods (cgroupfs path, e.g. /berth-cri-test)
    #[arg(long)]
    cgroup_parent: String,
    /// where the pods' logs go
    #[arg(long)]
    log_dir: PathBuf,
    /// containerd's state directory (shim state is checked there after removal)
    #[arg(long)]
    state_dir: PathBuf,
    /// the runtime's --root as configured for the handler (Root option)
    #[arg(long)]
    runtime_root: PathBuf,
    /// the handler's runtime binary (its `events --stats` is compared with the CRI's stats)
    #[arg(long)]
    runtime_bin: PathBuf,
    /// a handler whose BinaryName does not exist: its pod must fail, naming it (item 5)
    #[arg(long, requires = "missing_binary")]
    missing_handler: Option<String>,
    /// the BinaryName of --missing-handler
    #[arg(long)]
    missing_binary: Option<String>,
    /// instead of the steps: N rounds of RunPodSandbox + CreateContainer + StartContainer,
    /// then StopPodSandbox + RemovePodSandbox, for each of --bench-handlers in turn
    #[arg(long)]
    bench: Option<usize>,
    /// where the bench's timing wrappers log each runtime call (timing-HANDLER.log:
    /// nanoseconds and arguments a line)
    #[arg(long)]
    timing_dir: Option<PathBuf>,
    /// the handlers the bench compares (comma-separated)
    #[arg(long, value_delimiter = ',', default_value = "runc,berth")]
    bench_handlers: Vec<String>,
    /// stop and remove every pod and report nothing (the script's cleanup after a failure)
    #[arg(long)]
    remove_all: bool,
}

type Rt = RuntimeServiceClient<Channel>;

/// Ends at SIGTERM (StopContainer), as a well-behaved pid 1 does.
const SLEEP: &[&str] = &["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"];

struct Checker {
    rt: Rt,
    img: ImageServiceClient<Channel>,
    args: Args,
    failed: usize,
    passed: usize,
    uid: String,
}

/// What the teardown must find gone: cgroups, mounts, netns, shim state.
#[derive(Default)]
struct Traces {
    ids: Vec<String>,
    cgroups: Vec<String>,
    netns: Vec<String>,
}

impl Checker {
    async fn step<T, F: Future<Output = Result<T>>>(&mut self, name: &str, f: F) -> Option<T> {
        let t = Instant::now();
        let r = tokio::time::timeout(Duration::from_secs(60), f)
            .await
            .unwrap_or_else(|_| Err(anyhow!("timed out after 60 s")));
        let ms = t.elapsed().as_millis();
        match r {
            Ok(v) => {
                self.passed += 1;
                println!("PASS  {name}  ({ms} ms)");
                Some(v)
            }
            Err(e) => {
                self.failed += 1;
                println!("FAIL  {name}  ({ms} ms): {e:#}");
                None
            }
        }
    }

    fn skip(&mut self, name: &str, why: &str) {
        self.failed += 1;
        println!("FAIL  {name}: not run, {why}");
    }

    fn pod_config(&self, name: &str, host_network: bool, privileged: bool) -> PodSandboxConfig {
        let uid = format!("{}-{name}", self.uid);
        let ns = NamespaceOption {
            network: if host_network {
                NamespaceMode::Node
            } else {
                NamespaceMode::Pod
            } as i32,
            pid: NamespaceMode::Container as i32,
            ipc: NamespaceMode::Pod as i32,
            ..Default::default()
        };
        PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: name.into(),
                uid: uid.clone(),
                namespace: "berth-cri-check".into(),
                attempt: 0,
            }),
            // a host-network pod has the node's UTS namespace and hostname
            hostname: if host_network {
                String::new()
            } else {
                name.into()
            },
            log_directory: self.args.log_dir.join(&uid).display().to_string(),
            port_mappings: if host_network {
                vec![]
            } else {
                vec![PortMapping {
                    protocol: Protocol::Tcp as i32,
                    container_port: 8080,
                    host_port: 18080,
                    host_ip: String::new(),
                }]
            },
            linux: Some(LinuxPodSandboxConfig {
                // cgroupfs driver: the kubelet would pass its pod cgroup; ours is removed
                // by scripts/cri-check.sh.
                cgroup_parent: format!("{}/pod-{uid}", self.args.cgroup_parent),
                security_context: Some(LinuxSandboxSecurityContext {
                    namespace_options: Some(ns),
                    privileged,
                    seccomp: Some(SecurityProfile {
                        profile_type: ProfileType::RuntimeDefault as i32,
                        localhost_ref: String::new(),
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    async fn run_pod(&mut self, cfg: &PodSandboxConfig) -> Result<String> {
        let r = self
            .rt
            .run_pod_sandbox(RunPodSandboxRequest {
                config: Some(cfg.clone()),
                runtime_handler: self.args.handler.clone(),
            })
            .await?
            .into_inner();
        let st = self.pod_status(&r.pod_sandbox_id).await?;
        let s = st.status.context("no status")?;
        ensure!(
            s.state == PodSandboxState::SandboxReady as i32,
            "pod {} is not ready: state {}",
            r.pod_sandbox_id,
            s.state
        );
        let info = verbose_info(&st.info)?;
        let handler = info["runtimeHandler"].as_str().unwrap_or("");
        ensure!(
            handler == self.args.handler,
            "pod {} runs with handler {handler:?}, not {:?}",
            r.pod_sandbox_id,
            self.args.handler
        );
        Ok(r.pod_sandbox_id)
    }

    async fn pod_status(&mut self, id: &str) -> Result<PodSandboxStatusResponse> {
        Ok(self
            .rt
            .pod_sandbox_status(PodSandboxStatusRequest {
                pod_sandbox_id: id.into(),
                verbose: true,
            })
            .await?
            .into_inner())
    }

    async fn container_status(&mut self, id: &str) -> Result<ContainerStatusResponse> {
        Ok(self
            .rt
            .container_status(ContainerStatusRequest {
                container_id: id.into(),
                verbose: true,
            })
            .await?
            .into_inner())
    }

    fn container_config(
        &self,
        name: &str,
        cmd: &[&str],
        linux: LinuxContainerConfig,
    ) -> ContainerConfig {
        ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: name.into(),
                attempt: 0,
            }),
            image: Some(ImageSpec {
                image: self.args.image.clone(),
                ..Default::default()
            }),
            command: cmd.iter().map(|s| s.to_string()).collect(),
            log_path: format!("{name}.log"),
            linux: Some(linux),
            ..Default::default()
        }
    }

    async fn create_start(
        &mut self,
        pod: &str,
        pod_cfg: &PodSandboxConfig,
        name: &str,
        cmd: &[&str],
        linux: LinuxContainerConfig,
    ) -> Result<String> {
        let cfg = self.container_config(name, cmd, linux);
        self.create_start_cfg(pod, pod_cfg, cfg).await
    }

    async fn create_start_cfg(
        &mut self,
        pod: &str,
        pod_cfg: &PodSandboxConfig,
        cfg: ContainerConfig,
    ) -> Result<String> {
        let name = cfg
            .metadata
            .as_ref()
            .map(|m| m.name.clone())
            .unwrap_or_default();
        let id = self
            .rt
            .create_container(CreateContainerRequest {
                pod_sandbox_id: pod.into(),
                config: Some(cfg),
                sandbox_config: Some(pod_cfg.clone()),
            })
            .await
            .with_context(|| format!("create container {name}"))?
            .into_inner()
            .container_id;
        self.rt
            .start_container(StartContainerRequest {
                container_id: id.clone(),
            })
            .await
            .with_context(|| format!("start container {name} ({id})"))?;
        let st = self
            .container_status(&id)
            .await?
            .status
            .context("no status")?;
        ensure!(
            st.state == ContainerState::ContainerRunning as i32
                || st.state == ContainerState::ContainerExited as i32,
            "container {name} ({id}) is in state {} after start",
            st.state
        );
        Ok(id)
    }

    async fn exec(&mut self, id: &str, cmd: &[&str]) -> Result<ExecSyncResponse> {
        Ok(self
            .rt
            .exec_sync(ExecSyncRequest {
                container_id: id.into(),
                cmd: cmd.iter().map(|s| s.to_string()).collect(),
                timeout: 20,
            })
            .await
            .with_context(|| format!("exec {cmd:?} in {id}"))?
            .into_inner())
    }

    /// ExecSync that must exit 0; its stdout.
    async fn exec_ok(&mut self, id: &str, cmd: &[&str]) -> Result<String> {
        let r = self.exec(id, cmd).await?;
        ensure!(
            r.exit_code == 0,
            "exec {cmd:?} in {id} exited {}: {}",
            r.exit_code,
            String::from_utf8_lossy(&r.stderr).trim()
        );
        Ok(String::from_utf8_lossy(&r.stdout).into_owned())
    }

    /// A field of the container's init (pid 1 in its own pid namespace) from /proc/1/status.
    async fn init_status(&mut self, id: &str, field: &str) -> Result<String> {
        let s = self.exec_ok(id, &["cat", "/proc/1/status"]).await?;
        status_field(&s, field).with_context(|| format!("no {field} in /proc/1/status of {id}"))
    }

    /// Records what a container leaves on the host while it exists.
    async fn trace_container(&mut self, id: &str, t: &mut Traces) -> Result<()> {
        let st = self.container_status(id).await?;
        let info = verbose_info(&st.info)?;
        let cg = info["runtimeSpec"]["linux"]["cgroupsPath"]
            .as_str()
            .with_context(|| format!("no cgroupsPath in the spec of {id}"))?;
        t.ids.push(id.into());
        t.cgroups.push(cg.into());
        Ok(())
    }

    async fn trace_pod(&mut self, id: &str, t: &mut Traces) -> Result<()> {
        let st = self.pod_status(id).await?;
        let info = verbose_info(&st.info)?;
        let spec = &info["runtimeSpec"];
        if let Some(cg) = spec["linux"]["cgroupsPath"].as_str() {
            t.cgroups.push(cg.into());
        }
        for ns in spec["linux"]["namespaces"].as_array().into_iter().flatten() {
            if ns["type"] == "network" {
                if let Some(p) = ns["path"].as_str() {
                    t.netns.push(p.into());
                }
            }
        }
        t.ids.push(id.into());
        Ok(())
    }

    async fn cgroup_file(&self, cgroup: &str, ctl: &str, file: &str) -> Result<String> {
        let p = Path::new("/sys/fs/cgroup")
            .join(ctl)
            .join(cgroup.trim_start_matches('/'))
            .join(file);
        Ok(std::fs::read_to_string(&p)
            .with_context(|| format!("read {}", p.display()))?
            .trim()
            .to_string())
    }

    async fn teardown(&mut self, pod: &str, containers: &[String], t: &Traces) -> Result<()> {
        for c in containers {
            self.rt
                .stop_container(StopContainerRequest {
                    container_id: c.clone(),
                    timeout: 1,
                })
                .await
                .with_context(|| format!("stop container {c}"))?;
            let st = self
                .container_status(c)
                .await?
                .status
                .context("no status")?;
            ensure!(
                st.state == ContainerState::ContainerExited as i32,
                "container {c} is in state {} after stop",
                st.state
            );
            // The runtime's kill delivered SIGTERM: the containers that trap it exit 0;
            // busybox httpd as pid 1 ignores it and is killed after the grace period.
            let name = st.metadata.map(|m| m.name).unwrap_or_default();
            let want = match name.as_str() {
                "web" => Some(137),
                "oom" => None,
                _ => Some(0),
            };
            if let Some(want) = want {
                ensure!(
                    st.exit_code == want,
                    "container {name} ({c}) exited {} after StopContainer, not {want}",
                    st.exit_code
                );
            }
            self.rt
                .remove_container(RemoveContainerRequest {
                    container_id: c.clone(),
                })
                .await
                .with_context(|| format!("remove container {c}"))?;
        }
        self.rt
            .stop_pod_sandbox(StopPodSandboxRequest {
                pod_sandbox_id: pod.into(),
            })
            .await
            .with_context(|| format!("stop pod {pod}"))?;
        self.rt
            .remove_pod_sandbox(RemovePodSandboxRequest {
                pod_sandbox_id: pod.into(),
            })
            .await
            .with_context(|| format!("remove pod {pod}"))?;
        let left = self
            .rt
            .list_containers(ListContainersRequest {
                filter: Some(ContainerFilter {
                    pod_sandbox_id: pod.into(),
                    ..Default::default()
                }),
            })
            .await?
            .into_inner()
            .containers;
        ensure!(
            left.is_empty(),
            "containers of pod {pod} still listed: {left:?}"
        );
        let mut found = vec![];
        leftovers(&self.args, t, &mut found)?;
        ensure!(found.is_empty(), "left behind: {}", found.join("; "));
        Ok(())
    }
}

fn leftovers(args: &Args, t: &Traces, found: &mut Vec<String>) -> Result<()> {
    // cgroups, in every v1 hierarchy and the unified one.
    for ent in std::fs::read_dir("/sys/fs/cgroup")? {
        let h = ent?.path();
        for cg in &t.cgroups {
            let p = h.join(cg.trim_start_matches('/'));
            if p.exists() {
                found.push(format!("cgroup {}", p.display()));
            }
        }
    }
    // mounts: rootfs, shm, the pinned netns.
    let mi = std::fs::read_to_string("/proc/self/mountinfo")?;
    for line in mi.lines() {
        if t.ids.iter().any(|id| line.contains(id.as_str()))
            || t.netns.iter().any(|n| line.contains(n.as_str()))
        {
            found.push(format!("mount {line}"));
        }
    }
    for n in &t.netns {
        if Path::new(n).exists() {
            found.push(format!("netns {n}"));
        }
    }
    // shim and runtime state, shim processes.
    for id in &t.ids {
        for p in [
            args.state_dir
                .join("io.containerd.runtime.v2.task/k8s.io")
                .join(id),
            args.runtime_root.join("k8s.io").join(id),
            args.runtime_root.join(id),
        ] {
            if p.exists() {
                found.push(format!("state {}", p.display()));
            }
        }
    }
    for ent in std::fs::read_dir("/proc")? {
        let ent = ent?;
        let Ok(cmd) = std::fs::read(ent.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if t.ids.iter().any(|id| cmd.contains(id.as_str())) {
            found.push(format!(
                "process {} {cmd}",
                ent.file_name().to_string_lossy()
            ));
        }
    }
    let veths = veths()?;
    if !veths.is_empty() {
        found.push(format!("veth {}", veths.join(",")));
    }
    Ok(())
}

/// The veths of this network namespace (the one containerd and its CNI plugins run in).
fn veths() -> Result<Vec<String>> {
    let o = std::process::Command::new("ip")
        .args(["-o", "link", "show", "type", "veth"])
        .output()
        .context("run ip link")?;
    ensure!(o.status.success(), "ip link show type veth failed");
    Ok(String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.split(':').nth(1).map(|s| s.trim().to_string()))
        .collect())
}

fn verbose_info(info: &HashMap<String, String>) -> Result<serde_json::Value> {
    let s = info.get("info").context("no verbose info")?;
    serde_json::from_str(s).context("verbose info is not JSON")
}

fn status_field(status: &str, field: &str) -> Option<String> {
    status.lines().find_map(|l| {
        l.strip_prefix(field)
            .and_then(|r| r.strip_prefix(':'))
            .map(|v| v.trim().to_string())
    })
}

fn linux(
    sc: LinuxContainerSecurityContext,
    res: Option<LinuxContainerResources>,
) -> LinuxContainerConfig {
    LinuxContainerConfig {
        resources: res,
        security_context: Some(sc),
    }
}

/// The security context the kubelet sends for a plain container: its own pid
/// namespace, the pod's network and IPC, seccomp RuntimeDefault.
fn sec_default() -> LinuxContainerSecurityContext {
    LinuxContainerSecurityContext {
        namespace_options: Some(NamespaceOption {
            network: NamespaceMode::Pod as i32,
            pid: NamespaceMode::Container as i32,
            ipc: NamespaceMode::Pod as i32,
            ..Default::default()
        }),
        seccomp: Some(SecurityProfile {
            profile_type: ProfileType::RuntimeDefault as i32,
            localhost_ref: String::new(),
        }),
        // the kubelet's defaults for procMount: Default (empty when privileged)
        masked_paths: [
            "/proc/asound",
            "/proc/acpi",
            "/proc/kcore",
            "/proc/keys",
            "/proc/latency_stats",
            "/proc/timer_list",
            "/proc/timer_stats",
            "/proc/sched_debug",
            "/proc/scsi",
            "/sys/firmware",
        ]
        .map(String::from)
        .to_vec(),
        readonly_paths: [
            "/proc/bus",
            "/proc/fs",
            "/proc/irq",
            "/proc/sys",
            "/proc/sysrq-trigger",
        ]
        .map(String::from)
        .to_vec(),
        ..Default::default()
    }
}

fn sec_host_net() -> LinuxContainerSecurityContext {
    let mut s = sec_default();
    s.namespace_options.as_mut().unwrap().network = NamespaceMode::Node as i32;
    s
}

/// A streaming Exec as kubectl exec does it: the Exec RPC gives a URL on containerd's
/// streaming server; the websocket channel protocol v4 carries stdin (channel 0),
/// stdout (1), stderr (2) and the exit status (3).
async fn stream_exec(url: &str, stdin: &[u8]) -> Result<(Vec<u8>, Vec<u8>, serde_json::Value)> {
    let ws_url = url
        .strip_prefix("http://")
        .map(|r| format!("ws://{r}"))
        .with_context(|| format!("exec url {url} is not http"))?;
    let mut req = ws_url.as_str().into_client_request()?;
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "v4.channel.k8s.io".parse()?);
    let (mut ws, resp) = tokio_tungstenite::connect_async(req)
        .await
        .with_context(|| format!("websocket to {ws_url}"))?;
    let proto = resp
        .headers()
        .get("Sec-WebSocket-Protocol")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    ensure!(
        proto == "v4.channel.k8s.io",
        "server chose protocol {proto:?}"
    );
    let mut frame = vec![0u8];
    frame.extend_from_slice(stdin);
    ws.send(Message::Binary(frame.into())).await?;
    let (mut out, mut err, mut status) = (vec![], vec![], None);
    while let Some(m) = ws.next().await {
        match m? {
            Message::Binary(b) if !b.is_empty() => match b[0] {
                1 => out.extend_from_slice(&b[1..]),
                2 => err.extend_from_slice(&b[1..]),
                3 if b.len() > 1 => status = Some(serde_json::from_slice(&b[1..])?),
                _ => {}
            },
            Message::Close(_) => break,
            _ => {}
        }
    }
    Ok((out, err, status.context("no status on channel 3")?))
}

async fn connect(socket: &Path) -> Result<Channel> {
    let path = socket.to_path_buf();
    Endpoint::try_from("http://[::]:50051")?
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let p = path.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(p).await?)) }
        }))
        .await
        .with_context(|| format!("connect to {}", socket.display()))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    let ch = connect(&args.socket).await?;
    let uid = format!(
        "{}{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis()
            % 100000
    );
    let mut c = Checker {
        rt: RuntimeServiceClient::new(ch.clone()),
        img: ImageServiceClient::new(ch),
        args,
        failed: 0,
        passed: 0,
        uid,
    };
    if c.args.remove_all {
        return remove_all(&mut c.rt).await;
    }
    println!("== CRI check, runtime handler {:?}", c.args.handler);
    run(&mut c).await;
    println!(
        "== {} passed, {} failed (handler {})",
        c.passed, c.failed, c.args.handler
    );
    if c.failed > 0 {
        std::process::exit(1);
    }
    Ok(())
}

/// What a kubelet does with pods it no longer wants: stop and remove them all.
async fn remove_all(rt: &mut Rt) -> Result<()> {
    let pods = rt
        .list_pod_sandbox(ListPodSandboxRequest { filter: None })
        .await?
        .into_inner()
        .items;
    for p in pods {
        let id = p.id;
        let _ = rt
            .stop_pod_sandbox(StopPodSandboxRequest {
                pod_sandbox_id: id.clone(),
            })
            .await;
        rt.remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: id.clone(),
        })
        .await
        .with_context(|| format!("remove pod {id}"))?;
    }
    Ok(())
}

async fn run(c: &mut Checker) {
    let mut rt = c.rt.clone();
    c.step("Version", async {
        let v = rt.version(VersionRequest::default()).await?.into_inner();
        ensure!(
            v.runtime_api_version == "v1",
            "runtime api {}",
            v.runtime_api_version
        );
        ensure!(
            v.runtime_name == "containerd",
            "runtime name {}",
            v.runtime_name
        );
        Ok(())
    })
    .await;
    let mut rt = c.rt.clone();
    c.step("Status (RuntimeReady, NetworkReady)", async {
        let s = rt
            .status(StatusRequest { verbose: false })
            .await?
            .into_inner()
            .status
            .context("no status")?;
        for want in ["RuntimeReady", "NetworkReady"] {
            let cond = s
                .conditions
                .iter()
                .find(|x| x.r#type == want)
                .with_context(|| format!("no condition {want}"))?;
            ensure!(
                cond.status,
                "{want} is false: {} {}",
                cond.reason,
                cond.message
            );
        }
        Ok(())
    })
    .await;
    let mut img = c.img.clone();
    let (image, pause) = (c.args.image.clone(), c.args.pause_image.clone());
    let pulled = c
        .step(
            "PullImage (image and sandbox image, local registry)",
            async {
                for i in [&image, &pause] {
                    let r = img
                        .pull_image(PullImageRequest {
                            image: Some(ImageSpec {
                                image: i.clone(),
                                ..Default::default()
                            }),
                            ..Default::default()
                        })
                        .await
                        .with_context(|| format!("pull {i}"))?
                        .into_inner();
                    ensure!(
                        r.image_ref.starts_with("sha256:"),
                        "image ref {}",
                        r.image_ref
                    );
                    let st = img
                        .image_status(ImageStatusRequest {
                            image: Some(ImageSpec {
                                image: i.clone(),
                                ..Default::default()
                            }),
                            verbose: false,
                        })
                        .await?
                        .into_inner();
                    let got = st.image.with_context(|| format!("no status for {i}"))?;
                    ensure!(
                        got.id == r.image_ref,
                        "image status id {} != {}",
                        got.id,
                        r.image_ref
                    );
                }
                Ok(())
            },
        )
        .await
        .is_some();
    if !pulled {
        c.skip("everything else", "the images were not pulled");
        return;
    }
    if let Some(n) = c.args.bench {
        if let Err(e) = bench(c, n).await {
            c.failed += 1;
            println!("FAIL  bench: {e:#}");
        }
        return;
    }
    cni_pod(c).await;
    host_pod(c).await;
    if let (Some(h), Some(bin)) = (
        c.args.missing_handler.clone(),
        c.args.missing_binary.clone(),
    ) {
        missing_runtime(c, &h, &bin).await;
    }
}

/// Issue 15's speed target: pod start (RunPodSandbox + CreateContainer +
/// StartContainer) and pod end (StopPodSandbox + RemovePodSandbox), per handler,
/// the handlers taking turns in each round so that load drift hits all alike.
async fn bench(c: &mut Checker, rounds: usize) -> Result<()> {
    let handlers = c.args.bench_handlers.clone();
    // The runtime's own time, summed over its calls in a phase (0 without wrappers).
    let timing_dir = c.args.timing_dir.clone();
    let runtime_ns = |h: &str| -> u64 {
        timing_dir
            .as_ref()
            .and_then(|d| std::fs::read_to_string(d.join(format!("timing-{h}.log"))).ok())
            .map(|s| {
                s.lines()
                    .filter_map(|l| l.split(' ').next()?.parse::<u64>().ok())
                    .sum()
            })
            .unwrap_or(0)
    };
    type Phases = (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>);
    let mut times: HashMap<String, Phases> = HashMap::new();
    for round in 0..rounds + 1 {
        for k in 0..handlers.len() {
            let h = &handlers[(k + round) % handlers.len()];
            let mut cfg = c.pod_config(&format!("bench-{round}-{h}"), false, false);
            cfg.port_mappings.clear();
            let r0 = runtime_ns(h);
            let t0 = Instant::now();
            let pod =
                c.rt.run_pod_sandbox(RunPodSandboxRequest {
                    config: Some(cfg.clone()),
                    runtime_handler: h.clone(),
                })
                .await
                .with_context(|| format!("run pod with {h}"))?
                .into_inner()
                .pod_sandbox_id;
            c.create_start(&pod, &cfg, "sleep", SLEEP, linux(sec_default(), None))
                .await?;
            let t1 = Instant::now();
            let r1 = runtime_ns(h);
            c.rt.stop_pod_sandbox(StopPodSandboxRequest {
                pod_sandbox_id: pod.clone(),
            })
            .await?;
            c.rt.remove_pod_sandbox(RemovePodSandboxRequest {
                pod_sandbox_id: pod.clone(),
            })
            .await?;
            let t2 = Instant::now();
            let r2 = runtime_ns(h);
            // round 0 warms the page cache and the image's snapshots
            if round > 0 {
                let e = times.entry(h.clone()).or_default();
                e.0.push((t1 - t0).as_secs_f64() * 1e3);
                e.1.push((t2 - t1).as_secs_f64() * 1e3);
                e.2.push((r1 - r0) as f64 / 1e6);
                e.3.push((r2 - r1) as f64 / 1e6);
            }
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let mut base = None;
    for h in &handlers {
        let (mut up, mut down, mut rup, mut rdown) = times.remove(h).context("no times")?;
        let (u, d) = (median(&mut up), median(&mut down));
        let (ru, rd) = (median(&mut rup), median(&mut rdown));
        let rel = base.map(|b: f64| format!("  {:.2}x {}", (u + d) / b, handlers[0]));
        base.get_or_insert(u + d);
        println!(
            "bench {h:>6}: start {u:6.1} ms (runtime {ru:5.1})  stop+remove {d:6.1} ms (runtime {rd:5.1})  total {:6.1} ms (medians of {rounds}){}",
            u + d,
            rel.unwrap_or_default()
        );
    }
    c.passed += 1;
    Ok(())
}

/// Issue 15 item 5: a handler whose runtime binary is missing fails the pod at once,
/// with a message naming the binary, and leaves nothing behind.
async fn missing_runtime(c: &mut Checker, handler: &str, bin: &str) {
    let cfg = c.pod_config("missing", false, false);
    let mut s = sub(c);
    let (h, b) = (handler.to_string(), bin.to_string());
    c.step(
        "a handler whose runtime binary is missing: RunPodSandbox fails naming it",
        async move {
            let t = Instant::now();
            let r = tokio::time::timeout(
                Duration::from_secs(20),
                s.rt.run_pod_sandbox(RunPodSandboxRequest {
                    config: Some(cfg),
                    runtime_handler: h.clone(),
                }),
            )
            .await
            .context("RunPodSandbox hung for 20 s")?;
            let err = match r {
                Ok(ok) => bail!(
                    "pod {} started with handler {h}",
                    ok.into_inner().pod_sandbox_id
                ),
                Err(e) => e.message().to_string(),
            };
            ensure!(err.contains(&b), "the error does not name {b}: {err}");
            println!("      error: {err}");
            ensure!(
                t.elapsed() < Duration::from_secs(10),
                "took {:?}",
                t.elapsed()
            );
            let pods =
                s.rt.list_pod_sandbox(ListPodSandboxRequest { filter: None })
                    .await?
                    .into_inner()
                    .items;
            ensure!(
                pods.is_empty(),
                "pods left: {:?}",
                pods.iter().map(|p| &p.id).collect::<Vec<_>>()
            );
            let v = veths()?;
            ensure!(v.is_empty(), "veths left: {v:?}");
            Ok(())
        },
    )
    .await;
}

/// Pod A: a CNI pod network, two containers sharing it, exec, stats, update, logs.
async fn cni_pod(c: &mut Checker) {
    let mut cfg = c.pod_config("net", false, false);
    cfg.dns_config = Some(DnsConfig {
        servers: vec!["10.77.0.53".into()],
        searches: vec!["berth.test".into()],
        options: vec!["ndots:2".into()],
    });
    // A namespaced sysctl, as the kubelet passes a pod's securityContext.sysctls.
    if let Some(l) = cfg.linux.as_mut() {
        l.sysctls
            .insert("net.ipv4.ip_local_port_range".into(), "20000 30000".into());
    }
    let pod = {
        let cfg2 = cfg.clone();
        let mut s = sub(c);
        c.step(
            "RunPodSandbox (CNI: bridge, host-local, portmap, loopback)",
            async move {
                let before = veths()?;
                ensure!(before.is_empty(), "veths before the pod: {before:?}");
                s.run_pod(&cfg2).await
            },
        )
        .await
    };
    let Some(pod) = pod else {
        c.skip("CNI pod steps", "RunPodSandbox failed");
        return;
    };
    let mut traces = Traces::default();
    let mut containers = vec![];
    let mut pod_ip = String::new();
    match c.pod_status(&pod).await {
        Ok(st) => {
            pod_ip = st
                .status
                .and_then(|s| s.network)
                .map(|n| n.ip)
                .unwrap_or_default();
        }
        Err(e) => println!("      pod status: {e:#}"),
    }
    if let Err(e) = c.trace_pod(&pod, &mut traces).await {
        println!("      trace pod: {e:#}");
    }
    let ip = pod_ip.clone();
    c.step(
        "PodSandboxStatus: pod IP from host-local, veth on the bridge",
        async {
            ensure!(
                ip.starts_with("10.77."),
                "pod ip {ip:?} not from 10.77.0.0/24"
            );
            let v = veths()?;
            ensure!(v.len() == 1, "veths: {v:?}");
            Ok(())
        },
    )
    .await;

    // Two containers: a web server and a ticker writing its log.
    let web_cmd = [
        "sh",
        "-c",
        "mkdir -p /tmp/www && echo pong > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www",
    ];
    let tick_cmd = [
        "sh",
        "-c",
        "trap 'exit 0' TERM; i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done",
    ];
    let cfg_a = cfg.clone();
    let p = pod.clone();
    let started = {
        let t0 = Instant::now();
        let r1 = c
            .create_start(&p, &cfg_a, "web", &web_cmd, linux(sec_default(), None))
            .await;
        let r2 = c
            .create_start(&p, &cfg_a, "ticker", &tick_cmd, linux(sec_default(), None))
            .await;
        match (r1, r2) {
            (Ok(a), Ok(b)) => {
                c.passed += 1;
                println!(
                    "PASS  CreateContainer + StartContainer (two containers in one pod)  ({} ms)",
                    t0.elapsed().as_millis()
                );
                Some((a, b))
            }
            (a, b) => {
                c.failed += 1;
                println!(
                    "FAIL  CreateContainer + StartContainer: {:?} {:?}",
                    a.err().map(|e| format!("{e:#}")),
                    b.err().map(|e| format!("{e:#}"))
                );
                None
            }
        }
    };
    if let Some((web, ticker)) = started {
        containers = vec![web.clone(), ticker.clone()];
        for id in [&web, &ticker] {
            if let Err(e) = c.trace_container(id, &mut traces).await {
                println!("      trace {id}: {e:#}");
            }
        }
        pod_a_steps(c, &pod, &web, &ticker, &pod_ip).await;
    }
    let p = pod.clone();
    let cs = containers.clone();
    let t = std::mem::take(&mut traces);
    let mut me = sub(c);
    c.step(
        "Stop/RemoveContainer (SIGTERM, SIGKILL after the grace period), Stop/RemovePodSandbox (CNI pod): no cgroup, mount, netns, veth, shim state left",
        async move { me.teardown(&p, &cs, &t).await },
    )
    .await;
}

fn clone_args(a: &Args) -> Args {
    Args {
        socket: a.socket.clone(),
        handler: a.handler.clone(),
        image: a.image.clone(),
        pause_image: a.pause_image.clone(),
        cgroup_parent: a.cgroup_parent.clone(),
        log_dir: a.log_dir.clone(),
        state_dir: a.state_dir.clone(),
        runtime_root: a.runtime_root.clone(),
        runtime_bin: a.runtime_bin.clone(),
        remove_all: a.remove_all,
        missing_handler: a.missing_handler.clone(),
        missing_binary: a.missing_binary.clone(),
        bench: a.bench,
        timing_dir: a.timing_dir.clone(),
        bench_handlers: a.bench_handlers.clone(),
    }
}

/// A second handle on the same connection, for steps that run while `c` records.
fn sub(c: &Checker) -> Checker {
    Checker {
        rt: c.rt.clone(),
        img: c.img.clone(),
        args: clone_args(&c.args),
        failed: 0,
        passed: 0,
        uid: c.uid.clone(),
    }
}

async fn pod_a_steps(c: &mut Checker, pod: &str, web: &str, ticker: &str, pod_ip: &str) {
    let mut s = sub(c);
    let (w, t) = (web.to_string(), ticker.to_string());
    c.step(
        "shared network and IPC: the ticker reaches the web server on localhost, one /dev/shm; the pod's sysctl, hostname, DNS config; read-only /proc/sys",
        async {
            let mut body = String::new();
            for _ in 0..50 {
                let r = s
                    .exec(&t, &["wget", "-qO-", "http://127.0.0.1:8080/"])
                    .await?;
                body = String::from_utf8_lossy(&r.stdout).into_owned();
                if r.exit_code == 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            ensure!(
                body.trim() == "pong",
                "localhost:8080 from the ticker answered {body:?}"
            );
            for ns in ["net", "ipc"] {
                let path = format!("/proc/self/ns/{ns}");
                let a = s.exec_ok(&w, &["readlink", &path]).await?;
                let b = s.exec_ok(&t, &["readlink", &path]).await?;
                ensure!(
                    a == b,
                    "{ns} namespaces differ: {} vs {}",
                    a.trim(),
                    b.trim()
                );
            }
            let range = s
                .exec_ok(&t, &["cat", "/proc/sys/net/ipv4/ip_local_port_range"])
                .await?;
            ensure!(
                range.split_whitespace().collect::<Vec<_>>() == ["20000", "30000"],
                "the pod's sysctl net.ipv4.ip_local_port_range is {range:?}"
            );
            // the pod's hostname and DNS config (files containerd mounts into each)
            let h = s.exec_ok(&t, &["hostname"]).await?;
            ensure!(h == "net\n", "hostname {h:?}");
            let r = s.exec_ok(&w, &["cat", "/etc/resolv.conf"]).await?;
            ensure!(
                r.contains("nameserver 10.77.0.53")
                    && r.contains("search berth.test")
                    && r.contains("options ndots:2"),
                "/etc/resolv.conf: {r:?}"
            );
            // the kubelet's read-only paths
            let m = s.exec_ok(&w, &["cat", "/proc/mounts"]).await?;
            ensure!(
                m.lines().any(|l| {
                    let f: Vec<_> = l.split(' ').collect();
                    f.len() > 3 && f[1] == "/proc/sys" && f[3].split(',').any(|o| o == "ro")
                }),
                "/proc/sys is not read-only"
            );
            // the pod's /dev/shm (its IPC namespace's POSIX shared memory) is one
            s.exec_ok(&w, &["sh", "-c", "echo shared > /dev/shm/berth-ipc"])
                .await?;
            let got = s.exec_ok(&t, &["cat", "/dev/shm/berth-ipc"]).await?;
            ensure!(got == "shared\n", "/dev/shm of the ticker has {got:?}");
            let a = s.exec_ok(&w, &["readlink", "/proc/self/ns/pid"]).await?;
            let b = s.exec_ok(&t, &["readlink", "/proc/self/ns/pid"]).await?;
            ensure!(
                a != b,
                "pid namespace shared though the pod asked for one per container"
            );
            let ours = std::fs::read_link("/proc/self/ns/net")?;
            let a = s.exec_ok(&w, &["readlink", "/proc/self/ns/net"]).await?;
            ensure!(
                a.trim() != ours.to_string_lossy(),
                "the pod is in the node's network namespace"
            );
            Ok(())
        },
    )
    .await;

    let ip = pod_ip.to_string();
    c.step(
        "portmap: hostPort 18080 reaches the pod's 8080",
        async move {
            // The bridge's gateway address is an address of this (containerd's) namespace:
            // portmap's DNAT for locally sent traffic applies to it.
            let gw = ip
                .rsplit_once('.')
                .map(|(net, _)| format!("{net}.1"))
                .context("no pod ip")?;
            let direct = http_get(&format!("{ip}:8080")).await?;
            ensure!(direct.contains("pong"), "pod ip:8080 answered {direct:?}");
            let mapped = http_get(&format!("{gw}:18080")).await?;
            ensure!(mapped.contains("pong"), "{gw}:18080 answered {mapped:?}");
            Ok(())
        },
    )
    .await;

    let mut s = sub(c);
    let t = ticker.to_string();
    c.step("ExecSync: stdout, stderr, exit code", async {
        let r = s
            .exec(&t, &["sh", "-c", "echo out; echo err >&2; exit 3"])
            .await?;
        ensure!(
            r.stdout == b"out\n",
            "stdout {:?}",
            String::from_utf8_lossy(&r.stdout)
        );
        ensure!(
            r.stderr == b"err\n",
            "stderr {:?}",
            String::from_utf8_lossy(&r.stderr)
        );
        ensure!(r.exit_code == 3, "exit code {}", r.exit_code);
        Ok(())
    })
    .await;

    let mut rt = c.rt.clone();
    let t = ticker.to_string();
    c.step(
        "Exec (streaming server, websocket v4.channel.k8s.io): stdin, stdout, stderr, exit code",
        async move {
            let url = rt
                .exec(ExecRequest {
                    container_id: t.clone(),
                    cmd: ["sh", "-c", "head -c 5; echo; echo oops >&2; exit 7"]
                        .iter()
                        .map(|s| s.to_string())
                        .collect(),
                    tty: false,
                    stdin: true,
                    stdout: true,
                    stderr: true,
                })
                .await?
                .into_inner()
                .url;
            let (out, err, status) = stream_exec(&url, b"hello").await?;
            ensure!(
                out == b"hello\n",
                "stdout {:?}",
                String::from_utf8_lossy(&out)
            );
            ensure!(
                err == b"oops\n",
                "stderr {:?}",
                String::from_utf8_lossy(&err)
            );
            let code = status["details"]["causes"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["reason"] == "ExitCode")
                .and_then(|c| c["message"].as_str())
                .unwrap_or("");
            ensure!(
                status["reason"] == "NonZeroExitCode" && code == "7",
                "status {status}"
            );
            Ok(())
        },
    )
    .await;

    let mut s = sub(c);
    let w = web.to_string();
    let img = c.args.image.clone();
    c.step("ContainerStatus: running, pid, image, log path", async {
        let st = s.container_status(&w).await?;
        let info = verbose_info(&st.info)?;
        let st = st.status.context("no status")?;
        ensure!(
            st.state == ContainerState::ContainerRunning as i32,
            "state {}",
            st.state
        );
        ensure!(
            st.started_at > 0 && st.finished_at == 0,
            "started {} finished {}",
            st.started_at,
            st.finished_at
        );
        ensure!(
            st.image.map(|i| i.image) == Some(img.clone()),
            "image not {img}"
        );
        ensure!(st.log_path.ends_with("web.log"), "log path {}", st.log_path);
        let pid = info["pid"].as_u64().context("no pid")?;
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"))?;
        ensure!(comm.trim() == "httpd", "pid {pid} is {comm:?}, not httpd");
        // The handler's runtime (its own Root) holds the container's state: the shim
        // ran that binary, not another.
        let state = s.args.runtime_root.join("k8s.io").join(&w);
        ensure!(state.is_dir(), "no runtime state at {}", state.display());
        Ok(())
    })
    .await;

    let mut s = sub(c);
    let (w, t, p) = (web.to_string(), ticker.to_string(), pod.to_string());
    c.step(
        "ContainerStats and ListContainerStats: cgroup cpu and memory, as the runtime's events --stats",
        async {
            let st = s.container_status(&w).await?;
            let cg = verbose_info(&st.info)?["runtimeSpec"]["linux"]["cgroupsPath"]
                .as_str()
                .context("no cgroupsPath")?
                .to_string();
            let stats =
                s.rt.container_stats(ContainerStatsRequest {
                    container_id: w.clone(),
                })
                .await?
                .into_inner()
                .stats
                .context("no stats")?;
            let cpu = stats
                .cpu
                .and_then(|c| c.usage_core_nano_seconds)
                .map(|v| v.value)
                .unwrap_or(0);
            let mem = stats
                .memory
                .and_then(|m| m.working_set_bytes)
                .map(|v| v.value)
                .unwrap_or(0);
            let acct: u64 = s
                .cgroup_file(&cg, "cpuacct", "cpuacct.usage")
                .await?
                .parse()?;
            ensure!(
                cpu > 0 && cpu <= acct,
                "cpu {cpu} ns against cpuacct.usage {acct}"
            );
            let usage: u64 = s
                .cgroup_file(&cg, "memory", "memory.usage_in_bytes")
                .await?
                .parse()?;
            ensure!(
                mem > 0 && mem <= usage.max(mem) * 2,
                "working set {mem} against usage {usage}"
            );
            let list =
                s.rt.list_container_stats(ListContainerStatsRequest {
                    filter: Some(ContainerStatsFilter {
                        pod_sandbox_id: p.clone(),
                        ..Default::default()
                    }),
                })
                .await?
                .into_inner()
                .stats;
            let ids: Vec<_> = list
                .iter()
                .filter_map(|s| s.attributes.as_ref().map(|a| a.id.clone()))
                .collect();
            ensure!(
                ids.contains(&w) && ids.contains(&t) && ids.len() == 2,
                "listed {ids:?}"
            );
            // The runtime's own view of the same cgroup: `events --stats` (cpu total
            // between the CRI's and the cgroup's later reading, memory usage close to
            // the CRI's).
            let cri_mem = stats_mem_usage(&mut s, &w).await?;
            let o = std::process::Command::new(&s.args.runtime_bin)
                .arg("--root")
                .arg(s.args.runtime_root.join("k8s.io"))
                .args(["events", "--stats", &w])
                .output()
                .context("run the runtime's events --stats")?;
            ensure!(
                o.status.success(),
                "events --stats: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            );
            let ev: serde_json::Value = serde_json::from_slice(&o.stdout).with_context(|| {
                format!("events --stats printed {:?}", String::from_utf8_lossy(&o.stdout))
            })?;
            let rt_cpu = ev["data"]["cpu"]["usage"]["total"].as_u64().context("no cpu.usage.total")?;
            let rt_mem = ev["data"]["memory"]["usage"]["usage"].as_u64().context("no memory.usage.usage")?;
            let acct2: u64 = s.cgroup_file(&cg, "cpuacct", "cpuacct.usage").await?.parse()?;
            ensure!(
                cpu <= rt_cpu && rt_cpu <= acct2,
                "cpu: CRI {cpu}, runtime {rt_cpu}, cgroup {acct2}"
            );
            ensure!(
                rt_mem > 0 && rt_mem.abs_diff(cri_mem) <= cri_mem / 4,
                "memory usage: runtime {rt_mem}, CRI {cri_mem}"
            );
            println!("      events --stats: cpu {rt_cpu} ns (CRI {cpu}), memory {rt_mem} (CRI {cri_mem})");
            Ok(())
        },
    )
    .await;

    let mut s = sub(c);
    let t = ticker.to_string();
    c.step(
        "UpdateContainerResources: cpu quota and memory limit reach the cgroup",
        async {
            let limit = 96 << 20;
            s.rt.update_container_resources(UpdateContainerResourcesRequest {
                container_id: t.clone(),
                linux: Some(LinuxContainerResources {
                    cpu_period: 100000,
                    cpu_quota: 30000,
                    cpu_shares: 256,
                    memory_limit_in_bytes: limit,
                    memory_swap_limit_in_bytes: limit,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await?;
            let st = s.container_status(&t).await?;
            let cg = verbose_info(&st.info)?["runtimeSpec"]["linux"]["cgroupsPath"]
                .as_str()
                .context("no cgroupsPath")?
                .to_string();
            let q = s.cgroup_file(&cg, "cpu", "cpu.cfs_quota_us").await?;
            ensure!(q == "30000", "cpu.cfs_quota_us {q}");
            let sh = s.cgroup_file(&cg, "cpu", "cpu.shares").await?;
            ensure!(sh == "256", "cpu.shares {sh}");
            let m = s
                .cgroup_file(&cg, "memory", "memory.limit_in_bytes")
                .await?;
            ensure!(m == limit.to_string(), "memory.limit_in_bytes {m}");
            Ok(())
        },
    )
    .await;

    let mut s = sub(c);
    let t = ticker.to_string();
    c.step(
        "ReopenContainerLog: CRI log format, a new file after rotation",
        async {
            let st = s.container_status(&t).await?.status.context("no status")?;
            let log = PathBuf::from(&st.log_path);
            let has_tick = |p: &Path| -> bool {
                std::fs::read_to_string(p)
                    .map(|s| {
                        s.lines().any(|l| {
                            let f: Vec<_> = l.splitn(4, ' ').collect();
                            f.len() == 4
                                && f[1] == "stdout"
                                && f[2] == "F"
                                && f[3].starts_with("tick ")
                        })
                    })
                    .unwrap_or(false)
            };
            wait_for(|| has_tick(&log))
                .await
                .with_context(|| format!("no tick line in {}", log.display()))?;
            let rotated = log.with_extension("log.1");
            std::fs::rename(&log, &rotated)?;
            s.rt.reopen_container_log(ReopenContainerLogRequest {
                container_id: t.clone(),
            })
            .await?;
            wait_for(|| has_tick(&log))
                .await
                .with_context(|| format!("no tick in the reopened {}", log.display()))?;
            Ok(())
        },
    )
    .await;
}

async fn stats_mem_usage(s: &mut Checker, id: &str) -> Result<u64> {
    let st =
        s.rt.container_stats(ContainerStatsRequest {
            container_id: id.into(),
        })
        .await?
        .into_inner()
        .stats
        .context("no stats")?;
    st.memory
        .and_then(|m| m.usage_bytes)
        .map(|v| v.value)
        .context("no memory usage_bytes in the CRI's stats")
}

async fn wait_for(mut f: impl FnMut() -> bool) -> Result<()> {
    for _ in 0..100 {
        if f() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("waited 5 s")
}

async fn http_get(addr: &str) -> Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("connect {addr}"))?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").await?;
    let mut out = String::new();
    s.read_to_string(&mut out).await?;
    Ok(out)
}

/// Pod B: host network, privileged sandbox; the security contexts and resources the
/// kubelet sets, one container each.
async fn host_pod(c: &mut Checker) {
    let cfg = c.pod_config("host", true, true);
    let pod = {
        let cfg2 = cfg.clone();
        let mut s = sub(c);
        c.step("RunPodSandbox (host network, privileged)", async move {
            s.run_pod(&cfg2).await
        })
        .await
    };
    let Some(pod) = pod else {
        c.skip("host pod steps", "RunPodSandbox failed");
        return;
    };
    let mut traces = Traces::default();
    if let Err(e) = c.trace_pod(&pod, &mut traces).await {
        println!("      trace pod: {e:#}");
    }
    let mut containers = vec![];

    macro_rules! container {
        ($name:expr, $cmd:expr, $linux:expr) => {{
            let cc = c.container_config($name, $cmd, $linux);
            container!(cc)
        }};
        ($cc:expr) => {{
            let r = c.create_start_cfg(&pod, &cfg, $cc).await;
            match r {
                Ok(id) => {
                    containers.push(id.clone());
                    if let Err(e) = c.trace_container(&id, &mut traces).await {
                        println!("      trace {id}: {e:#}");
                    }
                    Ok(id)
                }
                Err(e) => Err(e),
            }
        }};
    }

    let r = container!("hostnet", SLEEP, linux(sec_host_net(), None));
    let mut s = sub(c);
    c.step(
        "host-network pod: the container is in containerd's network namespace",
        async {
            let id = r?;
            let ours = std::fs::read_link("/proc/self/ns/net")?;
            let theirs = s.exec_ok(&id, &["readlink", "/proc/self/ns/net"]).await?;
            ensure!(
                theirs.trim() == ours.to_string_lossy(),
                "{} vs {}",
                theirs.trim(),
                ours.display()
            );
            Ok(())
        },
    )
    .await;

    let r = container!("seccomp-default", SLEEP, linux(sec_host_net(), None));
    let mut s = sub(c);
    c.step("seccomp RuntimeDefault: a filter on the init", async {
        let id = r?;
        let v = s.init_status(&id, "Seccomp").await?;
        ensure!(v == "2", "Seccomp: {v}");
        // containerd's default profile refuses keyctl with EPERM... busybox has no
        // keyctl; unshare of a user namespace is refused without CAP_SYS_ADMIN.
        Ok(())
    })
    .await;

    let mut sc = sec_host_net();
    sc.seccomp = Some(SecurityProfile {
        profile_type: ProfileType::Unconfined as i32,
        localhost_ref: String::new(),
    });
    let r = container!("seccomp-unconfined", SLEEP, linux(sc, None));
    let mut s = sub(c);
    c.step("seccomp Unconfined: no filter", async {
        let id = r?;
        let v = s.init_status(&id, "Seccomp").await?;
        ensure!(v == "0", "Seccomp: {v}");
        Ok(())
    })
    .await;

    let mut sc = sec_host_net();
    sc.run_as_user = Some(Int64Value { value: 1000 });
    sc.run_as_group = Some(Int64Value { value: 1000 });
    sc.supplemental_groups = vec![10];
    let r = container!("run-as-user", SLEEP, linux(sc, None));
    let mut s = sub(c);
    c.step(
        "run_as_user 1000, run_as_group 1000, supplemental group 10",
        async {
            let id = r?;
            let uid = s.init_status(&id, "Uid").await?;
            ensure!(uid.split_whitespace().all(|u| u == "1000"), "Uid: {uid}");
            let gid = s.init_status(&id, "Gid").await?;
            ensure!(gid.split_whitespace().all(|g| g == "1000"), "Gid: {gid}");
            let groups = s.init_status(&id, "Groups").await?;
            ensure!(
                groups.split_whitespace().any(|g| g == "10"),
                "Groups: {groups}"
            );
            let e = s.init_status(&id, "CapEff").await?;
            ensure!(
                u64::from_str_radix(&e, 16)? == 0,
                "a non-root init has CapEff {e}"
            );
            Ok(())
        },
    )
    .await;

    let mut sc = sec_host_net();
    sc.capabilities = Some(Capability {
        drop_capabilities: vec!["ALL".into()],
        add_capabilities: vec!["NET_BIND_SERVICE".into(), "CHOWN".into()],
        ..Default::default()
    });
    sc.no_new_privs = true;
    let r = container!("capabilities", SLEEP, linux(sc, None));
    let mut s = sub(c);
    c.step(
        "capabilities: drop ALL, add NET_BIND_SERVICE and CHOWN; no_new_privs",
        async {
            let id = r?;
            let want = (1u64 << 10) | 1;
            for f in ["CapEff", "CapPrm", "CapBnd"] {
                let v = s.init_status(&id, f).await?;
                ensure!(
                    u64::from_str_radix(&v, 16)? == want,
                    "{f}: {v}, want {want:016x}"
                );
            }
            let n = s.init_status(&id, "NoNewPrivs").await?;
            ensure!(n == "1", "NoNewPrivs: {n}");
            Ok(())
        },
    )
    .await;

    let mut sc = sec_host_net();
    sc.readonly_rootfs = true;
    let r = container!("read-only-root", SLEEP, linux(sc, None));
    let mut s = sub(c);
    c.step("read-only root filesystem", async {
        let id = r?;
        let w = s.exec(&id, &["touch", "/probe"]).await?;
        ensure!(
            w.exit_code != 0,
            "touch /probe succeeded on a read-only root"
        );
        let err = String::from_utf8_lossy(&w.stderr);
        ensure!(
            err.contains("Read-only"),
            "touch /probe failed otherwise: {err}"
        );
        Ok(())
    })
    .await;

    let plain = containers.first().cloned();
    let mut sc = sec_host_net();
    sc.privileged = true;
    sc.seccomp = None;
    sc.masked_paths.clear();
    sc.readonly_paths.clear();
    let r = container!("privileged", SLEEP, linux(sc, None));
    let mut s = sub(c);
    c.step(
        "privileged: every capability, no seccomp, host devices, no masked paths",
        async {
            let id = r?;
            let plain = plain.context("no plain container to compare with")?;
            let ours = status_field(&std::fs::read_to_string("/proc/self/status")?, "CapBnd")
                .context("no CapBnd")?;
            let e = s.init_status(&id, "CapEff").await?;
            ensure!(e == ours, "CapEff {e}, the host's bounding set is {ours}");
            let sc = s.init_status(&id, "Seccomp").await?;
            ensure!(sc == "0", "Seccomp: {sc}");
            let dev = ["/dev/kmsg", "/dev/loop-control", "/dev/mem"]
                .into_iter()
                .find(|d| Path::new(d).exists())
                .context("no host device to look for")?;
            s.exec_ok(&id, &["test", "-e", dev])
                .await
                .with_context(|| format!("{dev} missing in the privileged container"))?;
            // no masked paths; a plain container has them (the runtime skips those this
            // kernel does not have)
            let masked = [
                "/proc/kcore",
                "/proc/keys",
                "/proc/timer_list",
                "/proc/acpi",
            ]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .context("no masked path exists on this host")?;
            let is_mount =
                |mounts: &str| mounts.lines().any(|l| l.split(' ').nth(1) == Some(masked));
            let mounts = s.exec_ok(&id, &["cat", "/proc/mounts"]).await?;
            ensure!(
                !is_mount(&mounts),
                "{masked} is masked in a privileged container"
            );
            let plain = s.exec_ok(&plain, &["cat", "/proc/mounts"]).await?;
            ensure!(
                is_mount(&plain),
                "{masked} is not masked in a plain container"
            );
            Ok(())
        },
    )
    .await;

    // What the kubelet makes of volumes, devices, env and workingDir.
    let host_dir = c.args.log_dir.join(format!("{}-volume", c.uid));
    let ro_dir = c.args.log_dir.join(format!("{}-volume-ro", c.uid));
    let prepared = std::fs::create_dir_all(&host_dir)
        .and_then(|_| std::fs::create_dir_all(&ro_dir))
        .and_then(|_| std::fs::write(ro_dir.join("config"), "from the host\n"));
    let mut cc = c.container_config("mounts", SLEEP, linux(sec_host_net(), None));
    cc.mounts = vec![
        Mount {
            container_path: "/data".into(),
            host_path: host_dir.display().to_string(),
            ..Default::default()
        },
        Mount {
            container_path: "/etc/app".into(),
            host_path: ro_dir.display().to_string(),
            readonly: true,
            ..Default::default()
        },
    ];
    cc.devices = vec![Device {
        container_path: "/dev/xnull".into(),
        host_path: "/dev/null".into(),
        permissions: "rwm".into(),
    }];
    cc.envs = vec![KeyValue {
        key: "GREETING".into(),
        value: "hello pod".into(),
    }];
    cc.working_dir = "/data".into();
    let r = container!(cc);
    let mut s = sub(c);
    let hd = host_dir.clone();
    c.step(
        "mounts (rw and read-only host paths), a device, env and workingDir",
        async {
            prepared.context("prepare the host directories")?;
            let id = r?;
            let out = s
                .exec_ok(
                    &id,
                    &["sh", "-c", "pwd; echo \"$GREETING\"; cat /etc/app/config; echo written > /data/out; echo x > /dev/xnull && echo device ok"],
                )
                .await?;
            ensure!(
                out == "/data\nhello pod\nfrom the host\ndevice ok\n",
                "the container printed {out:?}"
            );
            let w = std::fs::read_to_string(hd.join("out"))?;
            ensure!(w == "written\n", "the host sees {w:?} in the volume");
            let ro = s.exec(&id, &["touch", "/etc/app/new"]).await?;
            ensure!(ro.exit_code != 0, "a read-only mount took a new file");
            Ok(())
        },
    )
    .await;

    // shareProcessNamespace: the container joins the sandbox's pid namespace.
    let mut sc = sec_host_net();
    sc.namespace_options.as_mut().unwrap().pid = NamespaceMode::Pod as i32;
    let r = container!("shared-pid", SLEEP, linux(sc, None));
    let mut s = sub(c);
    c.step(
        "shared pid namespace (pid POD): pid 1 is the sandbox's pause",
        async {
            let id = r?;
            let one = s.exec_ok(&id, &["cat", "/proc/1/cmdline"]).await?;
            ensure!(
                one.split('\0').next() == Some("/bin/sleep"),
                "pid 1 of the pod is {one:?}"
            );
            Ok(())
        },
    )
    .await;

    let res = LinuxContainerResources {
        cpu_period: 100000,
        cpu_quota: 20000,
        cpu_shares: 512,
        memory_limit_in_bytes: 64 << 20,
        memory_swap_limit_in_bytes: 64 << 20,
        ..Default::default()
    };
    let r = container!("cpu-quota", SLEEP, linux(sec_host_net(), Some(res)));
    let mut s = sub(c);
    c.step(
        "resources: cpu quota, shares and memory limit in the container's cgroup",
        async {
            let id = r?;
            let st = s.container_status(&id).await?;
            let cg = verbose_info(&st.info)?["runtimeSpec"]["linux"]["cgroupsPath"]
                .as_str()
                .context("no cgroupsPath")?
                .to_string();
            ensure!(
                cg.starts_with(&s.args.cgroup_parent),
                "cgroup {cg} outside the pod's parent"
            );
            let q = s.cgroup_file(&cg, "cpu", "cpu.cfs_quota_us").await?;
            ensure!(q == "20000", "cpu.cfs_quota_us {q}");
            let sh = s.cgroup_file(&cg, "cpu", "cpu.shares").await?;
            ensure!(sh == "512", "cpu.shares {sh}");
            let m = s
                .cgroup_file(&cg, "memory", "memory.limit_in_bytes")
                .await?;
            ensure!(m == (64u64 << 20).to_string(), "memory.limit_in_bytes {m}");
            // the container's init is in that cgroup
            let pid = verbose_info(&st.info)?["pid"].as_u64().context("no pid")?;
            let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
            ensure!(
                own.lines()
                    .any(|l| l.contains(":memory:") && l.ends_with(&cg)),
                "pid {pid} is not in {cg}: {own}"
            );
            Ok(())
        },
    )
    .await;

    let res = LinuxContainerResources {
        memory_limit_in_bytes: 32 << 20,
        memory_swap_limit_in_bytes: 32 << 20,
        ..Default::default()
    };
    let hog = ["dd", "if=/dev/zero", "of=/dev/null", "bs=128M", "count=1"];
    let r = container!("oom", &hog, linux(sec_host_net(), Some(res)));
    let mut s = sub(c);
    c.step(
        "memory limit: an OOM kill is reported as reason OOMKilled, exit 137",
        async {
            let id = r?;
            let mut last = None;
            for _ in 0..200 {
                let st = s.container_status(&id).await?.status.context("no status")?;
                if st.state == ContainerState::ContainerExited as i32 {
                    last = Some(st);
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let st = last.context("the container did not exit in 10 s")?;
            ensure!(
                st.reason == "OOMKilled" && st.exit_code == 137,
                "reason {:?}, exit code {}, message {:?}",
                st.reason,
                st.exit_code,
                st.message
            );
            Ok(())
        },
    )
    .await;

    // The kubelet's restart: a new container of the same name, attempt 1.
    let mut cc = c.container_config("oom", SLEEP, linux(sec_host_net(), None));
    cc.metadata.as_mut().unwrap().attempt = 1;
    let r = container!(cc);
    let mut s = sub(c);
    c.step(
        "a restart: the OOM-killed container again, attempt 1, running",
        async {
            let id = r?;
            let st = s.container_status(&id).await?.status.context("no status")?;
            ensure!(
                st.state == ContainerState::ContainerRunning as i32
                    && st.metadata.as_ref().map(|m| m.attempt) == Some(1),
                "state {}, metadata {:?}",
                st.state,
                st.metadata
            );
            Ok(())
        },
    )
    .await;

    let mut me = sub(c);
    let p = pod.clone();
    c.step(
        "Stop/RemoveContainer, Stop/RemovePodSandbox (host pod): no cgroup, mount, shim state left",
        async move { me.teardown(&p, &containers, &traces).await },
    )
    .await;
}
