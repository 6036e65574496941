//! Grounding: the prompt holds only the verified finding — root cause, evidence, causal path,
//! fix, memory — bounded in tokens (evidence one line each, logs as the matched line, never
//! the log). The reply is checked sentence by sentence: every object name, `Kind/name`,
//! hyphenated identifier and number it states must exist in the snapshot or in those facts;
//! a sentence that states anything else is removed and reported.

use std::collections::BTreeSet;

use metakube_shared::{Diagnosis, JudgedSentence};
use regex::Regex;
use serde::{Deserialize, Serialize};

use super::Prompt;

/// The instructions every backend gets.
pub const SYSTEM: &str = "You are KubeLLM, a Kubernetes troubleshooting assistant. Using only the facts given, explain to an SRE in two short sentences what is broken and what the fix changes. Name only objects and values that appear in the facts. Do not write commands or code.";

/// Longest evidence line put in a prompt, in characters.
pub const MAX_FACT_CHARS: usize = 160;

/// Most evidence lines put in a prompt.
pub const MAX_FACTS: usize = 5;

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let mut out: String = s.chars().take(n).collect();
    out.push('…');
    out
}

/// The prompt for a diagnosis, within `max_tokens` as `count` measures them: the root cause
/// and fix always, evidence lines while they fit.
pub fn prompt(d: &Diagnosis, count: &dyn Fn(&str) -> usize, max_tokens: usize) -> Prompt {
    let mut head = vec![format!(
        "Object asked about: {}/{}{}",
        d.target.kind,
        d.target.name,
        d.target
            .namespace
            .as_deref()
            .map(|n| format!(" (namespace {n})"))
            .unwrap_or_default()
    )];
    match &d.root_cause {
        Some(rc) => {
            head.push(format!(
                "Root cause: {} on {}/{}: {}",
                rc.reason, rc.object.kind, rc.object.name, rc.summary
            ));
            if let Some(c) = d.category {
                head.push(format!("Category: {c}"));
            }
        }
        None => head.push(format!(
            "No single root cause was verified. Symptoms: {}",
            d.symptoms
                .iter()
                .take(6)
                .map(|s| format!("{} on {}/{}", s.reason, s.object.kind, s.object.name))
                .collect::<Vec<_>>()
                .join("; ")
        )),
    }
    let mut tail = Vec::new();
    if let Some(fix) = d.remediation.first() {
        tail.push(format!("Fix: {}", fix.summary));
    }
    if let Some(m) = d.memory.as_ref().filter(|m| m.seen > 0) {
        tail.push(format!(
            "Memory: seen {} time(s) before; the fix worked {} of {}.",
            m.seen, m.worked, m.seen
        ));
    }
    let question = "Explain the root cause and the fix.";
    let base = format!("{}\n{}\n{question}", head.join("\n"), tail.join("\n"));
    let mut budget = max_tokens
        .saturating_sub(count(SYSTEM))
        .saturating_sub(count(&base));
    let mut evidence = Vec::new();
    for e in d.evidence.iter().take(MAX_FACTS) {
        let line = format!("- {}", clip(&e.detail, MAX_FACT_CHARS));
        let n = count(&line) + 1;
        if n > budget {
            break;
        }
        budget -= n;
        evidence.push(line);
    }
    let mut user = head.join("\n");
    if !evidence.is_empty() {
        user.push_str("\nEvidence:\n");
        user.push_str(&evidence.join("\n"));
    }
    for t in &tail {
        user.push('\n');
        user.push_str(t);
    }
    user.push('\n');
    user.push_str(question);
    Prompt {
        system: SYSTEM.into(),
        user,
    }
}

/// What a reply may mention: the snapshot's object names and the prompt's facts.
#[derive(Debug, Clone, Default)]
pub struct Vocabulary {
    names: BTreeSet<String>,
    facts: String,
    tokens: BTreeSet<String>,
}

fn tokens_of(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| !(c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '/')))
        .map(|t| t.trim_matches(|c: char| c == '.' || c == '/'))
        .filter(|t| !t.is_empty())
}

impl Vocabulary {
    /// From the snapshot's object names and namespaces, and the facts the model was given.
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>, facts: &str) -> Vocabulary {
        let facts = facts.to_lowercase();
        let mut tokens: BTreeSet<String> = tokens_of(&facts).map(str::to_string).collect();
        // `app=redis-cache`, `Service/redis`, `ip-10-0-1-17.ec2.internal`, `--all-containers`:
        // their parts count as tokens too.
        let parts: Vec<String> = tokens
            .iter()
            .flat_map(|t| {
                t.trim_start_matches('-')
                    .split(['=', '/', ':', '.'])
                    .chain([t.trim_start_matches('-')])
                    .filter(|p| !p.is_empty())
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect();
        tokens.extend(parts);
        Vocabulary {
            names: names.into_iter().map(str::to_string).collect(),
            facts,
            tokens,
        }
    }

    fn knows_name(&self, s: &str) -> bool {
        self.names.contains(s) || self.tokens.contains(&s.to_lowercase())
    }

    /// A hyphenated word made of words the facts use (`memory-leak` where they say "memory"
    /// and "leak"): English, not a name the model made up.
    fn knows_compound(&self, s: &str) -> bool {
        let parts: Vec<&str> = s.split('-').collect();
        parts.len() > 1
            && parts.iter().all(|p| {
                p.len() >= 3
                    && p.chars().all(char::is_alphabetic)
                    && self.tokens.contains(*p)
                    // `profile-profile` from the name `profile` is a made-up name.
                    && !self.names.contains(*p)
            })
    }

    fn knows_number(&self, s: &str) -> bool {
        self.facts.contains(&s.to_lowercase())
    }

    fn knows_phrase(&self, s: &str) -> bool {
        let l = s.to_lowercase();
        // A quoted value the facts hold verbatim, as a whole (`"nginx:1.277"`, but not
        // `"cache"` from `redis-cache`).
        self.names.contains(s)
            || self.tokens.contains(&l)
            || crate::words::whole_name_at(&self.facts, &l).is_some()
    }
}

/// The reply after the check.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Checked {
    /// The sentences that passed, joined.
    pub text: String,
    /// Sentences removed, each with the claims that failed.
    pub removed: Vec<Removed>,
    /// Every sentence, in order, with its verdict.
    pub sentences: Vec<JudgedSentence>,
}

/// A removed sentence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Removed {
    /// The sentence.
    pub sentence: String,
    /// What it stated that the snapshot or the facts do not hold.
    pub unsupported: Vec<String>,
}

/// Hyphenated words that are English, not object names.
const ENGLISH: &[&str] = &[
    "out-of-memory",
    "read-only",
    "start-up",
    "set-up",
    "up-to-date",
    "built-in",
    "well-known",
    "long-running",
    "server-side",
    "dry-run",
    "one-off",
    "non-zero",
    "re-run",
    "so-called",
    "crash-loop",
    "crash-looping",
    "back-off",
    "self-healing",
    "end-to-end",
    "round-robin",
    "high-availability",
    "follow-up",
    "step-by-step",
    "real-time",
    "in-cluster",
    "human-readable",
];

struct Patterns {
    kind_name: Regex,
    hyphenated: Regex,
    quantity: Regex,
    quoted: Regex,
    flag: Regex,
    path: Regex,
}

fn patterns() -> &'static Patterns {
    static P: std::sync::OnceLock<Patterns> = std::sync::OnceLock::new();
    P.get_or_init(|| Patterns {
        kind_name: Regex::new(r"\b([A-Z][A-Za-z]+)/([a-z0-9][-a-z0-9.]*[a-z0-9])").expect("regex"),
        hyphenated: Regex::new(r"\b[a-z0-9]+(?:-[a-z0-9]+)+\b").expect("regex"),
        quantity: Regex::new(r"\b\d+(?:\.\d+)?\s?(?:Mi|Gi|Ki|MiB|GiB|MB|GB|m|ms|s|%)?\b")
            .expect("regex"),
        quoted: Regex::new(r#""([^"\n]{1,80})"|`([^`\n]{1,120})`"#).expect("regex"),
        flag: Regex::new(r"(?:^|\s)(--?[a-z][-a-z]*)").expect("regex"),
        path: Regex::new(r"(?:^|\s)(/[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)+)").expect("regex"),
    })
}

/// Sentences of a text (split after `.`, `!`, `?` followed by white space, and at newlines).
pub fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\n' {
            if !cur.trim().is_empty() {
                out.push(cur.trim().to_string());
            }
            cur.clear();
            continue;
        }
        cur.push(c);
        if matches!(c, '.' | '!' | '?') && chars.peek().is_none_or(|n| n.is_whitespace()) {
            out.push(cur.trim().to_string());
            cur.clear();
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// The claims a sentence makes that the vocabulary does not support.
pub fn unsupported(sentence: &str, v: &Vocabulary) -> Vec<String> {
    let p = patterns();
    let mut bad = Vec::new();
    // Code the model writes is never checked: the validated command is given separately.
    if sentence.contains("```") {
        bad.push("a code block".to_string());
    }
    for c in p.quoted.captures_iter(sentence) {
        let q = c
            .get(1)
            .or_else(|| c.get(2))
            .map_or("", |m| m.as_str())
            .trim();
        if !q.is_empty() && !v.knows_phrase(q) {
            bad.push(format!("\"{q}\""));
        }
    }
    for c in p.flag.captures_iter(sentence) {
        if !v.knows_number(&c[1]) {
            bad.push(c[1].to_string());
        }
    }
    for c in p.path.captures_iter(sentence) {
        if !v.knows_number(&c[1]) {
            bad.push(c[1].to_string());
        }
    }
    let sentence = &p.quoted.replace_all(sentence, " ").to_string();
    for c in p.kind_name.captures_iter(sentence) {
        let name = &c[2];
        if !v.knows_name(name) {
            bad.push(c[0].to_string());
        }
    }
    let masked = p.kind_name.replace_all(sentence, " ");
    for m in p.hyphenated.find_iter(&masked) {
        let w = m.as_str();
        if ENGLISH.contains(&w) || v.knows_name(w) || v.knows_compound(w) {
            continue;
        }
        bad.push(w.to_string());
    }
    let no_names = p.hyphenated.replace_all(&masked, " ");
    for m in p.quantity.find_iter(&no_names) {
        let q = m.as_str().trim();
        // Small bare counts ("two", "1 pod") are prose; values with units and bigger numbers
        // (ports, limits, exit codes) are claims.
        let bare = q.chars().all(|c| c.is_ascii_digit());
        if bare && q.len() < 2 {
            continue;
        }
        if !v.knows_number(q) {
            bad.push(q.to_string());
        }
    }
    bad
}

/// What is wrong with one sentence: the names and values it states that the snapshot and facts
/// do not hold, then what it says that the facts do not ([`super::faithfulness::judge`]).
/// Empty when it may be shown.
pub fn verdict(
    sentence: &str,
    v: &Vocabulary,
    meaning: &super::faithfulness::Meaning,
    lex: &super::faithfulness::Lexicon,
) -> Vec<String> {
    let mut bad: Vec<String> = unsupported(sentence, v)
        .into_iter()
        .map(|b| format!("not in the snapshot: {b}"))
        .collect();
    if !sentence.contains("```") {
        bad.extend(super::faithfulness::judge(lex, meaning, sentence));
    }
    bad
}

/// Keeps the sentences whose claims the vocabulary supports and whose meaning the facts do
/// ([`super::faithfulness::judge`]); drops a last sentence cut off by the token limit.
pub fn check(
    text: &str,
    v: &Vocabulary,
    meaning: &super::faithfulness::Meaning,
    truncated: bool,
) -> Checked {
    let lex = super::faithfulness::Lexicon::builtin();
    // A code block is one unit, however many lines it has.
    let mut units = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("```") {
        units.extend(sentences(&rest[..i]));
        // "Run this: ```…```": the words leading into the code belong to it.
        let lead = match units.last() {
            Some(u) if !u.ends_with(['.', '!', '?']) => units.pop().unwrap_or_default() + " ",
            _ => String::new(),
        };
        let after = &rest[i + 3..];
        let end = after.find("```").map_or(after.len(), |j| j + 3);
        units.push(
            format!("{lead}```{}", &after[..end.min(after.len())])
                .trim()
                .to_string(),
        );
        rest = &after[end.min(after.len())..];
    }
    units.extend(sentences(rest));
    let mut s = units;
    if truncated && s.len() > 1 {
        if let Some(last) = s.last() {
            if !last.ends_with(['.', '!', '?']) {
                s.pop();
            }
        }
    }
    let mut kept = Vec::new();
    let mut removed = Vec::new();
    let mut judged = Vec::new();
    for sentence in s {
        let bad = verdict(&sentence, v, meaning, lex);
        judged.push(JudgedSentence {
            text: sentence.clone(),
            shown: bad.is_empty(),
            why: bad.clone(),
        });
        if bad.is_empty() {
            kept.push(sentence);
        } else {
            removed.push(Removed {
                sentence,
                unsupported: bad,
            });
        }
    }
    Checked {
        text: kept.join(" "),
        removed,
        sentences: judged,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FACTS: &str = "Root cause: SelectorMatchesNoPods on Service/redis: selector app=redis matches no pod; the pods are labelled app=redis-cache. Port 6379. Fix: set the selector.";

    fn vocab() -> Vocabulary {
        Vocabulary::new(["redis", "redis-cache", "auth", "team-a"], FACTS)
    }

    fn check(text: &str, v: &Vocabulary, truncated: bool) -> Checked {
        let lex = crate::llm::faithfulness::Lexicon::builtin();
        let m = crate::llm::faithfulness::Meaning::new(lex, FACTS, true);
        super::check(text, v, &m, truncated)
    }

    #[test]
    fn invented_names_and_numbers_are_removed() {
        let c = check(
            "Service/redis selects no pod because its selector says app=redis while the pods carry redis-cache. The payments-db pod is also down. Raise the limit to 512Mi. Port 6379 is correct.",
            &vocab(),
            false,
        );
        assert!(c.text.contains("Service/redis selects no pod"), "{c:?}");
        assert!(c.text.contains("Port 6379"), "{c:?}");
        assert_eq!(c.removed.len(), 2, "{c:?}");
        assert_eq!(
            c.removed[0].unsupported[0],
            "not in the snapshot: payments-db"
        );
        assert!(
            c.removed[1]
                .unsupported
                .contains(&"not in the snapshot: 512Mi".to_string()),
            "{c:?}"
        );
    }

    #[test]
    fn code_quotes_flags_and_paths_need_support() {
        let c = check(
            "The selector wants \"redis\". The pods carry \"cache\". Run this:\n```bash\ndocker rm x\n```\nUse --labels=none. Edit /etc/kubeconfig now.",
            &vocab(),
            false,
        );
        assert_eq!(c.text, "The selector wants \"redis\".", "{c:?}");
        let why: Vec<&str> = c
            .removed
            .iter()
            .flat_map(|r| r.unsupported.iter().map(String::as_str))
            .collect();
        for claim in ["\"cache\"", "a code block", "--labels", "/etc/kubeconfig"] {
            assert!(
                why.contains(&format!("not in the snapshot: {claim}").as_str()),
                "{why:?}"
            );
        }
    }

    #[test]
    fn kind_name_must_exist_and_cut_sentence_is_dropped() {
        let c = check(
            "Deployment/checkout crashes. The fix sets the selector. And then the",
            &vocab(),
            true,
        );
        assert_eq!(c.text, "The fix sets the selector.");
        assert!(
            c.removed[0]
                .unsupported
                .contains(&"not in the snapshot: Deployment/checkout".to_string()),
            "{c:?}"
        );
    }

    #[test]
    fn prompt_is_bounded() {
        use metakube_shared::*;
        let ev = |i: usize| Evidence {
            source: EvidenceSource::Log,
            object: ObjectRef::new("Pod", "ns", "p"),
            detail: format!("line {i} {}", "x".repeat(400)),
            pointer: None,
        };
        let d = Diagnosis {
            id: "x".into(),
            target: ObjectRef::new("Deployment", "ns", "d"),
            verdict: metakube_shared::Verdict::RootCause,
            category: Some(Category::Network),
            root_cause: Some(RootCause {
                object: ObjectRef::new("Service", "ns", "redis"),
                reason: "SelectorMatchesNoPods".into(),
                summary: "no pod matches".into(),
            }),
            hypotheses: vec![],
            confidence: 0.9,
            pathway: Pathway::Analytical,
            evidence: (0..100).map(ev).collect(),
            remediation: vec![],
            explanation: String::new(),
            symptoms: vec![],
            gaps: vec![],
            timings_ms: Timings::default(),
            memory: None,
            llm: None,
            changes: vec![],
        };
        let count = |s: &str| s.len() / 4;
        let p = prompt(&d, &count, 300);
        assert!(count(&p.system) + count(&p.user) <= 300, "{}", p.user);
        assert!(p.user.contains("SelectorMatchesNoPods on Service/redis"));
        assert!(p.user.contains("line 0"));
        assert!(!p.user.contains("line 99"));
        assert!(p
            .user
            .lines()
            .all(|l| l.chars().count() <= MAX_FACT_CHARS + 3));
    }
}
