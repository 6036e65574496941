//! `kubectl metakube mcp`: metakube as a tool for AI assistants — a Model Context Protocol
//! server on stdio (JSON-RPC 2.0, one message per line; the official SDK, rmcp) or on MCP's
//! streamable HTTP transport (`--http 127.0.0.1:PORT`). It talks to the warm daemon like the
//! CLI does and is read-only: no tool changes the cluster unless `--allow-fix` adds
//! `apply_fix`, which applies only a validated patch of a live diagnosis this server made, only
//! after the API server's dry run accepts it and the caller confirms, and audits every step.
//!
//! Stdout carries the protocol only; warnings (a skipped list file, a daemon started) go to
//! stderr. A tool that fails answers `isError: true` with the CLI's message; the server goes on.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

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

use crate::cli::{GlobalArgs, McpArgs};
use crate::collect::live;
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

/// `changes` arguments.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangesParams {
    /// The object as kubectl names it: TYPE/NAME (deploy/checkout, svc/redis)
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
    /// How far back, in seconds (default: the last hour, and at least from 30 minutes before
    /// the first failure near the target)
    #[serde(default)]
    pub since_s: Option<u64>,
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

/// `apply_fix` arguments.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyFixParams {
    /// The id of a diagnosis this server made of a live cluster
    pub id: String,
    /// Which fix of its `remediation` list (default 0, the first); it must be a validated patch
    #[serde(default)]
    pub index: Option<usize>,
    /// false (default): only the API server's dry run, nothing changes; true: apply after the
    /// dry run is accepted. Ask the user before calling with true.
    #[serde(default)]
    pub confirm: bool,
}

/// Live diagnoses this server made, newest last: the only ones `apply_fix` acts on.
const REMEMBERED_DIAGNOSES: usize = 64;

/// A live diagnosis and the connection settings it was collected with.
#[derive(Clone)]
struct Made {
    diagnosis: Diagnosis,
    global: GlobalArgs,
}

/// The MCP server.
#[derive(Clone)]
pub struct Metakube {
    global: GlobalArgs,
    made: Arc<Mutex<VecDeque<Made>>>,
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
        let live = p.from_dump.is_none();
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
                        explain: None,
                        no_memory: false,
                    },
                },
            )
            .await?;
        let mut text = anstream::StripStream::new(Vec::new());
        render::diagnosis(&mut text, &d, Output::Text)?;
        let text = String::from_utf8_lossy(&text.into_inner()).into_owned();
        let value = serde_json::to_value(&d)?;
        if live {
            let mut made = self.made.lock().unwrap_or_else(|p| p.into_inner());
            if made.len() == REMEMBERED_DIAGNOSES {
                made.pop_front();
            }
            made.push_back(Made {
                diagnosis: d,
                global: g,
            });
        }
        Ok((text, value))
    }

    async fn do_apply_fix(&self, p: ApplyFixParams) -> anyhow::Result<(String, Value)> {
        let made = self
            .made
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .rev()
            .find(|m| m.diagnosis.id == p.id)
            .cloned()
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "no live diagnosis {} made by this server; call diagnose on the cluster first \
                     (a diagnosis of a dump has no cluster to apply to)",
                    p.id
                )
            })?;
        let d = &made.diagnosis;
        let index = p.index.unwrap_or(0);
        let (rem, patch) = super::diagnose::validated_patch(d, index)?;
        let command = rem.command.clone().unwrap_or_default();
        let conn = live::connect(&super::diagnose::live_options(&made.global)).await?;
        live::apply_patch(&conn.client, &patch, true).await?;
        let facts = |applied: bool| {
            serde_json::json!({
                "id": d.id,
                "index": index,
                "object": patch.object,
                "patch_type": patch.patch_type,
                "patch": patch.body,
                "command": command,
                "dry_run": "accepted",
                "applied": applied,
                "context": conn.context,
            })
        };
        if !p.confirm {
            super::diagnose::audit(d, &patch, &conn, super::diagnose::Audited::DryRun)?;
            return Ok((
                format!(
                    "the API server accepted a dry run of: {command}\nnothing was changed; \
                     call apply_fix with confirm=true to apply it"
                ),
                facts(false),
            ));
        }
        super::diagnose::apply_and_audit(&conn, d, &patch).await?;
        Ok((
            format!(
                "applied to {} (dry run accepted first; recorded in the audit log): {command}\n\
                 once the user knows whether it worked, send feedback for {}",
                patch.object, d.id
            ),
            facts(true),
        ))
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

    async fn do_changes(&self, p: ChangesParams) -> anyhow::Result<(String, Value)> {
        let (snapshot, g) = self
            .collect(&p.target, &p.namespace, &p.context, p.from_dump)
            .await?;
        let client = super::daemon(&g).await?;
        let r: metakube_shared::ChangesResponse = client
            .post(
                "/v1/changes",
                &metakube_shared::ChangesRequest {
                    snapshot,
                    since_s: p.since_s,
                },
            )
            .await?;
        let mut text = anstream::StripStream::new(Vec::new());
        render::changes(&mut text, &r, Output::Text)?;
        let text = String::from_utf8_lossy(&text.into_inner()).into_owned();
        Ok((text, serde_json::to_value(&r)?))
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
    /// A server answering with `global`'s socket, kubeconfig and timeouts; `apply_fix` only
    /// with `allow_fix`.
    pub fn new(global: GlobalArgs, allow_fix: bool) -> Metakube {
        let mut tool_router = Self::tool_router();
        if !allow_fix {
            tool_router.remove_route("apply_fix");
        }
        Metakube {
            global,
            made: Arc::new(Mutex::new(VecDeque::new())),
            tool_router,
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
        description = "Apply a validated fix of a live diagnosis this server made (remediation[index], default 0). Without confirm=true only the API server's dry run runs and nothing changes; ask the user before confirming. Every dry run and apply is written to metakube's audit log."
    )]
    async fn apply_fix(
        &self,
        Parameters(p): Parameters<ApplyFixParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let me = self.clone();
        off_thread(move || async move { me.do_apply_fix(p).await }).await
    }

    #[tool(
        description = "What changed near an object, oldest first, timed against its first failure: rollout revisions (from its ReplicaSets, in any snapshot) and, on a live cluster, what metakube's history of it saw change (spec, labels; ConfigMap and Secret data by key only). Read-only."
    )]
    async fn changes(
        &self,
        Parameters(p): Parameters<ChangesParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let me = self.clone();
        off_thread(move || async move { me.do_changes(p).await }).await
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

/// Serves on stdio until the client closes stdin, or on streamable HTTP with `--http`.
pub async fn run(g: &GlobalArgs, a: &McpArgs) -> anyhow::Result<()> {
    if let Some(addr) = a.http {
        return serve_http(g, a, addr).await;
    }
    let service = Metakube::new(g.clone(), a.allow_fix)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| anyhow::anyhow!("MCP handshake failed: {e}"))?;
    service.waiting().await?;
    Ok(())
}

/// MCP's streamable HTTP transport (POST /mcp, server-sent events for streamed answers) on a
/// loopback address, one session per client, until interrupted.
async fn serve_http(g: &GlobalArgs, a: &McpArgs, addr: std::net::SocketAddr) -> anyhow::Result<()> {
    use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
    use rmcp::transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService,
    };
    if !addr.ip().is_loopback() && !a.allow_remote {
        anyhow::bail!(
            "refusing to serve MCP on {addr}: not a loopback address; anyone who reaches it could use \
             your kubeconfig's rights through metakube (use 127.0.0.1:PORT, or --allow-remote behind \
             your own authentication)"
        );
    }
    let (global, allow_fix) = (g.clone(), a.allow_fix);
    let mut config = StreamableHttpServerConfig::default();
    if a.allow_remote {
        config = config.disable_allowed_hosts();
    }
    let service = StreamableHttpService::new(
        move || Ok(Metakube::new(global.clone(), allow_fix)),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    eprintln!(
        "metakube: MCP on http://{}/mcp{}",
        listener.local_addr()?,
        if allow_fix {
            " (apply_fix enabled)"
        } else {
            " (read-only)"
        }
    );
    let shutdown = tokio::signal::ctrl_c();
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            r = listener.accept() => r?,
            _ = &mut shutdown => return Ok(()),
        };
        let svc = hyper_util::service::TowerToHyperService::new(service.clone());
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, svc)
                .await
            {
                eprintln!("metakube: MCP HTTP connection: {e}");
            }
        });
    }
}
