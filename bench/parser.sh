#!/usr/bin/env bash
# Request-head parser throughput: pushwire's HeadParser against httparse,
# pinned to one core.
#
#   bench/parser.sh               ROUND_MS=300 ROUNDS=7
source "$(dirname "$0")/lib.sh"
if [[ "${NO_BUILD:-}" != 1 ]]; then
    (cd "$BENCH_DIR" && cargo build --release -q -p parser-bench)
fi
versions
echo "# parser-bench --round-ms ${ROUND_MS:-300} --rounds ${ROUNDS:-7}"
taskset -c "$LOAD_CPU" "$BIN/parser-bench" --round-ms "${ROUND_MS:-300}" --rounds "${ROUNDS:-7}"
