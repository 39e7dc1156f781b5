//! A container's /etc/hosts and /etc/resolv.conf, as docker writes them. They live in the
//! container's directory and are bind-mounted; the monitor writes them again at each
//! start (the addresses come from IPAM then).

use std::net::IpAddr;

/// docker's fixed lines.
pub const HOSTS_BASE: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

/// /etc/hosts: the fixed lines, the `--add-host` entries (already resolved to
/// `(name, ip)`), then the container's own addresses with its hostname.
pub fn hosts(hostname: &str, own: &[IpAddr], extra: &[(String, IpAddr)]) -> String {
    let mut s = HOSTS_BASE.to_string();
    for (n, ip) in extra {
        s.push_str(&format!("{ip}\t{n}\n"));
    }
    for ip in own {
        s.push_str(&format!("{ip}\t{hostname}\n"));
    }
    s
}

/// An `--add-host` value: NAME:IP or NAME=IP (IPv6 addresses may contain ':'; docker
/// splits at the first separator), IP may be `host-gateway`.
pub fn parse_extra_host(v: &str) -> Result<(String, String), String> {
    let (n, ip) = v
        .split_once('=')
        .or_else(|| v.split_once(':'))
        .ok_or_else(|| format!("bad format for add-host: {v:?}"))?;
    if n.is_empty() || ip.is_empty() {
        return Err(format!("bad format for add-host: {v:?}"));
    }
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    if ip != "host-gateway" && ip.parse::<IpAddr>().is_err() {
        return Err(format!("invalid IP address in add-host: {ip:?}"));
    }
    Ok((n.to_string(), ip.to_string()))
}

/// The nameservers of a resolv.conf's text.
pub fn nameservers(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            (it.next() == Some("nameserver"))
                .then(|| it.next().map(str::to_string))
                .flatten()
        })
        .collect()
}

fn lines_with(text: &str, key: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.split_whitespace().next() == Some(key))
        .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
        .collect()
}

/// What the resolv.conf of a container on bridge networks says, as docker: on a network
/// with berth-dns, its gateway first (names of the network resolve there; it forwards
/// the rest to the host's servers); on the default network, the host's servers without
/// the loopback ones (unreachable from the container), or Google's when none is left;
/// `--dns` replaces the host's servers, `--dns-search`/`--dns-option` its search and
/// options lines.
pub fn resolv_conf(
    host: &str,
    dns_gateway: Option<IpAddr>,
    servers: &[String],
    search: &[String],
    options: &[String],
) -> String {
    let mut ns: Vec<String> = Vec::new();
    if let Some(g) = dns_gateway {
        ns.push(g.to_string());
    }
    if !servers.is_empty() {
        ns.extend(servers.iter().cloned());
    } else if dns_gateway.is_none() {
        ns.extend(
            nameservers(host)
                .into_iter()
                .filter(|s| !s.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())),
        );
        if ns.is_empty() {
            ns = vec!["8.8.8.8".into(), "8.8.4.4".into()];
        }
    }
    let mut out = String::new();
    let search: Vec<String> = if search.is_empty() {
        lines_with(host, "search")
    } else {
        vec![search.join(" ")]
    };
    for s in search.iter().filter(|s| !s.is_empty()) {
        out.push_str(&format!("search {s}\n"));
    }
    for n in &ns {
        out.push_str(&format!("nameserver {n}\n"));
    }
    let opts: Vec<String> = if options.is_empty() {
        lines_with(host, "options")
    } else {
        vec![options.join(" ")]
    };
    for o in opts.iter().filter(|o| !o.is_empty()) {
        out.push_str(&format!("options {o}\n"));
    }
    out
}

/// Writes `data` to `p` (0644): atomically when `in_place` is false; in place (truncate
/// and write) when the file is bind-mounted into a running container, whose mount would
/// keep the old inode otherwise.
pub fn write_file(p: &std::path::Path, data: &str, in_place: bool) -> crate::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if in_place {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .create(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(p)
            .map_err(|e| crate::Error::io(p, e))?;
        return f
            .write_all(data.as_bytes())
            .map_err(|e| crate::Error::io(p, e));
    }
    let dir = p.parent().unwrap_or(std::path::Path::new("."));
    let mut t = tempfile::Builder::new()
        .prefix(&berth_image::store::temp_prefix())
        .tempfile_in(dir)
        .map_err(|e| crate::Error::io(dir, e))?;
    t.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))
        .and_then(|_| t.write_all(data.as_bytes()))
        .map_err(|e| crate::Error::io(t.path(), e))?;
    t.persist(p).map_err(|e| crate::Error::io(p, e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_resolv() {
        let h = hosts(
            "web",
            &["172.18.0.2".parse().unwrap()],
            &[("db".into(), "10.0.0.5".parse().unwrap())],
        );
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(h.ends_with("10.0.0.5\tdb\n172.18.0.2\tweb\n"), "{h}");
        let host =
            "search corp.example\nnameserver 127.0.0.53\nnameserver 10.1.1.1\noptions edns0\n";
        assert_eq!(
            resolv_conf(host, None, &[], &[], &[]),
            "search corp.example\nnameserver 10.1.1.1\noptions edns0\n"
        );
        assert_eq!(
            resolv_conf("nameserver 127.0.0.53\n", None, &[], &[], &[]),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
        assert_eq!(
            resolv_conf(
                host,
                Some("172.18.0.1".parse().unwrap()),
                &[],
                &["a.example".into()],
                &["ndots:2".into()]
            ),
            "search a.example\nnameserver 172.18.0.1\noptions ndots:2\n"
        );
        assert_eq!(
            resolv_conf(host, None, &["9.9.9.9".into()], &[], &[]),
            "search corp.example\nnameserver 9.9.9.9\noptions edns0\n"
        );
    }

    #[test]
    fn extra_hosts() {
        assert_eq!(
            parse_extra_host("db:10.0.0.5").unwrap(),
            ("db".into(), "10.0.0.5".into())
        );
        assert_eq!(
            parse_extra_host("v6=::1").unwrap(),
            ("v6".into(), "::1".into())
        );
        assert_eq!(
            parse_extra_host("gw:host-gateway").unwrap(),
            ("gw".into(), "host-gateway".into())
        );
        assert!(parse_extra_host("nohost").is_err());
        assert!(parse_extra_host("x:notanip").is_err());
        assert!(parse_extra_host(":1.2.3.4").is_err());
    }
}
