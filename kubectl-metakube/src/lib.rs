//! kubectl-metakube: the thin kubectl plugin.
//!
//! It collects context (live with kube-rs, or offline from a `kubectl cluster-info dump`
//! folder), sends it to the warm `metakubed` daemon over a Unix socket, and prints the answer.
//! It never links the model, the episode index or the database: those live in the daemon.

pub mod cli;
pub mod client;
pub mod collect;
pub mod commands;
pub mod render;
pub mod watch;
