//! containerd's vocabulary, written once and shared by every layer of the daemon and by
//! `ctr`: error classes ([`errdefs`]), identifier rules ([`identifiers`]), label rules
//! ([`labels`]), digest strings ([`digest`]), Go durations ([`duration`]), record times
//! ([`time`]), the filter syntax of every List ([`filters`]), OCI platform names
//! ([`platform`]) and Go's path cleaning ([`gopath`]); for tests, how a missing prerequisite skips or fails ([`prereq`]); and,
//! with the `journal` feature, log lines for systemd's journal (`journal`).
//!
//! Nothing here talks to the network or the disk; the gRPC mapping of [`errdefs::Kind`] lives
//! at the daemon's edge (`rcontainerd-services`).

pub mod digest;
pub mod duration;
pub mod errdefs;
pub mod filters;
pub mod gopath;
pub mod identifiers;
#[cfg(feature = "journal")]
pub mod journal;
pub mod labels;
pub mod platform;
pub mod prereq;
pub mod time;
