#!/usr/bin/env bash
# The one test command: starts what the tests need, runs every test of the
# workspace with all features, then every example.
#
#   ./scripts/test.sh              # everything
#   ./scripts/test.sh -p kv-core   # extra arguments go to `cargo test`
#
# Services, started for this run only and stopped (by their own pid) when it
# ends, installed through the system's package clients when missing:
#   - PostgreSQL: a private cluster on a free port  -> KV_TEST_POSTGRES_URL
#   - moto_server (S3 protocol, conditional PUTs)   -> KV_TEST_S3_ENDPOINT,
#                                                      KV_TEST_S3_BUCKET
# Without CI=true a service that cannot start is reported and its tests skip;
# with CI=true it fails the run.
#
# Long runs: KV_CRASH_ROUNDS (default 50) makes the engine's SIGKILL test run
# longer; KV_FUZZ_SECS=N also runs each engine fuzz target for N seconds
# (cargo-fuzz is installed when missing). The default run exercises the
# crash test briefly and skips fuzzing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

CI="${CI:-false}"
RUN_DIR="$(mktemp -d "${TMPDIR:-/tmp}/kv-test.XXXXXX")"
LOG_DIR="$ROOT/target/test-logs"
mkdir -p "$LOG_DIR"
PIDS_TO_STOP=()
PG_DATA=""
PG_BIN=""

say() { printf '==> %s\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }

service_failed() {
    if [[ "$CI" == "true" ]]; then
        printf 'error: %s (CI=true: a missing service fails the run)\n' "$*" >&2
        exit 1
    fi
    warn "$* -- its tests will be skipped"
}

cleanup() {
    local status=$?
    if [[ -n "$PG_DATA" && -f "$PG_DATA/postmaster.pid" ]]; then
        as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" stop -m fast -w >/dev/null 2>&1 || true
    fi
    for pid in "${PIDS_TO_STOP[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$RUN_DIR"
    exit $status
}
trap cleanup EXIT INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

sudo_if_needed() {
    if [[ "$(id -u)" == 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi
}

# PostgreSQL refuses to run as root; run its tools as the postgres user then.
as_postgres() {
    if [[ "$(id -u)" == 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# --- PostgreSQL --------------------------------------------------------------

find_pg_bin() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

start_postgres() {
    if [[ -n "${KV_TEST_POSTGRES_URL:-}" ]]; then
        say "PostgreSQL: using KV_TEST_POSTGRES_URL from the environment"
        return 0
    fi
    PG_BIN="$(find_pg_bin)"
    if [[ -z "$PG_BIN" || ! -x "$PG_BIN/initdb" ]]; then
        say "PostgreSQL: not installed; installing with apt-get"
        if ! { sudo_if_needed apt-get update -qq && sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }; then
            service_failed "PostgreSQL could not be installed"
            return 0
        fi
        PG_BIN="$(find_pg_bin)"
    fi
    local port password dir
    port="$(free_port)"
    password="kvtest-$RANDOM$RANDOM"
    dir="$RUN_DIR/pg"
    mkdir -p "$dir/data" "$dir/socket"
    printf '%s\n' "$password" >"$dir/pwfile"
    if [[ "$(id -u)" == 0 ]]; then
        chown -R postgres:postgres "$dir"
        chmod 755 "$RUN_DIR"
    fi
    if ! as_postgres "$PG_BIN/initdb" -D "$dir/data" -U kv --auth=scram-sha-256 \
        --pwfile="$dir/pwfile" -E UTF8 --no-sync >"$LOG_DIR/postgres-initdb.log" 2>&1; then
        service_failed "PostgreSQL initdb failed (see $LOG_DIR/postgres-initdb.log)"
        return 0
    fi
    PG_DATA="$dir/data"
    if ! as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$dir/postgres.log" -w -t 60 \
        -o "-p $port -k $dir/socket -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" \
        start >/dev/null 2>&1; then
        cp "$dir/postgres.log" "$LOG_DIR/postgres.log" 2>/dev/null || true
        service_failed "PostgreSQL did not start (see $LOG_DIR/postgres.log)"
        PG_DATA=""
        return 0
    fi
    for _ in $(seq 1 60); do
        if "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port"; then break; fi
        sleep 0.5
    done
    if ! "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port"; then
        service_failed "PostgreSQL did not answer on port $port"
        return 0
    fi
    export KV_TEST_POSTGRES_URL="postgres://kv:$password@127.0.0.1:$port/postgres"
    say "PostgreSQL: private cluster on 127.0.0.1:$port"
}

# --- S3 (moto_server) --------------------------------------------------------

find_moto() {
    if [[ -x "$ROOT/.venv-test/bin/moto_server" ]]; then
        echo "$ROOT/.venv-test/bin/moto_server"
    elif command -v moto_server >/dev/null 2>&1 && moto_server --help >/dev/null 2>&1; then
        command -v moto_server
    fi
}

start_s3() {
    if [[ -n "${KV_TEST_S3_ENDPOINT:-}" ]]; then
        say "S3: using KV_TEST_S3_ENDPOINT from the environment"
        return 0
    fi
    local moto
    moto="$(find_moto)"
    if [[ -z "$moto" ]]; then
        say "S3: moto_server not found; installing moto[server] into .venv-test with pip"
        if ! { python3 -m venv "$ROOT/.venv-test" && "$ROOT/.venv-test/bin/pip" install -q 'moto[server]'; } \
            >"$LOG_DIR/moto-install.log" 2>&1; then
            service_failed "moto could not be installed (see $LOG_DIR/moto-install.log)"
            return 0
        fi
        moto="$ROOT/.venv-test/bin/moto_server"
    fi
    local port
    port="$(free_port)"
    "$moto" -H 127.0.0.1 -p "$port" >"$LOG_DIR/moto.log" 2>&1 &
    PIDS_TO_STOP+=("$!")
    local endpoint="http://127.0.0.1:$port"
    for _ in $(seq 1 120); do
        if python3 -c "import urllib.request,sys; urllib.request.urlopen('$endpoint/', timeout=1)" 2>/dev/null; then
            break
        fi
        sleep 0.25
    done
    if ! python3 - "$endpoint" <<'PY' 2>>"$LOG_DIR/moto.log"; then
import sys, urllib.request
endpoint = sys.argv[1]
req = urllib.request.Request(endpoint + "/kv-test", method="PUT")
urllib.request.urlopen(req, timeout=5)
PY
        service_failed "moto_server did not answer on $endpoint (see $LOG_DIR/moto.log)"
        return 0
    fi
    export KV_TEST_S3_ENDPOINT="$endpoint"
    export KV_TEST_S3_BUCKET="kv-test"
    export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-testing}"
    export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-testing}"
    export AWS_REGION="${AWS_REGION:-us-east-1}"
    say "S3: moto_server on $endpoint, bucket kv-test"
}

# --- run ---------------------------------------------------------------------

start_postgres
start_s3

started=$(date +%s)
say "cargo test --workspace --all-features $*"
# The full output goes to the log; each conformance suite also appends its
# totals to a file, shown below.
export KV_CONFORMANCE_REPORT="$LOG_DIR/conformance.txt"
: >"$KV_CONFORMANCE_REPORT"
set +e
cargo test --workspace --all-features "$@" 2>&1 | tee "$LOG_DIR/cargo-test.log"
test_status=${PIPESTATUS[0]}
set -e
if [[ "$test_status" != 0 ]]; then
    say "tests failed (full log: $LOG_DIR/cargo-test.log)"
    exit "$test_status"
fi
say "conformance suites:"
sed 's/^/    /' "$KV_CONFORMANCE_REPORT" >&2

say "compiling every target (benches included)"
cargo build -q --workspace --all-features --all-targets

# Runs one example with the given extra arguments; its output goes to a log.
run_example() {
    local example="$1" log="$2"
    shift 2
    cargo run -q --all-features -p kv-examples --example "$example" -- "$@" >"$LOG_DIR/$log.log" 2>&1 || {
        cat "$LOG_DIR/$log.log" >&2
        say "example $example $* failed"
        exit 1
    }
}

if [[ $# -eq 0 ]]; then
    cargo build -q --all-features -p kv-examples --examples
    examples=$(awk '/^\[\[example\]\]/ { want = 1; next } want && /^name *=/ { gsub(/.*= *"|".*/, ""); print; want = 0 }' examples/Cargo.toml)
    for example in $examples; do
        case "$example" in
        cached_postgres)
            if [[ -z "${KV_TEST_POSTGRES_URL:-}" ]]; then
                warn "example cached_postgres skipped: no PostgreSQL"
                continue
            fi
            ;;
        switch_backends)
            # Every config in examples/configs, its server (if any) from
            # the environment, as a deployed application would get it.
            for config in examples/configs/*.toml; do
                name="$(basename "$config" .toml)"
                case "$name" in
                *postgres*)
                    if [[ -z "${KV_TEST_POSTGRES_URL:-}" ]]; then
                        warn "example switch_backends $config skipped: no PostgreSQL"
                        continue
                    fi
                    ;;
                *s3*)
                    if [[ -z "${KV_TEST_S3_ENDPOINT:-}" ]]; then
                        warn "example switch_backends $config skipped: no S3 server"
                        continue
                    fi
                    ;;
                esac
                say "example: switch_backends $config"
                server_env=()
                [[ -n "${KV_TEST_POSTGRES_URL:-}" ]] && server_env+=("KV_POSTGRES_URL=$KV_TEST_POSTGRES_URL")
                [[ -n "${KV_TEST_S3_ENDPOINT:-}" ]] && server_env+=(
                    "KV_S3_ENDPOINT=$KV_TEST_S3_ENDPOINT"
                    "KV_S3_BUCKET=${KV_TEST_S3_BUCKET:-kv-test}"
                    "KV_S3_REGION=${AWS_REGION:-us-east-1}")
                (
                    # Relative paths in the configs land in this run's folder.
                    cd "$RUN_DIR"
                    env "${server_env[@]}" \
                        "${CARGO_TARGET_DIR:-$ROOT/target}/debug/examples/switch_backends" "$ROOT/$config"
                ) >"$LOG_DIR/example-switch_backends-$name.log" 2>&1 || {
                    cat "$LOG_DIR/example-switch_backends-$name.log" >&2
                    say "example switch_backends $config failed"
                    exit 1
                }
            done
            continue
            ;;
        esac
        say "example: $example"
        run_example "$example" "example-$example"
    done
fi

if [[ -n "${KV_FUZZ_SECS:-}" ]]; then
    if ! command -v cargo-fuzz >/dev/null 2>&1; then
        say "installing cargo-fuzz"
        cargo install -q cargo-fuzz
    fi
    for target in wal_decode snapshot_decode; do
        say "fuzz: $target for ${KV_FUZZ_SECS}s"
        (cd kv-engine/fuzz && RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$ROOT/target-fuzz" \
            cargo fuzz run -O "$target" -- -max_total_time="$KV_FUZZ_SECS" -rss_limit_mb=2048) \
            >"$LOG_DIR/fuzz-$target.log" 2>&1 || {
            tail -40 "$LOG_DIR/fuzz-$target.log" >&2
            say "fuzz target $target failed"
            exit 1
        }
    done
fi

say "all tests passed in $(( $(date +%s) - started )) s"
