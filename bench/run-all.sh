#!/usr/bin/env bash
# Every benchmark in turn; the output is also kept in bench/results/.
set -uo pipefail
DIR="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$DIR/results"
LOG="$DIR/results/run-$(date -u +%Y%m%dT%H%MZ).txt"
{
    "$DIR/parser.sh"
    for s in plaintext ws-echo ws-idle sse longpoll; do
        echo; echo "## $s"
        NO_BUILD="${NO_BUILD:-}" "$DIR/$s.sh"
    done
} 2>&1 | tee "$LOG"
echo "# kept in $LOG"
