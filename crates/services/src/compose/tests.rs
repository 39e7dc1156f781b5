//! Tests of the whole loader (files on disk, several files, project-level checks).

use super::*;
use std::time::Duration;

struct Dir(tempfile::TempDir);

impl Dir {
    /// A project directory named `name` with the given files.
    fn new(name: &str, files: &[(&str, &str)]) -> Dir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join(name)).unwrap();
        let dir = Dir(d);
        for (f, text) in files {
            std::fs::write(dir.path(name).join(f), text).unwrap();
        }
        dir
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
}

fn opts(dir: &Path) -> LoadOptions {
    LoadOptions {
        working_dir: dir.to_path_buf(),
        ..Default::default()
    }
}

fn load_dir(files: &[(&str, &str)]) -> Result<Project, ComposeError> {
    let d = Dir::new("myapp", files);
    load(&opts(&d.path("myapp")))
}

fn load_err(files: &[(&str, &str)]) -> String {
    load_dir(files).unwrap_err().to_string()
}

fn one(yaml: &str) -> Result<Project, ComposeError> {
    load_dir(&[("compose.yaml", yaml)])
}

fn one_err(yaml: &str) -> String {
    load_err(&[("compose.yaml", yaml)])
}

#[test]
fn defaults_project_name_and_default_network() {
    let p = one("services:\n  web:\n    image: nginx\n").unwrap();
    assert_eq!(p.name, "myapp");
    assert_eq!(
        p.services["web"].networks.keys().collect::<Vec<_>>(),
        ["default"]
    );
    assert_eq!(p.networks["default"].name, "myapp_default");
    assert!(p.config_files[0].ends_with("myapp/compose.yaml"));
    assert!(p.working_dir.ends_with("myapp"));
}

#[test]
fn default_file_and_override_file_are_found() {
    let p = load_dir(&[
        ("docker-compose.yml", "services:\n  web:\n    image: a\n"),
        (
            "docker-compose.override.yml",
            "services:\n  web:\n    image: b\n",
        ),
    ])
    .unwrap();
    assert_eq!(p.services["web"].image, "b");
    assert_eq!(p.config_files.len(), 2);
    let d = Dir::new("empty", &[]);
    assert!(matches!(
        load(&opts(&d.path("empty"))),
        Err(ComposeError::NotFound)
    ));
}

#[test]
fn project_name_precedence_and_normalisation() {
    let d = Dir::new(
        "My.App_Dir",
        &[("compose.yaml", "services:\n  web:\n    image: a\n")],
    );
    let mut o = opts(&d.path("My.App_Dir"));
    assert_eq!(load(&o).unwrap().name, "myapp_dir");
    o.env
        .insert("COMPOSE_PROJECT_NAME".into(), "fromenv".into());
    assert_eq!(load(&o).unwrap().name, "fromenv");
    std::fs::write(
        d.path("My.App_Dir").join("compose.yaml"),
        "name: fromfile\nservices:\n  web:\n    image: a\n",
    )
    .unwrap();
    assert_eq!(load(&o).unwrap().name, "fromfile");
    o.project_name = Some("flag".into());
    assert_eq!(load(&o).unwrap().name, "flag");
    o.project_name = Some("Bad Name".into());
    assert_eq!(
        load(&o).unwrap_err().to_string(),
        "compose.yaml: invalid project name \"Bad Name\": must consist only of lowercase alphanumeric characters, hyphens, and underscores as well as start with a letter or number"
            .replace("compose.yaml", &d.path("My.App_Dir").join("compose.yaml").display().to_string())
    );
    assert_eq!(normalize_project_name("-_My Project!"), "myproject");
}

#[test]
fn interpolation_from_env_then_dotenv() {
    let d = Dir::new(
        "app",
        &[
            ("compose.yaml", "services:\n  web:\n    image: \"nginx:${TAG}\"\n    environment:\n      A: ${A:-x}\n      B: $$notavar\n      C: ${FROM_DOTENV}\n"),
            (".env", "# the .env file\nTAG=1.25\nexport FROM_DOTENV=\"dot env\"\nA=dotenv\n"),
        ],
    );
    let mut o = opts(&d.path("app"));
    o.env.insert("A".into(), "process".into());
    let p = load(&o).unwrap();
    let s = &p.services["web"];
    assert_eq!(s.image, "nginx:1.25");
    assert_eq!(s.environment["A"].as_deref(), Some("process"));
    assert_eq!(s.environment["B"].as_deref(), Some("$notavar"));
    assert_eq!(s.environment["C"].as_deref(), Some("dot env"));
}

#[test]
fn required_variable_error_names_file_and_key() {
    let err = one_err("services:\n  db:\n    image: postgres\n    environment:\n      PASSWORD: ${PASSWORD:?need a password}\n");
    assert!(
        err.ends_with("compose.yaml: services.db.environment.PASSWORD: required variable PASSWORD is missing a value: need a password"),
        "{err}"
    );
}

#[test]
fn unset_variable_is_a_warning() {
    let p = one("services:\n  web:\n    image: nginx${NOPE}\n").unwrap();
    assert_eq!(p.services["web"].image, "nginx");
    assert_eq!(
        p.warnings,
        ["The \"NOPE\" variable is not set. Defaulting to a blank string."]
    );
}

#[test]
fn unknown_keys_as_compose_reports_them() {
    assert!(one_err("foo: 1\nservices:\n  web:\n    image: a\n")
        .ends_with("compose.yaml: (root) Additional property foo is not allowed"));
    assert!(one_err("services:\n  web:\n    image: a\n    foo: 1\n")
        .ends_with("compose.yaml: services.web Additional property foo is not allowed"));
    assert!(
        one_err("services:\n  web:\n    image: a\nnetworks:\n  n:\n    bogus: 1\n")
            .ends_with("networks.n Additional property bogus is not allowed")
    );
    assert!(
        one_err("services:\n  web:\n    image: a\ninclude: [x.yaml]\n")
            .ends_with("include: not supported by berth yet")
    );
    assert!(
        one_err("services:\n  web:\n    image: a\n    secrets: [s]\n")
            .ends_with("service \"web\" refers to undefined secret s: invalid compose project")
    );
    assert!(
        one_err("services:\n  web:\n    image: a\nsecrets:\n  s:\n    external: true\n")
            .ends_with("secrets.s.external: not supported by berth yet")
    );
    // x- keys are extensions everywhere they are allowed
    let p = one("x-top: 1\nservices:\n  x-hidden: {whatever: 1}\n  web:\n    image: a\n    x-mine: 2\nnetworks:\n  n:\n    x-net: 3\nvolumes:\n  v:\n    x-vol: 4\n").unwrap();
    assert_eq!(p.services.keys().collect::<Vec<_>>(), ["web"]);
}

#[test]
fn malformed_yaml_names_file_and_line() {
    let err = one_err("services:\n  web:\n    image: a\n   bad indent: [\n");
    assert!(err.contains("compose.yaml: yaml: "), "{err}");
    assert!(err.contains("line 4"), "{err}");
    assert!(one_err("").ends_with("compose.yaml: empty compose file"));
    assert!(one_err("- a\n- b\n").ends_with("top-level object must be a mapping"));
}

#[test]
fn a_built_image_is_named_project_dash_service_unless_image_names_it() {
    let p = one("name: shop\nservices:\n  web:\n    build: ./w\n  db:\n    build: .\n    image: mydb:2\n  off:\n    build: .\n    profiles: [x]\n").unwrap();
    assert_eq!(p.services["web"].image, "shop-web");
    assert_eq!(p.services["db"].image, "mydb:2");
    assert!(p.services["web"]
        .build
        .as_ref()
        .unwrap()
        .context
        .ends_with("myapp/./w"));
    assert_eq!(p.disabled["off"].image, "shop-off");
}

#[test]
fn missing_image() {
    assert!(one_err("services:\n  web:\n    command: [a]\n").ends_with(
        "compose.yaml: service \"web\" has neither an image nor a build context specified: invalid compose project"
    ));
}

#[test]
fn depends_on_undefined_and_cycles() {
    assert!(one_err("services:\n  web:\n    image: a\n    depends_on: [db]\n")
        .ends_with("compose.yaml: services.web.depends_on: service \"web\" depends on undefined service \"db\": invalid compose project"));
    let err = one_err("services:\n  a:\n    image: a\n    depends_on: [b]\n  b:\n    image: b\n    depends_on: [c]\n  c:\n    image: c\n    depends_on: [a]\n");
    assert!(
        err.ends_with(
            "compose.yaml: services.a.depends_on: dependency cycle detected: a -> b -> c -> a"
        ),
        "{err}"
    );
    assert!(
        one_err("services:\n  a:\n    image: a\n    depends_on: [a]\n")
            .ends_with("dependency cycle detected: a -> a")
    );
    // an optional dependency that does not exist is left out, with a warning
    let p = one("services:\n  web:\n    image: a\n    depends_on:\n      db: {condition: service_started, required: false}\n").unwrap();
    assert!(p.services["web"].depends_on.is_empty());
    assert_eq!(p.warnings.len(), 1);
}

#[test]
fn start_order_puts_dependencies_first() {
    let p = one("services:\n  web:\n    image: a\n    depends_on: [api, cache]\n  api:\n    image: a\n    depends_on: [db]\n  db:\n    image: a\n  cache:\n    image: a\n  other:\n    image: a\n").unwrap();
    assert_eq!(p.start_order(&[]), ["db", "api", "cache", "other", "web"]);
    assert_eq!(
        p.start_order(&["web".into()]),
        ["db", "api", "cache", "web"]
    );
    assert_eq!(p.start_order(&["api".into()]), ["db", "api"]);
}

#[test]
fn invalid_duration_names_file_service_key() {
    let err = one_err("services:\n  web:\n    image: a\n    healthcheck:\n      test: [CMD, true]\n      interval: 10x\n");
    assert!(
        err.ends_with("compose.yaml: services.web.healthcheck.interval: invalid duration \"10x\""),
        "{err}"
    );
    let err = one_err("services:\n  web:\n    image: a\n    stop_grace_period: 10\n");
    assert!(
        err.contains("services.web.stop_grace_period must be a string"),
        "{err}"
    );
}

#[test]
fn replicas_with_container_name() {
    let err = one_err(
        "services:\n  web:\n    image: a\n    container_name: web\n    deploy: {replicas: 2}\n",
    );
    assert!(err.ends_with("services.web: can't set container_name and web as container name must be unique: invalid compose project"), "{err}");
    assert!(one(
        "services:\n  web:\n    image: a\n    container_name: web\n    deploy: {replicas: 1}\n"
    )
    .is_ok());
}

#[test]
fn two_services_publishing_one_host_port() {
    let err = one_err("services:\n  a:\n    image: a\n    ports: ['8080:80']\n  b:\n    image: b\n    ports: ['127.0.0.1:8080:81']\n");
    assert!(err.ends_with("services.b.ports.0: host port 8080/tcp (127.0.0.1) is already published by service \"a\""), "{err}");
    // another protocol or another address is fine
    assert!(one("services:\n  a:\n    image: a\n    ports: ['8080:80']\n  b:\n    image: b\n    ports: ['8080:80/udp']\n").is_ok());
    assert!(one("services:\n  a:\n    image: a\n    ports: ['127.0.0.1:8080:80']\n  b:\n    image: b\n    ports: ['127.0.0.2:8080:80']\n").is_ok());
    // ranges overlap
    assert!(one_err("services:\n  a:\n    image: a\n    ports: ['8000-8010:80']\n  b:\n    image: b\n    ports: ['8005:80']\n").contains("host port 8005/tcp"));
}

#[test]
fn invalid_ports() {
    assert!(
        one_err("services:\n  web:\n    image: a\n    ports: ['99999:80']\n").ends_with(
            "compose.yaml: services.web.ports.0: invalid port \"99999:80\": invalid host port"
        )
    );
}

#[test]
fn undefined_network_and_volume() {
    assert!(
        one_err("services:\n  web:\n    image: a\n    networks: [front]\n").ends_with(
            "service \"web\" refers to undefined network front: invalid compose project"
        )
    );
    assert!(
        one_err("services:\n  web:\n    image: a\n    volumes: ['data:/data']\n")
            .ends_with("service \"web\" refers to undefined volume data: invalid compose project")
    );
    assert!(one_err(
        "services:\n  web:\n    image: a\n    network_mode: host\n    networks: [default]\n"
    )
    .contains("mutually exclusive"));
    assert!(
        one_err("services:\n  web:\n    image: a\n    network_mode: service:db\n")
            .contains("\"service:db\" is not supported yet")
    );
}

#[test]
fn profiles_select_services() {
    let yaml = "services:\n  web:\n    image: a\n  debug:\n    image: b\n    profiles: [debug]\n  all:\n    image: c\n    profiles: [x, y]\n";
    let p = one(yaml).unwrap();
    assert_eq!(p.services.keys().collect::<Vec<_>>(), ["web"]);
    assert_eq!(p.disabled.keys().collect::<Vec<_>>(), ["all", "debug"]);
    let d = Dir::new("app", &[("compose.yaml", yaml)]);
    let mut o = opts(&d.path("app"));
    o.profiles = vec!["y".into()];
    assert_eq!(
        load(&o).unwrap().services.keys().collect::<Vec<_>>(),
        ["all", "web"]
    );
    o.profiles.clear();
    o.env.insert("COMPOSE_PROFILES".into(), "debug,x".into());
    assert_eq!(
        load(&o).unwrap().services.keys().collect::<Vec<_>>(),
        ["all", "debug", "web"]
    );
    // an enabled service depending on a disabled one
    assert!(one_err("services:\n  web:\n    image: a\n    depends_on: [debug]\n  debug:\n    image: b\n    profiles: [debug]\n").contains("disabled by profiles"));
}

#[test]
fn several_files_merged_and_errors_name_their_file() {
    let d = Dir::new(
        "app",
        &[
            ("a.yaml", "services:\n  web:\n    image: a\n    command: [x, y]\n    environment: [A=1, B=2]\n    ports: ['8080:80']\n    volumes: ['./a:/data']\n"),
            ("b.yaml", "services:\n  web:\n    command: z\n    environment: {B: 3}\n    ports: ['8080:80', '9090:90']\n    volumes: ['vol:/data']\nvolumes:\n  vol: {}\n"),
            ("bad.yaml", "services:\n  web:\n    ports: [nope]\n"),
        ],
    );
    let dir = d.path("app");
    let mut o = LoadOptions {
        files: vec![dir.join("a.yaml"), dir.join("b.yaml")],
        ..Default::default()
    };
    let p = load(&o).unwrap();
    let s = &p.services["web"];
    assert_eq!(s.command, Some(vec!["z".to_string()]));
    assert_eq!(s.environment["A"].as_deref(), Some("1"));
    assert_eq!(s.environment["B"].as_deref(), Some("3"));
    assert_eq!(s.ports.len(), 2);
    assert_eq!(s.volumes.len(), 1);
    assert_eq!(s.volumes[0].source.as_deref(), Some("vol"));
    assert_eq!(p.working_dir, dir);
    o.files.push(dir.join("bad.yaml"));
    let err = load(&o).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "{}: services.web.ports.0: invalid port",
            dir.join("bad.yaml").display()
        )),
        "{err}"
    );
}

#[test]
fn config_hash_changes_only_with_the_containers() {
    let base =
        "services:\n  web:\n    image: a\n    environment: {A: '1'}\n    deploy: {replicas: 2}\n";
    let h = |y: &str| one(y).unwrap().config_hash("web");
    let h0 = h(base);
    assert_eq!(h0.len(), 64);
    assert_eq!(h0, h(base));
    assert_ne!(h0, h(&base.replace("image: a", "image: b")));
    assert_ne!(h0, h(&base.replace("'1'", "'2'")));
    assert_eq!(h0, h(&base.replace("replicas: 2", "replicas: 5")));
    assert_eq!(
        h0,
        h(&base.replace("deploy: {replicas: 2}", "deploy: {replicas: 2}\n    x-berth-autoscale: {min: 1, max: 4, target_cpu_percent: 50}"))
    );
}

#[test]
fn config_output_round_trips() {
    let p = one("services:\n  web:\n    image: nginx\n    command: [echo, '$$HOME']\n    ports: ['8080:80']\n    healthcheck: {test: [CMD, \"true\"], interval: 1m30s}\n    depends_on: [db]\n  db:\n    image: pg\n    volumes: ['data:/var/lib/pg', './conf:/conf:ro']\nvolumes:\n  data: {}\n").unwrap();
    let y = p.to_yaml();
    assert!(y.starts_with("name: myapp\nservices:\n"), "{y}");
    assert!(y.contains("interval: 1m30s"), "{y}");
    assert!(
        y.contains("published: '8080'") || y.contains("published: \"8080\""),
        "{y}"
    );
    assert!(y.contains("condition: service_started"), "{y}");
    assert!(y.contains("$$HOME"), "{y}");
    assert_eq!(p.services["web"].command.as_ref().unwrap()[1], "$HOME");
    // `config` output is itself a valid compose file that loads to the same model
    let again = load_dir(&[("compose.yaml", &y)]).unwrap();
    assert_eq!(again.services, p.services);
    assert_eq!(again.networks, p.networks);
    assert_eq!(again.volumes, p.volumes);
}

#[test]
fn config_output_round_trips_secrets_and_configs() {
    let p = one("services:\n  web:\n    image: nginx\n    secrets: [pw, {source: pw, target: /p2, uid: '7', mode: 0400}]\n    configs: [{source: c, target: /etc/c.conf}]\nsecrets:\n  pw: {file: ./pw.txt}\nconfigs:\n  c: {content: \"a=$$1\\n\"}\n").unwrap();
    let y = p.to_yaml();
    assert!(
        y.contains("mode: '0400'") || y.contains("mode: \"0400\""),
        "{y}"
    );
    let again = load_dir(&[("compose.yaml", &y)]).unwrap();
    assert_eq!(again.services, p.services);
    assert_eq!(again.secrets, p.secrets);
    assert_eq!(again.configs, p.configs);
    assert_eq!(p.configs["c"], FileSource::Content("a=$1\n".into()));
}

#[test]
fn autoscale_replicas_outside_range() {
    assert!(one_err("services:\n  web:\n    image: a\n    deploy: {replicas: 9}\n    x-berth-autoscale: {min: 1, max: 4, target_cpu_percent: 50}\n").contains("outside x-berth-autoscale's range"));
}

#[test]
fn yaml_anchors_and_merge_keys() {
    let p = one("x-base: &base\n  image: busybox\n  stop_grace_period: 3s\nservices:\n  a:\n    <<: *base\n  b:\n    <<: *base\n    image: alpine\n").unwrap();
    assert_eq!(p.services["a"].image, "busybox");
    assert_eq!(p.services["b"].image, "alpine");
    assert_eq!(
        p.services["b"].stop_grace_period,
        Some(Duration::from_secs(3))
    );
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn fixtures_load_unchanged() {
    for f in [
        "webapp-redis",
        "wordpress",
        "frontend-backend",
        "override",
        "anchors",
        "supermarket",
    ] {
        let p = load(&opts(&fixture(f))).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(!p.services.is_empty(), "{f}");
        crate::options::check(&p).unwrap_or_else(|e| panic!("{f}: {e}"));
    }
}

#[test]
fn fixture_wordpress() {
    let p = load(&opts(&fixture("wordpress"))).unwrap();
    assert_eq!(p.name, "wordpress");
    assert_eq!(p.volumes["db_data"].name, "wordpress_db_data");
    assert_eq!(
        p.services["wordpress"].depends_on["db"].condition,
        Condition::ServiceHealthy
    );
    assert_eq!(p.services["db"].expose, ["3306", "33060"]);
    assert_eq!(
        p.services["db"].healthcheck.as_ref().unwrap().interval,
        Some(Duration::from_secs(10))
    );
    assert_eq!(p.start_order(&[]), ["db", "wordpress"]);
}

#[test]
fn fixture_override_merges() {
    let p = load(&opts(&fixture("override"))).unwrap();
    let web = &p.services["web"];
    assert_eq!(
        web.ports
            .iter()
            .map(|p| p.published.clone().unwrap())
            .collect::<Vec<_>>(),
        ["8080", "9229"]
    );
    assert_eq!(web.environment["LOG_LEVEL"].as_deref(), Some("debug"));
    assert_eq!(web.environment["APP_NAME"].as_deref(), Some("shop"));
    assert_eq!(
        web.volumes[0].source.as_deref(),
        Some(fixture("override").join("web").to_str().unwrap())
    );
    assert_eq!(
        p.services["db"].environment["POSTGRES_USER"].as_deref(),
        Some("postgres")
    );
}

#[test]
fn fixture_frontend_backend() {
    let p = load(&opts(&fixture("frontend-backend"))).unwrap();
    assert!(p.networks["backend"].internal);
    assert_eq!(p.networks["backend"].name, "frontend-backend_backend");
    let app = &p.services["app"];
    assert_eq!(app.networks["frontend"].aliases, ["application"]);
    assert_eq!(
        app.networks["backend"].ipv4_address.as_deref(),
        Some("172.16.238.10")
    );
    assert!(!p.networks.contains_key("default"));
}

#[test]
fn fixture_anchors() {
    let mut o = opts(&fixture("anchors"));
    o.env.insert("TAG".into(), "1.36".into());
    let p = load(&o).unwrap();
    let api = &p.services["api"];
    assert_eq!(api.image, "docker.io/library/busybox:1.36");
    assert_eq!(api.environment["TZ"].as_deref(), Some("UTC"));
    assert_eq!(api.environment["ROLE"].as_deref(), Some("api"));
    assert_eq!(api.restart.as_deref(), Some("unless-stopped"));
    assert_eq!(
        p.services["worker"].healthcheck.as_ref().unwrap().interval,
        Some(Duration::from_secs(30))
    );
    assert_eq!(
        p.services["worker"].healthcheck.as_ref().unwrap().retries,
        Some(3)
    );
}

#[test]
fn fixture_supermarket() {
    let p = load(&opts(&fixture("supermarket"))).unwrap();
    assert_eq!(p.name, "supermarket");
    let pay = &p.services["payment"];
    assert_eq!(pay.deploy.replicas, Some(3));
    let a = pay.autoscale.as_ref().unwrap();
    assert_eq!(
        (a.min, a.max, a.target),
        (3, 6, AutoscaleTarget::CpuPercent(60.0))
    );
    assert_eq!(
        pay.deploy.update_config.as_ref().unwrap().order,
        Order::StartFirst
    );
    assert_eq!(pay.deploy.resources.limits.memory, Some(64 << 20));
    assert!(p.networks["back"].internal);
    assert_eq!(p.start_order(&[]), ["db", "inventory", "payment"]);
}

#[test]
fn fixed_address_with_replicas() {
    let err = one_err("services:\n  web:\n    image: a\n    deploy: {replicas: 2}\n    networks:\n      n: {ipv4_address: 10.5.0.9}\nnetworks:\n  n: {ipam: {config: [{subnet: 10.5.0.0/24}]}}\n");
    assert!(err.ends_with("services.web.networks.n: a fixed address can't be shared by 2 replicas: invalid compose project"), "{err}");
}

#[test]
fn reset_in_an_override_file() {
    let p = load_dir(&[
        (
            "compose.yaml",
            "services:\n  web:\n    image: a\n    ports: ['8080:80']\n    command: [x]\n",
        ),
        (
            "compose.override.yaml",
            "services:\n  web:\n    ports: !reset []\n    command: !reset null\n",
        ),
    ])
    .unwrap();
    assert!(p.services["web"].ports.is_empty());
    assert_eq!(p.services["web"].command, None);
}

#[test]
fn compose_file_variable() {
    let d = Dir::new(
        "app",
        &[
            ("one.yaml", "services:\n  a:\n    image: a\n"),
            ("two.yaml", "services:\n  b:\n    image: b\n"),
        ],
    );
    let mut o = opts(&d.path("app"));
    o.env
        .insert("COMPOSE_FILE".into(), "one.yaml:two.yaml".into());
    let p = load(&o).unwrap();
    assert_eq!(p.services.keys().collect::<Vec<_>>(), ["a", "b"]);
    // also from the .env file
    std::fs::write(d.path("app").join(".env"), "COMPOSE_FILE=two.yaml\n").unwrap();
    o.env.clear();
    assert_eq!(load(&o).unwrap().services.keys().collect::<Vec<_>>(), ["b"]);
}

#[test]
fn project_round_trips_through_json() {
    let p = load(&opts(&fixture("supermarket"))).unwrap();
    let json = serde_json::to_string(&p).unwrap();
    let back: Project = serde_json::from_str(&json).unwrap();
    assert_eq!(back, p);
}

#[test]
fn enabling_a_disabled_service_brings_its_dependencies() {
    let mut p = one("services:\n  web:\n    image: a\n  tool:\n    image: b\n    profiles: [tools]\n    depends_on: [helper]\n  helper:\n    image: c\n    profiles: [helpers]\n").unwrap();
    assert_eq!(p.services.len(), 1);
    p.enable_services(&["tool".into()]).unwrap();
    assert_eq!(
        p.services.keys().collect::<Vec<_>>(),
        ["helper", "tool", "web"]
    );
    assert!(p.disabled.is_empty());
    assert_eq!(
        p.enable_services(&["nope".into()]).unwrap_err().to_string(),
        "no such service: nope"
    );
}

#[test]
fn project_keeps_only_the_variables_services_take() {
    let d = Dir::new(
        "app",
        &[(
            "compose.yaml",
            "services:\n  web:\n    image: a\n    environment: [TAKEN, SET=1]\n",
        )],
    );
    let mut o = opts(&d.path("app"));
    o.env.insert("TAKEN".into(), "v".into());
    o.env.insert("SECRET_TOKEN".into(), "do not store".into());
    let p = load(&o).unwrap();
    assert_eq!(p.environment.keys().collect::<Vec<_>>(), ["TAKEN"]);
}

#[test]
fn extends_in_the_same_file_merges_under_the_service() {
    let p = one("services:
  base:
    image: app:1
    environment: {A: '1', B: '2'}
    dns: [192.0.2.1]
    command: [serve]
  web:
    extends: base
    environment: {B: three}
    command: [serve, --debug]
  worker:
    extends: {service: web}
    dns: [192.0.2.2]
")
    .unwrap();
    let web = &p.services["web"];
    assert_eq!(web.image, "app:1");
    assert_eq!(web.environment["A"].as_deref(), Some("1"));
    assert_eq!(web.environment["B"].as_deref(), Some("three"));
    assert_eq!(
        web.command.as_deref(),
        Some(&["serve".to_string(), "--debug".into()][..])
    );
    // Extends of an extends; sequences appended, as a later file's.
    let w = &p.services["worker"];
    assert_eq!(w.command, web.command);
    assert_eq!(w.dns, ["192.0.2.1", "192.0.2.2"]);
}

#[test]
fn extends_of_another_file_keeps_its_paths_relative_to_it() {
    let d = Dir::new(
        "myapp",
        &[(
            "compose.yaml",
            "services:\n  api:\n    extends:\n      file: common/base.yaml\n      service: svc\n    image: api:2\nvolumes:\n  named: {}\n",
        )],
    );
    let common = d.path("myapp").join("common");
    std::fs::create_dir_all(common.join("ctx")).unwrap();
    std::fs::write(common.join("svc.env"), "FROM_FILE=yes\n").unwrap();
    std::fs::write(
        common.join("base.yaml"),
        "services:\n  svc:\n    build: ./ctx\n    env_file: svc.env\n    volumes: ['./data:/data', 'named:/n']\n    environment: {TAG: '${TAG:-none}'}\n",
    )
    .unwrap();
    let mut o = opts(&d.path("myapp"));
    o.env.insert("TAG".into(), "t1".into());
    let p = load(&o).unwrap();
    let api = &p.services["api"];
    assert_eq!(api.image, "api:2");
    assert_eq!(api.build.as_ref().unwrap().context, common.join("ctx"));
    assert_eq!(api.environment["FROM_FILE"].as_deref(), Some("yes"));
    assert_eq!(api.environment["TAG"].as_deref(), Some("t1"));
    let binds: Vec<String> = api
        .volumes
        .iter()
        .map(|v| v.source.clone().unwrap_or_default())
        .collect();
    assert_eq!(binds[0], common.join("data").display().to_string());
    assert_eq!(binds[1], "named");
}

#[test]
fn bad_extends_is_an_error_naming_the_service() {
    for (yaml, want) in [
        (
            "services:\n  a: {image: x, extends: b}\n  b: {image: x, extends: a}\n",
            "services.a.extends: circular reference: a -> b -> a",
        ),
        (
            "services:\n  a: {image: x, extends: nope}\n",
            "services.a.extends: cannot extend: service \"nope\" not found",
        ),
        (
            "services:\n  a: {image: x, extends: {service: b, colour: red}}\n  b: {image: x}\n",
            "services.a.extends Additional property colour is not allowed",
        ),
        (
            "services:\n  a: {image: x, extends: {file: missing.yaml, service: b}}\n",
            "services.a.extends.file:",
        ),
    ] {
        let e = one_err(yaml);
        assert!(e.contains(want), "{yaml}: {e}");
    }
}

#[test]
fn volumes_from_names_a_service_or_a_container() {
    for (yaml, want) in [
        (
            "services:\n  a: {image: x, volumes_from: [nope]}\n",
            "services.a.volumes_from.0: service \"nope\" which is not defined",
        ),
        (
            "services:\n  a: {image: x, volumes_from: ['b:rx']}\n  b: {image: x}\n",
            "services.a.volumes_from.0: \"b:rx\" is not SERVICE[:ro|rw] or container:NAME[:ro|rw]",
        ),
        (
            "services:\n  a: {image: x, volumes_from: ['container:']}\n",
            "names no service or container",
        ),
        (
            "services:\n  a: {image: x, volumes_from: [b]}\n  b: {image: x, volumes_from: [a]}\n",
            "dependency cycle detected",
        ),
    ] {
        let e = one_err(yaml);
        assert!(e.contains(want), "{yaml}: {e}");
    }
}
