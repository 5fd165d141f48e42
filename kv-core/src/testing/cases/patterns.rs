//! Patterns: every form of the grammar through every pattern operation.

use crate::error::Error;
use crate::metadata::MetadataFilter;
use crate::store::Store;
use crate::testing::{BackendFactory, Case, CaseResult, ConformanceOptions, Failure, Harness};
use crate::value::Value;
use crate::KVStore;

pub(super) fn cases() -> Vec<Case> {
    vec![
        case!(pattern_globstar_below_prefix),
        case!(pattern_leading_globstar_any_depth),
        case!(pattern_star_within_one_segment),
        case!(pattern_question_mark_one_character),
        case!(pattern_character_classes),
        case!(pattern_brace_alternatives),
        case!(pattern_star_suffix_in_segment),
        case!(pattern_globstar_vs_star),
        case!(pattern_middle_globstar_zero_or_more_segments),
        case!(pattern_escapes_match_literally),
        case!(pattern_double_star_everything),
        case!(pattern_unicode_keys),
        case!(pattern_malformed_rejected_everywhere),
        case!(pattern_operations_agree),
        case!(pattern_delete_prefix_range_exact),
        case!(pattern_delete_general_pattern),
    ]
}

const FIXTURE: &[&str] = &[
    "users.123.name",
    "users.123.email",
    "users.123.settings.theme",
    "users.1234.name",
    "users.456.name",
    "users.123",
    "error",
    "app.error",
    "app.db.error",
    "app.errors",
    "app.config.db",
    "svc.config.cache",
    "svc.config.cache.size",
    "user.a.name",
    "user.b.name",
    "user.ab.name",
    "log.1.txt",
    "log.7.txt",
    "log.x.txt",
    "log.10.txt",
    "env.dev.config",
    "env.prod.config",
    "env.test.config",
    "logs.2024-01-05",
    "logs.2024-02-11",
    "logs.2023-12-31",
    "logs.2024-01.sub",
    "app",
    "app.x",
    "app.x.y",
    "a.b",
    "a.x.b",
    "a.x.y.b",
    "a.xb",
];

async fn fixture(f: &dyn BackendFactory) -> Result<Harness, Failure> {
    let h = Harness::new(f).await?;
    h.store
        .set_many(
            FIXTURE
                .iter()
                .map(|k| (k.to_string(), Value::from(*k)))
                .collect(),
        )
        .await?;
    Ok(h)
}

/// Checks `keys(pattern)` (and `count_pattern`) against the expected set.
async fn expect_keys(store: &Store, pattern: &str, expected: &[&str]) -> CaseResult {
    let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    want.sort();
    let got = store.keys(pattern).await?;
    ensure_eq!(got, want, "keys({pattern:?})");
    ensure_eq!(
        store.count_pattern(pattern).await?,
        want.len() as u64,
        "count_pattern({pattern:?})"
    );
    Ok(())
}

async fn pattern_globstar_below_prefix(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = fixture(f).await?;
    expect_keys(
        &h.store,
        "users.123.**",
        &[
            "users.123.name",
            "users.123.email",
            "users.123.settings.theme",
        ],
    )
    .await
}

async fn pattern_leading_globstar_any_depth(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = fixture(f).await?;
    expect_keys(
        &h.store,
        "**.error",
        &["error", "app.error", "app.db.error"],
    )
    .await
}

async fn pattern_star_within_one_segment(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = fixture(f).await?;
    expect_keys(
        &h.store,
        "*.config.*",
        &["app.config.db", "svc.config.cache"],
    )
    .await?;
    expect_keys(
        &h.store,
        "users.*.name",
        &["users.123.name", "users.1234.name", "users.456.name"],
    )
    .await
}

async fn pattern_question_mark_one_character(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = fixture(f).await?;
    expect_keys(&h.store, "user.?.name", &["user.a.name", "user.b.name"]).await?;
    expect_keys(
        &h.store,
        "users.???.name",
        &["users.123.name", "users.456.name"],
    )
    .await
}

async fn pattern_character_classes(f: &dyn BackendFactory, _: &ConformanceOptions) -> CaseResult {
    let h = fixture(f).await?;
    expect_keys(&h.store, "log.[0-9].txt", &["log.1.txt", "log.7.txt"]).await?;
    expect_keys(&h.store, "log.[!0-9].txt", &["log.x.txt"]).await?;
    expect_keys(&h.store, "log.[^0-9].txt", &["log.x.txt"]).await?;
    expect_keys(
        &h.store,
        "log.[17x].txt",
        &["log.1.txt", "log.7.txt", "log.x.txt"],
    )
    .await?;
    expect_keys(&h.store, "log.[0-9][0-9].txt", &["log.10.txt"]).await?;
    // A class never matches the separator.
    expect_keys(&h.store, "a[!z]xb", &[]).await
}

async fn pattern_brace_alternatives(f: &dyn BackendFactory, _: &ConformanceOptions) -> CaseResult {
    let h = fixture(f).await?;
    expect_keys(
        &h.store,
        "env.{dev,prod}.config",
        &["env.dev.config", "env.prod.config"],
    )
    .await?;
    expect_keys(
        &h.store,
        "{env.{dev,test}.config,app.config.*}",
        &["env.dev.config", "env.test.config", "app.config.db"],
    )
    .await?;
    expect_keys(
        &h.store,
        "users.{123,456}.name",
        &["users.123.name", "users.456.name"],
    )
    .await?;
    expect_keys(&h.store, "{error,app.x}", &["error", "app.x"]).await
}

async fn pattern_star_suffix_in_segment(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = fixture(f).await?;
    expect_keys(
        &h.store,
        "logs.2024-*",
        &["logs.2024-01-05", "logs.2024-02-11"],
    )
    .await?;
    expect_keys(&h.store, "logs.*-01-*", &["logs.2024-01-05"]).await
}

async fn pattern_globstar_vs_star(f: &dyn BackendFactory, _: &ConformanceOptions) -> CaseResult {
    let h = fixture(f).await?;
    expect_keys(
        &h.store,
        "app.**",
        &[
            "app.error",
            "app.db.error",
            "app.errors",
            "app.config.db",
            "app.x",
            "app.x.y",
        ],
    )
    .await?;
    expect_keys(&h.store, "app.*", &["app.error", "app.errors", "app.x"]).await?;
    ensure!(
        !h.store.keys("app.**").await?.contains(&"app".to_owned()),
        "app.** must not match app itself"
    );
    Ok(())
}

async fn pattern_middle_globstar_zero_or_more_segments(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = fixture(f).await?;
    expect_keys(&h.store, "a.**.b", &["a.b", "a.x.b", "a.x.y.b"]).await?;
    expect_keys(
        &h.store,
        "users.**.name",
        &["users.123.name", "users.1234.name", "users.456.name"],
    )
    .await
}

async fn pattern_escapes_match_literally(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    for k in [
        "lit.a*b",
        "lit.axb",
        "lit.q?",
        "lit.qq",
        "lit.[x]",
        "lit.x",
        "lit.{a,b}",
        "lit.a",
        "lit.back\\slash",
    ] {
        h.store.set(k, 1.into()).await?;
    }
    expect_keys(&h.store, r"lit.a\*b", &["lit.a*b"]).await?;
    expect_keys(&h.store, r"lit.q\?", &["lit.q?"]).await?;
    expect_keys(&h.store, r"lit.\[x\]", &["lit.[x]"]).await?;
    expect_keys(&h.store, r"lit.\{a,b\}", &["lit.{a,b}"]).await?;
    expect_keys(&h.store, r"lit.back\\slash", &["lit.back\\slash"]).await?;
    expect_keys(&h.store, r"lit.a*", &["lit.a*b", "lit.axb", "lit.a"]).await
}

async fn pattern_double_star_everything(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = fixture(f).await?;
    expect_keys(&h.store, "**", FIXTURE).await?;
    ensure_eq!(h.store.count().await?, FIXTURE.len() as u64);
    Ok(())
}

async fn pattern_unicode_keys(f: &dyn BackendFactory, _: &ConformanceOptions) -> CaseResult {
    let h = Harness::new(f).await?;
    for k in [
        "ユーザー.一.名前",
        "ユーザー.二.名前",
        "ユーザー.三四.名前",
        "ключ.é",
        "ключ.e",
    ] {
        h.store.set(k, 1.into()).await?;
    }
    expect_keys(
        &h.store,
        "ユーザー.?.名前",
        &["ユーザー.一.名前", "ユーザー.二.名前"],
    )
    .await?;
    expect_keys(
        &h.store,
        "ユーザー.**",
        &["ユーザー.一.名前", "ユーザー.二.名前", "ユーザー.三四.名前"],
    )
    .await?;
    expect_keys(&h.store, "ключ.[à-ü]", &["ключ.é"]).await
}

async fn pattern_malformed_rejected_everywhere(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = fixture(f).await?;
    let s = &h.store;
    for (pattern, position) in [
        ("", 0),
        ("a.[bc", 2),
        ("a.{b,c", 2),
        ("a.b\\", 3),
        ("a}", 1),
        ("[z-a]", 2),
    ] {
        match s.keys(pattern).await {
            Err(Error::InvalidPattern { position: p, .. }) => {
                ensure_eq!(p, position, "position for {pattern:?}")
            }
            other => ensure!(false, "{pattern:?}: expected InvalidPattern, got {other:?}"),
        }
        ensure_err!(s.count_pattern(pattern).await, Error::InvalidPattern { .. });
        ensure_err!(s.get_pattern(pattern).await, Error::InvalidPattern { .. });
        ensure_err!(
            s.delete_pattern(pattern).await,
            Error::InvalidPattern { .. }
        );
        ensure_err!(
            s.scan(pattern, None, 10).await,
            Error::InvalidPattern { .. }
        );
        ensure_err!(
            s.find_by_metadata(pattern, &MetadataFilter::new()).await,
            Error::InvalidPattern { .. }
        );
    }
    ensure_eq!(
        s.count().await?,
        FIXTURE.len() as u64,
        "nothing may be deleted"
    );
    Ok(())
}

async fn pattern_operations_agree(f: &dyn BackendFactory, _: &ConformanceOptions) -> CaseResult {
    let h = fixture(f).await?;
    for pattern in [
        "users.*.name",
        "**.error",
        "app.**",
        "{env,log}.*.*",
        "logs.2024-*",
    ] {
        let keys = h.store.keys(pattern).await?;
        let pairs = h.store.get_pattern(pattern).await?;
        ensure_eq!(
            pairs.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
            keys,
            "get_pattern vs keys for {pattern}"
        );
        for (k, v) in &pairs {
            ensure_eq!(v, &Value::from(k.as_str()), "value of {k}");
        }
        let mut scanned = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = h.store.scan(pattern, cursor.as_deref(), 2).await?;
            ensure!(page.entries.len() <= 2, "page over its limit");
            scanned.extend(page.entries.into_iter().map(|e| e.key));
            ensure!(
                scanned.len() <= keys.len(),
                "scan of {pattern} does not advance"
            );
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        ensure_eq!(scanned, keys, "scan vs keys for {pattern}");
        let found = h
            .store
            .find_by_metadata(pattern, &MetadataFilter::new())
            .await?;
        ensure_eq!(
            found.into_iter().map(|e| e.key).collect::<Vec<_>>(),
            keys,
            "find_by_metadata with an empty filter vs keys for {pattern}"
        );
    }
    Ok(())
}

async fn pattern_delete_prefix_range_exact(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = fixture(f).await?;
    // `app.**` is a pure prefix range: it must not take `app` or `apple`.
    h.store.set("apple.pie", 1.into()).await?;
    h.store.set("app/", 1.into()).await?;
    ensure_eq!(h.store.delete_pattern("app.**").await?, 6);
    ensure!(h.store.exists("app").await?, "app itself must survive");
    ensure!(h.store.exists("apple.pie").await?, "apple.pie must survive");
    ensure!(h.store.exists("app/").await?, "app/ must survive");
    ensure_eq!(h.store.keys("app.**").await?, Vec::<String>::new());
    ensure_eq!(h.store.delete_pattern("app.**").await?, 0);
    Ok(())
}

async fn pattern_delete_general_pattern(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = fixture(f).await?;
    ensure_eq!(h.store.delete_pattern("users.*.name").await?, 3);
    ensure_eq!(
        h.store.keys("users.**").await?,
        vec![
            "users.123".to_owned(),
            "users.123.email".to_owned(),
            "users.123.settings.theme".to_owned()
        ]
    );
    ensure_eq!(h.store.delete_pattern("**.error").await?, 3);
    ensure!(
        h.store.exists("app.errors").await?,
        "app.errors must survive"
    );
    ensure_eq!(h.store.count().await?, (FIXTURE.len() - 6) as u64);
    Ok(())
}
