//! The report: a text table, JSON, an SVG chart of the ratios, and the
//! Markdown section of `docs/performance.md`.

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{Kind, Row, Workload, R};

/// Everything one run measured.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Whether this was a `--quick` run.
    pub quick: bool,
    /// Seconds each workload ran on each system.
    pub secs_per_workload: f64,
    /// Date of the run (UTC), `YYYY-MM-DD`.
    pub date: String,
    /// Wall time of the whole run.
    pub total_secs: f64,
    /// Every measured row.
    pub rows: Vec<Row>,
    /// The rows taken over from an earlier report (`--merge`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged: Option<Merged>,
}

/// Where the rows of a `--merge` come from.
#[derive(Debug, Clone, Serialize)]
pub struct Merged {
    /// The arguments of this run (after `--`).
    pub args: Vec<String>,
    /// The earlier JSON report.
    pub file: String,
    /// Its date.
    pub date: String,
    /// Its wall time.
    pub total_secs: f64,
    /// The systems whose rows were taken from it.
    pub systems: Vec<String>,
}

/// An earlier report as read back from its JSON.
#[derive(Debug, Deserialize)]
pub struct Saved {
    /// Its date.
    pub date: String,
    /// Its wall time.
    pub total_secs: f64,
    rows: Vec<SavedRow>,
}

#[derive(Debug, Deserialize)]
struct SavedRow {
    system: String,
    peer: bool,
    workload: String,
    value_size: usize,
    keys: usize,
    ops: u64,
    ops_per_sec: f64,
    p50_us: f64,
    p99_us: f64,
}

impl Saved {
    /// Reads a report written by an earlier run.
    pub fn read(path: &Path) -> R<Saved> {
        let text =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        serde_json::from_slice(&text)
            .map_err(|e| format!("{} is not a kv-bench report: {e}", path.display()).into())
    }

    /// Its rows, without ratios (they are recomputed with the new rows).
    pub fn rows(&self) -> R<Vec<Row>> {
        self.rows
            .iter()
            .map(|r| {
                let workload = Workload::ALL
                    .iter()
                    .find(|w| w.name() == r.workload)
                    .ok_or_else(|| format!("unknown workload {:?}", r.workload))?;
                Ok(Row {
                    system: r.system.clone(),
                    peer: r.peer,
                    kind: Kind::from_system(&r.system)?,
                    workload: workload.name(),
                    value_size: r.value_size,
                    keys: r.keys,
                    ops: r.ops,
                    ops_per_sec: r.ops_per_sec,
                    p50_us: r.p50_us,
                    p99_us: r.p99_us,
                    ratios: Vec::new(),
                    earlier: true,
                })
            })
            .collect()
    }
}

/// The systems of `rows`, each once, in the order they first appear.
pub fn systems_of(rows: &[Row]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for r in rows {
        if !out.contains(&r.system.as_str()) {
            out.push(&r.system);
        }
    }
    out
}

/// Today's UTC date as `YYYY-MM-DD` (civil-from-days).
pub fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

fn size(bytes: usize) -> String {
    match bytes {
        b if b >= 1024 && b % 1024 == 0 => format!("{} KiB", b / 1024),
        b => format!("{b} B"),
    }
}

fn count(n: usize) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1000 && n % 1000 == 0 => format!("{}k", n / 1000),
        n => n.to_string(),
    }
}

fn rate(ops: f64) -> String {
    if ops >= 1e6 {
        format!("{:.2}M", ops / 1e6)
    } else if ops >= 1e3 {
        format!("{:.1}K", ops / 1e3)
    } else {
        format!("{ops:.1}")
    }
}

fn ratios(row: &Row) -> String {
    row.ratios
        .iter()
        .map(|(peer, r)| format!("{r:.2}× {peer}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Report {
    /// Scenarios in run order: `(value size, keys)`.
    fn scenarios(&self) -> Vec<(usize, usize)> {
        let mut out: Vec<(usize, usize)> = Vec::new();
        for r in &self.rows {
            if !out.contains(&(r.value_size, r.keys)) {
                out.push((r.value_size, r.keys));
            }
        }
        out
    }

    /// Rows of one scenario, grouped by workload then system.
    fn grouped(&self, scenario: (usize, usize)) -> Vec<&Row> {
        let mut rows: Vec<&Row> = self
            .rows
            .iter()
            .filter(|r| (r.value_size, r.keys) == scenario)
            .collect();
        let order = |w: &str| {
            crate::Workload::ALL
                .iter()
                .position(|x| x.name() == w)
                .unwrap_or(usize::MAX)
        };
        rows.sort_by_key(|r| order(r.workload));
        rows
    }

    /// The plain-text table printed at the end of a run.
    pub fn table(&self) -> String {
        let mut out = String::new();
        for sc in self.scenarios() {
            let _ = writeln!(
                out,
                "\n== values {} × {} keys ==\n{:<18} {:<22} {:>10} {:>10} {:>10}  ratio (ours / peer)",
                size(sc.0),
                count(sc.1),
                "workload",
                "system",
                "ops/s",
                "p50 µs",
                "p99 µs"
            );
            for r in self.grouped(sc) {
                let _ = writeln!(
                    out,
                    "{:<18} {:<22} {:>10} {:>10.1} {:>10.1}  {}",
                    r.workload,
                    r.system,
                    rate(r.ops_per_sec),
                    r.p50_us,
                    r.p99_us,
                    ratios(r)
                );
            }
        }
        out
    }

    /// The Markdown section for `docs/performance.md`.
    pub fn markdown(&self, chart: &str) -> String {
        let mut out = String::new();
        let command = if self.quick {
            "cargo run --release -p kv-bench -- --quick --docs docs/performance.md"
        } else {
            "cargo run --release -p kv-bench -- --docs docs/performance.md"
        };
        match &self.merged {
            None => {
                let _ = writeln!(
                    out,
                    "Generated by `{command}` on {} ({} s per workload and system; whole run {:.0} s). \
                     Ratios are ours / peer in throughput, measured in the same run: \
                     > 1 means ours is faster.\n",
                    self.date, self.secs_per_workload, self.total_secs
                );
            }
            Some(m) => {
                let measured: Vec<&str> = systems_of(&self.rows)
                    .into_iter()
                    .filter(|s| !m.systems.iter().any(|kept| kept == s))
                    .collect();
                let _ = writeln!(
                    out,
                    "Generated by `cargo run --release -p kv-bench -- {}` on {} ({} s per workload and system; \
                     that run {:.0} s), which measured {} and merged in the rows of the other systems \
                     from the earlier report `{}` ({}, whole run {:.0} s). \
                     Each ratio is between two systems measured in the same run: \
                     ours / peer in throughput, > 1 means ours is faster.\n",
                    m.args.join(" "),
                    self.date,
                    self.secs_per_workload,
                    self.total_secs,
                    measured.join(", "),
                    m.file,
                    m.date,
                    m.total_secs
                );
            }
        }
        let _ = writeln!(out, "![ratios of ours to each peer]({chart})\n");
        for sc in self.scenarios() {
            let _ = writeln!(
                out,
                "#### Values of {}, {} keys\n\n| workload | system | ops/s | p50 µs | p99 µs | ours / peer |\n|---|---|---:|---:|---:|---|",
                size(sc.0),
                count(sc.1)
            );
            for r in self.grouped(sc) {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {:.1} | {:.1} | {} |",
                    r.workload,
                    r.system,
                    rate(r.ops_per_sec),
                    r.p50_us,
                    r.p99_us,
                    ratios(r)
                );
            }
            out.push('\n');
        }
        out
    }

    /// A horizontal bar chart of every ratio, a line at 1×.
    pub fn svg(&self) -> String {
        let bars: Vec<(String, f64)> = self
            .rows
            .iter()
            .flat_map(|r| {
                r.ratios.iter().map(move |(peer, ratio)| {
                    (
                        format!(
                            "{} vs {} · {} · {} × {}",
                            r.system,
                            peer,
                            r.workload,
                            size(r.value_size),
                            count(r.keys)
                        ),
                        *ratio,
                    )
                })
            })
            .collect();
        // Log scale centred on 1×: 0.01× at the left edge, 100× at the right.
        let (label_w, chart_w, bar_h, top) = (470.0, 440.0, 16.0, 40.0);
        let center = label_w + chart_w / 2.0;
        let x = |r: f64| center + r.clamp(0.01, 100.0).log10() * chart_w / 4.0;
        let height = top + bar_h * bars.len() as f64 + 30.0;
        let width = label_w + chart_w + 70.0;
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">"#
        );
        let _ = writeln!(
            s,
            r#"<text x="10" y="20" font-size="14">kv-bench {}: throughput of ours / peer, log scale (same run; right of 1× = ours faster)</text>"#,
            self.date
        );
        for (i, (label, ratio)) in bars.iter().enumerate() {
            let y = top + bar_h * i as f64;
            let end = x(*ratio);
            let color = if *ratio >= 1.0 { "#3b7dd8" } else { "#d8893b" };
            let _ = writeln!(
                s,
                r#"<text x="{:.0}" y="{:.0}" text-anchor="end">{}</text><rect x="{:.1}" y="{:.0}" width="{:.1}" height="{:.0}" fill="{color}"/><text x="{:.0}" y="{:.0}">{ratio:.2}×</text>"#,
                label_w - 6.0,
                y + 12.0,
                escape(label),
                end.min(center),
                y + 2.0,
                (end - center).abs().max(1.0),
                bar_h - 4.0,
                end.max(center) + 4.0,
                y + 12.0,
            );
        }
        for (r, name) in [
            (0.01, "0.01×"),
            (0.1, "0.1×"),
            (1.0, "1×"),
            (10.0, "10×"),
            (100.0, "100×"),
        ] {
            let at = x(r);
            let dash = if r == 1.0 {
                ""
            } else {
                r#" stroke-dasharray="2 4""#
            };
            let _ = writeln!(
                s,
                r##"<line x1="{at:.1}" y1="{:.0}" x2="{at:.1}" y2="{:.0}" stroke="#333"{dash}/><text x="{at:.1}" y="{:.0}" text-anchor="middle">{name}</text>"##,
                top - 4.0,
                height - 24.0,
                height - 10.0
            );
        }
        s.push_str("</svg>\n");
        s
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Replaces the text between the kv-bench markers of `path` with `body`.
pub fn rewrite_docs(path: &Path, body: &str) -> R<()> {
    const BEGIN: &str = "<!-- kv-bench:begin -->";
    const END: &str = "<!-- kv-bench:end -->";
    let text = std::fs::read_to_string(path)?;
    let (Some(b), Some(e)) = (text.find(BEGIN), text.find(END)) else {
        return Err(format!("{} has no {BEGIN} … {END} section", path.display()).into());
    };
    if e < b {
        return Err(format!("{}: {END} comes before {BEGIN}", path.display()).into());
    }
    let out = format!("{}{BEGIN}\n{body}{}", &text[..b], &text[e..]);
    std::fs::write(path, out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_units() {
        assert_eq!(today().len(), 10);
        assert_eq!(size(100), "100 B");
        assert_eq!(size(65536), "64 KiB");
        assert_eq!(count(1_000_000), "1M");
        assert_eq!(count(2500), "2500");
        assert_eq!(rate(2_500_000.0), "2.50M");
    }

    #[test]
    fn chart_has_one_bar_per_ratio() {
        let row = |system: &str, peer: bool, ratios: Vec<(String, f64)>| Row {
            system: system.into(),
            peer,
            kind: if peer {
                crate::Kind::Sled
            } else {
                crate::Kind::Engine
            },
            workload: "get",
            value_size: 100,
            keys: 1000,
            ops: 10,
            ops_per_sec: 10.0,
            p50_us: 1.0,
            p99_us: 2.0,
            ratios,
            earlier: false,
        };
        let report = Report {
            quick: true,
            secs_per_workload: 0.1,
            date: today(),
            total_secs: 1.0,
            merged: None,
            rows: vec![
                row(
                    "engine",
                    false,
                    vec![("sled".into(), 2.0), ("redb".into(), 0.5)],
                ),
                row("sled", true, Vec::new()),
            ],
        };
        let svg = report.svg();
        assert_eq!(svg.matches("<rect").count(), 2);
        assert!(svg.contains("engine vs redb · get · 100 B × 1k"));
        assert!(report.table().contains("2.00× sled, 0.50× redb"));
        assert!(report
            .markdown("c.svg")
            .contains("![ratios of ours to each peer](c.svg)"));
    }

    #[test]
    fn a_saved_report_reads_back_as_earlier_rows_without_ratios() {
        let row = |system: &str, kind, peer, ratios: Vec<(String, f64)>| Row {
            system: system.into(),
            peer,
            kind,
            workload: "scan 100",
            value_size: 1024,
            keys: 100_000,
            ops: 7,
            ops_per_sec: 3.5,
            p50_us: 300.0,
            p99_us: 400.0,
            ratios,
            earlier: false,
        };
        let report = Report {
            quick: false,
            secs_per_workload: 2.0,
            date: "2026-11-22".into(),
            total_secs: 99.0,
            merged: None,
            rows: vec![
                row(
                    "cache+s3",
                    crate::Kind::S3,
                    false,
                    vec![("raw object_store".into(), 1.5)],
                ),
                row(
                    "raw object_store",
                    crate::Kind::RawObjects,
                    true,
                    Vec::new(),
                ),
            ],
        };
        let json = serde_json::to_string(&report).unwrap_or_else(|e| panic!("{e}"));
        let saved: Saved = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (saved.date.as_str(), saved.total_secs),
            ("2026-11-22", 99.0)
        );
        let rows = saved.rows().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].kind, crate::Kind::S3);
        assert_eq!(rows[1].kind, crate::Kind::RawObjects);
        for (got, want) in rows.iter().zip(&report.rows) {
            assert!(got.earlier && got.ratios.is_empty());
            assert_eq!(
                (
                    got.system.as_str(),
                    got.peer,
                    got.workload,
                    got.keys,
                    got.ops
                ),
                (
                    want.system.as_str(),
                    want.peer,
                    want.workload,
                    want.keys,
                    want.ops
                )
            );
            assert_eq!(
                (got.ops_per_sec, got.p99_us),
                (want.ops_per_sec, want.p99_us)
            );
        }
        let unknown: Saved = serde_json::from_str(&json.replace("cache+s3", "cache+dbm"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(unknown.rows().is_err());
    }

    #[test]
    fn docs_section_is_replaced_between_markers() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = dir.path().join("perf.md");
        std::fs::write(
            &p,
            "a\n<!-- kv-bench:begin -->\nold\n<!-- kv-bench:end -->\nz\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        rewrite_docs(&p, "new\n").unwrap_or_else(|e| panic!("{e}"));
        let got = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            got,
            "a\n<!-- kv-bench:begin -->\nnew\n<!-- kv-bench:end -->\nz\n"
        );
    }
}
