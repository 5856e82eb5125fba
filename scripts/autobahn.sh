#!/usr/bin/env bash
# WebSocket conformance: runs the Autobahn|Testsuite fuzzing client against
# `pushwire`'s /echo route and fails unless every case is OK or
# INFORMATIONAL, both for the behaviour and for the closing handshake.
#
#   scripts/autobahn.sh            # port 9001, every case (517)
#   AUTOBAHN_PORT=9100 scripts/autobahn.sh
#   AUTOBAHN_CASES='["6.4.*"]' scripts/autobahn.sh
#   AUTOBAHN_CASES='["13.*"]' AUTOBAHN_PORT=9102 AUTOBAHN_WORK=target/ab13 \
#       scripts/autobahn.sh          # a group at a time, several at once
#
# Cases 12.* and 13.* test permessage-deflate (RFC 7692), negotiated with
# the server's defaults. Besides OK/INFORMATIONAL for every case, the
# verdict demands that none is NON-STRICT or UNIMPLEMENTED (a declined
# deflate offer is UNIMPLEMENTED). Reports land in target/autobahn/reports
# (HTML: index.html).
#
# The server runs with its default limits; AUTOBAHN_SERVER_FLAGS adds flags.
#
# The suite needs Python 2.7 (taken from pyenv, or AUTOBAHN_PYTHON); its
# virtualenv is made once in .venv-autobahn with the pins of
# scripts/autobahn/requirements.txt.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PORT=${AUTOBAHN_PORT:-9001}
CASES=${AUTOBAHN_CASES:-'["*"]'}
SERVER_FLAGS=${AUTOBAHN_SERVER_FLAGS:-}
PY2=${AUTOBAHN_PYTHON:-$HOME/.pyenv/versions/2.7.18/bin/python}
VENV=$ROOT/.venv-autobahn
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
WORK=${AUTOBAHN_WORK:-$TARGET_DIR/autobahn}
# The deflate cases (12.*, 13.*) send 1000 messages each, up to 256 KiB:
# the whole suite takes a good half hour on a busy machine.
TIMEOUT=${AUTOBAHN_TIMEOUT:-5400}
SERVER_PID=

cleanup() {
    # Stop only the server this script started.
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT

# ---- 1. the test suite ---------------------------------------------------
if [ ! -x "$VENV/bin/wstest" ]; then
    echo "== installing autobahntestsuite into $VENV"
    if [ ! -x "$PY2" ]; then
        echo "error: no Python 2.7 at $PY2 (set AUTOBAHN_PYTHON)" >&2
        exit 2
    fi
    # virtualenv 20.22 dropped Python 2 environments.
    "$PY2" -m virtualenv --version >/dev/null 2>&1 \
        || "$PY2" -m pip install --quiet 'virtualenv<20.22'
    "$PY2" -m virtualenv --quiet "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        -r "$ROOT/scripts/autobahn/requirements.txt"
fi

# ---- 2. the server -------------------------------------------------------
echo "== building pushwire (release)"
(cd "$ROOT" && cargo build --release --quiet --bin pushwire)
mkdir -p "$WORK"
rm -rf "$WORK/reports"
# shellcheck disable=SC2086 # the flags are words
"$TARGET_DIR/release/pushwire" --listen "127.0.0.1:$PORT" $SERVER_FLAGS \
    >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
echo "== pushwire pid $SERVER_PID on 127.0.0.1:$PORT, flags: $SERVER_FLAGS (log: $WORK/server.log)"

# Wait (bounded) until the port accepts connections.
for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
        break
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "error: pushwire exited at startup:" >&2
        cat "$WORK/server.log" >&2
        exit 2
    fi
    sleep 0.1
done

# ---- 3. the suite --------------------------------------------------------
sed -e "s|@OUTDIR@|$WORK/reports|" -e "s|@PORT@|$PORT|" \
    "$ROOT/scripts/autobahn/fuzzingclient.json.in" >"$WORK/fuzzingclient.json"
if [ "$CASES" != '["*"]' ]; then
    "$VENV/bin/python" - "$WORK/fuzzingclient.json" "$CASES" <<'PY'
import json, sys
spec = json.load(open(sys.argv[1]))
spec["cases"] = json.loads(sys.argv[2])
json.dump(spec, open(sys.argv[1], "w"), indent=2)
PY
fi
echo "== running wstest (cases $CASES)"
(cd "$WORK" && timeout "$TIMEOUT" "$VENV/bin/wstest" -m fuzzingclient \
    -s "$WORK/fuzzingclient.json" >"$WORK/wstest.log" 2>&1) || {
    echo "error: wstest failed or timed out; tail of its log:" >&2
    tail -20 "$WORK/wstest.log" >&2
    exit 1
}

# ---- 4. the verdict ------------------------------------------------------
# The report lands in outdir/ (0.8.2) or outdir/servers/ (later releases).
INDEX=$WORK/reports/servers/index.json
[ -f "$INDEX" ] || INDEX=$WORK/reports/index.json
"$VENV/bin/python" - "$INDEX" <<'PY'
import json, sys
from collections import Counter

# NON-STRICT and UNIMPLEMENTED are not good enough either.
GOOD = ("OK", "INFORMATIONAL")
report = json.load(open(sys.argv[1]))
cases = report["pushwire"]

def key(case):
    return [int(p) for p in case.split(".")]

behavior, closing, bad = Counter(), Counter(), []
for case in sorted(cases, key=key):
    r = cases[case]
    behavior[r["behavior"]] += 1
    closing[r["behaviorClose"]] += 1
    if r["behavior"] not in GOOD or r["behaviorClose"] not in GOOD:
        bad.append("  %-10s behavior=%s behaviorClose=%s" % (case, r["behavior"], r["behaviorClose"]))

print("cases: %d" % len(cases))
print("behavior:      " + ", ".join("%s=%d" % kv for kv in sorted(behavior.items())))
print("behaviorClose: " + ", ".join("%s=%d" % kv for kv in sorted(closing.items())))
if bad:
    print("not OK:")
    print("\n".join(bad))
    sys.exit(1)
print("all cases OK or INFORMATIONAL")
PY
