//! # kv — the DataKnobs KV command-line tool
//!
//! `kv [--store URL | --config FILE] [--namespace NS] [--json] <command>`
//! reads and writes any DataKnobs KV store, inspects keys, metadata and
//! expiry, and moves data in and out (export, import, migrate). Output is
//! for people by default and one JSON document per command with `--json`.
//!
//! Exit codes: 0 success, 1 key not found or condition false, 2 bad input
//! or usage, 3 backend or I/O failure; a failure prints exactly one line
//! on stderr, and never a secret.
//!
//! ## Layout
//!
//! - [`cli`]: the command line as clap sees it.
//! - [`open`]: the store the global options describe.
//! - [`commands`]: one function per command, grouped by concern.
//! - [`parse`]: durations, typed values and metadata fields from text.
//! - [`output`]: plain and JSON output, value and time renderings.
//! - [`progress`]: progress bars on a terminal's stderr.
//! - [`error`]: failures and their exit codes.
//! - [`secrets`]: keeping passwords out of every printed line.
#![deny(missing_docs)]

mod cli;
mod commands;
mod error;
mod open;
mod output;
mod parse;
mod progress;
mod secrets;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;
use crate::error::{CliError, USAGE};
use crate::output::Printer;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    let printer = Printer {
        json: cli.json || cli.command.json(),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&CliError::io("starting the async runtime", &e), printer),
    };
    match runtime.block_on(run(cli, printer)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => fail(&e, printer),
    }
}

/// Opens the store, runs the command, closes the store.
async fn run(cli: Cli, printer: Printer) -> Result<u8, CliError> {
    let config = open::source_config(&cli.global)?;
    let store = open::open(&config).await?;
    let result = commands::run(cli.command, store.as_ref(), &cli.global, printer).await;
    let closed = store.close().await;
    let code = result?;
    closed?;
    Ok(code)
}

/// Prints a failure (one line on stderr; in JSON mode also an error
/// document on stdout) and returns its exit code.
fn fail(e: &CliError, printer: Printer) -> ExitCode {
    if e.is_quiet() {
        return ExitCode::from(e.code);
    }
    let message = secrets::scrub(&e.message);
    output::note(&format!("error: {message}"));
    if printer.json {
        let doc = serde_json::json!({
            "error": { "kind": e.kind, "message": message, "exit_code": e.code }
        });
        // Best effort: the exit code and stderr already tell the story.
        let _ = printer.doc(&doc);
    }
    ExitCode::from(e.code)
}

/// Clap's help and version go to stdout with exit 0; a usage error becomes
/// one line on stderr with exit 2.
fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return ExitCode::from(
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                USAGE
            } else {
                0
            },
        );
    }
    let text = e.to_string();
    // Clap's message is the part before the usage block; its lines joined.
    let message: Vec<&str> = text
        .split("\nUsage:")
        .next()
        .unwrap_or(&text)
        .lines()
        .filter(|l| !l.starts_with("For more information"))
        .collect();
    let message = secrets::one_line(&message.join(" "));
    let message = message.trim_start_matches("error:").trim();
    output::note(&format!("error: {message} (see kv --help)"));
    let code = USAGE;
    ExitCode::from(code)
}
