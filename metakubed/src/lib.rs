//! metakubed: the long-running daemon behind `kubectl metakube`.
//!
//! It keeps warm what makes a diagnosis fast (the persisted store, the domain graph of
//! symptom → cause → fix knowledge) and answers protocol v1 over a Unix socket. The pipeline
//! is visible in the modules, stage by stage:
//!
//! `snapshot` (typed objects) → `signals` (normalised symptoms) → `graph` (instance KubeGraph,
//! domain graph, root-cause search) → `memory` (episodic recall and the meta-cognitive
//! controller) → `remediation` (validated patches), assembled by `engine`; `llm` writes the
//! grounded explanation afterwards; `history` attaches what changed near the fault (rollout
//! revisions, and each live cluster's history kept by resourceVersion); `server` and `store` sit
//! around it.
//!
//! What it does not do: talk to the Kubernetes API (the plugin collects), or apply fixes (the
//! plugin applies them after a server-side dry run and the user's confirmation).

pub mod config;
pub mod engine;
pub mod graph;
pub mod history;
pub mod kept;
pub mod llm;
pub mod memory;
pub mod remediation;
pub mod server;
pub mod signals;
pub mod snapshot;
pub mod store;
pub mod words;

pub use config::Config;
pub use engine::{diagnose, diagnose_with, Knowledge};
