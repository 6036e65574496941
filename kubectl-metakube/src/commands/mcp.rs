//! `kubectl metakube mcp`: metakube as a tool for AI assistants — a Model Context Protocol
//! server on stdio (JSON-RPC 2.0, one message per line; the official SDK, rmcp). It talks to
//! the warm daemon like the CLI does and is read-only: no tool changes the cluster.
//!
//! Stdout carries the protocol only; warnings (a skipped list file, a daemon started) go to
//! stderr. A tool that fails answers `isError: true` with the CLI's message; the server goes on.

use std::path::PathBuf;

use metakube_shared::{
    Category, DiagnoseOptions, DiagnoseRequest, Diagnosis, FeedbackOutcome, FeedbackRequest,
    FeedbackResponse, ObjectRef, Snapshot, TargetRef,
};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::{schemars, tool, tool_handler, tool_router, ErrorData, ServerHandler, ServiceExt};
use serde::Deserialize;
use serde_json::Value;

use crate::cli::GlobalArgs;
use crate::render::{self, Output};

/// `diagnose` arguments.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DiagnoseParams {
    /// The object to diagnose as kubectl names it: TYPE/NAME (deploy/checkout, svc/redis,
    /// sts/db, pod/web-0, node/worker-1)
    pub target: String,
    /// Its namespace (default: the kubeconfig context's; "default" for a dump)
    #[serde(default)]
    pub namespace: Option<String>,
    /// The kubeconfig context to use (default: the current one)
    #[serde(default)]
    pub context: Option<String>,
    /// Read this `kubectl cluster-info dump --output-directory` folder instead of the cluster
    #[serde(default)]
    pub from_dump: Option<String>,
}

/// `feedback` arguments.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedbackParams {
    /// The diagnosis id (`id` of a diagnose answer)
    pub id: String,
    /// Whether the cause and fix were right
    pub fixed: bool,
    /// The real cause as TYPE/NAME (secret/db-creds, node/worker-2), when it was another object
    #[serde(default)]
    pub cause: Option<String>,
    /// The real reason code, when known
    #[serde(default)]
    pub reason: Option<String>,
    /// The real category (resource, network, scheduling, image, configuration, storage,
    /// system, application)
    #[serde(default)]
    pub category: Option<String>,
    /// What the fault was and how it was resolved
    #[serde(default)]
    pub note: Option<String>,
    /// Replace feedback already given for this diagnosis
    #[serde(default)]
    pub replace: bool,
}

/// `memory_search` arguments.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemorySearchParams {
    /// What is seen, in words ("pods OOMKilled seconds after start")
    pub query: String,
    /// How many episodes (default 5, at most 50)
    #[serde(default)]
    pub limit: Option<usize>,
}

/// `snapshot` arguments.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotParams {
    /// The object as TYPE/NAME
    pub target: String,
    /// Its namespace
    #[serde(default)]
    pub namespace: Option<String>,
    /// The kubeconfig context
    #[serde(default)]
    pub context: Option<String>,
    /// Re-select from a dump folder instead of the cluster
    #[serde(default)]
    pub from_dump: Option<String>,
    /// Folder to write, in the cluster-info dump layout (replayable with diagnose from_dump)
    pub out: String,
}

/// The MCP server.
#[derive(Clone)]
pub struct Metakube {
    global: GlobalArgs,
    tool_router: ToolRouter<Metakube>,
}

/// A tool's outcome: the text an assistant reads, the structured answer, or the CLI's error.
fn answer(r: anyhow::Result<(String, Value)>) -> Result<CallToolResult, ErrorData> {
    Ok(match r {
        Ok((text, value)) => {
            let mut res = CallToolResult::success(vec![ContentBlock::text(text)]);
            res.structured_content = Some(value);
            res
        }
        Err(e) => {
            let mut msg = format!("{e}");
            for cause in e.chain().skip(1) {
                msg.push_str(&format!("\n  caused by: {cause}"));
            }
            CallToolResult::error(vec![ContentBlock::text(msg)])
        }
    })
}

/// Runs a tool's work on a blocking thread of the runtime: the collection path (kube-rs
/// streams) makes futures that are not `Send`, which the MCP handler requires.
async fn off_thread<F, Fut>(work: F) -> Result<CallToolResult, ErrorData>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<(String, Value)>>,
{
    let handle = tokio::runtime::Handle::current();
    let r = tokio::task::spawn_blocking(move || handle.block_on(work()))
        .await
        .unwrap_or_else(|e| Err(anyhow::anyhow!("the tool failed: {e}")));
    answer(r)
}

impl Metakube {
    /// The snapshot of `target` (TYPE/NAME), live with this server's kubeconfig and the given
    /// namespace and context, or from a dump folder; and the settings it was collected with.
    async fn collect(
        &self,
        target: &str,
        namespace: &Option<String>,
        context: &Option<String>,
        from_dump: Option<String>,
    ) -> anyhow::Result<(Snapshot, GlobalArgs)> {
        let mut g = self.global.clone();
        if namespace.is_some() {
            g.namespace = namespace.clone();
        }
        if context.is_some() {
            g.context = context.clone();
        }
        let target = TargetRef::parse(target, None)?;
        let dump = from_dump.map(PathBuf::from);
        let (snap, _) = super::diagnose::collect_snapshot(&g, &target, dump.as_deref()).await?;
        Ok((snap, g))
    }

    async fn do_diagnose(&self, p: DiagnoseParams) -> anyhow::Result<(String, Value)> {
        let (snapshot, g) = self
            .collect(&p.target, &p.namespace, &p.context, p.from_dump)
            .await?;
        let client = super::daemon(&g).await?;
        let d: Diagnosis = client
            .post(
                "/v1/diagnose",
                &DiagnoseRequest {
                    snapshot,
                    options: DiagnoseOptions {
                        no_llm: true,
                        no_memory: false,
                    },
                },
            )
            .await?;
        let mut text = anstream::StripStream::new(Vec::new());
        render::diagnosis(&mut text, &d, Output::Text)?;
        let text = String::from_utf8_lossy(&text.into_inner()).into_owned();
        Ok((text, serde_json::to_value(&d)?))
    }

    async fn do_feedback(&self, p: FeedbackParams) -> anyhow::Result<(String, Value)> {
        let category = match &p.category {
            Some(c) => Some(Category::parse(&c.to_ascii_lowercase()).ok_or_else(|| {
                anyhow::anyhow!(
                    "unknown category {c:?}; one of: {}",
                    Category::ALL.map(|c| c.as_str()).join(", ")
                )
            })?),
            None => None,
        };
        let cause = match &p.cause {
            Some(c) => {
                let t = TargetRef::parse_any(c, None).map_err(|e| anyhow::anyhow!("cause: {e}"))?;
                Some(ObjectRef {
                    kind: t.kind,
                    namespace: None,
                    name: t.name,
                })
            }
            None => None,
        };
        let req = FeedbackRequest {
            diagnosis_id: p.id,
            outcome: if p.fixed {
                FeedbackOutcome::Fixed
            } else {
                FeedbackOutcome::NotFixed
            },
            cause,
            reason: p.reason,
            note: p.note,
            category,
            fix_command: None,
            replace: p.replace,
        };
        let client = super::daemon(&self.global).await?;
        let r: FeedbackResponse = client.post("/v1/feedback", &req).await?;
        let text = if r.unchanged {
            format!(
                "feedback for {} was already recorded; nothing changed",
                r.diagnosis_id
            )
        } else {
            let mut t = format!("feedback for {} recorded", r.diagnosis_id);
            if let Some(e) = r.episode {
                t.push_str(&format!("; remembered as episode {e}"));
            }
            if let Some(l) = &r.learned {
                t.push_str(&format!("\n{l}"));
            }
            t
        };
        Ok((text, serde_json::to_value(&r)?))
    }

    async fn do_memory_search(&self, p: MemorySearchParams) -> anyhow::Result<(String, Value)> {
        let client = super::daemon(&self.global).await?;
        let v = super::memory::search(&client, &p.query, p.limit.unwrap_or(5)).await?;
        let lines: Vec<String> = v
            .as_array()
            .into_iter()
            .flatten()
            .map(super::memory::hit_line)
            .collect();
        let text = if lines.is_empty() {
            "no episode in memory yet".to_string()
        } else {
            lines.join("\n")
        };
        Ok((text, serde_json::json!({ "episodes": v })))
    }

    async fn do_snapshot(&self, p: SnapshotParams) -> anyhow::Result<(String, Value)> {
        let (snap, _) = self
            .collect(&p.target, &p.namespace, &p.context, p.from_dump)
            .await?;
        let out = PathBuf::from(&p.out);
        crate::collect::write::write_dump(&snap, &out)?;
        let text = format!(
            "wrote {} objects and {} logs to {}",
            snap.objects.len(),
            snap.logs.len(),
            out.display()
        );
        Ok((
            text,
            serde_json::json!({
                "out": out.display().to_string(),
                "objects": snap.objects.len(),
                "logs": snap.logs.len(),
                "namespace": snap.meta.namespace,
            }),
        ))
    }
}

#[tool_router]
impl Metakube {
    /// A server answering with `global`'s socket, kubeconfig and timeouts.
    pub fn new(global: GlobalArgs) -> Metakube {
        Metakube {
            global,
            tool_router: Self::tool_router(),
        }
    }

    #[tool(
        description = "Diagnose a Kubernetes object (live with the user's kubeconfig, or from a cluster-info dump): the root-cause object, fault category, evidence and a validated fix, in well under a second. Read-only."
    )]
    async fn diagnose(
        &self,
        Parameters(p): Parameters<DiagnoseParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let me = self.clone();
        off_thread(move || async move { me.do_diagnose(p).await }).await
    }

    #[tool(
        description = "Tell metakube whether a diagnosis was right (fixed=true) or name the real cause (fixed=false with cause TYPE/NAME, and a note); it learns the fault family for next time."
    )]
    async fn feedback(
        &self,
        Parameters(p): Parameters<FeedbackParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let me = self.clone();
        off_thread(move || async move { me.do_feedback(p).await }).await
    }

    #[tool(
        description = "Search metakube's memory of confirmed incidents for ones whose symptoms read like a description."
    )]
    async fn memory_search(
        &self,
        Parameters(p): Parameters<MemorySearchParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let me = self.clone();
        off_thread(move || async move { me.do_memory_search(p).await }).await
    }

    #[tool(
        description = "Write what a diagnosis of an object sees (its objects, events and log tails; secret values never) to a folder in the cluster-info dump layout, for replay or a bug report."
    )]
    async fn snapshot(
        &self,
        Parameters(p): Parameters<SnapshotParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let me = self.clone();
        off_thread(move || async move { me.do_snapshot(p).await }).await
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Metakube {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("metakube", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "metakube diagnoses Kubernetes faults: call diagnose with a target like deploy/checkout \
                 (and namespace), read root_cause, category, evidence and remediation; send feedback with \
                 the diagnosis id once the user knows whether it was right.",
            )
    }
}

/// Serves on stdio until the client closes stdin.
pub async fn run(g: &GlobalArgs) -> anyhow::Result<()> {
    let service = Metakube::new(g.clone())
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| anyhow::anyhow!("MCP handshake failed: {e}"))?;
    service.waiting().await?;
    Ok(())
}
