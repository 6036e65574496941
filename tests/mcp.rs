//! `kubectl metakube mcp` as an assistant sees it: a stdio session (initialize → tools/list →
//! tools/call diagnose on a bundled dump → feedback → memory_search) and bad calls (an unknown
//! tool, a missing argument, a dump that does not exist) answered without the server dying.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

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
        let mut child = Command::new(bin("kubectl-metakube"))
            .args(["mcp", "--no-start-daemon", "--socket"])
            .arg(socket)
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
    for want in ["diagnose", "feedback", "memory_search", "snapshot"] {
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

    let out = tmp.path().join("snap");
    let sn = s.tool(
        "snapshot",
        json!({"target": format!("{}/{}", kind.to_lowercase(), name), "namespace": ns,
               "from_dump": dir.join("dump"), "out": out}),
    );
    assert_eq!(sn["result"]["isError"], false, "{sn}");
    assert!(out.join(&ns).join("pods.json").is_file());
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
    assert_eq!(r["result"]["isError"], true, "{r}");
    assert!(r["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("target"));
    let missing = tmp.path().join("no-such-dump");
    let r = s.tool(
        "diagnose",
        json!({"target": "deploy/x", "from_dump": missing}),
    );
    assert_eq!(r["result"]["isError"], true, "{r}");
    let text = r["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("no-such-dump"), "{text}");
    let r = s.tool("feedback", json!({"id": "nope", "fixed": true}));
    assert_eq!(r["result"]["isError"], true, "{r}");
    assert!(r["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("no diagnosis with id nope"));
    // Still serving.
    let tools = s.call("tools/list", json!({}));
    assert!(tools["result"]["tools"].as_array().unwrap().len() >= 4);
}
