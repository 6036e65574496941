//! Word lists from the knowledge files as regular expressions. A plain word matches
//! case-insensitively on word boundaries, a trailing `*` matches any ending, and a `re:` entry
//! is a case-sensitive regular expression of its own.

use regex::Regex;

/// The expressions for a list of words: one case-insensitive alternation for the plain words,
/// one expression per `re:` entry. An entry that is not a valid expression is left out (the
/// knowledge files' own tests parse every entry).
pub fn expressions(words: &[String]) -> Vec<Regex> {
    let mut out = Vec::new();
    let plain: Vec<String> = words
        .iter()
        .filter(|w| !w.starts_with("re:"))
        .map(|w| match w.strip_suffix('*') {
            Some(stem) => format!(r"\b{}\w*", regex::escape(stem)),
            None => format!(r"\b{}\b", regex::escape(w)),
        })
        .collect();
    if !plain.is_empty() {
        out.extend(Regex::new(&format!("(?i){}", plain.join("|"))).ok());
    }
    out.extend(
        words
            .iter()
            .filter_map(|w| w.strip_prefix("re:"))
            .filter_map(|r| Regex::new(r).ok()),
    );
    out
}

/// The first match of any of `res` in `text`: (start, end, matched text).
pub fn first_match<'t>(res: &[Regex], text: &'t str) -> Option<(usize, usize, &'t str)> {
    res.iter()
        .filter_map(|r| r.find(text))
        .min_by_key(|m| (m.start(), std::cmp::Reverse(m.end())))
        .map(|m| (m.start(), m.end(), m.as_str()))
}

/// Where `hay` first holds `needle` as a whole name: no letter, digit, `-` or `_` just before
/// or after it (`redis` in "Service redis:", not in "redis-cache"). `None` for an empty needle.
pub fn whole_name_at(hay: &str, needle: &str) -> Option<usize> {
    let name_char = |c: char| c.is_alphanumeric() || matches!(c, '-' | '_');
    if needle.is_empty() {
        return None;
    }
    hay.match_indices(needle).find_map(|(i, _)| {
        let before = hay[..i].chars().next_back();
        let after = hay[i + needle.len()..].chars().next();
        (!before.is_some_and(name_char) && !after.is_some_and(name_char)).then_some(i)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_stars_and_expressions() {
        let res = expressions(&[
            "oom*".to_string(),
            "out of memory".to_string(),
            r"re:\bExit \d+".to_string(),
        ]);
        assert_eq!(
            first_match(&res, "it was OOMKilled").map(|m| m.2),
            Some("OOMKilled")
        );
        assert_eq!(
            first_match(&res, "ran out of memory").map(|m| m.2),
            Some("out of memory")
        );
        assert!(first_match(&res, "a room").is_none(), "word boundary");
        assert_eq!(first_match(&res, "Exit 137").map(|m| m.2), Some("Exit 137"));
        assert!(
            first_match(&res, "exit 137").is_none(),
            "re: is case-sensitive"
        );
    }

    #[test]
    fn whole_names_only() {
        assert_eq!(
            whole_name_at("the redis-cache and redis", "redis"),
            Some(20)
        );
        assert_eq!(whole_name_at("redis-cache", "redis"), None);
        assert_eq!(whole_name_at("abc", ""), None);
    }
}
