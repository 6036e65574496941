//! Generation constrained to the facts: the model may only write words that the facts hold or
//! that every explanation uses (`knowledge/faithfulness.yaml`: `common` and `glue`). At each
//! step the most likely tokens are tried in order and the first whose text keeps every word
//! allowed is chosen; a token that would begin any other word (an object name, a number, a
//! mechanism the facts do not mention) is never written. What stays for the judge is how the
//! allowed words are put together.

/// What a constrained generation may write.
#[derive(Debug, Clone, Default)]
pub struct Allowed {
    /// Whole words, sorted (lower case).
    words: Vec<String>,
    /// Stems any word may start with.
    stems: Vec<String>,
}

/// What a stem of the free words may end with when generated: English inflections, not any
/// word that happens to start the same (`stop*` allows "stopped", not "stopwatch").
const ENDINGS: &[&str] = &[
    "", "e", "s", "es", "d", "ed", "ing", "er", "ers", "ly", "ion", "ions", "ation", "ations",
    "ment", "ments", "al", "ally", "ive", "y", "ies",
];

/// Characters that make up a word; everything else separates words.
fn word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Characters a constrained text may use between words.
fn separator_ok(c: char) -> bool {
    matches!(
        c,
        ' ' | '\n' | '.' | ',' | ';' | ':' | '(' | ')' | '\'' | '"' | '-' | '/' | '=' | '`'
    )
}

impl Allowed {
    /// The words of `facts`, and the free words and stems.
    pub fn new(facts: &str, free_words: &[String], free_stems: &[String]) -> Allowed {
        let mut words: Vec<String> = facts
            .split(|c: char| !word_char(c))
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .chain(free_words.iter().cloned())
            .collect();
        words.sort();
        words.dedup();
        Allowed {
            words,
            stems: free_stems.to_vec(),
        }
    }

    fn complete_ok(&self, w: &str) -> bool {
        self.words.binary_search_by(|x| x.as_str().cmp(w)).is_ok()
            || self.stems.iter().any(|s| {
                w.strip_prefix(s.as_str())
                    .is_some_and(|rest| ENDINGS.contains(&rest))
            })
    }

    fn prefix_ok(&self, w: &str) -> bool {
        let i = self.words.partition_point(|x| x.as_str() < w);
        self.words.get(i).is_some_and(|x| x.starts_with(w))
            || self.stems.iter().any(|s| {
                s.starts_with(w)
                    || w.strip_prefix(s.as_str())
                        .is_some_and(|rest| ENDINGS.iter().any(|e| e.starts_with(rest)))
            })
    }

    /// Whether `piece` may follow `text` (what was written so far).
    pub fn allows(&self, text: &str, piece: &str) -> bool {
        if piece.is_empty() || piece.contains('\u{fffd}') {
            return false;
        }
        let start = text
            .char_indices()
            .rev()
            .find(|(_, c)| !word_char(*c))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let mut word: String = text[start..].to_lowercase();
        for c in piece.chars() {
            if word_char(c) {
                word.extend(c.to_lowercase());
                continue;
            }
            if !word.is_empty() && !self.complete_ok(&word) {
                return false;
            }
            word.clear();
            if !separator_ok(c) {
                return false;
            }
        }
        word.is_empty() || self.prefix_ok(&word)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> Allowed {
        Allowed::new(
            "Root cause: MemoryLimitTooLow on Deployment/checkout: container server is OOMKilled; memory limit 128Mi. Fix: raise it to 256Mi",
            &["the".into(), "is".into(), "because".into()],
            &["caus".into()],
        )
    }

    #[test]
    fn words_of_the_facts_and_free_words_pass() {
        let a = allowed();
        assert!(a.allows("The container", " server"));
        assert!(a.allows("The container ser", "ver is"));
        assert!(a.allows("", "Deployment/checkout"));
        assert!(a.allows("raise it to ", "256"));
        assert!(a.allows("raise it to 256", "Mi."));
        assert!(a.allows("It is ", "caused"), "a stem of the common words");
        assert!(a.allows("It is caus", "ing"));
    }

    #[test]
    fn other_words_numbers_and_marks_are_refused() {
        let a = allowed();
        assert!(!a.allows("The container is the", " exception"));
        assert!(!a.allows("raise it to ", "512"));
        assert!(!a.allows("The ", "exc"), "no allowed word starts so");
        assert!(!a.allows("The container", " server!"));
        assert!(
            !a.allows("The serv", "ice"),
            "`service` is not a word of these facts"
        );
        assert!(!a.allows("x", "\u{fffd}"));
        assert!(
            !a.allows("It is ", "causewayed"),
            "a stem takes inflections, not any ending"
        );
    }
}
