//! The example compose files (shapes docker's documentation shows) load unchanged through
//! the public API, and every replica of every service maps onto CreateOptions.

use berth_services::compose::{load, LoadOptions};
use berth_services::options::create_options;
use std::path::Path;

fn fixtures() -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

#[test]
fn every_fixture_loads_and_maps() {
    let all = fixtures();
    assert_eq!(all.len(), 6);
    for dir in all {
        let o = LoadOptions {
            working_dir: dir.clone(),
            ..Default::default()
        };
        let p = load(&o).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let order = p.start_order(&[]);
        assert_eq!(order.len(), p.services.len(), "{}", dir.display());
        for name in &order {
            let s = &p.services[name];
            let replicas = s.deploy.replicas.unwrap_or(1);
            for n in 1..=replicas {
                let c = create_options(&p, s, n, false)
                    .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
                assert_eq!(c.labels["com.docker.compose.project"], p.name);
                assert_eq!(
                    c.labels["com.docker.compose.config-hash"],
                    p.config_hash(name)
                );
                assert!(c.publish.is_empty());
            }
            // dependencies come first
            for dep in s.depends_on.keys() {
                let pos = |x: &str| order.iter().position(|o| o == x).unwrap();
                assert!(
                    pos(dep) < pos(name),
                    "{}: {dep} before {name}",
                    dir.display()
                );
            }
        }
        // `config` output loads again to the same services
        let tmp = tempfile::tempdir().unwrap();
        let again_dir = tmp.path().join(&p.name);
        std::fs::create_dir(&again_dir).unwrap();
        std::fs::write(again_dir.join("compose.yaml"), p.to_yaml()).unwrap();
        let again = load(&LoadOptions {
            working_dir: again_dir,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(again.services, p.services, "{}", dir.display());
        assert_eq!(again.networks, p.networks, "{}", dir.display());
    }
}
