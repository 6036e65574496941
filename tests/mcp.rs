//! `kubectl metakube mcp` as an assistant sees it: a stdio session (initialize → tools/list →
//! tools/call diagnose on a bundled dump → feedback → memory_search) and bad calls (an unknown
//! tool, a missing argument, a dump that does not exist) answered without the server dying.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use metakube_tests::apiserver::ApiServer;
use metakube_tests::{bin, expected_target, scenario, Daemon};
use serde_json::{json, Value};

struct Session {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next: u64,
}

impl Session {
    fn start(socket: &std::path::Path) -> Session {
        Session::start_with(socket, &[], &[])
    }

    /// A session with more `mcp` arguments and environment.
    fn start_with(socket: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Session {
        let mut child = Command::new(bin("kubectl-metakube"))
            .args(["mcp", "--no-start-daemon", "--socket"])
            .arg(socket)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut s = Session {
            child,
            stdin,
            stdout,
            next: 1,
        };
        let init = s.call(
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "test", "version": "0"}}),
        );
        assert_eq!(init["result"]["serverInfo"]["name"], "metakube", "{init}");
        assert!(
            init["result"]["capabilities"]["tools"].is_object(),
            "{init}"
        );
        s.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        s
    }

    fn send(&mut self, v: Value) {
        writeln!(self.stdin, "{v}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// Sends a request and returns its response (every stdout line is JSON-RPC).
    fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next;
        self.next += 1;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let mut line = String::new();
            assert!(
                self.stdout.read_line(&mut line).unwrap() > 0,
                "server closed"
            );
            let v: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("stdout carries only JSON-RPC ({e}): {line}"));
            if v["id"] == id {
                return v;
            }
        }
    }

    fn tool(&mut self, name: &str, args: Value) -> Value {
        self.call("tools/call", json!({"name": name, "arguments": args}))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_assistant_diagnoses_gives_feedback_and_searches_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(tmp.path(), &["--ephemeral"]);
    let mut s = Session::start(&d.socket);
    let tools = s.call("tools/list", json!({}));
    let names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for want in [
        "diagnose",
        "feedback",
        "memory_search",
        "snapshot",
        "changes",
    ] {
        assert!(names.contains(&want), "{names:?}");
    }
    assert!(!names.contains(&"apply_fix"), "read-only: {names:?}");
    let diagnose = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "diagnose")
        .unwrap();
    assert_eq!(diagnose["inputSchema"]["required"], json!(["target"]));

    let dir = scenario("oom-at-startup-0");
    let (kind, ns, name) = expected_target(&dir);
    let r = s.tool(
        "diagnose",
        json!({"target": format!("{}/{}", kind.to_lowercase(), name), "namespace": ns,
               "from_dump": dir.join("dump")}),
    );
    let res = &r["result"];
    assert_eq!(res["isError"], false, "{r}");
    let diag = &res["structuredContent"];
    assert_eq!(diag["root_cause"]["reason"], "MemoryLimitTooLow", "{r}");
    assert_eq!(diag["category"], "resource");
    assert!(res["content"][0]["text"]
        .as_str()
        .unwrap()
        .starts_with("ROOT CAUSE"));
    let id = diag["id"].as_str().unwrap();

    let fb = s.tool("feedback", json!({"id": id, "fixed": true}));
    assert_eq!(fb["result"]["isError"], false, "{fb}");
    assert_eq!(fb["result"]["structuredContent"]["episode"], 1, "{fb}");

    let m = s.tool(
        "memory_search",
        json!({"query": "container killed for memory right after start"}),
    );
    assert_eq!(
        m["result"]["structuredContent"]["episodes"][0]["reason"], "MemoryLimitTooLow",
        "{m}"
    );

    // A dump has no history and this one no earlier revision: an empty list, said in words.
    let ch = s.tool(
        "changes",
        json!({"target": format!("{}/{}", kind.to_lowercase(), name), "namespace": ns,
               "from_dump": dir.join("dump")}),
    );
    assert_eq!(ch["result"]["isError"], false, "{ch}");
    assert_eq!(
        ch["result"]["structuredContent"]["changes"],
        json!([]),
        "{ch}"
    );
    assert_eq!(
        ch["result"]["structuredContent"]["target"]["name"],
        name.as_str()
    );
    let said = ch["result"]["content"][0]["text"].as_str().unwrap();
    assert!(
        said.starts_with("CHANGES") && said.contains("a dump has no before"),
        "{said}"
    );

    let out = tmp.path().join("snap");
    let sn = s.tool(
        "snapshot",
        json!({"target": format!("{}/{}", kind.to_lowercase(), name), "namespace": ns,
               "from_dump": dir.join("dump"), "out": out}),
    );
    assert_eq!(sn["result"]["isError"], false, "{sn}");
    assert!(out.join(&ns).join("pods.json").is_file());
}

/// The text of a tool call that failed as a tool error (`isError: true`), not a protocol error.
fn tool_error(r: &Value) -> String {
    assert_eq!(r["result"]["isError"], true, "{r}");
    r["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("an error text: {r}"))
        .to_string()
}

#[test]
fn bad_calls_are_errors_and_the_server_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(tmp.path(), &["--ephemeral"]);
    let mut s = Session::start(&d.socket);
    // An unknown tool is a protocol error.
    let r = s.tool("delete_cluster", json!({}));
    assert!(r["error"].is_object(), "{r}");
    // A missing argument and a dump that does not exist are tool errors with the CLI's words.
    let r = s.tool("diagnose", json!({}));
    assert!(tool_error(&r).contains("target"), "{r}");
    let missing = tmp.path().join("no-such-dump");
    let r = s.tool(
        "diagnose",
        json!({"target": "deploy/x", "from_dump": missing}),
    );
    let text = tool_error(&r);
    assert!(text.contains("no-such-dump"), "{text}");
    let r = s.tool("feedback", json!({"id": "nope", "fixed": true}));
    assert!(tool_error(&r).contains("no diagnosis with id nope"), "{r}");
    // Still serving.
    let tools = s.call("tools/list", json!({}));
    assert!(tools["result"]["tools"].as_array().unwrap().len() >= 4);
}

#[test]
fn apply_fix_needs_allow_fix_a_live_diagnosis_a_dry_run_and_confirmation() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = scenario("selector-mismatch-cascade-0");
    let api = ApiServer::start(&dir.join("dump"), &[]);
    let (kind, ns, name) = expected_target(&dir);
    let kc = tmp.path().join("kubeconfig");
    api.kubeconfig(&kc, &ns);
    let xdg = tmp.path().join("xdg");
    let d = Daemon::start(tmp.path(), &["--ephemeral"]);
    let mut s = Session::start_with(
        &d.socket,
        &["--allow-fix", "--kubeconfig", kc.to_str().unwrap()],
        &[("XDG_DATA_HOME", xdg.to_str().unwrap())],
    );
    let tools = s.call("tools/list", json!({}));
    let apply = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "apply_fix")
        .unwrap_or_else(|| panic!("--allow-fix lists apply_fix: {tools}"))
        .clone();
    assert_eq!(apply["inputSchema"]["required"], json!(["id"]));
    let patches = || -> Vec<String> {
        api.seen()
            .into_iter()
            .filter(|s| s.method == "PATCH")
            .map(|s| s.path)
            .collect()
    };
    let target = format!("{}/{}", kind.to_lowercase(), name);

    // A diagnosis of a dump has no cluster to apply to.
    let r = s.tool(
        "diagnose",
        json!({"target": target, "namespace": ns, "from_dump": dir.join("dump")}),
    );
    let dump_id = r["result"]["structuredContent"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = s.tool("apply_fix", json!({"id": dump_id}));
    assert!(tool_error(&r).contains("no live diagnosis"), "{r}");
    assert!(patches().is_empty());

    // Live: without confirm only the dry run reaches the API server.
    let r = s.tool("diagnose", json!({"target": target}));
    assert_eq!(r["result"]["isError"], false, "{r}");
    let diag = &r["result"]["structuredContent"];
    assert_eq!(diag["root_cause"]["object"]["kind"], "Service", "{r}");
    let id = diag["id"].as_str().unwrap().to_string();
    let r = s.tool("apply_fix", json!({"id": id}));
    assert_eq!(r["result"]["isError"], false, "{r}");
    assert_eq!(r["result"]["structuredContent"]["applied"], false, "{r}");
    assert_eq!(patches().len(), 1);
    assert!(patches()[0].contains("dryRun=All"), "{:?}", patches());
    // Confirmed: dry run again, then the apply.
    let r = s.tool("apply_fix", json!({"id": id, "confirm": true}));
    assert_eq!(r["result"]["structuredContent"]["applied"], true, "{r}");
    let p = patches();
    assert_eq!(p.len(), 3, "{p:?}");
    assert!(
        p[1].contains("dryRun=All") && !p[2].contains("dryRun"),
        "{p:?}"
    );
    assert!(
        p[2].starts_with(&format!("/api/v1/namespaces/{ns}/services/")),
        "{p:?}"
    );
    let audit: Vec<Value> = std::fs::read_to_string(xdg.join("metakube/audit.log"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let results: Vec<&str> = audit
        .iter()
        .map(|l| l["result"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["dry_run_accepted", "applied"]);
    assert!(audit.iter().all(|l| l["diagnosis_id"] == id.as_str()));
    // A fix that does not exist is named, and nothing more is sent.
    let r = s.tool("apply_fix", json!({"id": id, "index": 9}));
    assert!(tool_error(&r).contains("no fix 9"), "{r}");
    assert_eq!(patches().len(), 3);
}

#[test]
fn without_allow_fix_apply_fix_does_not_exist() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(tmp.path(), &["--ephemeral"]);
    let mut s = Session::start(&d.socket);
    let r = s.tool("apply_fix", json!({"id": "x", "confirm": true}));
    assert!(r["error"].is_object(), "an unknown tool: {r}");
}

/// One MCP message POSTed to the streamable HTTP endpoint; the JSON-RPC answers in the reply
/// (plain JSON or server-sent events), the status and the session id.
fn post_mcp(addr: &str, session: Option<&str>, msg: &Value) -> (u16, Option<String>, Vec<Value>) {
    use std::io::Read;
    let body = msg.to_string();
    let mut req = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(id) = session {
        req.push_str(&format!(
            "Mcp-Session-Id: {id}\r\nMCP-Protocol-Version: 2025-06-18\r\n"
        ));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    stream.write_all(req.as_bytes()).unwrap();
    let want = msg.get("id").cloned();
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let answers = loop {
        let n = stream.read(&mut buf).unwrap_or(0);
        raw.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&raw).to_string();
        let answers: Vec<Value> = text
            .lines()
            .filter_map(|l| l.strip_prefix("data:").map(str::trim).or(Some(l)))
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v.get("jsonrpc").is_some())
            .collect();
        let done = want.is_none() || answers.iter().any(|a| a.get("id") == want.as_ref());
        if n == 0 || (done && text.contains("\r\n\r\n")) {
            break answers;
        }
    };
    let text = String::from_utf8_lossy(&raw).to_string();
    let status: u16 = text.split(' ').nth(1).unwrap().parse().unwrap();
    let session = text.lines().take_while(|l| !l.is_empty()).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("mcp-session-id")
            .then(|| v.trim().to_string())
    });
    (status, session, answers)
}

#[test]
fn the_same_tools_over_streamable_http_on_loopback_only() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(tmp.path(), &["--ephemeral"]);
    // Not loopback: refused before anything listens.
    let o = Command::new(bin("kubectl-metakube"))
        .args([
            "mcp",
            "--no-start-daemon",
            "--http",
            "0.0.0.0:0",
            "--socket",
        ])
        .arg(&d.socket)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a loopback address"));

    let mut child = Command::new(bin("kubectl-metakube"))
        .args([
            "mcp",
            "--no-start-daemon",
            "--http",
            "127.0.0.1:0",
            "--socket",
        ])
        .arg(&d.socket)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or_else(|| panic!("address line: {line}"))
        .to_string();
    assert!(line.contains("read-only"), "{line}");
    let (code, session, answers) = post_mcp(
        &addr,
        None,
        &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "test", "version": "0"}}}),
    );
    assert_eq!(code, 200, "{answers:?}");
    assert_eq!(
        answers[0]["result"]["serverInfo"]["name"], "metakube",
        "{answers:?}"
    );
    let session = session.expect("a session id");
    let (code, _, _) = post_mcp(
        &addr,
        Some(&session),
        &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    );
    assert_eq!(code, 202);
    let dir = scenario("oom-at-startup-0");
    let (kind, ns, name) = expected_target(&dir);
    let (code, _, answers) = post_mcp(
        &addr,
        Some(&session),
        &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "diagnose",
            "arguments": {"target": format!("{}/{}", kind.to_lowercase(), name), "namespace": ns,
                          "from_dump": dir.join("dump")}}}),
    );
    assert_eq!(code, 200);
    let r = answers.iter().find(|a| a["id"] == 2).expect("the answer");
    assert_eq!(
        r["result"]["structuredContent"]["root_cause"]["reason"], "MemoryLimitTooLow",
        "{r}"
    );
    let _ = child.kill();
    let _ = child.wait();
}
