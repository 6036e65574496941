//! `memory stats|list|show|forget|export|import`: what episodic memory holds.

use std::io::Write;

use anyhow::Context;
use serde_json::Value;

use crate::cli::{GlobalArgs, MemoryAction, MemoryArgs};
use crate::render::Output;

fn print(out: &mut dyn Write, v: &Value, fmt: Output) -> anyhow::Result<bool> {
    match fmt {
        Output::Json => {
            serde_json::to_writer_pretty(&mut *out, v)?;
            writeln!(out)?;
            Ok(true)
        }
        Output::Yaml => {
            out.write_all(serde_norway::to_string(v)?.as_bytes())?;
            Ok(true)
        }
        Output::Text => Ok(false),
    }
}

fn episode_line(e: &Value) -> String {
    format!(
        "{:>6}  {}  {:<28} on {:<22} {}  {}",
        e["id"],
        e["time"].as_str().unwrap_or("").get(..19).unwrap_or(""),
        e["outcome"]["reason"].as_str().unwrap_or(""),
        e["context"]["cause_kind"].as_str().unwrap_or(""),
        match (
            e["outcome"]["corrected"].as_bool() == Some(true),
            e["learned"]["known"].as_bool(),
        ) {
            (true, Some(false)) => "learned  ",
            (true, _) => "corrected",
            (false, _) => "fixed    ",
        },
        e["symptoms"]
            .as_array()
            .map(|s| s.len())
            .unwrap_or(0)
            .to_string()
            + " symptom lines"
    )
}

/// Episodes whose symptoms read closest to `query` (`POST /v1/memory/search`).
pub async fn search(
    client: &crate::client::DaemonClient,
    query: &str,
    limit: usize,
) -> anyhow::Result<Value> {
    Ok(client
        .post(
            "/v1/memory/search",
            &serde_json::json!({"query": query, "limit": limit}),
        )
        .await?)
}

/// One search hit in a line: episode, similarity, cause, kind, category, family size, note.
pub fn hit_line(h: &Value) -> String {
    format!(
        "{:>6}  {:.2}  {:<28} on {:<22} {:<13} seen {}{}",
        h["episode"],
        h["similarity"].as_f64().unwrap_or(0.0),
        h["reason"].as_str().unwrap_or(""),
        h["cause_kind"].as_str().unwrap_or(""),
        h["category"].as_str().unwrap_or("-"),
        h["seen"],
        h["note"]
            .as_str()
            .map(|n| format!("  — {n}"))
            .unwrap_or_default()
    )
}

/// A relation path as the daemon stores it, in words (`target's pod → mounts → Secret`).
fn relation_path(p: &Value) -> String {
    let Some(origin) = p["origin"].as_str() else {
        return "by name in the target's namespace".into();
    };
    let mut out = match origin {
        "target_pod" => "target's pod".to_string(),
        "namespace" => "target's namespace".to_string(),
        _ => "target".to_string(),
    };
    for s in p["steps"].as_array().into_iter().flatten() {
        let (edge, kind) = (
            s["edge"].as_str().unwrap_or("?"),
            s["kind"].as_str().unwrap_or("?"),
        );
        if s["outgoing"].as_bool() == Some(true) {
            out.push_str(&format!(" → {edge} → {kind}"));
        } else {
            out.push_str(&format!(" ← {edge} ← {kind}"));
        }
    }
    out
}

/// Runs a memory command against the daemon.
pub async fn run(g: &GlobalArgs, a: &MemoryArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let client = super::daemon(g).await?;
    match &a.action {
        MemoryAction::Stats => {
            let v: Value = client.get("/v1/memory/stats").await?;
            if !print(out, &v, a.output)? {
                writeln!(
                    out,
                    "{} episodes (at most {}) in {} patterns · FAISS {} · θ {:.3}",
                    v["episodes"],
                    v["max_episodes"],
                    v["patterns"],
                    v["index"].as_str().unwrap_or(""),
                    v["theta"].as_f64().unwrap_or(0.0)
                )?;
                for f in v["families"].as_array().into_iter().flatten() {
                    writeln!(
                        out,
                        "  pattern {:>4}  {:<28} on {:<22} seen {:>3}, fix worked {:>3}, recalls refuted {}",
                        f["id"], f["reason"].as_str().unwrap_or(""), f["cause_kind"].as_str().unwrap_or(""), f["episodes"], f["worked"], f["failed"]
                    )?;
                }
            }
        }
        MemoryAction::List { limit } => {
            let v: Value = client
                .get(&format!("/v1/memory/episodes?limit={limit}"))
                .await?;
            if !print(out, &v, a.output)? {
                for e in v.as_array().into_iter().flatten() {
                    writeln!(out, "{}", episode_line(e))?;
                }
            }
        }
        MemoryAction::Search { query, limit } => {
            let v = search(&client, query, *limit).await?;
            if !print(out, &v, a.output)? {
                for h in v.as_array().into_iter().flatten() {
                    writeln!(out, "{}", hit_line(h))?;
                }
            }
        }
        MemoryAction::Show { id } => {
            let v: Value = client.get(&format!("/v1/memory/episodes/{id}")).await?;
            if !print(out, &v, a.output)? {
                writeln!(out, "{}", episode_line(&v))?;
                writeln!(out, "symptoms:")?;
                for s in v["symptoms"].as_array().into_iter().flatten() {
                    writeln!(out, "  {}", s.as_str().unwrap_or(""))?;
                }
                writeln!(out, "actions:")?;
                for s in v["actions"].as_array().into_iter().flatten() {
                    writeln!(out, "  {}", s["summary"].as_str().unwrap_or(""))?;
                }
                writeln!(out, "reasoning:")?;
                for s in v["reasoning"].as_array().into_iter().flatten() {
                    writeln!(out, "  {}", s.as_str().unwrap_or(""))?;
                }
                let l = &v["learned"];
                if l.is_object() {
                    writeln!(
                        out,
                        "learned cause: {} ({}, category from {}), named {}",
                        v["outcome"]["reason"].as_str().unwrap_or(""),
                        v["outcome"]["category"].as_str().unwrap_or("-"),
                        l["category_from"].as_str().unwrap_or("-"),
                        l["name"].as_str().unwrap_or("")
                    )?;
                    writeln!(out, "  found again as: {}", relation_path(&l["path"]))?;
                    if let Some(codes) = l["codes"].as_array().filter(|c| !c.is_empty()) {
                        let codes: Vec<&str> = codes.iter().filter_map(Value::as_str).collect();
                        writeln!(out, "  showing: {}", codes.join(", "))?;
                    }
                    if let Some(r) = l["refuted"].as_object() {
                        writeln!(
                            out,
                            "  corrects: {} on a {}",
                            r["reason"].as_str().unwrap_or(""),
                            r["kind"].as_str().unwrap_or("")
                        )?;
                    }
                    if let Some(n) = v["outcome"]["note"].as_str() {
                        writeln!(out, "  resolution: {n}")?;
                    }
                    if let Some(c) = l["fix_command"].as_str() {
                        writeln!(out, "  fix command: {c}")?;
                    }
                }
            }
        }
        MemoryAction::Forget { ids } => {
            let mut n = 0;
            for id in ids {
                let v: Value = client.delete(&format!("/v1/memory/episodes/{id}")).await?;
                n += v["forgotten"].as_u64().unwrap_or(0);
            }
            writeln!(out, "forgot {n} of {} episode(s)", ids.len())?;
        }
        MemoryAction::Export {
            out: file,
            format,
            unmasked,
        } => {
            let body = client
                .get_text(&format!(
                    "/v1/memory/export?format={format}&unmasked={unmasked}"
                ))
                .await?;
            match file {
                Some(f) => {
                    std::fs::write(f, &body).with_context(|| format!("writing {}", f.display()))?;
                    eprintln!(
                        "metakube: wrote {} record(s) to {}",
                        body.lines().count(),
                        f.display()
                    );
                }
                None => out.write_all(body.as_bytes())?,
            }
        }
        MemoryAction::Import { file } => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            let mut episodes = Vec::new();
            for (i, line) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                let v: Value = serde_json::from_str(line)
                    .with_context(|| format!("{}:{}: not a JSON episode", file.display(), i + 1))?;
                episodes.push(v);
            }
            // Each episode is embedded again (~15–25 ms on 2 cores): allow for it.
            let timeout = std::time::Duration::from_secs(30)
                + std::time::Duration::from_millis(50) * episodes.len() as u32;
            let v: Value = client
                .with_timeout(timeout)
                .post("/v1/memory/import", &episodes)
                .await?;
            writeln!(out, "imported {} episode(s)", v["imported"])?;
        }
    }
    Ok(())
}
