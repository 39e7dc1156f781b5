//! Answering one query from a network's records: A, AAAA and PTR for the containers and
//! services of the networks of the container that asked (the network the query came in
//! on, and every other DNS network that container is on, as docker's resolver answers);
//! everything else is for the upstream servers. A name several records give (an alias shared by replicas, a service name)
//! answers with every address of all of them.

use std::collections::HashMap;
use std::net::IpAddr;

use berth_network::dns::{EndpointRecord, NetworkRecord, ServiceRecord};
use hickory_proto::op::{Edns, Message, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

/// Containers come and go (and restart with other addresses): answers are not to be
/// cached.
pub const TTL: u32 = 0;

/// The largest UDP answer without EDNS (RFC 1035).
const UDP_PLAIN: usize = 512;

/// One network's names.
#[derive(Debug, Default)]
pub struct Zone {
    /// Lowercase name without trailing dot -> addresses.
    names: HashMap<String, Vec<IpAddr>>,
    /// Address -> "<container>.<network>." (docker's PTR answer).
    ptrs: HashMap<IpAddr, String>,
    /// --internal: no upstream forwarding (the network has no way out).
    pub internal: bool,
}

impl Zone {
    pub fn new(
        net: &NetworkRecord,
        endpoints: &[EndpointRecord],
        services: &[ServiceRecord],
    ) -> Zone {
        let mut z = Zone {
            internal: net.internal,
            ..Zone::default()
        };
        let mut add = |names: Vec<String>, addrs: &[IpAddr]| {
            for n in names {
                let v = z.names.entry(n).or_default();
                for a in addrs {
                    if !v.contains(a) {
                        v.push(*a);
                    }
                }
            }
        };
        for s in services {
            add(s.dns_names(&net.name), &s.addresses);
        }
        for ep in endpoints {
            add(ep.dns_names(&net.name), &ep.addresses);
        }
        for ep in endpoints {
            if !ep.name.is_empty() {
                for a in &ep.addresses {
                    z.ptrs.insert(
                        *a,
                        format!("{}.{}.", ep.name, net.name).to_ascii_lowercase(),
                    );
                }
            }
        }
        z
    }

    /// The names of several networks as one zone, for a container on all of them. A
    /// name on two networks answers with its addresses on both; upstream forwarding is
    /// off only when every network is internal.
    pub fn merged(parts: &[&Zone]) -> Zone {
        let mut z = Zone {
            internal: parts.iter().all(|p| p.internal),
            ..Zone::default()
        };
        for p in parts {
            for (n, addrs) in &p.names {
                let v = z.names.entry(n.clone()).or_default();
                for a in addrs {
                    if !v.contains(a) {
                        v.push(*a);
                    }
                }
            }
            for (a, t) in &p.ptrs {
                z.ptrs.entry(*a).or_insert_with(|| t.clone());
            }
        }
        z
    }
}

/// What to do with a query.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Send these bytes back.
    Reply(Vec<u8>),
    /// Not ours: ask the upstream servers (internal networks get SERVFAIL instead).
    Forward,
    /// Not even a readable header: say nothing.
    Drop,
}

fn reply(req: &Message, code: ResponseCode) -> Message {
    let mut m = Message::new(req.metadata.id, MessageType::Response, req.metadata.op_code);
    m.metadata = Metadata::response_from_request(&req.metadata);
    m.metadata.recursion_available = true;
    m.metadata.response_code = code;
    m.add_queries(req.queries.iter().cloned());
    if req.edns.is_some() {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        m.set_edns(e);
    }
    m
}

fn encode(m: &Message, limit: usize) -> Outcome {
    match m.to_vec() {
        Ok(b) if b.len() <= limit => Outcome::Reply(b),
        Ok(_) => match m.truncate().to_vec() {
            Ok(b) => Outcome::Reply(b),
            Err(_) => Outcome::Drop,
        },
        Err(_) => Outcome::Drop,
    }
}

/// An error answer for raw request bytes (FORMERR for garbage, SERVFAIL when the
/// upstream servers failed): the id and question are echoed when readable.
pub fn error_reply(req: &[u8], code: ResponseCode) -> Option<Vec<u8>> {
    match Message::from_vec(req) {
        Ok(m) => reply(&m, code).to_vec().ok(),
        Err(_) if req.len() >= 2 => {
            let id = u16::from_be_bytes([req[0], req[1]]);
            Message::error_msg(id, OpCode::Query, code).to_vec().ok()
        }
        Err(_) => None,
    }
}

/// Answers `req` from `zone` if it is about the zone's names or addresses. `udp`: the
/// answer must fit the client's UDP size (else it is truncated and the client asks again
/// over TCP).
pub fn handle(zone: &Zone, req: &[u8], udp: bool) -> Outcome {
    let m = match Message::from_vec(req) {
        Ok(m) => m,
        Err(_) => {
            return match error_reply(req, ResponseCode::FormErr) {
                Some(b) => Outcome::Reply(b),
                None => Outcome::Drop,
            }
        }
    };
    if m.metadata.message_type != MessageType::Query {
        return Outcome::Drop;
    }
    let limit = if !udp {
        usize::from(u16::MAX)
    } else {
        m.edns
            .as_ref()
            .map(|e| usize::from(e.max_payload()).max(UDP_PLAIN))
            .unwrap_or(UDP_PLAIN)
    };
    if m.metadata.op_code != OpCode::Query {
        return encode(&reply(&m, ResponseCode::NotImp), limit);
    }
    let [q] = m.queries.as_slice() else {
        return encode(&reply(&m, ResponseCode::FormErr), limit);
    };
    if q.query_class() != DNSClass::IN {
        return Outcome::Forward;
    }
    let qname = q.name().to_lowercase();
    let text = qname.to_ascii();
    let key = text.trim_end_matches('.');

    if q.query_type() == RecordType::PTR {
        if let Ok(net) = qname.parse_arpa_name() {
            let full = if net.addr().is_ipv4() { 32 } else { 128 };
            if net.prefix_len() == full {
                if let Some(target) = zone.ptrs.get(&net.addr()) {
                    let Ok(target) = Name::from_ascii(target) else {
                        return Outcome::Forward;
                    };
                    let mut r = reply(&m, ResponseCode::NoError);
                    r.metadata.authoritative = true;
                    r.add_answer(Record::from_rdata(
                        q.name().clone(),
                        TTL,
                        RData::PTR(PTR(target)),
                    ));
                    return encode(&r, limit);
                }
            }
        }
        return Outcome::Forward;
    }

    let Some(addrs) = zone.names.get(key) else {
        return Outcome::Forward;
    };
    let mut r = reply(&m, ResponseCode::NoError);
    r.metadata.authoritative = true;
    for a in addrs {
        let rdata = match (q.query_type(), a) {
            (RecordType::A | RecordType::ANY, IpAddr::V4(v4)) => RData::A(A(*v4)),
            (RecordType::AAAA | RecordType::ANY, IpAddr::V6(v6)) => RData::AAAA(AAAA(*v6)),
            // The name is ours: other types have no data (NOERROR, empty), never upstream.
            _ => continue,
        };
        r.add_answer(Record::from_rdata(q.name().clone(), TTL, rdata));
    }
    encode(&r, limit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_network::ipam::Pool;
    use hickory_proto::op::Query;

    fn net(internal: bool) -> NetworkRecord {
        NetworkRecord {
            id: "n".repeat(64),
            name: "appnet".into(),
            driver: "bridge".into(),
            bridge: "br-nnnnnnnnnnnn".into(),
            subnets: vec![Pool {
                subnet: "172.18.0.0/16".parse().unwrap(),
                gateway: "172.18.0.1".parse().unwrap(),
                ip_range: None,
            }],
            internal,
            ipv6: true,
            dns: true,
            mtu: None,
            labels: Default::default(),
            options: Default::default(),
            created: String::new(),
        }
    }

    fn ep(id: &str, name: &str, aliases: &[&str], addrs: &[&str]) -> EndpointRecord {
        EndpointRecord {
            container_id: id.into(),
            name: name.into(),
            aliases: aliases.iter().map(|s| s.to_string()).collect(),
            addresses: addrs.iter().map(|a| a.parse().unwrap()).collect(),
            mac: None,
            host_ifname: None,
        }
    }

    fn zone() -> Zone {
        Zone::new(
            &net(false),
            &[
                ep(
                    "0123456789abcdef",
                    "web",
                    &["api"],
                    &["172.18.0.2", "fd00::2"],
                ),
                ep("fedcba9876543210", "web2", &["api"], &["172.18.0.3"]),
            ],
            &[],
        )
    }

    fn query(name: &str, t: RecordType) -> (Message, Vec<u8>) {
        let mut m = Message::query();
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
        let b = m.to_vec().unwrap();
        // As the server sees it (on the wire every name is fully qualified).
        (Message::from_vec(&b).unwrap(), b)
    }

    fn ask(z: &Zone, name: &str, t: RecordType) -> Option<Message> {
        let (q, b) = query(name, t);
        match handle(z, &b, true) {
            Outcome::Reply(r) => {
                let r = Message::from_vec(&r).unwrap();
                assert_eq!(r.metadata.id, q.metadata.id);
                assert_eq!(r.metadata.message_type, MessageType::Response);
                assert_eq!(r.queries, q.queries);
                Some(r)
            }
            Outcome::Forward => None,
            Outcome::Drop => panic!("dropped {name}"),
        }
    }

    fn addrs(m: &Message) -> Vec<String> {
        m.answers.iter().map(|r| r.data.to_string()).collect()
    }

    #[test]
    fn names_aliases_and_short_ids_answer_a_and_aaaa() {
        let z = zone();
        let r = ask(&z, "web", RecordType::A).unwrap();
        assert_eq!(addrs(&r), ["172.18.0.2"]);
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert!(r.metadata.authoritative && r.metadata.recursion_available);
        assert!(r.answers.iter().all(|a| a.ttl == TTL));
        assert_eq!(
            addrs(&ask(&z, "WEB.", RecordType::AAAA).unwrap()),
            ["fd00::2"]
        );
        assert_eq!(
            addrs(&ask(&z, "web.appnet", RecordType::A).unwrap()),
            ["172.18.0.2"]
        );
        assert_eq!(
            addrs(&ask(&z, "0123456789ab", RecordType::A).unwrap()),
            ["172.18.0.2"]
        );
        // An alias shared by two containers answers with both.
        assert_eq!(
            addrs(&ask(&z, "api", RecordType::A).unwrap()),
            ["172.18.0.2", "172.18.0.3"]
        );
        // Ours without data of that type: NOERROR and empty, not forwarded.
        let r = ask(&z, "web2", RecordType::AAAA).unwrap();
        assert!(r.answers.is_empty());
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert!(ask(&z, "web", RecordType::MX).unwrap().answers.is_empty());
    }

    #[test]
    fn other_names_are_forwarded() {
        let z = zone();
        assert!(ask(&z, "example.com", RecordType::A).is_none());
        assert!(ask(&z, "web.other", RecordType::A).is_none());
        assert!(
            ask(&z, "0123456789abcdef", RecordType::A).is_none(),
            "only the short id"
        );
        assert!(ask(&Zone::default(), "web", RecordType::A).is_none());
    }

    #[test]
    fn ptr_answers_for_endpoint_addresses() {
        let z = zone();
        let r = ask(&z, "2.0.18.172.in-addr.arpa.", RecordType::PTR).unwrap();
        assert_eq!(addrs(&r), ["web.appnet."]);
        let six = Name::from(IpAddr::from(
            "fd00::2".parse::<std::net::Ipv6Addr>().unwrap(),
        ));
        let r = ask(&z, &six.to_ascii(), RecordType::PTR).unwrap();
        assert_eq!(addrs(&r), ["web.appnet."]);
        assert!(ask(&z, "9.0.18.172.in-addr.arpa.", RecordType::PTR).is_none());
        assert!(ask(&z, "18.172.in-addr.arpa.", RecordType::PTR).is_none());
    }

    #[test]
    fn malformed_and_unsupported_requests() {
        let z = zone();
        assert_eq!(handle(&z, &[0x12], true), Outcome::Drop);
        let Outcome::Reply(b) = handle(&z, &[0x12, 0x34, 0xff], true) else {
            panic!()
        };
        let r = Message::from_vec(&b).unwrap();
        assert_eq!(
            (r.metadata.id, r.metadata.response_code),
            (0x1234, ResponseCode::FormErr)
        );
        // Two questions: FORMERR.
        let mut m = Message::query();
        m.add_query(Query::query(
            Name::from_ascii("web").unwrap(),
            RecordType::A,
        ));
        m.add_query(Query::query(
            Name::from_ascii("api").unwrap(),
            RecordType::A,
        ));
        let Outcome::Reply(b) = handle(&z, &m.to_vec().unwrap(), true) else {
            panic!()
        };
        assert_eq!(
            Message::from_vec(&b).unwrap().metadata.response_code,
            ResponseCode::FormErr
        );
        // A response is not a query.
        let (mut q, _) = query("web", RecordType::A);
        q.metadata.message_type = MessageType::Response;
        assert_eq!(handle(&z, &q.to_vec().unwrap(), true), Outcome::Drop);
        // SERVFAIL for a failed upstream keeps id and question.
        let (q, b) = query("example.com", RecordType::A);
        let r = Message::from_vec(&error_reply(&b, ResponseCode::ServFail).unwrap()).unwrap();
        assert_eq!(r.metadata.id, q.metadata.id);
        assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
        assert_eq!(r.queries, q.queries);
    }

    #[test]
    fn big_udp_answers_are_truncated_tcp_ones_not() {
        let eps: Vec<EndpointRecord> = (2..60)
            .map(|i| {
                ep(
                    &format!("{i:016x}"),
                    &format!("r{i}"),
                    &["svc"],
                    &[&format!("172.18.0.{i}")],
                )
            })
            .collect();
        let z = Zone::new(&net(false), &eps, &[]);
        let (_, b) = query("svc", RecordType::A);
        let Outcome::Reply(u) = handle(&z, &b, true) else {
            panic!()
        };
        let u = Message::from_vec(&u).unwrap();
        assert!(u.metadata.truncation && u.answers.is_empty());
        let Outcome::Reply(t) = handle(&z, &b, false) else {
            panic!()
        };
        assert_eq!(Message::from_vec(&t).unwrap().answers.len(), 58);
    }

    fn svc(name: &str, addrs: &[&str]) -> ServiceRecord {
        ServiceRecord {
            name: name.into(),
            addresses: addrs.iter().map(|a| a.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn services_answer_with_all_their_addresses() {
        let z = Zone::new(
            &net(false),
            &[
                // dnsrr: the replicas carry the service's name as an alias.
                ep("1111111111111111", "shop-pay-1", &["pay"], &["172.18.0.2"]),
                ep("2222222222222222", "shop-pay-2", &["pay"], &["172.18.0.3"]),
                ep("3333333333333333", "shop-pay-3", &["pay"], &["172.18.0.4"]),
            ],
            &[
                svc("stock", &["172.18.0.200"]),
                svc("Rr", &["172.18.0.5", "172.18.0.6", "fd00::6"]),
                svc("gone", &[]),
            ],
        );
        assert_eq!(
            addrs(&ask(&z, "pay", RecordType::A).unwrap()),
            ["172.18.0.2", "172.18.0.3", "172.18.0.4"]
        );
        assert_eq!(
            addrs(&ask(&z, "stock", RecordType::A).unwrap()),
            ["172.18.0.200"]
        );
        assert_eq!(
            addrs(&ask(&z, "stock.appnet.", RecordType::A).unwrap()),
            ["172.18.0.200"]
        );
        assert_eq!(
            addrs(&ask(&z, "rr", RecordType::A).unwrap()),
            ["172.18.0.5", "172.18.0.6"]
        );
        assert_eq!(
            addrs(&ask(&z, "RR", RecordType::AAAA).unwrap()),
            ["fd00::6"]
        );
        // A service with no address now: ours, no data (never asked upstream).
        let r = ask(&z, "gone", RecordType::A).unwrap();
        assert!(r.answers.is_empty());
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        // Other networks' names and suffixes are not ours.
        assert!(ask(&z, "stock.other", RecordType::A).is_none());
        // A service sharing a name with endpoints answers with all of them.
        let z = Zone::new(
            &net(false),
            &[ep("1111111111111111", "a", &["both"], &["172.18.0.2"])],
            &[svc("both", &["172.18.0.200"])],
        );
        assert_eq!(
            addrs(&ask(&z, "both", RecordType::A).unwrap()),
            ["172.18.0.200", "172.18.0.2"]
        );
    }

    #[test]
    fn a_container_on_two_networks_resolves_both() {
        let mut other = net(true);
        other.name = "data".into();
        let front = Zone::new(
            &net(false),
            &[ep("1111111111111111", "pay", &[], &["172.18.0.2"])],
            &[svc("stock", &["172.18.0.200"])],
        );
        let data = Zone::new(
            &other,
            &[
                ep("2222222222222222", "db", &[], &["172.19.0.2"]),
                ep("3333333333333333", "stock-1", &["stock"], &["172.19.0.3"]),
            ],
            &[],
        );
        let both = Zone::merged(&[&front, &data]);
        assert!(!both.internal, "one network has a way out");
        assert!(Zone::merged(&[&data]).internal);
        assert_eq!(
            addrs(&ask(&both, "db", RecordType::A).unwrap()),
            ["172.19.0.2"]
        );
        assert_eq!(
            addrs(&ask(&both, "stock", RecordType::A).unwrap()),
            ["172.18.0.200", "172.19.0.3"]
        );
        assert_eq!(
            addrs(&ask(&both, "pay.appnet", RecordType::A).unwrap()),
            ["172.18.0.2"]
        );
        let r = ask(&both, "2.0.19.172.in-addr.arpa.", RecordType::PTR).unwrap();
        assert_eq!(addrs(&r), ["db.data."]);
        // The single-network zones are unchanged.
        assert!(ask(&front, "db", RecordType::A).is_none());
    }

    #[test]
    fn internal_zones_say_so() {
        assert!(Zone::new(&net(true), &[], &[]).internal);
        assert!(!zone().internal);
        assert_eq!(zone().names.len(), 7);
        assert!(Zone::default().names.is_empty());
    }
}
