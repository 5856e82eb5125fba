#!/usr/bin/env bash
# Every Autobahn|Testsuite case (517, with 12.* and 13.*) in AUTOBAHN_JOBS
# shares run at once, each by scripts/autobahn.sh against a pushwire of
# its own (ports AUTOBAHN_PORT, +1, ...; reports in target/autobahn-par/N),
# then one verdict over all of them: the same cases and the same rule as
# one scripts/autobahn.sh run, in a fraction of its time.
#
#   scripts/autobahn-parallel.sh                 # 4 shares from port 9001
#   AUTOBAHN_JOBS=6 AUTOBAHN_PORT=9200 scripts/autobahn-parallel.sh
#
# Why: the deflate cases (12.*, 13.*) send 1000 messages each, one at a
# time, each waiting for its echo; a serial run is over 1,000 s of such
# round trips (17.6 minutes on 2026-12-02, on a busy two-core machine).
# They are independent of each other, so they are dealt out to the
# shares case by case, rotated by group so that the costly large-message
# cases of each group (numbers 9-10 and 13-18) land on different shares.
# Chapters 1-10 (about 15 s in all) go to share 0.
#
# wstest is Python and spends more CPU than the server, so shares help as
# far as there are cores to run them: on 2026-12-02 the same machine
# (two cores, load average 6-9 from other builds) took 1,055 s for wstest
# in one run and 793 s in all (build included) with 4 shares, every case
# OK or INFORMATIONAL both times.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
JOBS=${AUTOBAHN_JOBS:-4}
PORT=${AUTOBAHN_PORT:-9001}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BASE=$TARGET_DIR/autobahn-par
started=$(date +%s)

# The virtualenv and the binary once, before the shares race for them.
if [ ! -x "$ROOT/.venv-autobahn/bin/wstest" ]; then
    AUTOBAHN_CASES='["1.1.1"]' AUTOBAHN_PORT=$PORT AUTOBAHN_WORK=$BASE/setup \
        "$ROOT/scripts/autobahn.sh" >/dev/null
fi
(cd "$ROOT" && cargo build --release --quiet --bin pushwire)

# share N's case list, as JSON.
cases_of() {
    "$ROOT/.venv-autobahn/bin/python" - "$1" "$JOBS" <<'PY'
import json, sys
share, jobs = int(sys.argv[1]), int(sys.argv[2])
# RFC 6455 chapters (patterns), then every permessage-deflate case by id:
# 12.1-12.5 and 13.1-13.7, 18 cases each.
cases = ["%d.*" % c for c in (1, 2, 3, 4, 5, 6, 7, 9, 10)] if share == 0 else []
groups = [(12, g) for g in range(1, 6)] + [(13, g) for g in range(1, 8)]
for gi, (chapter, group) in enumerate(groups):
    for n in range(1, 19):
        if (n + gi) % jobs == share:
            cases.append("%d.%d.%d" % (chapter, group, n))
print(json.dumps(cases))
PY
}

pids=()
for share in $(seq 0 $((JOBS - 1))); do
    mkdir -p "$BASE/$share"
    AUTOBAHN_CASES="$(cases_of "$share")" AUTOBAHN_PORT=$((PORT + share)) \
        AUTOBAHN_WORK="$BASE/$share" "$ROOT/scripts/autobahn.sh" >"$BASE/$share/run.log" 2>&1 &
    pids+=($!)
done
echo "== $JOBS shares running (logs: $BASE/N/run.log)"
failed=0
for share in "${!pids[@]}"; do
    if ! wait "${pids[$share]}"; then
        echo "share $share failed:"
        tail -20 "$BASE/$share/run.log"
        failed=1
    fi
done

# One verdict over every share's report.
indexes=()
for share in $(seq 0 $((JOBS - 1))); do
    i=$BASE/$share/reports/servers/index.json
    [ -f "$i" ] || i=$BASE/$share/reports/index.json
    indexes+=("$i")
done
"$ROOT/.venv-autobahn/bin/python" - "${indexes[@]}" <<'PY' || failed=1
import json, sys
from collections import Counter

GOOD = ("OK", "INFORMATIONAL")
cases = {}
for path in sys.argv[1:]:
    for case, r in json.load(open(path))["pushwire"].items():
        assert case not in cases, "case %s ran twice" % case
        cases[case] = r
behavior = Counter(r["behavior"] for r in cases.values())
closing = Counter(r["behaviorClose"] for r in cases.values())
bad = sorted(c for c, r in cases.items() if r["behavior"] not in GOOD or r["behaviorClose"] not in GOOD)
print("cases: %d (all shares)" % len(cases))
print("behavior:      " + ", ".join("%s=%d" % kv for kv in sorted(behavior.items())))
print("behaviorClose: " + ", ".join("%s=%d" % kv for kv in sorted(closing.items())))
if len(cases) != 517:
    print("expected 517 cases")
    sys.exit(1)
if bad:
    print("not OK: " + " ".join(bad))
    sys.exit(1)
print("all cases OK or INFORMATIONAL")
PY
echo "== wall time $(( $(date +%s) - started )) s"
exit $failed
