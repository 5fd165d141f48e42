//! Model test for `kv_core::Pattern`: it checks the compiled glob matcher
//! against a deliberately naive reference written here from the documented
//! semantics alone.
//!
//! The reference expands braces on the pattern *string* (recursively,
//! escape- and class-aware), splits each expansion into segments on `.`,
//! matches segment lists recursively (whole-segment `**` under gitignore
//! rules) and matches one segment with a backtracking glob. It is
//! exponential, which is fine for the small inputs generated here.
//!
//! Properties:
//! 1. `matches` agrees with the reference for random patterns and for random
//!    keys as well as keys sampled from the pattern (and the sampled keys
//!    really do match often enough for the comparison to mean something);
//! 2. every matching key starts with `literal_prefix()`;
//! 3. when `is_prefix_only()`, a key matches iff it is longer than the prefix
//!    and starts with it;
//! 4. when `exact_keys()` is `Some`, a key matches iff it is in the list;
//! 5. a pattern that makes backtracking matchers exponential still answers
//!    correctly on a 1 KiB key (no timing assertion).
//!
//! It also pins the reference to the documented examples, and keeps a
//! regression for `*` runs that meet through brace expansion (`*{*}` = `**`).
#![allow(clippy::unwrap_used)]

use kv_core::Pattern;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

// ---------------------------------------------------------------------------
// Reference matcher

mod reference {
    /// Index just past the class that opens at `p[i] == '['`
    /// (a `]` first in the set, after an optional `!`/`^`, is literal).
    fn class_end(p: &[char], i: usize) -> usize {
        let mut j = i + 1;
        if matches!(p.get(j), Some('!' | '^')) {
            j += 1;
        }
        let mut first = true;
        loop {
            match p.get(j) {
                None => panic!("reference: unclosed class in {p:?}"),
                Some(']') if !first => return j + 1,
                Some('\\') => j += 2,
                Some(_) => j += 1,
            }
            first = false;
        }
    }

    /// Length of the syntactic atom starting at `p[i]` (escape, class or a
    /// single character), used to skip over things that hide `{`, `,`, `.`.
    fn atom_len(p: &[char], i: usize) -> usize {
        match p[i] {
            '\\' => 2,
            '[' => class_end(p, i) - i,
            _ => 1,
        }
    }

    /// All brace expansions of `pattern`, as pattern strings without braces.
    pub fn expand(pattern: &str) -> Vec<String> {
        let p: Vec<char> = pattern.chars().collect();
        // Find the first top-level `{`.
        let mut i = 0;
        while i < p.len() && p[i] != '{' {
            i += atom_len(&p, i);
        }
        if i >= p.len() {
            return vec![pattern.to_owned()];
        }
        // Find its `}` and the top-level commas in between.
        let open = i;
        let mut depth = 0usize;
        let mut cuts = vec![open];
        let mut j = open + 1;
        let close = loop {
            assert!(j < p.len(), "reference: unclosed brace in {pattern:?}");
            match p[j] {
                '{' => depth += 1,
                '}' if depth == 0 => break j,
                '}' => depth -= 1,
                ',' if depth == 0 => cuts.push(j),
                _ => {}
            }
            j += atom_len(&p, j);
        };
        cuts.push(close);
        let head: String = p[..open].iter().collect();
        let tail: String = p[close + 1..].iter().collect();
        let mut out = Vec::new();
        for w in cuts.windows(2) {
            let alt: String = p[w[0] + 1..w[1]].iter().collect();
            // The head holds no brace, so the first brace of the joined
            // string lies in `alt` or `tail`: recursion terminates.
            out.extend(expand(&format!("{head}{alt}{tail}")));
        }
        out
    }

    /// Splits a brace-free pattern on `.` (escaped or not; `\.` is a literal
    /// dot, and the only thing a key's dot can be), never inside a class.
    pub fn split_segments(pattern: &str) -> Vec<Vec<char>> {
        let p: Vec<char> = pattern.chars().collect();
        let mut segs = vec![Vec::new()];
        let mut i = 0;
        while i < p.len() {
            if p[i] == '.' || (p[i] == '\\' && p.get(i + 1) == Some(&'.')) {
                segs.push(Vec::new());
                i += if p[i] == '.' { 1 } else { 2 };
                continue;
            }
            let n = atom_len(&p, i);
            segs.last_mut().unwrap().extend_from_slice(&p[i..i + n]);
            i += n;
        }
        segs
    }

    /// A whole-segment globstar: two or more unescaped `*` and nothing else.
    fn is_globstar(seg: &[char]) -> bool {
        seg.len() >= 2 && seg.iter().all(|&c| c == '*')
    }

    /// Matches pattern segments against key segments.
    fn match_segments(pats: &[Vec<char>], keys: &[Vec<char>], first: bool) -> bool {
        let Some((seg, rest)) = pats.split_first() else {
            return keys.is_empty();
        };
        if is_globstar(seg) {
            // Trailing `**` after something: one or more segments
            // (`app.**` is not `app`). Leading, middle or alone: zero or more.
            let min = usize::from(rest.is_empty() && !first);
            return (min..=keys.len()).any(|n| match_segments(rest, &keys[n..], false));
        }
        match keys.split_first() {
            Some((k, krest)) => match_segment(seg, k) && match_segments(rest, krest, false),
            None => false,
        }
    }

    /// Whether class `p[i..end]` (`p[i] == '['`) contains `c`.
    fn class_contains(p: &[char], i: usize, end: usize, c: char) -> bool {
        let last = end - 1; // the closing `]`
        let mut j = i + 1;
        let negated = matches!(p[j], '!' | '^');
        if negated {
            j += 1;
        }
        // One possibly escaped character at `j`, and the index after it.
        let one = |j: usize| {
            if p[j] == '\\' {
                (p[j + 1], j + 2)
            } else {
                (p[j], j + 1)
            }
        };
        let mut inside = false;
        while j < last {
            let (lo, after) = one(j);
            // `lo-hi` is a range unless the `-` comes right before `]`.
            if after + 1 < last && p[after] == '-' {
                let (hi, after_hi) = one(after + 1);
                assert!(lo <= hi, "reference: reversed range");
                inside |= lo <= c && c <= hi;
                j = after_hi;
            } else {
                inside |= lo == c;
                j = after;
            }
        }
        c != '.' && inside != negated
    }

    /// Backtracking glob over one segment (the key segment holds no `.`).
    fn match_segment(p: &[char], k: &[char]) -> bool {
        let Some(&c) = p.first() else {
            return k.is_empty();
        };
        match c {
            '*' => {
                let rest = p
                    .iter()
                    .position(|&x| x != '*')
                    .map_or(&p[p.len()..], |n| &p[n..]);
                (0..=k.len()).any(|n| match_segment(rest, &k[n..]))
            }
            '?' => !k.is_empty() && match_segment(&p[1..], &k[1..]),
            '[' => {
                let end = class_end(p, 0);
                !k.is_empty()
                    && class_contains(p, 0, end, k[0])
                    && match_segment(&p[end..], &k[1..])
            }
            '\\' => k.first() == p.get(1) && match_segment(&p[2..], &k[1..]),
            lit => k.first() == Some(&lit) && match_segment(&p[1..], &k[1..]),
        }
    }

    /// Whether `key` matches `pattern`, per the documented semantics.
    pub fn matches(pattern: &str, key: &str) -> bool {
        let keys: Vec<Vec<char>> = key.split('.').map(|s| s.chars().collect()).collect();
        expand(pattern)
            .iter()
            .any(|e| match_segments(&split_segments(e), &keys, true))
    }

    /// Whether some brace expansion of `pattern` has a whole segment made of
    /// `*`s that come from two or more separate `*` runs of the source, as
    /// `*{*}`, `{a.b,**}*` or `x.*{,a}*` (each expands to a segment `**`).
    /// Such a segment is a whole-segment `**` (see
    /// `star_runs_joined_by_braces_form_a_globstar`); this only measures
    /// that the generator produces the case.
    pub fn joins_star_runs(pattern: &str) -> bool {
        // Tag every unescaped `*` outside a class with its run's number,
        // as a private-use character, then expand and look at segments.
        let p: Vec<char> = pattern.chars().collect();
        let mut tagged = String::new();
        let mut run = 0u32;
        let mut i = 0;
        while i < p.len() {
            if p[i] == '*' {
                while p.get(i) == Some(&'*') {
                    tagged.push(char::from_u32(0xE000 + run).unwrap());
                    i += 1;
                }
                run += 1;
                continue;
            }
            let n = atom_len(&p, i);
            tagged.extend(&p[i..i + n]);
            i += n;
        }
        let tag = |c: char| ('\u{E000}'..='\u{F8FF}').contains(&c);
        expand(&tagged).iter().any(|e| {
            split_segments(e).iter().any(|seg| {
                seg.len() >= 2
                    && seg.iter().all(|&c| tag(c))
                    && seg.windows(2).any(|w| w[0] != w[1])
            })
        })
    }

    /// The literal string an all-literal expansion stands for, if any.
    pub fn unescape_literal(expansion: &str) -> Option<String> {
        let mut out = String::new();
        let mut it = expansion.chars();
        while let Some(c) = it.next() {
            match c {
                '\\' => out.push(it.next()?),
                '*' | '?' | '[' => return None,
                c => out.push(c),
            }
        }
        Some(out)
    }

    /// A tiny deterministic generator for sampling keys from a pattern.
    pub struct Rng(pub u64);

    impl Rng {
        pub fn below(&mut self, n: usize) -> usize {
            // xorshift64*
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
        }
    }

    const KEY_CHARS: [char; 5] = ['a', 'b', 'c', 'é', '*'];

    fn random_segment(rng: &mut Rng) -> String {
        (0..=rng.below(2))
            .map(|_| KEY_CHARS[rng.below(5)])
            .collect()
    }

    /// A key built from one expansion of `pattern`, with every wildcard
    /// replaced by random sample text (so it often, not always, matches).
    pub fn sample_key(pattern: &str, seed: u64) -> String {
        let mut rng = Rng(seed | 1);
        let exps = expand(pattern);
        let exp = &exps[rng.below(exps.len())];
        let mut out: Vec<String> = Vec::new();
        for seg in split_segments(exp) {
            if is_globstar(&seg) {
                for _ in 0..rng.below(3) {
                    out.push(random_segment(&mut rng));
                }
                continue;
            }
            let mut s = String::new();
            let mut i = 0;
            while i < seg.len() {
                match seg[i] {
                    '*' => {
                        for _ in 0..rng.below(3) {
                            s.push(KEY_CHARS[rng.below(5)]);
                        }
                        while seg.get(i) == Some(&'*') {
                            i += 1;
                        }
                        continue;
                    }
                    '?' => s.push(KEY_CHARS[rng.below(5)]),
                    '[' => {
                        s.push(KEY_CHARS[rng.below(5)]);
                        i = class_end(&seg, i);
                        continue;
                    }
                    '\\' => {
                        s.push(seg[i + 1]);
                        i += 2;
                        continue;
                    }
                    c => s.push(c),
                }
                i += 1;
            }
            out.push(s);
        }
        out.retain(|s| !s.is_empty());
        if out.is_empty() {
            out.push(random_segment(&mut rng));
        }
        out.join(".")
    }
}

// ---------------------------------------------------------------------------
// Generators

const PIECES: &[&str] = &[
    "a",
    "b",
    "ab",
    "é",
    "*",
    "**",
    "?",
    "[ab]",
    "[!a]",
    "[^b]",
    "[a-c]",
    "[.a]",
    "[!.]",
    "[*]",
    r"\*",
    r"\.",
    "{a,b}",
    "{a.b,**}",
    "{x,{y,a}}",
    "{,a}",
    "{*,a}",
    "{[ab],c.*}",
];

fn piece() -> impl Strategy<Value = String> {
    prop::sample::select(PIECES).prop_map(str::to_owned)
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::collection::vec(piece(), 1..=3).prop_map(|v| v.concat()),
        1 => Just("**".to_owned()),
    ]
}

/// Any well-formed pattern over the pieces above.
fn pattern() -> impl Strategy<Value = String> {
    prop::collection::vec(segment(), 1..=4).prop_map(|v| v.join("."))
}

fn random_key() -> impl Strategy<Value = String> {
    let seg = prop::collection::vec(prop::sample::select(vec!['a', 'b', 'c', 'é', '*']), 1..=3)
        .prop_map(|v| v.into_iter().collect::<String>());
    prop::collection::vec(seg, 1..=4).prop_map(|v| v.join("."))
}

/// A pattern, a few random keys and a few keys sampled from the pattern.
fn case() -> impl Strategy<Value = (String, Vec<String>)> {
    (
        pattern(),
        prop::collection::vec(random_key(), 4),
        prop::collection::vec(any::<u64>(), 4),
    )
        .prop_map(|(p, mut keys, seeds)| {
            keys.extend(seeds.into_iter().map(|s| reference::sample_key(&p, s)));
            (p, keys)
        })
}

/// Literal-only pieces (braces allowed): patterns with exact keys.
const LITERAL_PIECES: &[&str] = &[
    "a",
    "b",
    "ab",
    "é",
    r"\*",
    r"\.",
    r"\?",
    "{a,b}",
    "{a.b,c}",
    "{x,{y,a}}",
    "{,a}",
    "{ab}",
];

fn literal_pattern() -> impl Strategy<Value = String> {
    let seg =
        prop::collection::vec(prop::sample::select(LITERAL_PIECES), 1..=2).prop_map(|v| v.concat());
    prop::collection::vec(seg, 1..=3).prop_map(|v| v.join("."))
}

/// Literal segments (no braces with several alternatives) then `.**`, or `**`.
fn prefix_pattern() -> impl Strategy<Value = String> {
    let seg = prop::collection::vec(
        prop::sample::select(&["a", "b", "ab", "é", r"\*", r"\.", "{ab}", "{c}"][..]),
        1..=2,
    )
    .prop_map(|v| v.concat());
    prop_oneof![
        1 => Just("**".to_owned()),
        1 => Just("***".to_owned()),
        6 => prop::collection::vec(seg, 1..=3).prop_map(|v| format!("{}.**", v.join("."))),
    ]
}

fn compile(p: &str) -> Pattern {
    Pattern::new(p).unwrap_or_else(|e| panic!("generated pattern {p:?} is malformed: {e}"))
}

// ---------------------------------------------------------------------------
// Properties

proptest! {
    #![proptest_config(ProptestConfig {
        // Write no `.proptest-regressions` file next to this test.
        failure_persistence: None,
        ..ProptestConfig::with_cases(3000)
    })]

    /// Properties 1 and 2, plus 3 and 4 whenever a random pattern has them.
    #[test]
    fn matches_agrees_with_reference((p, keys) in case()) {
        let pat = compile(&p);
        // A fresh pattern matches on its segment matcher, or on its NFA for
        // its first few dozen keys; a precompiled one that needs an
        // automaton on its DFA. All must agree with the reference.
        let eager = compile(&p).precompile();
        let prefix = pat.literal_prefix();
        for k in &keys {
            let got = pat.matches(k);
            prop_assert_eq!(got, reference::matches(&p, k), "pattern {:?} key {:?}", p, k);
            prop_assert_eq!(eager.matches(k), got, "DFA vs NFA: pattern {:?} key {:?}", p, k);
            if got {
                prop_assert!(k.starts_with(prefix),
                    "pattern {:?} matches {:?} but literal prefix is {:?}", p, k, prefix);
            }
            if pat.is_prefix_only() {
                prop_assert_eq!(got, k.starts_with(prefix) && k.len() > prefix.len(),
                    "prefix-only pattern {:?} (prefix {:?}) key {:?}", p, prefix, k);
            }
            if let Some(list) = pat.exact_keys() {
                prop_assert_eq!(got, list.iter().any(|e| e == k),
                    "pattern {:?} exact keys {:?} key {:?}", p, list, k);
            }
        }
    }

    /// Property 3 on patterns built to be prefix-only.
    #[test]
    fn prefix_only_patterns_match_their_key_range(
        p in prefix_pattern(),
        keys in prop::collection::vec(random_key(), 6),
    ) {
        let pat = compile(&p);
        prop_assert!(pat.is_prefix_only(), "{:?} should be prefix-only", p);
        let prefix = pat.literal_prefix().to_owned();
        // Random keys, and the same keys moved under the prefix; the prefix
        // itself without its dot, and the prefix with an extra character.
        let mut all = keys.clone();
        all.extend(keys.iter().map(|k| format!("{prefix}{k}")));
        if let Some(bare) = prefix.strip_suffix('.') {
            if !bare.is_empty() {
                all.push(bare.to_owned());
                all.push(format!("{bare}a"));
                all.push(format!("{bare}a.b"));
            }
        }
        for k in &all {
            let want = k.starts_with(&prefix) && k.len() > prefix.len();
            prop_assert_eq!(pat.matches(k), want, "pattern {:?} prefix {:?} key {:?}", p, prefix, k);
            prop_assert_eq!(reference::matches(&p, k), want, "reference: {:?} key {:?}", p, k);
        }
    }

    /// Property 4 on all-literal patterns: the exact keys are the pattern's
    /// (unescaped) expansions, and a key matches iff it is one of them.
    #[test]
    fn exact_keys_are_exactly_the_matches(
        p in literal_pattern(),
        keys in prop::collection::vec(random_key(), 6),
    ) {
        let pat = compile(&p);
        let Some(list) = pat.exact_keys() else {
            return Err(TestCaseError::fail(format!("{p:?} has no exact keys")));
        };
        let mut want: Vec<String> = reference::expand(&p)
            .iter()
            .map(|e| reference::unescape_literal(e).unwrap())
            .collect();
        want.sort();
        want.dedup();
        prop_assert_eq!(list, &want[..], "pattern {:?}", p);
        let mut all = keys;
        // At most six of the (up to 3^6) exact keys, with near misses.
        for e in list.iter().step_by(list.len().div_ceil(6)) {
            all.push(e.clone());
            all.push(format!("{e}a"));
            all.push(format!("a{e}"));
            if let Some(shorter) = e.get(..e.len().saturating_sub(1)) {
                all.push(shorter.to_owned());
            }
        }
        for k in all.iter().filter(|k| !k.is_empty()) {
            let got = pat.matches(k);
            prop_assert_eq!(got, list.contains(k), "pattern {:?} exact {:?} key {:?}", p, list, k);
            prop_assert_eq!(got, reference::matches(&p, k), "reference: {:?} key {:?}", p, k);
            if got {
                prop_assert!(k.starts_with(pat.literal_prefix()));
            }
        }
    }
}

/// Keys sampled from the pattern match often enough (and random keys
/// sometimes) for property 1 to test true matches, not just rejections.
#[test]
fn sampled_keys_often_match() {
    let mut runner = TestRunner::deterministic();
    let strategy = case();
    let (mut cases, mut sampled_true, mut random_true) = (0usize, 0usize, 0usize);
    for _ in 0..1000 {
        let (p, keys) = strategy.new_tree(&mut runner).unwrap().current();
        let pat = compile(&p);
        for (i, k) in keys.iter().enumerate() {
            let got = pat.matches(k);
            assert_eq!(got, reference::matches(&p, k), "pattern {p:?} key {k:?}");
            if got && i < 4 {
                random_true += 1;
            } else if got {
                sampled_true += 1;
            }
        }
        cases += 4;
    }
    let sampled_share = sampled_true as f64 / cases as f64;
    let random_share = random_true as f64 / cases as f64;
    eprintln!(
        "{cases} sampled keys: {:.1}% match; {cases} random keys: {:.1}% match",
        sampled_share * 100.0,
        random_share * 100.0
    );
    assert!(
        sampled_share > 0.3,
        "only {:.1}% of sampled keys match",
        sampled_share * 100.0
    );
    assert!(random_true > 0, "no random key ever matched");
    let patterns = pattern();
    let joined = (0..1000)
        .filter(|_| reference::joins_star_runs(&patterns.new_tree(&mut runner).unwrap().current()))
        .count();
    eprintln!("{joined} of 1000 patterns join `*` runs into a `**` segment by expansion");
    assert!(
        joined > 0,
        "the generator never joins `*` runs by expansion"
    );
}

/// Hand-picked cases pinning the reference itself to the documented table.
#[test]
fn reference_follows_the_documented_examples() {
    let yes = [
        ("app.**", "app.x"),
        ("app.**", "app.x.y"),
        ("**.error", "error"),
        ("**.error", "a.b.error"),
        ("a.**.b", "a.b"),
        ("a.**.b", "a.x.y.b"),
        ("**", "a.b.c"),
        ("ab**", "abc"),
        ("**x", "yyx"),
        ("a**b", "ab"),
        ("x[!a-c]", "xd"),
        ("x[^a-c]", "xd"),
        ("env.{dev,prod}.config", "env.prod.config"),
        ("a.{b,c.{d,e}}", "a.c.e"),
        ("{**.,}x", "a.b.x"),
        (r"a\*b", "a*b"),
        ("[]a]", "]"),
        ("[a-]", "-"),
        (r"[\]]", "]"),
        ("a,b", "a,b"),
        (r"a\.b", "a.b"),
    ];
    let no = [
        ("app.**", "app"),
        ("**.error", "app.errors"),
        ("a.**.b", "a.xb"),
        ("ab**", "abc.d"),
        ("a?b", "a.b"),
        ("a[!x]b", "a.b"),
        ("a[.]b", "a.b"),
        (r"a\*b", "axb"),
        ("*.config.*", "app.config.db.host"),
    ];
    for (p, k) in yes {
        assert!(
            reference::matches(p, k),
            "reference: {p:?} should match {k:?}"
        );
        assert!(compile(p).matches(k), "Pattern: {p:?} should match {k:?}");
    }
    for (p, k) in no {
        assert!(
            !reference::matches(p, k),
            "reference: {p:?} should not match {k:?}"
        );
        assert!(
            !compile(p).matches(k),
            "Pattern: {p:?} should not match {k:?}"
        );
    }
}

/// Regression for a disagreement this test found: "two or more consecutive
/// `*` count as `**`" and "whether a `**` is a whole segment is decided on
/// each expansion", so `{a.b,**}*` expands to `a.b*` and `***`, a whole
/// segment that matches every key. `Pattern` used to merge `*` runs only
/// while parsing, before braces were expanded, so `**` followed by a `*`
/// from another run resolved to an in-segment `*` and matched only
/// one-segment keys (minimal proptest input: `{a.b,**}*` with key `éa.c*`).
#[test]
fn star_runs_joined_by_braces_form_a_globstar() {
    let cases = [
        ("{a.b,**}*", "éa.c*"),
        ("*{*}", "a.b"),
        ("{*}*", "a.b"),
        ("*{,a}*", "a.b"),
        ("x.*{*}", "x.a.b"),
        ("*{*}.x", "a.b.x"),
    ];
    let mut wrong = Vec::new();
    for (p, k) in cases {
        assert!(reference::joins_star_runs(p), "{p:?}");
        assert!(
            reference::matches(p, k),
            "reference: {p:?} should match {k:?}"
        );
        if !compile(p).matches(k) {
            wrong.push((p, k));
        }
    }
    assert!(
        wrong.is_empty(),
        "Pattern rejects these (pattern, key) pairs: {wrong:?}"
    );
    // Joined runs that are not a whole segment stay within one segment.
    for (p, k) in [("x{*}*", "xa.b"), ("*{*}y", "a.by"), ("x{*}y", "x.y")] {
        assert!(!reference::matches(p, k), "reference: {p:?} vs {k:?}");
        assert!(!compile(p).matches(k), "Pattern: {p:?} vs {k:?}");
    }
}

/// Property 5: no catastrophic backtracking, and the answer is right.
#[test]
fn pathological_pattern_on_a_long_key() {
    let p = compile("*a*a*a*a*a*a*b");
    let key = "a".repeat(1024);
    assert!(!p.matches(&key));
    assert!(p.matches(&format!("{key}b")));
    // A non-ASCII character forces the NFA simulation rather than the DFA.
    let key = format!("é{}", "a".repeat(1023));
    assert!(!p.matches(&key));
    assert!(p.matches(&format!("{key}b")));
}
