#!/usr/bin/env bash
# End-to-end tests of the demo pages in headless Chromium.
#
# Builds the server, starts it on a free loopback port with the test-only
# debug endpoints, runs tests/browser/*.test.mjs with Node's test runner
# against it, and stops it again. Exits non-zero if any test fails.
#
# Needs: cargo, node (>= 20) and npm, and Chromium at /usr/bin/chromium
# (Debian: apt-get install chromium; installed here when missing and root).
# Screenshots of every page land in target/screenshots/.
#
# Usage: scripts/browser-tests.sh [extra node --test arguments]
#   PUSHWIRE_URL=http://127.0.0.1:8080 scripts/browser-tests.sh
#       runs against a server you started yourself (with --debug-endpoints)
#       instead of building and starting one.

set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

log() { printf '[browser-tests] %s\n' "$*" >&2; }

# --- tools ---------------------------------------------------------------

chromium="${CHROMIUM:-/usr/bin/chromium}"
if [[ ! -x "$chromium" ]]; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    log "installing chromium (apt-get)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    log "Chromium not found at $chromium: apt-get install chromium (or set CHROMIUM)"
    exit 1
  fi
fi
export CHROMIUM="$chromium"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  log "node and npm are needed (apt-get install nodejs npm)"
  exit 1
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if (( node_major < 20 )); then
  log "node >= 20 is needed for its test runner (found $(node --version))"
  exit 1
fi

# The pinned playwright-core drives the system Chromium; it never downloads
# a browser of its own (playwright-core has no install step).
pinned="$(node -p 'require("./tests/browser/package.json").dependencies["playwright-core"]')"
installed="$(node -p 'try { require("./tests/browser/node_modules/playwright-core/package.json").version } catch { "" }')"
if [[ "$installed" != "$pinned" ]]; then
  log "npm ci (playwright-core $pinned)"
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi

# --- the server ------------------------------------------------------------

server_pid=""
server_log="target/browser-tests-server.log"

stop_server() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
}

start_server() {
  log "cargo build --release"
  cargo build --release --quiet

  # A free port: bind port 0, read what the kernel chose, let it go.
  local port
  port="$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')"
  mkdir -p target
  target/release/pushwire --listen "127.0.0.1:$port" --debug-endpoints >"$server_log" 2>&1 &
  server_pid=$!
  trap stop_server EXIT
  base="http://127.0.0.1:$port"

  # Wait (up to 10 s) until it answers /healthz.
  if ! node -e '
    const url = process.argv[1] + "/healthz";
    const deadline = Date.now() + 10000;
    (async () => {
      while (Date.now() < deadline) {
        try { if ((await fetch(url)).ok) process.exit(0); } catch {}
        await new Promise((r) => setTimeout(r, 100));
      }
      process.exit(1);
    })();' "$base"; then
    log "the server did not come up on $base; its log:"
    tail -n 50 "$server_log" >&2 || true
    exit 1
  fi
  log "server pid $server_pid on $base"
}

if [[ -n "${PUSHWIRE_URL:-}" ]]; then
  base="${PUSHWIRE_URL%/}"
  log "using the server at $base"
else
  start_server
fi

# --- the tests ---------------------------------------------------------------

# One test file at a time: each launches its own Chromium, and the machine
# may have only two cores. The 16 tests (index, chat, ticker,
# notifications, dashboard, lab, WebRTC, and whatever else lands in
# tests/browser/) took 70 s on an idle machine and 147 s on two cores
# shared with builds and benchmarks (load average 7; Chromium's clicks and
# full-page screenshots slow down most); `timeout` bounds the run with room
# for the test files still to come, and each test has its own limit.
status=0
(cd tests/browser && PUSHWIRE_URL="$base" timeout 210 node --test --test-concurrency=1 "$@") || status=$?
if (( status != 0 )) && [[ -n "$server_pid" ]]; then
  log "tests failed (exit $status); last lines of the server log:"
  tail -n 30 "$server_log" >&2 || true
fi
log "screenshots: target/screenshots/"
exit "$status"
