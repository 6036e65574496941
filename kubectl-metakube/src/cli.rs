//! Command-line definition (clap derive), parsed once and validated into a [`Config`].

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::render::Output;

/// Root-cause diagnosis for Kubernetes, from your terminal.
#[derive(Debug, Parser)]
#[command(name = "kubectl-metakube", bin_name = "kubectl metakube", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every subcommand understands, with kubectl's names.
#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// Path to the kubeconfig file
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// Namespace (default: the context's namespace)
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
    /// How long to wait for the API server and the daemon (e.g. 30s, 2m)
    #[arg(long, global = true, value_parser = parse_duration, default_value = "30s")]
    pub request_timeout: Duration,
    /// The daemon's socket [default: $XDG_RUNTIME_DIR/metakube/metakubed.sock]
    #[arg(long, global = true, env = "METAKUBE_SOCKET")]
    pub socket: Option<PathBuf>,
    /// Do not start metakubed when none is running (METAKUBE_NO_AUTOSTART=1|true|yes|on)
    #[arg(
        long,
        global = true,
        env = "METAKUBE_NO_AUTOSTART",
        value_parser = clap::builder::BoolishValueParser::new(),
        action = clap::ArgAction::SetTrue
    )]
    pub no_start_daemon: bool,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Diagnose a workload, Service, Ingress, PVC or Node: root cause, evidence and a fix
    Diagnose(DiagnoseArgs),
    /// Collect what a diagnosis sees and write it in the cluster-info dump layout
    Snapshot(SnapshotArgs),
    /// What changed near a workload or Service: rollout revisions, and what the daemon's history
    /// of this cluster saw change (spec and labels; ConfigMap and Secret data by key only)
    Changes(ChangesArgs),
    /// Watch the cluster: detect faults as they happen, diagnose and group them into incidents,
    /// and (with --remediate) act under guard
    Watch(WatchArgs),
    /// Tell metakube whether a diagnosis was right, so it learns
    Feedback(FeedbackArgs),
    /// Serve metakube to AI assistants over the Model Context Protocol (stdio, or streamable
    /// HTTP on loopback; read-only unless --allow-fix)
    Mcp(McpArgs),
    /// Run a folder of scenarios (dump/ + truth.json or expected.yaml) and score the answers
    Eval(EvalArgs),
    /// Inspect, export, import or prune episodic memory
    Memory(MemoryArgs),
    /// Install, inspect or stop the metakubed daemon
    Daemon(DaemonArgs),
    /// Print shell completions
    Completion {
        /// bash, zsh or fish
        shell: clap_complete::Shell,
    },
}

/// `changes TYPE/NAME`.
#[derive(Debug, Args)]
pub struct ChangesArgs {
    /// TYPE/NAME (deploy/checkout) or TYPE
    pub target: String,
    /// NAME, when TYPE and NAME are given as two words
    pub name: Option<String>,
    /// How far back (30m, 2h, 7d) [default: the last hour, and at least from 30 minutes
    /// before the first failure near the target]
    #[arg(long, value_parser = parse_duration)]
    pub since: Option<Duration>,
    /// Output format
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    pub output: Output,
    /// Read a `kubectl cluster-info dump --output-directory` folder instead of the cluster
    /// (only rollout revisions: a dump has no before)
    #[arg(long, value_name = "DIR")]
    pub from_dump: Option<PathBuf>,
}

/// `diagnose TYPE/NAME`.
#[derive(Debug, Args)]
pub struct DiagnoseArgs {
    /// TYPE/NAME (deploy/checkout) or TYPE
    pub target: String,
    /// NAME, when TYPE and NAME are given as two words
    pub name: Option<String>,
    /// Output format
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    pub output: Output,
    /// Read a `kubectl cluster-info dump --output-directory` folder instead of the cluster
    #[arg(long, value_name = "DIR")]
    pub from_dump: Option<PathBuf>,
    /// Skip the model's explanation even where the daemon's `[llm] default` is on
    #[arg(long, conflicts_with = "explain")]
    pub no_llm: bool,
    /// Add the model's explanation under the verified diagnosis: each sentence is judged
    /// against the facts and only those that pass are printed. Off by default: the bundled
    /// 135M model does not pass `eval --explain` (see README)
    #[arg(long)]
    pub explain: bool,
    /// Skip episodic memory (always reason analytically)
    #[arg(long)]
    pub no_memory: bool,
    /// Apply the top fix: server-side dry run, confirmation, apply, audit log
    #[arg(long, conflicts_with = "from_dump")]
    pub fix: bool,
    /// With --fix: do not ask for confirmation
    #[arg(long, short = 'y', requires = "fix")]
    pub yes: bool,
}

/// `watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Watch every namespace (default: the namespace of -n or the context)
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// text: one line per incident (refreshed in place on a terminal); json: JSON Lines, one
    /// line per incident change
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    pub output: WatchOutput,
    /// Read watch events from this file (the API server's watch format, one JSON object a
    /// line, objects with kind and apiVersion) instead of the cluster, and exit at its end
    #[arg(long, value_name = "FILE", conflicts_with_all = ["record", "remediate", "all_namespaces"])]
    pub replay: Option<PathBuf>,
    /// With --replay: container logs in the cluster-info dump layout (<ns>/<pod>/logs.txt)
    #[arg(long, value_name = "DIR", requires = "replay")]
    pub logs: Option<PathBuf>,
    /// Write every watch event received to this file (replayable with --replay)
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Apply registry actions (scale, rollout restart/undo, resources, delete a pod) after the
    /// API server's dry run, under cooldown, rate limit and circuit breaker, and verify them;
    /// without it, fixes are only suggested
    #[arg(long)]
    pub remediate: bool,
    /// Prometheus base URL (http://prometheus:9090): CPU and memory series for anomaly scoring
    #[arg(long, value_name = "URL")]
    pub prometheus: Option<String>,
    /// Stop after this long (live); a replay stops at the end of its file
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// With --remediate: no second action on one object within this
    #[arg(long, value_parser = parse_duration, default_value = "10m")]
    pub cooldown: Duration,
    /// With --remediate: at most this many actions per 10 minutes, cluster-wide
    #[arg(long, default_value_t = 3)]
    pub max_actions: usize,
    /// With --remediate: stop acting after this many actions that did not clear their incident
    #[arg(long, default_value_t = 2)]
    pub breaker_after: u32,
    /// With --remediate: an action must clear its incident within this, or it is rolled back
    /// (where it can be) and the incident escalated
    #[arg(long, value_parser = parse_duration, default_value = "5m")]
    pub verify_within: Duration,
}

/// `watch -o`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WatchOutput {
    /// One line per incident.
    Text,
    /// JSON Lines: one incident change a line.
    Json,
}

/// `mcp`.
#[derive(Debug, Clone, Args)]
pub struct McpArgs {
    /// Add the `apply_fix` tool: applies a validated patch from a diagnosis this server made of
    /// a live cluster, after the API server's dry run accepts it, and writes the audit log
    #[arg(long)]
    pub allow_fix: bool,
    /// Serve MCP's streamable HTTP transport on this address instead of stdio
    /// (127.0.0.1:PORT; a non-loopback address needs --allow-remote)
    #[arg(long, value_name = "ADDR:PORT")]
    pub http: Option<std::net::SocketAddr>,
    /// With --http: accept a non-loopback address (anyone who reaches it can use your
    /// kubeconfig's rights through metakube)
    #[arg(long, requires = "http")]
    pub allow_remote: bool,
}

/// `snapshot TYPE/NAME --out DIR`.
#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// TYPE/NAME or TYPE
    pub target: String,
    /// NAME
    pub name: Option<String>,
    /// Folder to write (cluster-info dump layout)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Re-select from a dump folder instead of the cluster
    #[arg(long, value_name = "DIR")]
    pub from_dump: Option<PathBuf>,
}

/// `feedback ID --fixed|--not-fixed`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("outcome").required(true).args(["fixed", "not_fixed"])))]
pub struct FeedbackArgs {
    /// The diagnosis id
    pub id: String,
    /// The cause was right and the fix worked
    #[arg(long)]
    pub fixed: bool,
    /// The cause or the fix was wrong
    #[arg(long)]
    pub not_fixed: bool,
    /// The real cause, as TYPE/NAME (any kind: secret/db-creds, node/worker-2,
    /// resourcequota/q); in the diagnosis' namespace unless -n says otherwise
    #[arg(long)]
    pub cause: Option<String>,
    /// The real reason code; one the engine does not know becomes a new learned cause
    #[arg(long)]
    pub reason: Option<String>,
    /// The real category, when the answer's was wrong [default: read from --note, else from
    /// the cause's kind]
    #[arg(long, value_parser = parse_category)]
    pub category: Option<metakube_shared::Category>,
    /// What the fault was and how it was resolved (remembered with the cause)
    #[arg(long)]
    pub note: Option<String>,
    /// The command that resolved it, offered again when the fault recurs
    #[arg(long)]
    pub fix_command: Option<String>,
    /// Replace the feedback already given for this diagnosis (one outcome per diagnosis; the
    /// same feedback again is a no-op, another one is refused without this)
    #[arg(long)]
    pub replace: bool,
}

fn parse_category(s: &str) -> Result<metakube_shared::Category, String> {
    metakube_shared::Category::parse(&s.to_ascii_lowercase()).ok_or_else(|| {
        format!(
            "unknown category {s:?}; one of: {}",
            metakube_shared::Category::ALL
                .map(|c| c.as_str())
                .join(", ")
        )
    })
}

/// `eval DIR`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A folder of scenario folders
    pub dir: PathBuf,
    /// Output format (text or json)
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    pub output: Output,
    /// Print each scenario's result
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// Learning curve: replay the scenarios as a stream with feedback, memory on vs off
    /// (run it against a daemon whose memory starts empty, e.g. `metakubed --ephemeral`)
    #[arg(long)]
    pub learn: bool,
    /// With --learn: answer each first diagnosis from the truth (--fixed, or --not-fixed with
    /// the real cause and the truth's fault sentence as the note), then diagnose the same fault
    /// with the target and namespace renamed: is it right, and intuitive, after one correction?
    #[arg(long, requires = "learn")]
    pub corrections: bool,
    /// With --corrections: the corrections also state the category (`feedback --category`)
    #[arg(long, requires = "corrections")]
    pub with_category: bool,
    /// Also ask the daemon's model to explain each diagnosis and report its sentences: how many
    /// were shown, how many the check removed and why (the mechanism, a value's role, a
    /// healthy claim, an elaboration, a name or value not in the snapshot), and its speed
    #[arg(long, conflicts_with = "learn")]
    pub explain: bool,
}

/// `memory stats|list|show|forget|export|import`.
#[derive(Debug, Args)]
pub struct MemoryArgs {
    #[command(subcommand)]
    pub action: MemoryAction,
    /// Output format
    #[arg(short = 'o', long, value_enum, default_value = "text", global = true)]
    pub output: Output,
}

/// What to do with episodic memory.
#[derive(Debug, Subcommand)]
pub enum MemoryAction {
    /// Episodes, patterns (fault families with their success counts) and θ
    Stats,
    /// The newest episodes
    List {
        /// How many
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Episodes whose symptoms read closest to a description ("pods OOMKilled at start")
    Search {
        /// What you see, in words
        query: String,
        /// How many
        #[arg(long, default_value_t = 5)]
        limit: usize,
    },
    /// One episode in full
    Show {
        /// Episode id
        id: u64,
    },
    /// Forget episodes
    Forget {
        /// Episode ids
        #[arg(required = true)]
        ids: Vec<u64>,
    },
    /// Write every episode as JSON Lines: KFRD records {problem, attempts, solution, reasoning}
    /// for fine-tuning (default), or episodes for `import`; names masked unless --unmasked
    Export {
        /// File to write [default: stdout]
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// kfrd or episodes
        #[arg(long, default_value = "kfrd", value_parser = ["kfrd", "episodes"])]
        format: String,
        /// Keep object names and namespaces
        #[arg(long)]
        unmasked: bool,
    },
    /// Add episodes from a file written by `export --format episodes`
    Import {
        /// JSON Lines file
        file: PathBuf,
    },
}

/// `daemon install|status|stop|start`.
#[derive(Debug, Args)]
pub struct DaemonArgs {
    #[command(subcommand)]
    pub action: DaemonAction,
}

/// Daemon actions.
#[derive(Debug, Subcommand)]
pub enum DaemonAction {
    /// Install the systemd user units and print the command that enables them
    Install,
    /// Show the daemon's health and counters
    Status,
    /// Stop the daemon (SIGTERM: it finishes requests and flushes its store)
    Stop,
    /// Start the daemon in the background if none is running
    Start,
}

/// kubectl-style durations: `30s`, `2m`, `1h`, `500ms`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, "s"), |i| s.split_at(i));
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}; use e.g. 30s, 2m"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        _ => {
            return Err(format!(
                "invalid duration unit in {s:?}; use ms, s, m, h or d"
            ))
        }
    };
    if secs <= 0.0 {
        return Err(format!("the duration {s:?} must be positive"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("5").unwrap(), Duration::from_secs(5));
        assert!(parse_duration("5x").is_err());
        assert_eq!(
            parse_duration("7d").unwrap(),
            Duration::from_secs(7 * 86400)
        );
    }

    #[test]
    fn kubectl_flags_parse() {
        let c = Cli::try_parse_from([
            "kubectl-metakube",
            "diagnose",
            "deploy/checkout",
            "-n",
            "shop",
            "--context",
            "prod",
            "-o",
            "json",
        ])
        .unwrap();
        assert_eq!(c.global.namespace.as_deref(), Some("shop"));
        assert_eq!(c.global.context.as_deref(), Some("prod"));
        match c.command {
            Command::Diagnose(d) => assert_eq!(
                (d.target.as_str(), d.output),
                ("deploy/checkout", Output::Json)
            ),
            _ => panic!("not diagnose"),
        }
        assert!(
            Cli::try_parse_from(["kubectl-metakube", "feedback", "x"]).is_err(),
            "needs --fixed or --not-fixed"
        );
    }
}
