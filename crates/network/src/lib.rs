//! Bridge networks for berth: the pieces a container's monitor (a small sync process, no
//! tokio) and the `berth` CLI need to give containers docker-style bridge networking.
//!
//! Why a library of its own: the monitor links it, so it stays synchronous and small, and
//! every piece works on an explicit network namespace ([`NetNs`]) instead of assuming the
//! host's, so that tests (and the engine's tests) run it inside throwaway namespaces.
//!
//! - [`netns`]: a network namespace as an fd, and running code inside one.
//! - [`netlink`]: a synchronous rtnetlink socket (links, addresses, routes), and the
//!   bridge and veth plumbing built on it ([`netlink::ensure_bridge`],
//!   [`netlink::setup_endpoint`], [`netlink::teardown_endpoint`]).
//! - [`sysctl`]: forwarding and `route_localnet`, written through `/proc/sys` of a namespace.
//! - [`ipam`]: subnets (docker's default pools, `--subnet/--gateway/--ip-range`), the
//!   per-network lease file.
//! - [`mac`]: docker's MAC addresses.
//! - [`nft`]: berth's own nftables table (`inet berth`): published ports as map elements,
//!   masquerade, isolation; applied with `nft -j -f -`.
//! - [`lb`]: services' load balancers in the same table: published ports and a virtual IP
//!   spread over backends in the kernel, per-backend connection counters.
//! - [`ports`]: docker's `-p` syntax and host port reservation by binding.
//! - [`dns`]: the records (`network.json`, `endpoints/<cid>.json`) that `berth-dns` serves,
//!   and where they live.
//!
//! The nftables chains and the packet paths are drawn in this crate's README.md.
#![forbid(unsafe_code)]

pub mod dns;
mod error;
pub mod ipam;
pub mod lb;
pub mod mac;
pub mod netlink;
pub mod netns;
pub mod nft;
pub mod ports;
pub mod sysctl;

pub use error::{Error, Result};
/// The address types this crate's API uses.
pub use ipnet;
pub use mac::MacAddr;
pub use netns::NetNs;
