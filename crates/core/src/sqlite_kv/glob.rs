//! Key patterns of the key-value API (`find('user:*')`), with exactly the
//! semantics of the adapter contract (`lib/persistence/adapter.ts`) and of
//! its JS twin `lib/persistence/glob.ts`:
//!
//! - `*` any run of characters, none included (`:` and `/` are ordinary);
//! - `?` exactly one character (a Unicode scalar value);
//! - `[abc]`, `[a-z]`, `[!abc]` one character of / not of a set; inside a
//!   set `\` escapes, `-` first or last is literal, `]` closes;
//! - `\` makes the next character literal;
//! - a pattern matches the whole key.
//!
//! SQLite's `GLOB` has no escape character, so the SQLite table serves a
//! pattern with a key range for its literal prefix and filters the range
//! here: the results are the contract's, not SQLite's.

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    Any,
    Star,
    Set {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// A parsed pattern.
#[derive(Debug, Clone)]
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
    pub fn parse(pattern: &str) -> Result<Glob> {
        let mut tokens = Vec::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            let token = match c {
                '*' => Token::Star,
                '?' => Token::Any,
                '\\' => Token::Literal(
                    chars
                        .next()
                        .ok_or_else(|| invalid(pattern, "ends with an unescaped '\\'"))?,
                ),
                '[' => {
                    let negated = chars.peek() == Some(&'!');
                    if negated {
                        chars.next();
                    }
                    let mut members = Vec::new();
                    let mut closed = false;
                    while let Some(c) = chars.next() {
                        match c {
                            ']' => {
                                closed = true;
                                break;
                            }
                            '\\' => members.push((
                                chars.next().ok_or_else(|| {
                                    invalid(pattern, "ends with an unescaped '\\'")
                                })?,
                                true,
                            )),
                            c => members.push((c, false)),
                        }
                    }
                    if !closed {
                        return Err(invalid(pattern, "'[' without a closing ']'"));
                    }
                    if members.is_empty() {
                        return Err(invalid(pattern, "empty character set '[]'"));
                    }
                    let mut ranges = Vec::new();
                    let mut i = 0;
                    while i < members.len() {
                        let (low, _) = members[i];
                        let dash = members.get(i + 1).is_some_and(|&(c, esc)| c == '-' && !esc);
                        if dash && i + 2 < members.len() {
                            let (high, _) = members[i + 2];
                            if high < low {
                                return Err(invalid(pattern, "character range out of order"));
                            }
                            ranges.push((low, high));
                            i += 3;
                        } else {
                            ranges.push((low, low));
                            i += 1;
                        }
                    }
                    Token::Set { negated, ranges }
                }
                c => Token::Literal(c),
            };
            tokens.push(token);
        }
        let prefix = tokens
            .iter()
            .map_while(|t| match t {
                Token::Literal(c) => Some(*c),
                _ => None,
            })
            .collect();
        Ok(Glob { tokens, prefix })
    }

    /// The literal characters every match starts with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether the pattern is only its prefix (matches one key).
    pub fn is_literal(&self) -> bool {
        self.tokens.iter().all(|t| matches!(t, Token::Literal(_)))
    }

    pub fn matches(&self, key: &str) -> bool {
        let key: Vec<char> = key.chars().collect();
        // Iterative matcher with one backtrack point for the last `*`:
        // linear in practice, O(len(key) × len(pattern)) at worst.
        let (mut p, mut k) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        while k < key.len() {
            match self.tokens.get(p) {
                Some(Token::Star) => {
                    star = Some((p, k));
                    p += 1;
                    continue;
                }
                Some(token) if token_matches(token, key[k]) => {
                    p += 1;
                    k += 1;
                    continue;
                }
                _ => {}
            }
            match star {
                Some((sp, sk)) => {
                    p = sp + 1;
                    k = sk + 1;
                    star = Some((sp, sk + 1));
                }
                None => return false,
            }
        }
        self.tokens[p..].iter().all(|t| *t == Token::Star)
    }
}

fn token_matches(token: &Token, c: char) -> bool {
    match token {
        Token::Literal(l) => *l == c,
        Token::Any => true,
        Token::Star => false,
        Token::Set { negated, ranges } => {
            ranges.iter().any(|&(low, high)| low <= c && c <= high) != *negated
        }
    }
}

/// The smallest string greater than every string starting with `prefix`
/// (in code point order, which is UTF-8 byte order), `None` when there is
/// none: the exclusive upper bound of the prefix's key range.
pub fn prefix_successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last as u32 {
            0xD7FF => Some('\u{E000}'),
            n => char::from_u32(n + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, key: &str) -> bool {
        Glob::parse(pattern).unwrap().matches(key)
    }

    #[test]
    fn star_question_and_sets_match_whole_keys() {
        assert!(m("user:*", "user:1"));
        assert!(m("user:*", "user:"));
        assert!(m("user:*", "user:a/b:c"));
        assert!(!m("user:*", "users:1"));
        assert!(m("a?c", "abc"));
        assert!(m("a?c", "a€c"));
        assert!(!m("a?c", "ac"));
        assert!(m("[ab]x", "bx"));
        assert!(!m("[!ab]x", "bx"));
        assert!(m("[!ab]x", "cx"));
        assert!(m("[a-c]*", "cat"));
        assert!(!m("[a-c]*", "dog"));
        assert!(m("*a*b*", "xxaxxbxx"));
        assert!(!m("*a*b", "xxaxxbxxc"));
        assert!(m("[-a]", "-"));
        assert!(m("[a-]", "-"));
    }

    #[test]
    fn backslash_makes_the_next_character_literal() {
        assert!(m(r"a\*", "a*"));
        assert!(!m(r"a\*", "ab"));
        assert!(m(r"\[x]", "[x]"));
        assert!(m(r"[\]]", "]"));
        assert!(m(r"a\\b", r"a\b"));
        assert_eq!(Glob::parse(r"a\*b*").unwrap().prefix(), "a*b");
    }

    #[test]
    fn malformed_patterns_are_refused() {
        for bad in ["a\\", "[abc", "[]", "[z-a]", "[!]"] {
            assert!(Glob::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn successor_bounds_the_prefix_range() {
        assert_eq!(prefix_successor("user:").as_deref(), Some("user;"));
        assert_eq!(prefix_successor("").as_deref(), None);
        assert_eq!(prefix_successor("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(prefix_successor("a\u{10FFFF}").as_deref(), Some("b"));
    }
}
