//! Generation over a grammar of the facts: the model writes the explanation, but every
//! sentence it may write is a frame of the fact's role ("The root cause is …", "Evidence: …",
//! "The fix: …") around a clause copied from the facts given to it. It chooses which
//! clauses, how many of the root cause's, and when to stop; it cannot join words of two facts
//! into a claim neither makes, give a value another role, or name a mechanism the facts do not.
//! The grammar also orders the text as the system prompt asks — what is broken first, then
//! (optionally) one piece of evidence, then the fix — and a text may end only once the fix is
//! said (when the facts have one).
//!
//! Decoding follows the grammar token by token: [`State`] holds every way the text written so
//! far can still be read as sentences of the grammar, and a token is allowed when its text
//! keeps at least one. Sentences are ASCII (`→` is written `->`; a fact clipped with `…` keeps
//! its whole clauses only), so a token's text is compared byte by byte.

/// The role of a fact line, in the order an explanation says them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// What is broken (the root cause line, or that none was verified).
    Cause,
    /// One line of evidence.
    Evidence,
    /// The fix.
    Fix,
    /// What memory says of this fault.
    Memory,
}

/// The sentences an explanation may be made of.
#[derive(Debug, Clone, Default)]
pub struct FactGrammar {
    sentences: Vec<(Role, String)>,
    /// The first sentence must have this role (the cause, when the facts give one).
    first: Option<Role>,
    /// The text may end only after a sentence of this role (the fix, when there is one).
    needs: Option<Role>,
}

/// Clauses of a fact: split at `; `, `: ` and ` - ` outside parentheses (a parenthesis —
/// a quoted log line, an aside — stays whole), as the engine writes its summaries.
fn clauses(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    let b = text.as_bytes();
    let mut i = 0;
    let mut depth = 0usize;
    while i < b.len() {
        match b[i] {
            b'(' => depth += 1,
            b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        let sep = if depth > 0 {
            None
        } else if (b[i] == b';' || b[i] == b':') && b.get(i + 1) == Some(&b' ') {
            Some(2)
        } else if text[i..].starts_with(" - ") {
            Some(3)
        } else {
            None
        };
        match sep {
            Some(n) => {
                if i > start {
                    out.push((start, i));
                }
                start = i + n;
                i += n;
            }
            None => i += 1,
        }
    }
    if start < text.len() {
        out.push((start, text.len()));
    }
    out
}

/// Whether clause `c` of `text` only leads into the next ("its log says: …"): a run of clauses
/// may not end there.
fn introduces(text: &str, c: (usize, usize)) -> bool {
    let last = text[c.0..c.1].rsplit(' ').next().unwrap_or("");
    text[c.1..].starts_with(": ")
        && matches!(
            last,
            "says" | "said" | "reads" | "shows" | "is" | "are" | "was" | "were" | "of" | "with"
        )
}

/// A fact as the grammar writes it: ASCII, `→` as `->`, no closing stop; a fact the prompt
/// clipped (`…`) keeps its complete clauses only; `None` when nothing whole is left.
fn plain(fact: &str) -> Option<String> {
    let mut s = fact.trim().replace('→', "->");
    if let Some(cut) = s.find('…') {
        s.truncate(cut);
        let last = clauses(&s).iter().rev().nth(1).map(|&(_, end)| end);
        s.truncate(last?);
    }
    let s = s.trim().trim_end_matches(['.', ';', ':', ',']).trim_end();
    (s.is_ascii() && s.split_whitespace().count() >= 2).then(|| s.to_string())
}

/// `Root cause: REASON on KIND/NAME: SUMMARY` → (`REASON on KIND/NAME`, `SUMMARY`).
fn root_cause(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix("Root cause: ")?;
    let on = rest.find(" on ")?;
    let colon = on + rest[on..].find(": ")?;
    Some((&rest[..colon], &rest[colon + 2..]))
}

impl FactGrammar {
    /// The grammar of a prompt's facts (the user message of [`super::grounding::prompt`]).
    pub fn from_facts(facts: &str) -> FactGrammar {
        let mut g = FactGrammar::default();
        let mut add = |role: Role, s: String| {
            if s.is_ascii() && !g.sentences.iter().any(|(_, t)| *t == s) {
                g.sentences.push((role, s));
            }
        };
        for line in facts.lines() {
            if let Some((head, summary)) = root_cause(line) {
                let Some(head) = plain(head) else { continue };
                add(Role::Cause, format!("The root cause is {head}."));
                // Every run of consecutive clauses of the summary: each is what the summary
                // says, copied as written.
                if let Some(summary) = plain(summary) {
                    let cs = clauses(&summary);
                    for i in 0..cs.len() {
                        for j in (i..cs.len()).filter(|&j| !introduces(&summary, cs[j])) {
                            let run = &summary[cs[i].0..cs[j].1];
                            add(Role::Cause, format!("The root cause is {head}: {run}."));
                        }
                    }
                }
            } else if let Some(rest) = line.strip_prefix("No single root cause was verified.") {
                add(Role::Cause, "No single root cause was verified.".into());
                if let Some(s) = rest.trim().strip_prefix("Symptoms: ").and_then(plain) {
                    add(Role::Evidence, format!("Symptoms: {s}."));
                }
            } else if let Some(e) = line.strip_prefix("- ").and_then(plain) {
                add(Role::Evidence, format!("Evidence: {e}."));
            } else if let Some(f) = line.strip_prefix("Fix: ").and_then(plain) {
                // ("The fix is to …" would misread a fix that is not a verb phrase:
                // "cart is pinned to node small-node: drop …".)
                add(Role::Fix, format!("The fix: {f}."));
            } else if let Some(m) = line.strip_prefix("Memory: ").and_then(plain) {
                add(
                    Role::Memory,
                    match m.strip_prefix("seen ") {
                        Some(rest) => format!("This fault was seen {rest}."),
                        None => format!("Memory: {m}."),
                    },
                );
            }
        }
        g.settle();
        g
    }

    /// The same grammar without the sentences that leave no room, within `bytes` of text, for
    /// a cause and the fix around them (a long quoted log line as the cause would use up the
    /// token limit before the fix).
    pub fn within(mut self, bytes: usize) -> FactGrammar {
        let shortest = |r: Role, g: &FactGrammar| {
            g.sentences
                .iter()
                .filter(|(role, _)| *role == r)
                .map(|(_, s)| s.len() + 1)
                .min()
                .unwrap_or(0)
        };
        let (cause, fix) = (shortest(Role::Cause, &self), shortest(Role::Fix, &self));
        self.sentences.retain(|(role, s)| {
            let need = s.len()
                + 1
                + match role {
                    Role::Cause => fix,
                    Role::Evidence => cause + fix,
                    Role::Fix => cause,
                    Role::Memory => cause + fix,
                };
            need <= bytes
        });
        self.settle();
        self
    }

    /// Which role comes first and which the text waits for, from the sentences there are.
    fn settle(&mut self) {
        let has = |r: Role| self.sentences.iter().any(|(role, _)| *role == r);
        self.first = has(Role::Cause).then_some(Role::Cause);
        self.needs = has(Role::Fix).then_some(Role::Fix);
    }

    /// The sentences the grammar holds, with their roles.
    pub fn sentences(&self) -> &[(Role, String)] {
        &self.sentences
    }

    /// Whether there is anything to write.
    pub fn is_empty(&self) -> bool {
        self.sentences.is_empty()
    }

    /// Sentences that may come after one of role `last` (`None`: the first).
    fn next_after(&self, last: Option<Role>) -> Vec<u16> {
        (0..self.sentences.len())
            .filter(|&i| {
                let role = self.sentences[i].0;
                match last {
                    None => self.first.is_none_or(|f| role == f),
                    Some(l) => role > l,
                }
            })
            .map(|i| i as u16)
            .collect()
    }

    /// Byte `at` of sentence `i` as written after another sentence (`after`: one space
    /// between) or first.
    fn byte(&self, i: u16, after: bool, at: usize) -> Option<u8> {
        let s = self.sentences[i as usize].1.as_bytes();
        if !after {
            s.get(at).copied()
        } else if at == 0 {
            Some(b' ')
        } else {
            s.get(at - 1).copied()
        }
    }

    fn len(&self, i: u16, after: bool) -> usize {
        self.sentences[i as usize].1.len() + usize::from(after)
    }

    /// The state before anything is written.
    pub fn start(&self) -> State<'_> {
        State {
            g: self,
            alts: vec![Alt {
                last: None,
                live: self.next_after(None),
                at: 0,
            }],
        }
    }

    /// The state after `text`; `None` when the text is not a prefix of the grammar's language.
    pub fn state(&self, text: &str) -> Option<State<'_>> {
        self.start().after(text)
    }
}

/// One reading of the text written so far.
#[derive(Debug, Clone, PartialEq)]
struct Alt {
    /// Role of the last complete sentence (`None`: none yet).
    last: Option<Role>,
    /// Sentences the one being written may still be.
    live: Vec<u16>,
    /// Bytes of it written.
    at: usize,
}

/// Every reading of a text as sentences of a [`FactGrammar`].
#[derive(Debug, Clone)]
pub struct State<'g> {
    g: &'g FactGrammar,
    alts: Vec<Alt>,
}

impl<'g> State<'g> {
    /// The state after `piece` is written too; `None` when no reading survives.
    pub fn after(&self, piece: &str) -> Option<State<'g>> {
        let mut alts = self.alts.clone();
        for b in piece.bytes() {
            let mut next = Vec::with_capacity(alts.len() + 1);
            for a in &alts {
                let live: Vec<u16> = a
                    .live
                    .iter()
                    .copied()
                    .filter(|&i| self.g.byte(i, a.last.is_some(), a.at) == Some(b))
                    .collect();
                let at = a.at + 1;
                // A sentence that ends here starts a new reading at the boundary.
                for &i in &live {
                    if self.g.len(i, a.last.is_some()) == at {
                        let role = self.g.sentences[i as usize].0;
                        let b = Alt {
                            last: Some(role),
                            live: self.g.next_after(Some(role)),
                            at: 0,
                        };
                        if !next.contains(&b) {
                            next.push(b);
                        }
                    }
                }
                let going: Vec<u16> = live
                    .into_iter()
                    .filter(|&i| self.g.len(i, a.last.is_some()) > at)
                    .collect();
                if !going.is_empty() {
                    next.push(Alt {
                        last: a.last,
                        live: going,
                        at,
                    });
                }
            }
            if next.is_empty() {
                return None;
            }
            alts = next;
        }
        Some(State { g: self.g, alts })
    }

    /// Whether `piece` may be written next (the first byte is checked before any reading is
    /// copied: most tokens of a vocabulary fail there).
    pub fn allows(&self, piece: &str) -> bool {
        let Some(&first) = piece.as_bytes().first() else {
            return false;
        };
        let opens = self.alts.iter().any(|a| {
            a.live
                .iter()
                .any(|&i| self.g.byte(i, a.last.is_some(), a.at) == Some(first))
        });
        opens && self.after(piece).is_some()
    }

    /// Whether the text may end here: between sentences, after at least one, and after the
    /// fix when the facts give one.
    pub fn may_stop(&self) -> bool {
        self.alts
            .iter()
            .any(|a| a.at == 0 && a.last.is_some_and(|l| self.g.needs.is_none_or(|n| l >= n)))
    }

    /// Whether nothing more can be written (only the end is left).
    pub fn finished(&self) -> bool {
        self.alts.iter().all(|a| a.at == 0 && a.live.is_empty())
    }

    /// Whether the text ends between two sentences.
    pub fn at_boundary(&self) -> bool {
        self.alts.iter().any(|a| a.at == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FACTS: &str = "Object asked about: Deployment/checkout (namespace shop)
Root cause: MemoryLimitTooLow on Deployment/checkout: container server is OOMKilled 2s after start: memory limit 128Mi is below what it needs to start
Category: resource
Evidence:
- container server was OOMKilled (exit 137) after 2s of uptime; 5 restarts
- log of container web (current run): 2025-11-12T10:10:00Z ERROR request to http://profile/v1/items failed: Get \"http://profile/v1/items\": context deadline exceed…
- causal path: Deployment/reports → NetworkPolicy/profile-ingress
Fix: raise the memory limit of container server to 256Mi (twice the limit it is killed at)
Memory: seen 2 time(s) before; the fix worked 2 of 2.
Explain the root cause and the fix.";

    fn texts(g: &FactGrammar) -> Vec<&str> {
        g.sentences().iter().map(|(_, s)| s.as_str()).collect()
    }

    #[test]
    fn each_sentence_is_a_frame_around_a_clause_of_the_facts() {
        let g = FactGrammar::from_facts(FACTS);
        let t = texts(&g);
        assert!(t.contains(&"The root cause is MemoryLimitTooLow on Deployment/checkout."));
        assert!(t.contains(&"The root cause is MemoryLimitTooLow on Deployment/checkout: memory limit 128Mi is below what it needs to start."));
        assert!(t.contains(&"The root cause is MemoryLimitTooLow on Deployment/checkout: container server is OOMKilled 2s after start: memory limit 128Mi is below what it needs to start."));
        assert!(t.contains(
            &"Evidence: causal path: Deployment/reports -> NetworkPolicy/profile-ingress."
        ));
        assert!(t.contains(&"The fix: raise the memory limit of container server to 256Mi (twice the limit it is killed at)."));
        assert!(t.contains(&"This fault was seen 2 time(s) before; the fix worked 2 of 2."));
        // The clipped log line keeps its whole clauses only.
        assert!(
            t.contains(&"Evidence: log of container web (current run): 2025-11-12T10:10:00Z ERROR request to http://profile/v1/items failed: Get \"http://profile/v1/items\"."),
            "{t:#?}"
        );
        assert!(t.iter().all(|s| !s.contains('…') && s.is_ascii()));
        // Not the object asked about, the category or the question.
        assert!(!t
            .iter()
            .any(|s| s.contains("namespace shop") || s.contains("Explain")));
        // A parenthesis is never cut.
        let g = FactGrammar::from_facts("Root cause: DependencyUnreachable on Job/sync: Job/sync cannot reach 10.20.0.5 (log of container sync (current run): psql: error: connection refused); 2 retries");
        let t = texts(&g);
        assert!(t.contains(&"The root cause is DependencyUnreachable on Job/sync: Job/sync cannot reach 10.20.0.5 (log of container sync (current run): psql: error: connection refused)."), "{t:#?}");
        assert!(
            !t.iter()
                .any(|s| s.ends_with("psql.") || s.ends_with("error.")),
            "{t:#?}"
        );
        // A run of clauses never ends on one that only leads into the next.
        let g = FactGrammar::from_facts("Root cause: ApplicationCrash on Deployment/gateway: Deployment/gateway fails on its own; its log says: Exception in thread main");
        let t = texts(&g);
        assert!(t.contains(&"The root cause is ApplicationCrash on Deployment/gateway: Deployment/gateway fails on its own; its log says: Exception in thread main."));
        assert!(!t.iter().any(|s| s.ends_with("says.")), "{t:#?}");
    }

    #[test]
    fn the_text_says_cause_then_fix_and_ends_only_after_the_fix() {
        let g = FactGrammar::from_facts(FACTS);
        let cause = "The root cause is MemoryLimitTooLow on Deployment/checkout.";
        let fix = " The fix: raise the memory limit of container server to 256Mi (twice the limit it is killed at).";
        assert!(g.state("The fix").is_none(), "the cause comes first");
        let s = g.state(cause).unwrap();
        assert!(s.at_boundary() && !s.may_stop(), "not before the fix");
        let s = s.after(fix).unwrap();
        assert!(s.may_stop());
        assert!(s.after(" The root cause").is_none(), "no going back");
        assert!(
            s.after(" This fault was seen").is_some(),
            "memory may follow"
        );
        let s = s
            .after(" This fault was seen 2 time(s) before; the fix worked 2 of 2.")
            .unwrap();
        assert!(s.finished() && s.may_stop());
        assert!(s.after(" ").is_none());
    }

    #[test]
    fn a_text_that_leaves_the_facts_is_refused_wherever_it_does() {
        let g = FactGrammar::from_facts(FACTS);
        let s = g
            .state("The root cause is MemoryLimitTooLow on Deployment/checkout: memory limit ")
            .unwrap();
        assert!(s.after("128Mi is below").is_some());
        assert!(s.after("256Mi").is_none(), "a value in another role");
        assert!(s.after("128Mi is above").is_none());
        assert!(g.state("The root cause is a memory leak").is_none());
        // A piece may end one sentence and begin the next.
        let s = g
            .state("The root cause is MemoryLimitTooLow on Deployment/checkout")
            .unwrap();
        let s = s.after(". Evidence: container").unwrap();
        assert!(!s.at_boundary());
        // A prefix of a longer sentence and a whole one at once: both readings kept.
        let s = g
            .state("The root cause is MemoryLimitTooLow on Deployment/checkout: container server is OOMKilled 2s after start.")
            .unwrap();
        assert!(s.at_boundary());
        let s = g
            .state("The root cause is MemoryLimitTooLow on Deployment/checkout: container server is OOMKilled 2s after start")
            .unwrap();
        assert!(s.after(": memory").is_some() && s.after(".").is_some());
    }

    #[test]
    fn sentences_that_leave_no_room_for_the_fix_are_dropped() {
        let all = FactGrammar::from_facts(FACTS);
        let longest_cause = all
            .sentences()
            .iter()
            .filter(|(r, _)| *r == Role::Cause)
            .map(|(_, s)| s.len())
            .max()
            .unwrap();
        let g = FactGrammar::from_facts(FACTS).within(200);
        assert!(g.sentences().len() < all.sentences().len());
        let fix = "The fix: raise the memory limit of container server to 256Mi (twice the limit it is killed at).";
        assert!(texts(&g).contains(&fix));
        for (role, s) in g.sentences() {
            if *role == Role::Cause {
                assert!(s.len() + 1 + fix.len() < 200, "{s}");
            }
        }
        assert!(
            longest_cause + fix.len() + 2 > 200,
            "the bound removed something"
        );
        // Still cause first, fix required.
        assert!(g.state("The fix").is_none());
    }

    #[test]
    fn without_a_verified_cause_the_symptoms_are_said() {
        let g = FactGrammar::from_facts(
            "Object asked about: Deployment/a (namespace x)\nNo single root cause was verified. Symptoms: CrashLoopBackOff on Pod/a-1; BackOff on Pod/a-2\nExplain the root cause and the fix.",
        );
        assert_eq!(
            texts(&g),
            [
                "No single root cause was verified.",
                "Symptoms: CrashLoopBackOff on Pod/a-1; BackOff on Pod/a-2."
            ]
        );
        let s = g.state("No single root cause was verified.").unwrap();
        assert!(s.may_stop(), "no fix to wait for");
    }
}
