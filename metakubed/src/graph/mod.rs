//! Stage 3: the graph. The instance KubeGraph of one snapshot, the persisted domain graph of
//! symptom → cause → fix knowledge, and the root-cause search that joins them.

pub mod domain;
pub mod instance;
pub mod relations;
pub mod search;
