//! Glob patterns over keys, compiled once and matched in linear time.
//!
//! | syntax | matches |
//! |---|---|
//! | `*` | zero or more characters within one segment (never `.`) |
//! | `**` as a whole segment | `app.**` = everything below `app` (not `app` itself); `**.error` = `error` at any depth, top level included; `a.**.b` = `a.b`, `a.x.b`, `a.x.y.b`; `**` alone = every key |
//! | `**` inside a segment (`ab**`) | same as `*` |
//! | `?` | exactly one character, not `.` |
//! | `[abc]` `[a-z]` `[!a-z]` `[^a-z]` | one character of (or not of) the set; never `.` |
//! | `{dev,prod}` | any of the alternatives; each may hold any pattern syntax and dots; may nest |
//! | `\x` | the character `x` literally |
//!
//! A pattern is anchored to the whole key. A pattern with braces means the
//! union of its brace expansions (`a.{b,c.**}` = `a.b` or `a.c.**`); whether a
//! `**` is a whole segment is decided on each expansion.
//!
//! # How matching works
//!
//! The pattern is parsed, its braces expanded (bounded), and each `**`
//! resolved against its neighbours. Then one of two matchers:
//!
//! - **Segments**, for the common shapes: at most 16 alternatives, each with
//!   at most one `*` per segment and `**` only as its last segment
//!   (`users.*.settings`, `users.12345?.*`, `logs.2024-*`, `app.*.**`). The
//!   key is split at its dots; a segment matches when its first characters
//!   match the part before the pattern segment's `*` and its last ones the
//!   part after. Nothing is built beyond the segment list, so a pattern used
//!   once for a short scan costs little, and segments inside the literal
//!   prefix are not looked at again.
//! - **Automaton**, for the rest (`**.error`, `a.**.b`, `*a*b`): a Thompson
//!   NFA, simulated with bit sets for the pattern's first few dozen keys;
//!   after that a DFA over ASCII (bounded in size), so matching an ASCII key
//!   is one table lookup per byte, with a non-ASCII character switching back
//!   to the NFA.
//!
//! All of them are linear in the key length: no backtracking, so
//! `*a*a*a*a*a*a*b` against 1 KiB of `a`s costs the same as any other 1 KiB
//! key.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use crate::error::{shorten, Error, Result};

/// Most alternatives a pattern may expand to.
const MAX_EXPANSIONS: usize = 4096;
/// Most characters all expansions together may hold.
const MAX_EXPANDED_LEN: usize = 1 << 16;
/// Deepest brace nesting.
const MAX_NESTING: usize = 32;
/// Most DFA states built at compile time; beyond this the NFA is simulated.
const MAX_DFA_STATES: usize = 4096;
/// Most DFA table entries (states × character classes).
const MAX_DFA_CELLS: usize = 1 << 20;

/// A compiled glob pattern.
///
/// ```
/// use kv_core::Pattern;
/// let p = Pattern::new("users.*.settings.**")?;
/// assert!(p.matches("users.42.settings.theme.dark"));
/// assert!(!p.matches("users.42.settings"));
/// assert_eq!(p.literal_prefix(), "users.");
/// # Ok::<(), kv_core::Error>(())
/// ```
#[derive(Clone)]
pub struct Pattern {
    source: String,
    literal_prefix: String,
    prefix_only: bool,
    exact_keys: Option<Vec<String>>,
    matcher: Matcher,
}

/// How a pattern matches keys.
#[derive(Debug, Clone)]
enum Matcher {
    /// Patterns without `**` in the middle and with at most one `*` per
    /// segment (`users.*.settings`, `users.12345?.*`, `logs.2024-*`,
    /// `app.*.**`): the key is split at its dots and each segment is
    /// checked against the pattern's, head and tail of the one `*` — no
    /// automaton to build, so a pattern used for one short scan is cheap.
    Segments {
        /// The alternatives, without the whole segments the literal prefix
        /// holds (its dots): every key that passed the prefix check
        /// matches those.
        alts: Vec<SegmentAlt>,
        /// Bytes of the key those segments and their dots take.
        skip_bytes: usize,
    },
    /// Everything else: an NFA, and a DFA once it has matched enough keys.
    Automaton(Box<Automaton>),
}

struct Automaton {
    nfa: Nfa,
    /// The NFA's states once the literal prefix is consumed: where a match
    /// starts, since [`Pattern::matches`] checks the prefix first.
    after_prefix: StateSet,
    /// Built on first need: after [`LAZY_DFA_AFTER`] matches, or by
    /// [`Pattern::precompile`]. `None` inside when the pattern is too big
    /// for a DFA (the NFA then does all the matching).
    dfa: OnceLock<Option<Dfa>>,
    /// Matches run on the NFA so far (stops counting once the DFA exists).
    nfa_runs: AtomicU32,
}

/// Matches a pattern runs on its NFA before it builds its DFA. Building the
/// DFA costs about as much as matching a few dozen keys on the NFA, so a
/// pattern used once for a short scan never pays for it, and one matched
/// against many keys gets the fast path early.
const LAZY_DFA_AFTER: u32 = 32;

/// Most brace alternatives the segment matcher tries one by one; a pattern
/// with more goes to the automaton, which tries them all at once.
const MAX_SEGMENT_ALTS: usize = 16;

impl Clone for Automaton {
    fn clone(&self) -> Self {
        Automaton {
            nfa: self.nfa.clone(),
            after_prefix: self.after_prefix.clone(),
            dfa: self.dfa.clone(),
            nfa_runs: AtomicU32::new(self.nfa_runs.load(Ordering::Relaxed)),
        }
    }
}

impl fmt::Debug for Automaton {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Automaton")
            .field("nfa_states", &self.nfa.states.len())
            .field(
                "dfa_states",
                &self
                    .dfa
                    .get()
                    .and_then(|d| d.as_ref())
                    .map(|d| d.accept.len()),
            )
            .finish()
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pattern")
            .field("source", &self.source)
            .field("literal_prefix", &self.literal_prefix)
            .field("matcher", &self.matcher)
            .finish()
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Pattern {
    /// Parses and compiles `pattern`.
    ///
    /// Errors with [`Error::InvalidPattern`] (with the character position)
    /// for an empty pattern, an unclosed `[` or `{`, an unmatched `}`, a
    /// trailing `\`, a reversed range such as `[z-a]`, or a pattern whose
    /// braces expand beyond the built-in bounds.
    pub fn new(pattern: &str) -> Result<Self> {
        match Pattern::simple(pattern) {
            Some(simple) => Ok(simple),
            None => Pattern::compile(pattern),
        }
    }

    /// [`new`](Self::new) for a pattern [`simple`](Self::simple) declined:
    /// [`general`](Self::general), its errors made [`Error::InvalidPattern`].
    pub(crate) fn compile(pattern: &str) -> Result<Self> {
        let err = |position: usize, reason: &str| Error::InvalidPattern {
            pattern: shorten(pattern),
            position,
            reason: reason.to_owned(),
        };
        if pattern.is_empty() {
            return Err(err(0, "the pattern is empty"));
        }
        Pattern::general(pattern).map_err(|(p, r)| err(p, &r))
    }

    /// The most common shapes, built directly: literal characters only
    /// (none of `\ * ? [ ] { }`), optionally followed by a last segment
    /// that is exactly `*` or `**` (`users.42`, `users.42.*`,
    /// `users.42.**`). The result is what [`general`](Self::general) builds
    /// for them (a test checks it), without its parse, brace expansion and
    /// node passes: a scan of a fresh prefix pays for its pattern.
    pub(crate) fn simple(pattern: &str) -> Option<Pattern> {
        enum Last {
            Literal,
            Star,
            Below,
        }
        let (literal, last) = match pattern.rsplit_once('.') {
            Some((head, "*")) => (head, Last::Star),
            Some((head, "**")) => (head, Last::Below),
            _ => (pattern, Last::Literal),
        };
        if literal.is_empty() || literal.contains(['\\', '*', '?', '[', ']', '{', '}']) {
            return None;
        }
        let source = pattern.to_owned();
        Some(match last {
            Last::Literal => {
                let skip_bytes = pattern.rfind('.').map_or(0, |i| i + 1);
                let segment = &pattern[skip_bytes..];
                let segment = Segment {
                    head: segment.chars().map(Atom::Lit).collect(),
                    ..Segment::default()
                };
                Pattern {
                    literal_prefix: source.clone(),
                    prefix_only: false,
                    exact_keys: Some(vec![source.clone()]),
                    matcher: Matcher::Segments {
                        alts: vec![SegmentAlt {
                            segments: vec![segment.finish()],
                            below: false,
                        }],
                        skip_bytes,
                    },
                    source,
                }
            }
            Last::Star | Last::Below => {
                let below = matches!(last, Last::Below);
                let literal_prefix = pattern[..literal.len() + 1].to_owned();
                let skip_bytes = literal_prefix.len();
                let segments = if below {
                    Vec::new()
                } else {
                    // `*`: the whole last segment, whatever it holds.
                    vec![Segment {
                        tail: Some(Vec::new()),
                        ..Segment::default()
                    }]
                };
                Pattern {
                    literal_prefix,
                    prefix_only: below,
                    exact_keys: None,
                    matcher: Matcher::Segments {
                        alts: vec![SegmentAlt { segments, below }],
                        skip_bytes,
                    },
                    source,
                }
            }
        })
    }

    /// Any pattern: parsed, braces expanded, matched segment by segment
    /// when every alternative has a shape for that, else by the automaton.
    fn general(pattern: &str) -> std::result::Result<Self, ParseError> {
        let alternatives = alternatives(pattern)?;
        let literal_prefix = common_literal_prefix(&alternatives);
        let prefix_only = alternatives.len() == 1 && is_prefix_only(&alternatives[0]);
        let exact_keys = alternatives
            .iter()
            .map(|alt| literal_string(alt))
            .collect::<Option<Vec<String>>>()
            .map(|mut keys| {
                keys.sort();
                keys.dedup();
                keys
            });

        let segments = if alternatives.len() <= MAX_SEGMENT_ALTS {
            alternatives
                .iter()
                .map(|alt| SegmentAlt::from_nodes(alt))
                .collect::<Option<Vec<_>>>()
        } else {
            None
        };
        let matcher = match segments {
            Some(mut alts) => {
                // Every alternative starts with the literal prefix, so its
                // whole segments there match any key that passed the prefix
                // check: drop them, and skip their bytes when matching.
                let skip_bytes = literal_prefix.rfind('.').map_or(0, |i| i + 1);
                let skip = literal_prefix[..skip_bytes].matches('.').count();
                for alt in &mut alts {
                    alt.segments.drain(..skip);
                }
                Matcher::Segments { alts, skip_bytes }
            }
            None => Matcher::Automaton(Box::new(Automaton::new(&alternatives, &literal_prefix))),
        };
        Ok(Pattern {
            source: pattern.to_owned(),
            literal_prefix,
            prefix_only,
            exact_keys,
            matcher,
        })
    }

    /// The same pattern, always matched by the automaton (to check the
    /// segment matcher against it).
    #[cfg(test)]
    fn with_automaton(pattern: &str) -> Self {
        let mut p = Pattern::new(pattern).unwrap_or_else(|e| panic!("{e}"));
        let alternatives = alternatives(pattern).unwrap_or_else(|e| panic!("{e:?}"));
        p.matcher = Matcher::Automaton(Box::new(Automaton::new(&alternatives, &p.literal_prefix)));
        p
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The longest literal prefix every matching key starts with
    /// (`users.123.` for `users.123.**`, `env.` for `env.{dev,prod}.config`,
    /// empty for `**.error`). Backends scan only this key range.
    pub fn literal_prefix(&self) -> &str {
        &self.literal_prefix
    }

    /// True when the pattern matches exactly the keys that start with
    /// [`literal_prefix`](Self::literal_prefix) (`app.**`, or `**` for every
    /// key), so a backend may act on the whole key range without matching
    /// each key.
    pub fn is_prefix_only(&self) -> bool {
        self.prefix_only
    }

    /// When the pattern holds no wildcard, the keys it can match (one, or
    /// several for `{a,b}`), sorted.
    pub fn exact_keys(&self) -> Option<&[String]> {
        self.exact_keys.as_deref()
    }

    /// Builds the pattern's DFA now rather than after its first few dozen
    /// matches, for a pattern that needs one. Matching gives the same
    /// answers either way; this only moves the cost (tens of microseconds
    /// for a typical pattern) to the call.
    pub fn precompile(self) -> Self {
        if let Matcher::Automaton(a) = &self.matcher {
            a.dfa(&self.literal_prefix);
        }
        self
    }

    /// Whether `key` matches the whole pattern.
    pub fn matches(&self, key: &str) -> bool {
        if !key.starts_with(self.literal_prefix.as_str()) {
            return false;
        }
        match &self.matcher {
            Matcher::Segments { alts, skip_bytes } => {
                // `starts_with` above: `skip_bytes` is a char boundary.
                let rest = &key[*skip_bytes..];
                alts.iter().any(|alt| alt.matches(rest))
            }
            Matcher::Automaton(a) => a.matches(key, &self.literal_prefix),
        }
    }
}

impl Automaton {
    fn new(alternatives: &[Vec<Node>], literal_prefix: &str) -> Automaton {
        let nfa = Nfa::build(alternatives);
        let after_prefix = nfa.advance(nfa.start.clone(), literal_prefix);
        Automaton {
            nfa,
            after_prefix,
            dfa: OnceLock::new(),
            nfa_runs: AtomicU32::new(0),
        }
    }

    fn dfa(&self, literal_prefix: &str) -> Option<&Dfa> {
        self.dfa
            .get_or_init(|| Dfa::build(&self.nfa, literal_prefix))
            .as_ref()
    }

    /// Whether `key`, which starts with `literal_prefix`, matches.
    fn matches(&self, key: &str, literal_prefix: &str) -> bool {
        let dfa = match self.dfa.get() {
            Some(built) => built.as_ref(),
            None if self.nfa_runs.fetch_add(1, Ordering::Relaxed) >= LAZY_DFA_AFTER => {
                self.dfa(literal_prefix)
            }
            None => None,
        };
        match dfa {
            Some(dfa) => dfa.matches(&self.nfa, key, literal_prefix),
            // The prefix is there: start after it (the caller's
            // `starts_with` makes its length a character boundary of `key`).
            None => self
                .nfa
                .matches_from(self.after_prefix.clone(), &key[literal_prefix.len()..]),
        }
    }
}

// ---------------------------------------------------------------------------
// Segment matcher: one brace alternative as a list of dot-separated segments.

/// One character of a segment: never matches `.`.
#[derive(Debug, Clone)]
enum Atom {
    Lit(char),
    /// `?`.
    Any,
    Class(ClassSet),
}

impl Atom {
    fn test(&self, c: char) -> bool {
        match self {
            Atom::Lit(l) => *l == c,
            Atom::Any => c != '.',
            Atom::Class(set) => set.matches(c),
        }
    }
}

/// A segment of the pattern: `head`, or `head*tail` when it has a star.
#[derive(Debug, Clone, Default)]
struct Segment {
    head: Vec<Atom>,
    tail: Option<Vec<Atom>>,
    /// The segment's text when it is all literal characters.
    literal: Option<String>,
}

impl Segment {
    fn finish(mut self) -> Segment {
        if self.tail.is_none() {
            self.literal = self
                .head
                .iter()
                .map(|a| match a {
                    Atom::Lit(c) => Some(*c),
                    _ => None,
                })
                .collect();
        }
        self
    }

    /// Whether `part`, a key segment (no `.`), matches.
    fn matches(&self, part: &str) -> bool {
        if let Some(literal) = &self.literal {
            return part == literal;
        }
        let mut chars = part.char_indices();
        let mut head_end = 0;
        for atom in &self.head {
            match chars.next() {
                Some((i, c)) if atom.test(c) => head_end = i + c.len_utf8(),
                _ => return false,
            }
        }
        match &self.tail {
            None => chars.next().is_none(),
            Some(tail) => {
                // The star takes whatever lies between head and tail, which
                // must not overlap: the tail matches the last characters of
                // what the head left.
                let mut back = part[head_end..].chars().rev();
                tail.iter()
                    .rev()
                    .all(|atom| back.next().is_some_and(|c| atom.test(c)))
            }
        }
    }
}

/// One alternative: its segments, and whether it ends in `.**` (one or
/// more characters of anything after the last segment's dot).
#[derive(Debug, Clone)]
struct SegmentAlt {
    segments: Vec<Segment>,
    below: bool,
}

impl SegmentAlt {
    /// The segment form of `alt`, or `None` when it needs the automaton
    /// (a `**` that is not the last segment, or two stars in one segment).
    fn from_nodes(alt: &[Node]) -> Option<SegmentAlt> {
        let mut segments = Vec::new();
        let mut cur = Segment::default();
        let mut below = false;
        for (i, node) in alt.iter().enumerate() {
            let atom = match node {
                Node::Lit('.') => {
                    segments.push(std::mem::take(&mut cur).finish());
                    continue;
                }
                Node::Star if cur.tail.is_none() => {
                    cur.tail = Some(Vec::new());
                    continue;
                }
                // `x.**` as the last node: resolve_globstars emits AnyPlus
                // only after a dot, so `cur` is empty here.
                Node::AnyPlus if i + 1 == alt.len() && !segments.is_empty() => {
                    below = true;
                    break;
                }
                Node::Lit(c) => Atom::Lit(*c),
                Node::AnyChar => Atom::Any,
                Node::Class(set) => Atom::Class(set.clone()),
                Node::Star | Node::AnyStar | Node::AnyPlus | Node::Segments => return None,
            };
            match &mut cur.tail {
                Some(tail) => tail.push(atom),
                None => cur.head.push(atom),
            }
        }
        if !below {
            segments.push(cur.finish());
        }
        Some(SegmentAlt { segments, below })
    }

    /// Whether `rest`, the key after the segments the caller has checked
    /// (those dropped from `segments`), matches.
    fn matches(&self, mut rest: &str) -> bool {
        let segments = &self.segments;
        for (i, segment) in segments.iter().enumerate() {
            let (part, after) = match rest.split_once('.') {
                Some((part, after)) => (part, Some(after)),
                None => (rest, None),
            };
            if !segment.matches(part) {
                return false;
            }
            match after {
                Some(after) => rest = after,
                // The key ends here: so must the pattern.
                None => return i + 1 == segments.len() && !self.below,
            }
        }
        // Every segment matched and the key goes on after a dot.
        self.below && !rest.is_empty()
    }
}

// ---------------------------------------------------------------------------
// Parsing

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Lit(char),
    AnyChar,
    Class(ClassSet),
    Star,
    StarStar,
    Alt(Vec<Vec<Tok>>),
}

/// A character set from `[...]`. Never matches `.`.
#[derive(Debug, Clone, PartialEq)]
struct ClassSet {
    negated: bool,
    ranges: Vec<(char, char)>,
}

impl ClassSet {
    fn matches(&self, c: char) -> bool {
        if c == '.' {
            return false;
        }
        let inside = self.ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi);
        inside != self.negated
    }
}

type ParseError = (usize, String);

/// Parses `pattern` (not empty), expands its braces and resolves each `**`:
/// the brace-free alternatives the matchers are built from.
fn alternatives(pattern: &str) -> std::result::Result<Vec<Vec<Node>>, ParseError> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut parser = Parser {
        chars: &chars,
        pos: 0,
    };
    let seq = parser.parse_seq(0, false)?;
    if parser.pos != chars.len() {
        return Err((parser.pos, "unmatched '}' (escape it as '\\}')".into()));
    }
    let expanded = expand(&seq).map_err(|r| (0, r))?;
    Ok(expanded.iter().map(|a| resolve_globstars(a)).collect())
}

struct Parser<'a> {
    chars: &'a [char],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    /// Parses until the end, or (inside braces) until an unconsumed `,`/`}`.
    fn parse_seq(
        &mut self,
        depth: usize,
        in_brace: bool,
    ) -> std::result::Result<Vec<Tok>, ParseError> {
        let mut seq = Vec::new();
        while let Some(c) = self.peek() {
            match c {
                ',' | '}' if in_brace => break,
                '}' => return Err((self.pos, "unmatched '}' (escape it as '\\}')".into())),
                '\\' => {
                    let escaped = self
                        .chars
                        .get(self.pos + 1)
                        .copied()
                        .ok_or((self.pos, "trailing '\\' escapes nothing".to_owned()))?;
                    seq.push(Tok::Lit(escaped));
                    self.pos += 2;
                }
                '*' => {
                    let start = self.pos;
                    while self.peek() == Some('*') {
                        self.pos += 1;
                    }
                    seq.push(if self.pos - start >= 2 {
                        Tok::StarStar
                    } else {
                        Tok::Star
                    });
                }
                '?' => {
                    seq.push(Tok::AnyChar);
                    self.pos += 1;
                }
                '[' => seq.push(Tok::Class(self.parse_class()?)),
                '{' => {
                    if depth >= MAX_NESTING {
                        return Err((self.pos, format!("braces nested deeper than {MAX_NESTING}")));
                    }
                    let open = self.pos;
                    self.pos += 1;
                    let mut alternatives = Vec::new();
                    loop {
                        alternatives.push(self.parse_seq(depth + 1, true)?);
                        match self.peek() {
                            Some(',') => self.pos += 1,
                            Some('}') => {
                                self.pos += 1;
                                break;
                            }
                            _ => return Err((open, "unclosed '{'".into())),
                        }
                    }
                    seq.push(Tok::Alt(alternatives));
                }
                c => {
                    seq.push(Tok::Lit(c));
                    self.pos += 1;
                }
            }
        }
        Ok(seq)
    }

    fn parse_class(&mut self) -> std::result::Result<ClassSet, ParseError> {
        let open = self.pos;
        self.pos += 1;
        let unclosed = || (open, "unclosed '['".to_owned());
        let mut negated = false;
        if matches!(self.peek(), Some('!') | Some('^')) {
            negated = true;
            self.pos += 1;
        }
        let mut ranges = Vec::new();
        let mut first = true;
        loop {
            let c = self.peek().ok_or_else(unclosed)?;
            if c == ']' && !first {
                self.pos += 1;
                break;
            }
            first = false;
            let lo = self.class_char().ok_or_else(unclosed)?;
            // `a-z` is a range unless the `-` is the last thing in the set.
            if self.peek() == Some('-') && self.chars.get(self.pos + 1).is_some_and(|&n| n != ']') {
                let dash = self.pos;
                self.pos += 1;
                let hi = self.class_char().ok_or_else(unclosed)?;
                if hi < lo {
                    return Err((dash, format!("range '{lo}-{hi}' is reversed")));
                }
                ranges.push((lo, hi));
            } else {
                ranges.push((lo, lo));
            }
        }
        Ok(ClassSet { negated, ranges })
    }

    /// One (possibly escaped) character inside a class.
    fn class_char(&mut self) -> Option<char> {
        let c = self.peek()?;
        if c == '\\' {
            let e = self.chars.get(self.pos + 1).copied()?;
            self.pos += 2;
            Some(e)
        } else {
            self.pos += 1;
            Some(c)
        }
    }
}

/// Flat tokens: what is left after brace expansion.
#[derive(Debug, Clone, PartialEq)]
enum Flat {
    Lit(char),
    AnyChar,
    Class(ClassSet),
    Star,
    StarStar,
}

/// Expands braces into the list of brace-free alternatives, bounded.
fn expand(seq: &[Tok]) -> std::result::Result<Vec<Vec<Flat>>, String> {
    let mut out: Vec<Vec<Flat>> = vec![Vec::with_capacity(seq.len())];
    // Tokens over all alternatives so far.
    let mut total = 0usize;
    for tok in seq {
        let one = match tok {
            Tok::Lit(c) => Flat::Lit(*c),
            Tok::AnyChar => Flat::AnyChar,
            Tok::Class(c) => Flat::Class(c.clone()),
            Tok::Star => Flat::Star,
            Tok::StarStar => Flat::StarStar,
            Tok::Alt(alts) => {
                let mut suffixes = Vec::new();
                for alt in alts {
                    suffixes.extend(expand(alt)?);
                    if suffixes.len() > MAX_EXPANSIONS {
                        return Err(too_many());
                    }
                }
                if out.len().saturating_mul(suffixes.len()) > MAX_EXPANSIONS {
                    return Err(too_many());
                }
                let mut next = Vec::with_capacity(out.len() * suffixes.len());
                for prefix in &out {
                    for suffix in &suffixes {
                        let mut v = Vec::with_capacity(prefix.len() + suffix.len());
                        v.extend(prefix.iter().cloned());
                        v.extend(suffix.iter().cloned());
                        next.push(v);
                    }
                }
                out = next;
                total = out.iter().map(Vec::len).sum();
                if total > MAX_EXPANDED_LEN {
                    return Err(too_many());
                }
                continue;
            }
        };
        // One token, the same in every alternative so far: no expansion.
        for prefix in &mut out {
            prefix.push(one.clone());
        }
        total += out.len();
        if total > MAX_EXPANDED_LEN {
            return Err(too_many());
        }
    }
    Ok(out)
}

fn too_many() -> String {
    format!(
        "braces expand to more than {MAX_EXPANSIONS} alternatives or {MAX_EXPANDED_LEN} characters"
    )
}

// ---------------------------------------------------------------------------
// Resolved form: what the NFA is built from.

#[derive(Debug, Clone, Copy, PartialEq)]
enum Test {
    Lit(char),
    /// Any character but `.`.
    AnyNoDot,
    /// Any character at all.
    Any,
    /// Index into the NFA's class table.
    Class(usize),
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Lit(char),
    AnyChar,
    Class(ClassSet),
    /// Zero or more characters but `.`.
    Star,
    /// Zero or more of anything.
    AnyStar,
    /// One or more of anything.
    AnyPlus,
    /// `(anything* '.')?`: zero or more whole segments, each with its dot.
    Segments,
}

/// Merges runs of stars that met through brace expansion (`*{*}` is `**`).
fn merge_star_runs(flat: &[Flat]) -> Vec<Flat> {
    let mut out: Vec<Flat> = Vec::with_capacity(flat.len());
    for tok in flat {
        let is_star = matches!(tok, Flat::Star | Flat::StarStar);
        match out.last_mut() {
            Some(last @ (Flat::Star | Flat::StarStar)) if is_star => *last = Flat::StarStar,
            _ => out.push(tok.clone()),
        }
    }
    out
}

/// Decides for each `**` whether it is a whole segment, and what it means.
fn resolve_globstars(flat: &[Flat]) -> Vec<Node> {
    let flat = merge_star_runs(flat);
    let flat = flat.as_slice();
    let mut out = Vec::with_capacity(flat.len());
    let mut i = 0;
    while i < flat.len() {
        match &flat[i] {
            Flat::Lit(c) => out.push(Node::Lit(*c)),
            Flat::AnyChar => out.push(Node::AnyChar),
            Flat::Class(c) => out.push(Node::Class(c.clone())),
            Flat::Star => out.push(Node::Star),
            Flat::StarStar => {
                let at_start = i == 0;
                let at_end = i + 1 == flat.len();
                let left = at_start || flat[i - 1] == Flat::Lit('.');
                let right = at_end || flat[i + 1] == Flat::Lit('.');
                if !(left && right) {
                    out.push(Node::Star);
                } else if at_start && at_end {
                    out.push(Node::AnyStar);
                } else if at_end {
                    // `x.**`: everything below x; the dot is already emitted.
                    out.push(Node::AnyPlus);
                } else {
                    // `**.x` or `a.**.x`: zero or more segments, consuming
                    // the dot that follows.
                    out.push(Node::Segments);
                    i += 1;
                }
            }
        }
        i += 1;
    }
    out
}

fn literal_chars(alt: &[Node]) -> impl Iterator<Item = char> + '_ {
    alt.iter().map_while(|n| match n {
        Node::Lit(c) => Some(*c),
        _ => None,
    })
}

fn common_literal_prefix(alternatives: &[Vec<Node>]) -> String {
    let mut prefix: Vec<char> = match alternatives.first() {
        Some(first) => literal_chars(first).collect(),
        None => return String::new(),
    };
    for alt in &alternatives[1..] {
        let common = literal_chars(alt)
            .zip(prefix.iter())
            .take_while(|(a, b)| a == *b)
            .count();
        prefix.truncate(common);
    }
    prefix.into_iter().collect()
}

fn is_prefix_only(alt: &[Node]) -> bool {
    match alt.split_last() {
        Some((Node::AnyStar, [])) => true,
        Some((Node::AnyPlus, rest)) => {
            rest.iter().all(|n| matches!(n, Node::Lit(_))) && rest.last() == Some(&Node::Lit('.'))
        }
        _ => false,
    }
}

fn literal_string(alt: &[Node]) -> Option<String> {
    alt.iter()
        .map(|n| match n {
            Node::Lit(c) => Some(*c),
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Thompson NFA over characters.

/// A set of NFA states as a bit set.
type StateSet = Vec<u64>;

fn set_insert(set: &mut StateSet, i: usize) {
    set[i / 64] |= 1 << (i % 64);
}

fn set_contains(set: &StateSet, i: usize) -> bool {
    set[i / 64] & (1 << (i % 64)) != 0
}

fn set_union(into: &mut StateSet, from: &StateSet) {
    for (a, b) in into.iter_mut().zip(from) {
        *a |= *b;
    }
}

#[derive(Debug, Clone)]
enum Raw {
    Match,
    Char(Test, usize),
    Split(Vec<usize>),
}

/// The NFA after epsilon elimination: consuming states only.
#[derive(Debug, Clone)]
struct Nfa {
    /// Each consuming state's test.
    states: Vec<Test>,
    /// For each consuming state, the closure of its successor.
    next: Vec<StateSet>,
    /// Bit index of the match state.
    match_id: usize,
    /// The closure of the start.
    start: StateSet,
    classes: Vec<ClassSet>,
    words: usize,
}

impl Nfa {
    fn build(alternatives: &[Vec<Node>]) -> Nfa {
        let mut raw = vec![Raw::Match];
        let mut classes = Vec::new();
        let starts: Vec<usize> = alternatives
            .iter()
            .map(|alt| {
                let mut next = 0;
                for node in alt.iter().rev() {
                    next = compile_node(node, next, &mut raw, &mut classes);
                }
                next
            })
            .collect();
        raw.push(Raw::Split(starts));
        let start_raw = raw.len() - 1;

        // Consuming states (and Match) get compact ids; Match is id 0.
        let mut compact = vec![usize::MAX; raw.len()];
        let mut tests = Vec::new();
        compact[0] = 0;
        tests.push(Test::Any); // placeholder for Match; never used as a test
        for (i, r) in raw.iter().enumerate() {
            if let Raw::Char(t, _) = r {
                compact[i] = tests.len();
                tests.push(*t);
            }
        }
        let words = tests.len().div_ceil(64);
        let closure = |from: usize| -> StateSet {
            let mut set = vec![0u64; words];
            let mut seen = vec![false; raw.len()];
            let mut stack = vec![from];
            while let Some(s) = stack.pop() {
                if std::mem::replace(&mut seen[s], true) {
                    continue;
                }
                match &raw[s] {
                    Raw::Match | Raw::Char(..) => set_insert(&mut set, compact[s]),
                    Raw::Split(outs) => stack.extend(outs.iter().copied()),
                }
            }
            set
        };
        let mut next = vec![vec![0u64; words]; tests.len()];
        for (i, r) in raw.iter().enumerate() {
            if let Raw::Char(_, n) = r {
                next[compact[i]] = closure(*n);
            }
        }
        let start = closure(start_raw);
        Nfa {
            states: tests,
            next,
            match_id: 0,
            start,
            classes,
            words,
        }
    }

    fn test(&self, t: Test, c: char) -> bool {
        match t {
            Test::Lit(l) => l == c,
            Test::AnyNoDot => c != '.',
            Test::Any => true,
            Test::Class(i) => self.classes[i].matches(c),
        }
    }

    /// One step: the states reached from `cur` by consuming `c`.
    fn step(&self, cur: &StateSet, c: char, out: &mut StateSet) {
        out.iter_mut().for_each(|w| *w = 0);
        for (w, &word) in cur.iter().enumerate() {
            let mut bits = word;
            while bits != 0 {
                let b = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let s = w * 64 + b;
                if s != self.match_id && self.test(self.states[s], c) {
                    set_union(out, &self.next[s]);
                }
            }
        }
    }

    /// The states after consuming `text` from `cur` (empty when none).
    fn advance(&self, mut cur: StateSet, text: &str) -> StateSet {
        let mut out = vec![0u64; self.words];
        for c in text.chars() {
            self.step(&cur, c, &mut out);
            std::mem::swap(&mut cur, &mut out);
        }
        cur
    }

    fn matches_from(&self, mut cur: StateSet, rest: &str) -> bool {
        let mut out = vec![0u64; self.words];
        for c in rest.chars() {
            self.step(&cur, c, &mut out);
            std::mem::swap(&mut cur, &mut out);
            if cur.iter().all(|&w| w == 0) {
                return false;
            }
        }
        set_contains(&cur, self.match_id)
    }
}

fn compile_node(
    node: &Node,
    next: usize,
    raw: &mut Vec<Raw>,
    classes: &mut Vec<ClassSet>,
) -> usize {
    let push = |r: Raw, raw: &mut Vec<Raw>| {
        raw.push(r);
        raw.len() - 1
    };
    // A loop `split -> [char -> split, next]`; returns the split.
    let star = |t: Test, next: usize, raw: &mut Vec<Raw>| {
        raw.push(Raw::Split(Vec::new()));
        let split = raw.len() - 1;
        raw.push(Raw::Char(t, split));
        let ch = raw.len() - 1;
        raw[split] = Raw::Split(vec![ch, next]);
        split
    };
    match node {
        Node::Lit(c) => push(Raw::Char(Test::Lit(*c), next), raw),
        Node::AnyChar => push(Raw::Char(Test::AnyNoDot, next), raw),
        Node::Class(set) => {
            let idx = classes.iter().position(|c| c == set).unwrap_or_else(|| {
                classes.push(set.clone());
                classes.len() - 1
            });
            push(Raw::Char(Test::Class(idx), next), raw)
        }
        Node::Star => star(Test::AnyNoDot, next, raw),
        Node::AnyStar => star(Test::Any, next, raw),
        Node::AnyPlus => {
            let loop_start = star(Test::Any, next, raw);
            push(Raw::Char(Test::Any, loop_start), raw)
        }
        Node::Segments => {
            let dot = push(Raw::Char(Test::Lit('.'), next), raw);
            let body = star(Test::Any, dot, raw);
            push(Raw::Split(vec![body, next]), raw)
        }
    }
}

// ---------------------------------------------------------------------------
// DFA over ASCII, built once at compile time.

const DEAD: u32 = u32::MAX;

#[derive(Debug, Clone)]
struct Dfa {
    /// ASCII byte -> character class.
    class_of: [u8; 128],
    classes: usize,
    /// `table[state * classes + class]` -> next state or `DEAD`.
    table: Vec<u32>,
    accept: Vec<bool>,
    /// The NFA set each DFA state stands for (to continue on non-ASCII).
    sets: Vec<StateSet>,
    start: u32,
    /// State after consuming the literal prefix (when it is ASCII).
    after_prefix: Option<u32>,
}

impl Dfa {
    fn build(nfa: &Nfa, literal_prefix: &str) -> Option<Dfa> {
        // Group ASCII bytes by which consuming states accept them.
        let mut signature_ids: HashMap<Vec<u64>, u8> = HashMap::new();
        let mut representatives = Vec::new();
        let mut class_of = [0u8; 128];
        for b in 0u8..128 {
            let c = char::from(b);
            let mut sig = vec![0u64; nfa.words];
            for (s, &t) in nfa.states.iter().enumerate() {
                if s != nfa.match_id && nfa.test(t, c) {
                    set_insert(&mut sig, s);
                }
            }
            let next_id = signature_ids.len();
            let id = *signature_ids.entry(sig).or_insert_with(|| {
                representatives.push(c);
                next_id as u8
            });
            class_of[usize::from(b)] = id;
        }
        let classes = representatives.len();

        let mut ids: HashMap<StateSet, u32> = HashMap::new();
        let mut sets: Vec<StateSet> = Vec::new();
        let mut table: Vec<u32> = Vec::new();
        let empty = vec![0u64; nfa.words];
        ids.insert(nfa.start.clone(), 0);
        sets.push(nfa.start.clone());
        let mut scratch = vec![0u64; nfa.words];
        let mut i = 0;
        while i < sets.len() {
            for &rep in &representatives {
                nfa.step(&sets[i], rep, &mut scratch);
                let target = if scratch == empty {
                    DEAD
                } else if let Some(&id) = ids.get(&scratch) {
                    id
                } else {
                    if sets.len() >= MAX_DFA_STATES || (sets.len() + 1) * classes > MAX_DFA_CELLS {
                        return None;
                    }
                    let id = sets.len() as u32;
                    ids.insert(scratch.clone(), id);
                    sets.push(scratch.clone());
                    id
                };
                table.push(target);
            }
            i += 1;
        }
        let accept = sets.iter().map(|s| set_contains(s, nfa.match_id)).collect();
        let mut dfa = Dfa {
            class_of,
            classes,
            table,
            accept,
            sets,
            start: 0,
            after_prefix: None,
        };
        if !literal_prefix.is_empty() && literal_prefix.is_ascii() {
            let mut s = dfa.start;
            for &b in literal_prefix.as_bytes() {
                s = dfa.next(s, b);
                if s == DEAD {
                    break;
                }
            }
            dfa.after_prefix = Some(s);
        }
        Some(dfa)
    }

    #[inline]
    fn next(&self, state: u32, byte: u8) -> u32 {
        let class = usize::from(self.class_of[usize::from(byte)]);
        self.table[state as usize * self.classes + class]
    }

    fn matches(&self, nfa: &Nfa, key: &str, literal_prefix: &str) -> bool {
        let bytes = key.as_bytes();
        let (mut state, mut i) = match self.after_prefix {
            Some(s) => {
                if !bytes.starts_with(literal_prefix.as_bytes()) {
                    return false;
                }
                (s, literal_prefix.len())
            }
            None => (self.start, 0),
        };
        while i < bytes.len() {
            if state == DEAD {
                return false;
            }
            let b = bytes[i];
            if b >= 0x80 {
                // All bytes before `i` were ASCII, so `i` is a char boundary.
                return nfa.matches_from(self.sets[state as usize].clone(), &key[i..]);
            }
            state = self.next(state, b);
            i += 1;
        }
        state != DEAD && self.accept[state as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, k: &str) -> bool {
        Pattern::new(p).unwrap_or_else(|e| panic!("{e}")).matches(k)
    }

    #[test]
    fn simple_shapes_build_what_the_general_path_builds() {
        let shapes = [
            "a",
            "users.42",
            "users.42.*",
            "users.42.**",
            "app.config.database.host",
            "a..b",
            "a..*",
            "a.b..**",
            "naïve.ключ.*",
            "x,y.*",
            "a-b_c:d@e.**",
        ];
        let keys = [
            "a",
            "a.b",
            "users.42",
            "users.42.name",
            "users.42.name.first",
            "users.421",
            "users.42.",
            "app.config.database.host",
            "app.config.database.hostname",
            "a..b",
            "a..c",
            "a..",
            "a.b..c.d",
            "naïve.ключ.x",
            "naïve.ключ.x.y",
            "x,y.z",
            "a-b_c:d@e.f",
        ];
        for p in shapes {
            let simple = Pattern::simple(p).unwrap_or_else(|| panic!("{p} is a simple shape"));
            let general = Pattern::general(p).unwrap_or_else(|e| panic!("{p}: {e:?}"));
            assert_eq!(format!("{simple:?}"), format!("{general:?}"), "{p}");
            assert_eq!(simple.prefix_only, general.prefix_only, "{p}");
            assert_eq!(simple.exact_keys, general.exact_keys, "{p}");
            for k in keys {
                assert_eq!(simple.matches(k), general.matches(k), "{p} against {k}");
            }
        }
        for p in [
            "*", "**", "a.*b", "a.b*", "a.?", "a.[bc]", "a.{b,c}", "a\\.b", "**.x", "a.***",
        ] {
            assert!(Pattern::simple(p).is_none(), "{p} is not a simple shape");
        }
    }

    #[test]
    fn dfa_is_built_after_a_few_dozen_matches_and_agrees() {
        let p = Pattern::with_automaton("users.*.{name,email}");
        let Matcher::Automaton(a) = &p.matcher else {
            panic!("not an automaton")
        };
        let keys = [
            "users.1.name",
            "users.1.age",
            "users.1.x.email",
            "users.é.email",
            "app",
        ];
        let mut first = Vec::new();
        for k in keys {
            first.push(p.matches(k));
        }
        assert!(a.dfa.get().is_none(), "built too early");
        for _ in 0..LAZY_DFA_AFTER {
            p.matches("users.2.name");
        }
        assert!(a.dfa.get().is_some_and(|d| d.is_some()), "not built");
        let again: Vec<bool> = keys.iter().map(|k| p.matches(k)).collect();
        assert_eq!(first, again);
        assert_eq!(first, [true, false, false, true, false]);
    }

    fn err_pos(p: &str) -> (usize, String) {
        match Pattern::new(p) {
            Err(Error::InvalidPattern {
                position, reason, ..
            }) => (position, reason),
            other => panic!("expected InvalidPattern for {p:?}, got {other:?}"),
        }
    }

    #[test]
    fn star_stays_in_one_segment() {
        assert!(m("*.config.*", "app.config.db"));
        assert!(!m("*.config.*", "app.config.db.host"));
        assert!(!m("*.config.*", "x.app.config.db"));
        assert!(m("logs.2024-*", "logs.2024-01-05"));
        assert!(!m("logs.2024-*", "logs.2024-01.x"));
        assert!(m("a*", "a"));
    }

    #[test]
    fn globstar_rules() {
        assert!(m("users.123.**", "users.123.name"));
        assert!(m("users.123.**", "users.123.a.b.c"));
        assert!(!m("users.123.**", "users.123"));
        assert!(!m("users.123.**", "users.1234.x"));
        assert!(m("**.error", "error"));
        assert!(m("**.error", "app.error"));
        assert!(m("**.error", "a.b.c.error"));
        assert!(!m("**.error", "app.errors"));
        assert!(!m("**.error", "apperror"));
        assert!(m("a.**.b", "a.b"));
        assert!(m("a.**.b", "a.x.b"));
        assert!(m("a.**.b", "a.x.y.b"));
        assert!(!m("a.**.b", "a.xb"));
        assert!(!m("a.**.b", "ab"));
        assert!(m("**", "anything.at.all"));
        assert!(m("app.**", "app.x"));
        assert!(!m("app.**", "app"));
        assert!(m("app.*", "app.x"));
        assert!(!m("app.*", "app.x.y"));
        // `**` inside a segment is `*`.
        assert!(m("ab**", "abc"));
        assert!(!m("ab**", "abc.d"));
        assert!(m("**x", "yyx"));
    }

    #[test]
    fn single_chars_classes_and_braces() {
        assert!(m("user.?.name", "user.a.name"));
        assert!(!m("user.?.name", "user.ab.name"));
        assert!(!m("a?b", "a.b"));
        assert!(m("log.[0-9].txt", "log.7.txt"));
        assert!(!m("log.[0-9].txt", "log.x.txt"));
        assert!(m("x[!a-c]", "xd"));
        assert!(m("x[^a-c]", "xd"));
        assert!(!m("x[!a-c]", "xb"));
        assert!(!m("a[!x]b", "a.b"));
        assert!(!m("a[.]b", "a.b"));
        assert!(m("[]a]", "]"));
        assert!(m("[a-]", "-"));
        assert!(m("env.{dev,prod}.config", "env.dev.config"));
        assert!(m("env.{dev,prod}.config", "env.prod.config"));
        assert!(!m("env.{dev,prod}.config", "env.test.config"));
        assert!(m("a.{b,c.{d,e}}", "a.c.e"));
        assert!(m("a.{b.**,c}", "a.b.x.y"));
        assert!(m("{**.,}x", "x"));
        assert!(m("{**.,}x", "a.b.x"));
        assert!(m("a{,b}", "a"));
        assert!(m("a{,b}", "ab"));
        // Stars that meet through expansion form `**`.
        assert!(m("*{*}", "a.b"));
        assert!(m("x.*{,a}*", "x.a.b"));
        assert!(!m("x{*}y", "x.y"));
    }

    #[test]
    fn escapes_are_literal() {
        assert!(m(r"a\*b", "a*b"));
        assert!(!m(r"a\*b", "axb"));
        assert!(m(r"q\?", "q?"));
        assert!(m(r"\{x\}", "{x}"));
        assert!(m(r"[\]]", "]"));
        assert!(m("a,b", "a,b"));
    }

    #[test]
    fn malformed_patterns_name_position() {
        assert_eq!(err_pos("").0, 0);
        assert_eq!(err_pos("ab[cd").0, 2);
        assert_eq!(err_pos("a.{b,c").0, 2);
        assert_eq!(err_pos("abc\\").0, 3);
        assert_eq!(err_pos("ab}").0, 2);
        assert_eq!(err_pos("[z-a]").0, 2);
        assert!(err_pos("[]").1.contains("unclosed"));
    }

    #[test]
    fn literal_prefix_and_flags() {
        let p = |s: &str| Pattern::new(s).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p("users.123.**").literal_prefix(), "users.123.");
        assert!(p("users.123.**").is_prefix_only());
        assert!(p("**").is_prefix_only());
        assert_eq!(p("**").literal_prefix(), "");
        assert!(!p("users.*").is_prefix_only());
        assert_eq!(p("**.error").literal_prefix(), "");
        assert_eq!(p("env.{dev,prod}.config").literal_prefix(), "env.");
        assert_eq!(p("user.{a1,a2}").literal_prefix(), "user.a");
        assert_eq!(p(r"a\*b.*").literal_prefix(), "a*b.");
        assert_eq!(
            p("env.{dev,prod}.config").exact_keys(),
            Some(&["env.dev.config".to_owned(), "env.prod.config".to_owned()][..])
        );
        assert_eq!(p("a.*").exact_keys(), None);
    }

    #[test]
    fn non_ascii_keys_and_patterns() {
        assert!(m("ключ.*", "ключ.значение"));
        assert!(m("a.?", "a.é"));
        assert!(m("a.[à-ü]x", "a.éx"));
        assert!(m("a.*.b", "a.日本.b"));
        assert!(!m("a.*.b", "a.日.本.b"));
        assert!(m("**.値", "x.y.値"));
    }

    #[test]
    fn pathological_pattern_is_linear() {
        let p = Pattern::new("*a*a*a*a*a*a*b").unwrap_or_else(|e| panic!("{e}"));
        let key = "a".repeat(1024);
        assert!(!p.matches(&key));
        assert!(p.matches(&format!("{key}b")));
        // Through the NFA path too (non-ASCII forces the fallback).
        let key = format!("é{}", "a".repeat(1023));
        assert!(!p.matches(&key));
    }

    #[test]
    fn segment_matcher_takes_the_common_shapes_and_agrees_with_the_automaton() {
        let segmented = [
            "users.*.settings",
            "users.12345?.*",
            "logs.2024-*",
            "app.*.**",
            "a*b.c",
            "*",
            "[a-c]x*y[!z].?",
            "env.{dev,prod}.*",
            "{a,b*}.{c,d.**}",
            "x\\.y*",
        ];
        let automaton = [
            "**.error",
            "a.**.b",
            "*a*b",
            "**",
            "{a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q}.x",
        ];
        for (patterns, segments) in [(&segmented[..], true), (&automaton[..], false)] {
            for p in patterns {
                let pat = Pattern::new(p).unwrap_or_else(|e| panic!("{e}"));
                let got = matches!(pat.matcher, Matcher::Segments { .. });
                assert_eq!(got, segments, "{p}");
            }
        }
        let keys = [
            "users.1.settings",
            "users.1.settings.x",
            "users.123456.name",
            "users.123456.a.b",
            "users.1234567.name",
            "users.12345.name",
            "logs.2024-01",
            "logs.2024-",
            "logs.2024-01.x",
            "app.x",
            "app.x.y",
            "app.x.y.z",
            "ab.c",
            "axyzb.c",
            "ab.c.d",
            "b",
            "axy.q",
            "bxqqya.é",
            "cxyz.q",
            "env.dev.x",
            "env.prod.x.y",
            "env.test.x",
            "a.c",
            "bzz.d.e",
            "bzz.d",
            "x.y",
            "x.yz",
            "é.x",
            "a",
        ];
        for p in segmented {
            let fast = Pattern::new(p).unwrap_or_else(|e| panic!("{e}"));
            let slow = Pattern::with_automaton(p);
            for k in keys {
                assert_eq!(fast.matches(k), slow.matches(k), "pattern {p} key {k}");
            }
        }
    }

    #[test]
    fn too_many_expansions_is_an_error() {
        let p = "{a,b}".repeat(20);
        assert!(err_pos(&p).1.contains("expand"));
    }
}
