//! Faithfulness: whether a sentence of the model says what the facts say. Grounding
//! ([`super::grounding`]) asks whether every name and value a sentence states exists; this asks
//! whether the sentence keeps their meaning — the mechanism of the fault, each value's role (what
//! a selector asks for against what the pods carry, the old value of a change against the new),
//! the broken thing not called healthy, and no clause made up of things the facts never say. The
//! vocabulary is data: `knowledge/faithfulness.yaml`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::OnceLock;

use regex::Regex;
use serde::Deserialize;

use crate::words::{expressions, whole_name_at};

/// The bundled vocabulary.
pub const FAITHFULNESS_YAML: &str = include_str!("../../knowledge/faithfulness.yaml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    concepts: Vec<ConceptSpec>,
    implies: BTreeMap<String, Vec<String>>,
    roles: RolesSpec,
    healthy: HealthySpec,
    elaboration: ElaborationSpec,
    glue: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConceptSpec {
    id: String,
    #[allow(dead_code)] // read by people: where the words come from
    source: String,
    words: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RolesSpec {
    window: usize,
    words: BTreeMap<String, Vec<String>>,
    compatible: Vec<[String; 2]>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HealthySpec {
    claims: Vec<String>,
    after_fix: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ElaborationSpec {
    min_unsupported: usize,
    max_share: f64,
    common: Vec<String>,
}

/// The vocabulary, compiled.
pub struct Lexicon {
    concepts: Vec<(String, Vec<Regex>)>,
    implies: BTreeMap<String, Vec<String>>,
    roles: Vec<(String, Vec<Regex>)>,
    window: usize,
    compatible: HashSet<(String, String)>,
    claims: Vec<Regex>,
    after_fix: Vec<Regex>,
    common: Vec<Regex>,
    min_unsupported: usize,
    max_share: f64,
    /// The words a constrained generation may use besides the facts': whole words, and stems
    /// (a `common` entry ending in `*`) any word may start with.
    free_words: Vec<String>,
    free_stems: Vec<String>,
}

/// Errors reading a vocabulary.
#[derive(Debug, thiserror::Error)]
pub enum LexiconError {
    /// Not the expected YAML.
    #[error("faithfulness vocabulary: {0}")]
    Parse(#[from] serde_norway::Error),
    /// An entry that is not a valid expression, or names an unknown concept.
    #[error("faithfulness vocabulary: {0}")]
    Invalid(String),
}

impl Lexicon {
    /// Reads a vocabulary in the format of `knowledge/faithfulness.yaml`.
    pub fn from_yaml(text: &str) -> Result<Lexicon, LexiconError> {
        let spec: Spec = serde_norway::from_str(text)?;
        let compile = |words: &[String], what: &str| -> Result<Vec<Regex>, LexiconError> {
            let res = expressions(words);
            let want = usize::from(words.iter().any(|w| !w.starts_with("re:")))
                + words.iter().filter(|w| w.starts_with("re:")).count();
            if res.len() != want {
                return Err(LexiconError::Invalid(format!(
                    "{what}: an entry is not a valid expression"
                )));
            }
            Ok(res)
        };
        let mut concepts = Vec::new();
        for c in &spec.concepts {
            concepts.push((c.id.clone(), compile(&c.words, &c.id)?));
        }
        let ids: BTreeSet<&str> = spec.concepts.iter().map(|c| c.id.as_str()).collect();
        for (from, to) in &spec.implies {
            if let Some(bad) = std::iter::once(from)
                .chain(to)
                .find(|c| !ids.contains(c.as_str()))
            {
                return Err(LexiconError::Invalid(format!(
                    "implies names {bad:?}, which is not a concept"
                )));
            }
        }
        let mut roles = Vec::new();
        for (role, words) in &spec.roles.words {
            roles.push((role.clone(), compile(words, role)?));
        }
        let mut compatible = HashSet::new();
        for [a, b] in &spec.roles.compatible {
            if !spec.roles.words.contains_key(a) || !spec.roles.words.contains_key(b) {
                return Err(LexiconError::Invalid(format!(
                    "compatible roles {a:?}, {b:?}: not both roles"
                )));
            }
            compatible.insert((a.clone(), b.clone()));
            compatible.insert((b.clone(), a.clone()));
        }
        Ok(Lexicon {
            concepts,
            implies: spec.implies,
            roles,
            window: spec.roles.window,
            compatible,
            claims: compile(&spec.healthy.claims, "healthy claims")?,
            after_fix: compile(&spec.healthy.after_fix, "after_fix")?,
            common: compile(&spec.elaboration.common, "common words")?,
            min_unsupported: spec.elaboration.min_unsupported,
            max_share: spec.elaboration.max_share,
            free_words: spec
                .elaboration
                .common
                .iter()
                .chain(&spec.glue)
                .filter(|w| !w.ends_with('*') && !w.starts_with("re:"))
                .map(|w| w.to_lowercase())
                .collect(),
            free_stems: spec
                .elaboration
                .common
                .iter()
                .filter_map(|w| w.strip_suffix('*'))
                .map(str::to_lowercase)
                .collect(),
        })
    }

    /// The bundled vocabulary (checked by a unit test, so a failure is a build bug and
    /// leaves an empty vocabulary that judges nothing).
    pub fn builtin() -> &'static Lexicon {
        static L: OnceLock<Lexicon> = OnceLock::new();
        L.get_or_init(|| {
            Lexicon::from_yaml(FAITHFULNESS_YAML).unwrap_or_else(|_| Lexicon {
                concepts: Vec::new(),
                implies: BTreeMap::new(),
                roles: Vec::new(),
                window: 0,
                compatible: HashSet::new(),
                claims: Vec::new(),
                after_fix: Vec::new(),
                common: Vec::new(),
                min_unsupported: usize::MAX,
                max_share: 1.0,
                free_words: Vec::new(),
                free_stems: Vec::new(),
            })
        })
    }

    /// Words any explanation may use (for constrained generation): whole words and stems.
    pub fn free_words(&self) -> (&[String], &[String]) {
        (&self.free_words, &self.free_stems)
    }

    fn concepts_in<'t>(&self, text: &'t str) -> Vec<(&str, &'t str)> {
        let mut out = Vec::new();
        for (id, res) in &self.concepts {
            for r in res {
                for m in r.find_iter(text) {
                    out.push((id.as_str(), m.as_str()));
                }
            }
        }
        out
    }

    /// The role of the value that follows `before` (the words just before it): the role word
    /// nearest to it.
    fn role_of(&self, before: &str) -> Option<&str> {
        self.roles
            .iter()
            .flat_map(|(role, res)| {
                res.iter()
                    .flat_map(|r| r.find_iter(before))
                    .map(move |m| (m.end(), role.as_str()))
            })
            .max_by_key(|(end, _)| *end)
            .map(|(_, role)| role)
    }

    /// Whether `word` is a word of a mechanism the facts name or imply (`endpoints` under a
    /// selector that matches nothing).
    fn names_known_concept(&self, word: &str, m: &Meaning) -> bool {
        self.concepts.iter().any(|(id, res)| {
            m.concepts.contains(id)
                && res.iter().any(|r| {
                    r.find(word)
                        .is_some_and(|x| x.start() == 0 && x.end() == word.len())
                })
        })
    }

    fn is_common(&self, word: &str) -> bool {
        self.common.iter().any(|r| {
            r.find(word)
                .is_some_and(|m| m.start() == 0 && m.end() == word.len())
        })
    }
}

/// A word of a text and where it starts in it.
#[derive(Debug, Clone)]
struct Word {
    text: String,
    start: usize,
}

/// Words of a text: split at white space, with the punctuation around each removed (inside
/// it is kept: `app=redis`, `nginx:1.25`, `256Mi`). `→` is a word of its own.
fn words(text: &str) -> Vec<Word> {
    static R: OnceLock<Regex> = OnceLock::new();
    let r = R.get_or_init(|| Regex::new(r"→|[^\s→]+").expect("regex"));
    let mut out = Vec::new();
    for m in r.find_iter(text) {
        let raw = m.as_str();
        let lead = raw.len() - raw.trim_start_matches(is_edge).len();
        let t = raw.trim_matches(is_edge);
        if !t.is_empty() {
            out.push(Word {
                text: t.to_lowercase(),
                start: m.start() + lead,
            });
        }
    }
    out
}

fn is_edge(c: char) -> bool {
    matches!(
        c,
        ',' | '.' | ';' | ':' | '(' | ')' | '[' | ']' | '"' | '\'' | '`' | '!' | '?' | '*' | '…'
    )
}

/// Runs of four consecutive words.
fn quads(ws: &[Word]) -> Vec<[String; 4]> {
    ws.windows(4)
        .map(|t| {
            [
                t[0].text.clone(),
                t[1].text.clone(),
                t[2].text.clone(),
                t[3].text.clone(),
            ]
        })
        .collect()
}

/// A value: a word with a digit, `=`, `:` or `/` in it, or a hyphenated name.
fn is_value(w: &str) -> bool {
    w.chars().any(|c| c.is_ascii_digit())
        || w.contains(['=', ':', '/'])
        || (w.contains('-') && w.chars().any(char::is_alphabetic))
}

/// A value and the parts it is made of (`app=redis` → `app=redis`, `redis`).
fn value_forms(w: &str) -> Vec<String> {
    let mut v = vec![w.to_string()];
    if w.contains(['=', ':', '/']) {
        if let Some(last) = w.rsplit(['=', ':', '/']).next() {
            if last.len() >= 2 && last != w {
                v.push(last.to_string());
            }
        }
    }
    v
}

/// A crude English stem: enough that "crashes", "crashing" and "crashed" meet.
fn stem(w: &str) -> String {
    let w = w.to_lowercase();
    for suf in [
        "ations", "ation", "ings", "ing", "ies", "ed", "es", "s", "ly",
    ] {
        if let Some(s) = w.strip_suffix(suf) {
            if s.chars().count() >= 4 {
                return s.to_string();
            }
        }
    }
    w
}

/// What the facts say, read once per explanation.
#[derive(Debug, Clone, Default)]
pub struct Meaning {
    /// Mechanisms the facts name, and those they imply.
    concepts: BTreeSet<String>,
    /// Each value of the facts and the roles it has there.
    roles: HashMap<String, BTreeSet<String>>,
    /// Stems of every word of the facts.
    stems: HashSet<String>,
    /// Whether the facts describe something broken (a sentence may not call it healthy).
    broken: bool,
    /// Names of the root-cause object and of the object asked about (lower case).
    culprits: Vec<String>,
    /// The root cause's reason in words (`UntoleratedTaint` → `untolerated`, `taint`).
    reason_words: Vec<String>,
    /// Other objects the facts name (`Kind/name`, `node worker-1`), which a sentence must not
    /// give as the cause.
    bystanders: Vec<String>,
    /// Runs of four words only the fix says: a cause sentence that uses one gives the fix as
    /// the cause.
    fix_only: HashSet<[String; 4]>,
    /// Numeric values the facts give as new (the fix's target, a change's new value).
    new_values: Vec<String>,
    /// The facts, lower-cased.
    text: String,
}

impl Meaning {
    /// From the facts given to the model, and whether they describe a fault.
    pub fn new(lex: &Lexicon, facts: &str, broken: bool) -> Meaning {
        let mut concepts: BTreeSet<String> = lex
            .concepts_in(facts)
            .into_iter()
            .map(|(id, _)| id.to_string())
            .collect();
        let named: Vec<String> = concepts.iter().cloned().collect();
        for c in named {
            if let Some(more) = lex.implies.get(&c) {
                concepts.extend(more.iter().cloned());
            }
        }
        let mut roles: HashMap<String, BTreeSet<String>> = HashMap::new();
        for line in facts.lines() {
            let ws = words(line);
            for (i, w) in ws.iter().enumerate() {
                if w.text == "→" || !is_value(&w.text) {
                    continue;
                }
                let mut found: Vec<String> = Vec::new();
                if ws.get(i + 1).is_some_and(|n| n.text == "→") {
                    found.push("before".into());
                }
                if i > 0 && ws[i - 1].text == "→" {
                    found.push("after".into());
                }
                if found.is_empty() {
                    let from = ws[i.saturating_sub(lex.window)].start;
                    if let Some(r) = lex.role_of(&line[from..w.start]) {
                        found.push(r.to_string());
                    }
                }
                for f in value_forms(&w.text) {
                    roles.entry(f).or_default().extend(found.iter().cloned());
                }
            }
        }
        let stems = words(facts)
            .iter()
            .flat_map(|w| {
                w.text
                    .split(|c: char| !c.is_alphanumeric())
                    .map(stem)
                    .collect::<Vec<_>>()
            })
            .filter(|s| !s.is_empty())
            .collect();
        let (culprits, reason_words) = culprits(facts);
        let mut bystanders: Vec<String> = Vec::new();
        for c in object_mention().captures_iter(facts) {
            let name = c[1].to_lowercase();
            // After a plain word ("node worker-1") only a name-shaped word is an object.
            let shaped = c[0].contains('/')
                || name.contains(['-', '.'])
                || name.chars().any(|ch| ch.is_ascii_digit());
            if shaped && !culprits.contains(&name) && !bystanders.contains(&name) {
                bystanders.push(name);
            }
        }
        let (fix, rest): (Vec<&str>, Vec<&str>) =
            facts.lines().partition(|l| l.starts_with("Fix:"));
        let elsewhere: HashSet<[String; 4]> = rest.iter().flat_map(|l| quads(&words(l))).collect();
        let fix_only = fix
            .iter()
            .flat_map(|l| quads(&words(l.trim_start_matches("Fix:"))))
            .filter(|t| !elsewhere.contains(t))
            .collect();
        let mut new_values: Vec<String> = roles
            .iter()
            .filter(|(v, r)| {
                r.contains("after") && is_value(v) && v.chars().any(|c| c.is_ascii_digit())
            })
            .map(|(v, _)| v.clone())
            .collect();
        new_values.sort();
        Meaning {
            concepts,
            roles,
            stems,
            broken,
            culprits,
            reason_words,
            bystanders,
            fix_only,
            new_values,
            text: facts.to_lowercase(),
        }
    }

    /// Whether `text` is, word for word, what the facts say: four words or more (a shorter
    /// piece — "is healthy" — is anybody's words).
    fn says(&self, text: &str) -> bool {
        let text = text.trim().trim_end_matches(['.', '!', '?']);
        text.split_whitespace().count() >= 4 && self.text.contains(&text.to_lowercase())
    }

    /// Whether the clause of `sentence` around byte `at` is, word for word, in the facts.
    fn says_clause_at(&self, sentence: &str, at: usize) -> bool {
        let mut start = 0;
        for m in clause_splitter().find_iter(sentence) {
            if m.start() > at {
                return self.says(&sentence[start..m.start()]);
            }
            start = m.end();
        }
        self.says(&sentence[start..])
    }

    /// Where `lower` (a lower-cased text) first names the root cause: the root-cause or
    /// asked-about object by name, or at least half of the reason's words.
    fn first_culprit(&self, lower: &str) -> Option<usize> {
        let named = self
            .culprits
            .iter()
            .filter_map(|c| whole_name_at(lower, c))
            .min();
        let reason: Vec<usize> = self
            .reason_words
            .iter()
            .filter_map(|w| lower.find(w.as_str()))
            .collect();
        let reason_at = (reason.len() * 2 >= self.reason_words.len().max(1))
            .then(|| reason.iter().copied().min())
            .flatten();
        named.into_iter().chain(reason_at).min()
    }

    fn supports_word(&self, w: &str) -> bool {
        let s = stem(w);
        self.stems.contains(&s)
            || (s.len() >= 5
                && self
                    .stems
                    .iter()
                    .any(|f| f.len() >= 5 && (f.starts_with(&s) || s.starts_with(f.as_str()))))
    }
}

/// `Kind/name` and `node NAME`-style mentions of objects in facts.
fn object_mention() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| {
        Regex::new(r"(?:\b[A-Z][A-Za-z]+/|\b(?:node|pod|pods|Service|ConfigMap|Secret|claim|caller|LimitRange|ResourceQuota|NetworkPolicy|StorageClass) )([a-z0-9][-a-z0-9.]*[a-z0-9])\b")
            .expect("regex")
    })
}

/// The root cause's object and the asked-about object's names, and the reason in words, from
/// the facts' `Object asked about:` and `Root cause: REASON on KIND/NAME:` lines.
fn culprits(facts: &str) -> (Vec<String>, Vec<String>) {
    static R: OnceLock<Regex> = OnceLock::new();
    let r = R.get_or_init(|| {
        Regex::new(r"(?m)^(?:Object asked about: [A-Za-z]+/(\S+)|Root cause: (\w+) on [A-Za-z]+/([^\s:]+))")
            .expect("regex")
    });
    let mut names = Vec::new();
    let mut reason = Vec::new();
    for c in r.captures_iter(facts) {
        for i in [1, 3] {
            if let Some(n) = c.get(i) {
                names.push(n.as_str().to_lowercase());
            }
        }
        if let Some(why) = c.get(2) {
            // CamelCase into words.
            let mut cur = String::new();
            for ch in why.as_str().chars() {
                if ch.is_uppercase() && !cur.is_empty() {
                    reason.push(std::mem::take(&mut cur));
                }
                cur.extend(ch.to_lowercase());
            }
            if !cur.is_empty() {
                reason.push(cur);
            }
        }
    }
    (names, reason)
}

fn cause_sentence() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| Regex::new(r"(?i)\b(?:root cause|caused by|because|due to)\b").expect("regex"))
}

fn caused_by() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| {
        Regex::new(r"\b(?:caused by|due to|because of|the result of)\b").expect("regex")
    })
}

fn clause_splitter() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| {
        Regex::new(r"(?i)[,;:()]|\b(?:which|so that|because|while|since|even if|i\.e\.|e\.g\.)\b")
            .expect("regex")
    })
}

/// What a sentence says that the facts do not: one line for each claim, empty when faithful.
pub fn judge(lex: &Lexicon, m: &Meaning, sentence: &str) -> Vec<String> {
    let mut why = Vec::new();
    // 1. A mechanism the facts do not name.
    let mut said = BTreeSet::new();
    for (id, word) in lex.concepts_in(sentence) {
        if !m.concepts.contains(id) && said.insert(id) {
            why.push(format!("says {word:?} ({id}), which the facts do not"));
        }
    }
    // 2. A value of the facts in another role.
    let ws = words(sentence);
    for (i, w) in ws.iter().enumerate() {
        if !is_value(&w.text) {
            continue;
        }
        let Some(have) = value_forms(&w.text)
            .into_iter()
            .find_map(|f| m.roles.get(&f))
        else {
            continue;
        };
        let from = ws[i.saturating_sub(lex.window)].start;
        let Some(role) = lex.role_of(&sentence[from..w.start]) else {
            continue;
        };
        // A value the facts hold without a role, given as the new one where the facts name
        // another ("raise the limit to 128Mi" when 128Mi is the limit and the fix says 256Mi).
        if have.is_empty() {
            if role == "after"
                && w.text.chars().any(|c| c.is_ascii_digit())
                && !m.new_values.is_empty()
            {
                why.push(format!(
                    "gives {} as the new value; the facts' new value is {}",
                    w.text,
                    m.new_values.join(", ")
                ));
            }
            continue;
        }
        let fits = have.contains(role)
            || have
                .iter()
                .any(|h| lex.compatible.contains(&(role.to_string(), h.clone())));
        if !fits {
            why.push(format!(
                "gives {} the role {role}; the facts give it {}",
                w.text,
                have.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    // 3. The broken thing called healthy.
    if m.broken {
        for r in &lex.claims {
            if let Some(c) = r.find(sentence) {
                let before = &sentence[..c.start()];
                // "…, while the cluster is healthy": what the facts themselves say of something
                // else, in a clause copied from them.
                if !lex.after_fix.iter().any(|a| a.is_match(before))
                    && !m.says_clause_at(sentence, c.start())
                {
                    why.push(format!(
                        "says {:?} where the facts describe a fault",
                        c.as_str()
                    ));
                }
            }
        }
    }
    // 4. A cause sentence that blames another object, names neither the root cause nor its
    //    reason, says the root cause was caused by something else, or gives the fix as the
    //    cause.
    // ("The root cause is:" leading into a list names nothing yet.)
    // (A sentence the facts say word for word — "No single root cause was verified." — is
    // theirs, whatever it names.)
    let quoted = m.says(sentence);
    if cause_sentence().is_match(sentence)
        && !m.culprits.is_empty()
        && !sentence.ends_with(':')
        && !quoted
    {
        let lower = sentence.to_lowercase();
        let blamed = m
            .bystanders
            .iter()
            .filter_map(|b| whole_name_at(&lower, b).map(|i| (i, b)))
            .min();
        match (m.first_culprit(&lower), blamed) {
            (None, _) => why.push(format!(
                "gives a cause without naming the root cause ({} on {})",
                m.reason_words.join(" "),
                m.culprits.last().map_or("", String::as_str)
            )),
            (Some(c), Some((b, name))) if b < c => why.push(format!(
                "blames {name}, which the facts do not give as the cause"
            )),
            _ => {}
        }
        // "…, which was caused by Y": Y must be the root cause (its object or reason), not a
        // symptom of it ("a volume full, caused by an OSError") or anything else.
        if let Some(c) = caused_by().find(&lower) {
            let tail = &lower[c.end()..];
            let tail = &tail[..tail.find([',', ';', '.', '(']).unwrap_or(tail.len())];
            // The facts' own words ("Caused by: java.net.UnknownHostException" in a log line
            // they quote) are not the model's claim.
            let theirs = m.text.contains(&format!("{}{tail}", c.as_str()));
            if m.first_culprit(tail).is_none() && !theirs {
                why.push(format!(
                    "gives as the cause what the facts do not (\"{}{}\")",
                    c.as_str(),
                    tail.trim_end()
                ));
            }
        }
        if let Some(t) = quads(&ws).into_iter().find(|t| m.fix_only.contains(t)) {
            why.push(format!(
                "gives the fix as the cause (\"{}\" is what the fix says)",
                t.join(" ")
            ));
        }
    }
    // 5. A clause made of what the facts never say.
    for clause in clause_splitter().split(sentence) {
        let content: Vec<&str> = clause
            .split(|c: char| !c.is_alphanumeric() && c != '-')
            .filter(|w| w.chars().count() >= 4 && w.chars().all(char::is_alphabetic))
            .filter(|w| !lex.is_common(w))
            .collect();
        let unsupported: Vec<&str> = content
            .iter()
            .copied()
            .filter(|w| !m.supports_word(w) && !lex.names_known_concept(w, m))
            .collect();
        if unsupported.len() >= lex.min_unsupported
            && unsupported.len() as f64 > lex.max_share * content.len() as f64
        {
            why.push(format!(
                "adds what the facts do not say: {}",
                unsupported.join(", ")
            ));
        }
    }
    why
}

#[cfg(test)]
mod tests {
    use super::*;

    const SELECTOR: &str = "Object asked about: Deployment/web (namespace shop)\nRoot cause: SelectorMatchesNoPods on Service/redis: selector app=redis matches no pod; the pods are labelled app=redis-cache\nCategory: network\nFix: set the selector of Service redis to app=redis-cache";
    const OOM: &str = "Object asked about: Deployment/checkout (namespace shop)\nRoot cause: MemoryLimitTooLow on Deployment/checkout: container server is OOMKilled 2s after start: memory limit 128Mi is below what it needs to start\nCategory: resource\nFix: raise the memory limit of container server to 256Mi (twice the limit it is killed at)";
    const ROLLOUT: &str = "Root cause: ImagePullBackOff on Deployment/api\nEvidence:\n- Deployment/api /spec/template/spec/containers/0/image nginx:1.25 → nginx:1.255\nFix: set the image back to nginx:1.25";

    fn judged(facts: &str, s: &str) -> Vec<String> {
        let lex = Lexicon::builtin();
        judge(lex, &Meaning::new(lex, facts, true), s)
    }

    #[test]
    fn the_bundled_vocabulary_compiles() {
        let lex = Lexicon::from_yaml(FAITHFULNESS_YAML).expect("faithfulness.yaml");
        assert!(lex.concepts.len() >= 15);
        assert!(Lexicon::from_yaml("concepts: []\nimplies: {a: [b]}\nroles: {window: 3, words: {}, compatible: []}\nhealthy: {claims: [], after_fix: []}\nelaboration: {min_unsupported: 3, max_share: 0.5, common: []}\nglue: []").is_err());
    }

    #[test]
    fn faithful_paraphrases_pass() {
        for s in [
            "Service redis selects app=redis, but the pods are labelled app=redis-cache, so it has no endpoints.",
            "The fix sets the selector of Service redis to app=redis-cache.",
        ] {
            assert_eq!(judged(SELECTOR, s), Vec::<String>::new(), "{s}");
        }
        for s in [
            "The container server is OOMKilled right after it starts because its memory limit of 128Mi is too low.",
            "Raising the memory limit to 256Mi lets it start.",
        ] {
            assert_eq!(judged(OOM, s), Vec::<String>::new(), "{s}");
        }
        assert_eq!(
            judged(
                ROLLOUT,
                "The image was changed from nginx:1.25 to nginx:1.255, which cannot be pulled."
            ),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_mechanism_the_facts_do_not_name_is_caught() {
        let why = judged(OOM, "The container server was killed by an exception.");
        assert!(why.iter().any(|w| w.contains("code_error")), "{why:?}");
        let why = judged(SELECTOR, "The pods of redis fail their readiness probe.");
        assert!(why.iter().any(|w| w.contains("probe")), "{why:?}");
    }

    #[test]
    fn swapped_roles_are_caught() {
        let why = judged(
            SELECTOR,
            "Service redis selects app=redis-cache but the pods carry app=redis.",
        );
        assert_eq!(why.len(), 2, "{why:?}");
        let why = judged(
            ROLLOUT,
            "The image was changed from nginx:1.255 to nginx:1.25.",
        );
        // nginx:1.25 is both the old image and the fix's: only the new one is misplaced.
        assert_eq!(
            why,
            vec!["gives nginx:1.255 the role before; the facts give it after"]
        );
    }

    #[test]
    fn a_symptom_given_as_the_cause_of_the_root_cause_is_caught() {
        let why = judged(
            OOM,
            "The root cause is a memory limit too low on checkout, which was caused by an OOMKilled container.",
        );
        assert_eq!(why.len(), 1, "{why:?}");
        assert!(why[0].starts_with("gives as the cause"), "{why:?}");
        assert!(judged(
            OOM,
            "The container server is OOMKilled because of its memory limit 128Mi, which is too low."
        )
        .is_empty());
    }

    #[test]
    fn the_current_value_given_as_the_new_one_is_caught() {
        let why = judged(OOM, "The fix raises the memory limit to 128Mi.");
        assert_eq!(
            why,
            vec!["gives 128mi as the new value; the facts' new value is 256mi"]
        );
    }

    #[test]
    fn healthy_claims_about_a_fault_are_caught_but_not_after_the_fix() {
        assert!(!judged(OOM, "Deployment checkout is healthy.").is_empty());
        assert!(judged(
            OOM,
            "Once the limit is raised, the container server is healthy."
        )
        .is_empty());
    }

    #[test]
    fn a_made_up_clause_is_caught() {
        let why = judged(
            OOM,
            "The fix raises the memory limit to 256Mi, which allows the system to continue even if they are not reachable anymore (i.e., when you host your own servers).",
        );
        assert!(why.iter().any(|w| w.starts_with("adds what")), "{why:?}");
    }

    #[test]
    fn what_the_facts_say_word_for_word_is_theirs() {
        const DEP: &str = "Object asked about: Job/sync (namespace ops)\nRoot cause: DependencyUnreachable on Job/sync: Job/sync cannot reach db.example.net while the cluster is healthy (log of container sync: Caused by: java.net.UnknownHostException: db.example.net)\nFix: check db.example.net";
        // A clause copied from the facts that calls something else healthy.
        assert!(judged(
            DEP,
            "The root cause is DependencyUnreachable on Job/sync: Job/sync cannot reach db.example.net while the cluster is healthy."
        )
        .is_empty());
        // The facts' quoted "Caused by:" is not the model blaming something.
        assert!(judged(
            DEP,
            "The root cause is DependencyUnreachable on Job/sync (log of container sync: Caused by: java.net.UnknownHostException: db.example.net)."
        )
        .is_empty());
        // But the same claims in the model's own words are still caught, and a few words the
        // facts also happen to hold are not a quotation.
        assert!(!judged(DEP, "Job sync fails although the job is healthy.").is_empty());
        assert!(!judged(DEP, "Job/sync cannot reach db.example.net, is healthy.").is_empty());
        assert!(!judged(
            DEP,
            "The root cause is DependencyUnreachable on Job/sync, which was caused by a java exception."
        )
        .is_empty());
        // A sentence of the facts with no culprit in it.
        let none = "Object asked about: Deployment/web (namespace shop)\nNo single root cause was verified. Symptoms: ";
        assert!(judged(none, "No single root cause was verified.").is_empty());
        assert!(!judged(none, "The root cause is the network.").is_empty());
    }
}
