fn main() {
    let n = berth_network::nft::NetworkRules { bridge: "br-t".into(), subnets: vec!["172.18.0.0/16".parse().unwrap(), "fd00:1::/64".parse().unwrap()], internal: false };
    let d = berth_network::nft::document(berth_network::nft::network_commands(&n).unwrap());
    println!("{}", serde_json::to_string_pretty(&d).unwrap());
}
