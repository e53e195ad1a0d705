//! Glob patterns over keys, as `lib/persistence/adapter.ts` defines them:
//! `*` any run of characters (none too; `/` and `:` are characters like
//! any other), `?` exactly one character, `[abc]` / `[a-z]` / `[!abc]` one
//! character of (not of) a set, `\` makes the next character literal. A
//! pattern matches the whole key. Characters are Unicode scalar values, so
//! `?` matches one multi-byte character.
//!
//! Edge cases of the lenient [`Glob::new`] (the native engine's): `]`
//! right after `[` or `[!` is a member, not the end; `-` first or last in a
//! set is a member; a `[` with no closing `]` is a literal `[`; a trailing
//! lone `\` is a literal `\`. [`Glob::parse`] (the SQLite table's, and
//! `lib/persistence/glob.ts`'s rules) refuses those malformed patterns
//! instead — a trailing `\`, an unclosed `[`, an empty set, a range out of
//! order — and reads every other pattern exactly as `new` does.
//!
//! Not `globset`: it reads `{a,b}` as alternation and `**` as a path
//! wildcard, neither of which the contract has, and it knows nothing of the
//! literal prefix a sorted index needs ([`Glob::literal_prefix`]).

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    One,
    Star,
    Set {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    tokens: Vec<Token>,
    prefix: String,
}

fn invalid(pattern: &str, reason: &str) -> Error {
    Error::InvalidArgument {
        name: "pattern",
        reason: format!("{pattern:?}: {reason}"),
    }
}

impl Glob {
    /// Compiles a well-formed pattern; a malformed one is refused (see the
    /// module's doc) rather than read leniently.
    pub fn parse(pattern: &str) -> Result<Glob> {
        check_well_formed(pattern)?;
        Ok(Glob::new(pattern))
    }

    pub fn new(pattern: &str) -> Glob {
        let chars: Vec<char> = pattern.chars().collect();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '\\' => {
                    tokens.push(Token::Literal(chars.get(i + 1).copied().unwrap_or('\\')));
                    i += 2;
                }
                '*' => {
                    // `**` means what `*` means.
                    if tokens.last() != Some(&Token::Star) {
                        tokens.push(Token::Star);
                    }
                    i += 1;
                }
                '?' => {
                    tokens.push(Token::One);
                    i += 1;
                }
                '[' => match parse_set(&chars, i + 1) {
                    Some((token, next)) => {
                        tokens.push(token);
                        i = next;
                    }
                    None => {
                        tokens.push(Token::Literal('['));
                        i += 1;
                    }
                },
                c => {
                    tokens.push(Token::Literal(c));
                    i += 1;
                }
            }
        }
        let prefix = tokens
            .iter()
            .map_while(|t| match t {
                Token::Literal(c) => Some(*c),
                _ => None,
            })
            .collect();
        Glob { tokens, prefix }
    }

    /// The characters every matching key starts with: a sorted index serves
    /// the pattern by walking only the keys with this prefix.
    pub fn literal_prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether the pattern has no wildcard: it matches its prefix alone.
    pub fn is_literal(&self) -> bool {
        self.prefix.chars().count() == self.tokens.len()
    }

    /// Whether `key` matches the whole pattern.
    pub fn matches(&self, key: &str) -> bool {
        let key: Vec<char> = key.chars().collect();
        let tokens = &self.tokens;
        let (mut t, mut k) = (0, 0);
        // Where the last `*` was and where its current attempt starts:
        // backtracking to it alone is enough (the classic two-pointer walk).
        let mut star: Option<(usize, usize)> = None;
        while k < key.len() {
            let step = match tokens.get(t) {
                Some(Token::Star) => {
                    star = Some((t, k));
                    t += 1;
                    continue;
                }
                Some(Token::Literal(c)) => *c == key[k],
                Some(Token::One) => true,
                Some(Token::Set { negated, ranges }) => {
                    let inside = ranges.iter().any(|&(lo, hi)| lo <= key[k] && key[k] <= hi);
                    inside != *negated
                }
                None => false,
            };
            if step {
                t += 1;
                k += 1;
            } else if let Some((star_t, star_k)) = star {
                t = star_t + 1;
                k = star_k + 1;
                star = Some((star_t, star_k + 1));
            } else {
                return false;
            }
        }
        tokens[t..].iter().all(|token| *token == Token::Star)
    }
}

/// Refuses what [`Glob::new`] would read leniently: a trailing `\\`, an
/// unclosed `[`, an empty set (`]` right after `[` or `[!` closes it), a
/// range whose end is below its start.
fn check_well_formed(pattern: &str) -> Result<()> {
    const TRAILING: &str = "ends with an unescaped '\\'";
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' if i + 1 == chars.len() => return Err(invalid(pattern, TRAILING)),
            '\\' => i += 2,
            '[' => {
                i += 1;
                if chars.get(i) == Some(&'!') {
                    i += 1;
                }
                // (member, escaped)
                let mut members = Vec::new();
                loop {
                    match chars.get(i) {
                        None => return Err(invalid(pattern, "'[' without a closing ']'")),
                        Some(']') => break,
                        Some('\\') => match chars.get(i + 1) {
                            Some(&c) => {
                                members.push((c, true));
                                i += 2;
                            }
                            None => return Err(invalid(pattern, TRAILING)),
                        },
                        Some(&c) => {
                            members.push((c, false));
                            i += 1;
                        }
                    }
                }
                i += 1;
                if members.is_empty() {
                    return Err(invalid(pattern, "empty character set '[]'"));
                }
                let mut m = 0;
                while m < members.len() {
                    if members.get(m + 1) == Some(&('-', false)) && m + 2 < members.len() {
                        if members[m + 2].0 < members[m].0 {
                            return Err(invalid(pattern, "character range out of order"));
                        }
                        m += 3;
                    } else {
                        m += 1;
                    }
                }
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// Parses a set whose `[` is just before `start`; `None` when it never closes.
fn parse_set(chars: &[char], start: usize) -> Option<(Token, usize)> {
    let mut i = start;
    let negated = chars.get(i) == Some(&'!');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let c = *chars.get(i)?;
        if c == ']' && !first {
            return Some((Token::Set { negated, ranges }, i + 1));
        }
        first = false;
        let (lo, after) = if c == '\\' {
            (*chars.get(i + 1)?, i + 2)
        } else {
            (c, i + 1)
        };
        // `a-z`, unless the `-` is the last member (`[a-]`).
        if chars.get(after) == Some(&'-') && chars.get(after + 1).is_some_and(|&n| n != ']') {
            let (hi, next) = if chars[after + 1] == '\\' {
                (*chars.get(after + 2)?, after + 3)
            } else {
                (chars[after + 1], after + 2)
            };
            ranges.push((lo, hi));
            i = next;
        } else {
            ranges.push((lo, lo));
            i = after;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, key: &str) -> bool {
        Glob::new(pattern).matches(key)
    }

    #[test]
    fn star_crosses_every_character_and_matches_the_whole_key() {
        assert!(m("user:*", "user:"));
        assert!(m("user:*", "user:1/2:3"));
        assert!(!m("user:*", "users:1"));
        assert!(m("*", ""));
        assert!(m("*", "a/b:c"));
        assert!(m("a*b*c", "aXXbYYc"));
        assert!(m("a*b*c", "abc"));
        assert!(!m("a*b*c", "abcd"));
        assert!(m("*c", "abcabc"));
        assert!(m("**x", "yyx"));
        assert!(!m("user", "user:1"));
        assert!(!m("ser:*", "user:1"));
    }

    #[test]
    fn question_mark_is_one_character_even_when_multi_byte() {
        assert!(m("caf?", "café"));
        assert!(!m("caf?", "caf"));
        assert!(!m("caf?", "cafés"));
        assert!(m("?", "😀"));
        assert!(m("日本*", "日本語"));
        assert!(m("[日月]", "月"));
        assert!(m("[!a]", "é"));
    }

    #[test]
    fn sets_ranges_and_negation() {
        assert!(m("[abc]", "b"));
        assert!(!m("[abc]", "d"));
        assert!(m("[a-c]x", "bx"));
        assert!(!m("[a-c]x", "dx"));
        assert!(m("[!a-c]", "d"));
        assert!(!m("[!a-c]", "a"));
        assert!(m("k[0-9][0-9]", "k42"));
    }

    #[test]
    fn bracket_edge_cases() {
        // `]` first is a member.
        assert!(m("[]]", "]"));
        assert!(m("[!]]", "a"));
        assert!(!m("[!]]", "]"));
        // `-` first or last is a member.
        assert!(m("[-a]", "-"));
        assert!(m("[a-]", "-"));
        assert!(!m("[a-]", "b"));
        // An unclosed `[` is literal.
        assert!(m("[abc", "[abc"));
        assert!(!m("[abc", "a"));
        assert!(m("a[", "a["));
        // Escapes inside a set.
        assert!(m("[\\]]", "]"));
        assert!(m("[\\-x]", "-"));
    }

    #[test]
    fn backslash_makes_the_next_character_literal() {
        assert!(m("a\\*", "a*"));
        assert!(!m("a\\*", "ab"));
        assert!(m("\\?", "?"));
        assert!(!m("\\?", "x"));
        assert!(m("\\[x]", "[x]"));
        assert!(m("\\\\", "\\"));
        // A trailing lone backslash is itself.
        assert!(m("a\\", "a\\"));
    }

    #[test]
    fn parse_refuses_malformed_patterns_and_reads_the_rest_as_new_does() {
        for bad in ["a\\", "[abc", "[]", "[z-a]", "[!]", "[]]", "[a\\"] {
            let error = Glob::parse(bad).unwrap_err();
            assert!(
                matches!(
                    error,
                    Error::InvalidArgument {
                        name: "pattern",
                        ..
                    }
                ),
                "{bad}: {error}"
            );
        }
        for good in [
            "user:*", "a?c", "[ab]x", "[!ab]x", "[a-c]*", "[-a]", "[a-]", "a\\*b*", "[\\]]",
            "[\\-x]", "a\\\\b", "**x",
        ] {
            assert_eq!(Glob::parse(good).unwrap(), Glob::new(good), "{good}");
        }
    }

    #[test]
    fn literal_prefix_stops_at_the_first_wildcard() {
        assert_eq!(Glob::new("user:*").literal_prefix(), "user:");
        assert_eq!(Glob::new("user:?x").literal_prefix(), "user:");
        assert_eq!(Glob::new("a[bc]d").literal_prefix(), "a");
        assert_eq!(Glob::new("a\\*b*").literal_prefix(), "a*b");
        assert_eq!(Glob::new("*x").literal_prefix(), "");
        assert_eq!(Glob::new("[x").literal_prefix(), "[x");
        assert!(Glob::new("exact").is_literal());
        assert!(Glob::new("ex\\*act").is_literal());
        assert!(!Glob::new("ex*").is_literal());
    }
}
