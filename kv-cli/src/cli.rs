//! The command line as clap sees it: global options, one variant per
//! command, and the small value types of their flags.
//!
//! Global store options (`--store`, `--config`, `--namespace`,
//! `--connect-timeout`) may stand anywhere on the line. `--json`, machine
//! output, may stand before the command (`kv --json get k`) or after it
//! (`kv get k --json`) — except for `set`, whose own `--json` means "parse
//! the value as JSON": write `kv --json set …` for machine output there.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// `kv`: read, write, inspect, export, import and migrate a DataKnobs KV
/// store.
#[derive(Debug, Parser)]
#[command(
    name = "kv",
    version,
    about = "Command-line tool for DataKnobs KV stores",
    long_about = "Command-line tool for DataKnobs KV stores.\n\n\
        The store is the embedded engine in ./kv-data unless --store URL or \
        --config FILE says otherwise (URLs: memory:, engine:DIR, sqlite:FILE, \
        postgres://…, s3://bucket/prefix?endpoint=…). Environment overrides \
        (KV_STORE_URL, KV_BACKEND, KV_NAMESPACE, …) apply to the default store \
        and to config files; --store and --namespace win over them.\n\n\
        Exit codes: 0 success, 1 key not found or condition false, 2 bad input \
        or usage, 3 backend or I/O failure.",
    after_help = "Machine output: put --json before the command (kv --json get KEY) or after it \
        (kv get KEY --json); for `set`, --json after the command parses the value as JSON."
)]
pub struct Cli {
    /// Where the store is and how to talk to it.
    #[command(flatten)]
    pub global: Global,

    /// Machine-readable output: one JSON document on stdout.
    #[arg(long)]
    pub json: bool,

    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Options that choose and open the store; accepted anywhere on the line.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Store URL: memory:, engine:DIR, sqlite:FILE, postgres://…, s3://… [default: engine:./kv-data]
    #[arg(
        long,
        short = 's',
        global = true,
        value_name = "URL",
        conflicts_with = "config",
        help_heading = "Store options"
    )]
    pub store: Option<String>,

    /// Config file (.toml or .json) describing the store
    #[arg(
        long,
        short = 'c',
        global = true,
        value_name = "FILE",
        help_heading = "Store options"
    )]
    pub config: Option<PathBuf>,

    /// Namespace to work in [default: the config's, else "default"]
    #[arg(
        long,
        short = 'n',
        global = true,
        value_name = "NS",
        help_heading = "Store options"
    )]
    pub namespace: Option<String>,

    /// Seconds to wait for a database server connection (PostgreSQL)
    #[arg(long, global = true, value_name = "SECS", help_heading = "Store options", value_parser = clap::value_parser!(u64).range(1..))]
    pub connect_timeout: Option<u64>,
}

/// The `--json` flag of a command.
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct JsonFlag {
    /// Machine-readable output: one JSON document on stdout
    #[arg(long)]
    pub json: bool,
}

/// Every command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the value of a key
    Get(GetArgs),
    /// Set a key to a value (string by default; --type, --json, --file for others)
    Set(SetArgs),
    /// Delete a key
    Del(KeyArgs),
    /// Tell whether a key exists (exit 1 when it does not)
    Exists(KeyArgs),
    /// List the keys matching a pattern, sorted, one per line
    Keys(KeysArgs),
    /// Show the entries matching a pattern, a page at a time
    Scan(ScanArgs),
    /// Show how long a key has to live
    Ttl(KeyArgs),
    /// Make a key expire after a duration
    Expire(ExpireArgs),
    /// Remove the expiry of a key
    Persist(KeyArgs),
    /// Add to an integer value (missing = 0); negative deltas subtract
    Incr(IncrArgs),
    /// Append a string (or a file's bytes) to a value; prints the new length
    Append(AppendArgs),
    /// Compare and swap: set a key only if it holds an expected value
    Cas(CasArgs),
    /// Read or change the user metadata of a key
    #[command(subcommand)]
    Meta(MetaCommand),
    /// Count the keys of the namespace, or those matching a pattern
    Count(CountArgs),
    /// Remove expired keys now
    Cleanup(JsonOnly),
    /// Reclaim space: engine snapshot, SQLite VACUUM, PostgreSQL VACUUM
    Compact(JsonOnly),
    /// Write records to a JSON Lines (default) or CSV file, or stdout
    Export(ExportArgs),
    /// Read records from a JSON Lines or CSV file, or stdin
    Import(ImportArgs),
    /// Copy records from this store to another (any backend)
    Migrate(MigrateArgs),
    /// Show the counters of the store and its backend
    Stats(JsonOnly),
    /// List the namespaces that hold keys
    Namespaces(JsonOnly),
}

impl Command {
    /// Whether the command's own `--json` flag asks for machine output.
    pub fn json(&self) -> bool {
        match self {
            Command::Get(a) => a.out.json,
            Command::Set(_) => false,
            Command::Del(a) | Command::Exists(a) | Command::Ttl(a) | Command::Persist(a) => {
                a.out.json
            }
            Command::Keys(a) => a.out.json,
            Command::Scan(a) => a.out.json,
            Command::Expire(a) => a.out.json,
            Command::Incr(a) => a.out.json,
            Command::Append(a) => a.out.json,
            Command::Cas(a) => a.out.json,
            Command::Meta(m) => match m {
                MetaCommand::Get(a) => a.out.json,
                MetaCommand::Set(a) | MetaCommand::Update(a) => a.out.json,
            },
            Command::Count(a) => a.out.json,
            Command::Cleanup(a)
            | Command::Compact(a)
            | Command::Stats(a)
            | Command::Namespaces(a) => a.out.json,
            Command::Export(a) => a.out.json,
            Command::Import(a) => a.out.json,
            Command::Migrate(a) => a.out.json,
        }
    }
}

/// A command without arguments of its own.
#[derive(Debug, Args)]
pub struct JsonOnly {
    /// `--json`.
    #[command(flatten)]
    pub out: JsonFlag,
}

/// A command on one key.
#[derive(Debug, Args)]
pub struct KeyArgs {
    /// The key (dot-separated segments: app.config.port)
    pub key: String,
    /// `--json`.
    #[command(flatten)]
    pub out: JsonFlag,
}

/// `get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// The key
    pub key: String,
    /// Write the value to FILE (bytes as stored, others as text) instead of stdout
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// `--json`.
    #[command(flatten)]
    pub out: JsonFlag,
}

/// How to read a value given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ValueKind {
    /// Text, as given
    String,
    /// A 64-bit signed integer
    Int,
    /// A 64-bit float (also NaN, inf, -inf)
    Float,
    /// true or false
    Bool,
    /// Any JSON document
    Json,
    /// No value (give no VALUE, or "null")
    Null,
    /// Raw bytes (of the argument's UTF-8, or of --file)
    Bytes,
}

/// `set`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("typing").args(["kind", "int", "float", "bool", "json"]))]
pub struct SetArgs {
    /// The key
    pub key: String,
    /// The value (omit with --file, or with --type null)
    #[arg(allow_negative_numbers = true, conflicts_with = "file")]
    pub value: Option<String>,
    /// Read the value from FILE ("-" for stdin); bytes unless --type says otherwise
    #[arg(long, short = 'f', value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// How to read the value [default: string, or bytes with --file]
    #[arg(long = "type", short = 't', value_name = "TYPE", value_enum)]
    pub kind: Option<ValueKind>,
    /// Same as --type int
    #[arg(long)]
    pub int: bool,
    /// Same as --type float
    #[arg(long)]
    pub float: bool,
    /// Same as --type bool
    #[arg(long)]
    pub bool: bool,
    /// Parse the value as JSON (same as --type json); for machine output write `kv --json set …`
    #[arg(long)]
    pub json: bool,
    /// Expire after this long: 30 (seconds), 500ms, 30s, 5m, 2h, 1d
    #[arg(long, value_name = "DURATION", conflicts_with = "keep_ttl")]
    pub ttl: Option<String>,
    /// Keep the key's current expiry (a plain set clears it)
    #[arg(long)]
    pub keep_ttl: bool,
    /// User metadata field, repeatable: k=v (string) or k:=JSON; replaces the key's user metadata
    #[arg(long = "meta", short = 'm', value_name = "K=V")]
    pub meta: Vec<String>,
    /// MIME type of the value (image/png, application/pdf, …)
    #[arg(long, value_name = "MIME")]
    pub content_type: Option<String>,
    /// Stored type tag: string, json, binary, number, boolean, document, image, custom:NAME [default: from the value; document or image with --content-type and bytes]
    #[arg(long, value_name = "TYPE")]
    pub value_type: Option<String>,
    /// Only set the key if it does not exist (exit 1 if it does)
    #[arg(long)]
    pub nx: bool,
    /// Only set the key if it is at this version (exit 1 if not)
    #[arg(long, value_name = "N")]
    pub if_version: Option<u64>,
}

impl SetArgs {
    /// The `--type` the flags amount to, if any.
    pub fn kind(&self) -> Option<ValueKind> {
        if self.int {
            Some(ValueKind::Int)
        } else if self.float {
            Some(ValueKind::Float)
        } else if self.bool {
            Some(ValueKind::Bool)
        } else if self.json {
            Some(ValueKind::Json)
        } else {
            self.kind
        }
    }
}

/// `keys`.
#[derive(Debug, Args)]
pub struct KeysArgs {
    /// Glob pattern: * within a segment, ** across segments, ?, [a-z], {a,b}
    #[arg(default_value = "**")]
    pub pattern: String,
    /// `--json`.
    #[command(flatten)]
    pub out: JsonFlag,
}

/// `scan`.
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Glob pattern
    #[arg(default_value = "**")]
    pub pattern: String,
    /// Continue after this key (the cursor a previous page printed)
    #[arg(long, value_name = "KEY")]
    pub cursor: Option<String>,
    /// Entries per page
    #[arg(long, short = 'l', default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub limit: u64,
    /// `--json`.
    #[command(flatten)]
    pub out: JsonFlag,
}

/// `expire`.
#[derive(Debug, Args)]
pub struct ExpireArgs {
    /// The key
    pub key: String,
    /// Time to live: 30 (seconds), 500ms, 30s, 5m, 2h, 1d
    pub ttl: String,
    /// `--json`.
    #[command(flatten)]
    pub out: JsonFlag,
}

/// `incr`.
#[derive(Debug, Args)]
pub struct IncrArgs {
    /// The key
    pub key: String,
    /// Amount to add; negative subtracts
    #[arg(default_value_t = 1, allow_negative_numbers = true)]
    pub delta: i64,
    /// `--json`.
    #[command(flatten)]
    pub out: JsonFlag,
}

/// `append`.
#[derive(Debug, Args)]
pub struct AppendArgs {
    /// The key
    pub key: String,
    /// Text to append
    #[arg(
        allow_hyphen_values = true,
        required_unless_present = "file",
        conflicts_with = "file"
    )]
    pub value: Option<String>,
    /// Append the bytes of FILE ("-" for stdin) instead
    #[arg(long, short = 'f', value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// `--json`.
    #[command(flatten)]
    pub out: JsonFlag,
}

/// `cas`.
#[derive(Debug, Args)]
#[command(
    override_usage = "kv cas [OPTIONS] <KEY> <EXPECTED> <NEW>\n       kv cas [OPTIONS] --absent <KEY> <NEW>"
)]
pub struct CasArgs {
    /// The key
    pub key: String,
    /// EXPECTED and NEW values (only NEW with --absent)
    #[arg(value_name = "VALUES", num_args = 1..=2, required = true, allow_negative_numbers = true)]
    pub values: Vec<String>,
    /// Swap only if the key does not exist
    #[arg(long)]
    pub absent: bool,
    /// How to read both values [default: the type of the current value, else string]
    #[arg(long = "type", short = 't', value_name = "TYPE", value_enum)]
    pub kind: Option<ValueKind>,
    /// `--json`.
    #[command(flatten)]
    pub out: JsonFlag,
}

/// `meta get|set|update`.
#[derive(Debug, Subcommand)]
pub enum MetaCommand {
    /// Show the system and user metadata of a key
    Get(KeyArgs),
    /// Replace the user metadata of a key
    Set(MetaWriteArgs),
    /// Merge fields into the user metadata of a key (k:=null removes k)
    Update(MetaWriteArgs),
}

/// `meta set` and `meta update`.
#[derive(Debug, Args)]
pub struct MetaWriteArgs {
    /// The key
    pub key: String,
    /// Fields: k=v (string) or k:=JSON, or one JSON object ('{"owner":"ann"}')
    #[arg(value_name = "FIELDS")]
    pub fields: Vec<String>,
    /// `--json`.
    #[command(flatten)]
    pub out: JsonFlag,
}

/// `count`.
#[derive(Debug, Args)]
pub struct CountArgs {
    /// Count only keys matching this glob pattern
    pub pattern: Option<String>,
    /// `--json`.
    #[command(flatten)]
    pub out: JsonFlag,
}

/// File formats of `export` and `import`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// JSON Lines of whole records (metadata, timestamps, expiry)
    Jsonl,
    /// CSV of key,type,value (one namespace, no metadata)
    Csv,
}

/// What happens to keys the target already holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OverwriteArg {
    /// Replace them
    Always,
    /// Keep them; skip the incoming record
    Never,
    /// Replace them only when the incoming record was updated later
    IfNewer,
}

/// Which namespaces a command covers.
#[derive(Debug, Clone, Args)]
pub struct NamespaceSelection {
    /// Cover every namespace that holds keys
    #[arg(long, conflicts_with = "namespaces")]
    pub all_namespaces: bool,
    /// Cover these namespaces (comma-separated) [default: the current one]
    #[arg(long, value_name = "NS,…", value_delimiter = ',')]
    pub namespaces: Vec<String>,
}

/// `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// File format [default: from the --output extension, else jsonl]
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Write to FILE (replaced atomically) instead of stdout
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Export only keys matching this glob pattern
    #[arg(long, short = 'p', default_value = "**")]
    pub pattern: String,
    /// Namespaces.
    #[command(flatten)]
    pub namespaces: NamespaceSelection,
    /// Records read per page
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub batch_size: u64,
    /// `--json`.
    #[command(flatten)]
    pub out: JsonFlag,
}

/// `import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// File to read ("-" or none for stdin)
    pub input: Option<PathBuf>,
    /// File format [default: from the extension (.csv, .jsonl), else jsonl]
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// What to do with keys the store already holds
    #[arg(long, value_enum, default_value = "always")]
    pub overwrite: OverwriteArg,
    /// Check and decide everything, write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Records written per call to the store
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub batch_size: u64,
    /// `--json`.
    #[command(flatten)]
    pub out: JsonFlag,
}

/// `migrate`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("target").args(["to", "to_config"]).required(true))]
pub struct MigrateArgs {
    /// Target store URL
    #[arg(long, value_name = "URL")]
    pub to: Option<String>,
    /// Target store config file (.toml or .json; environment overrides are not applied)
    #[arg(long, value_name = "FILE")]
    pub to_config: Option<PathBuf>,
    /// Copy only keys matching this glob pattern
    #[arg(long, short = 'p', default_value = "**")]
    pub pattern: String,
    /// Namespaces.
    #[command(flatten)]
    pub namespaces: NamespaceSelection,
    /// Records read and written per page (bounds memory)
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub batch_size: u64,
    /// What to do with keys the target already holds
    #[arg(long, value_enum, default_value = "always")]
    pub overwrite: OverwriteArg,
    /// Read and decide everything, write nothing to the target
    #[arg(long)]
    pub dry_run: bool,
    /// Resume after this key (printed when a migration stops)
    #[arg(long, value_name = "KEY")]
    pub resume_after: Option<String>,
    /// Namespace of --resume-after [default: the current one]
    #[arg(long, value_name = "NS", requires = "resume_after")]
    pub resume_namespace: Option<String>,
    /// `--json`.
    #[command(flatten)]
    pub out: JsonFlag,
}
