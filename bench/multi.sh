#!/usr/bin/env bash
# Many topics on one connection: SUBS subscribers, each holding TOPICS
# topics on one multiplexed SSE stream, the messages spread over the
# topics, against the single-topic SSE figure and against nchan's
# multiplexed subscriber (one EventSource on TOPICS channels), all in the
# same run. Each run: a fresh server on core 0, sse-fanout on core 1,
# closed loop with WINDOW messages in flight for DURATION s; ROUNDS rounds,
# rotating which server goes first. Zero loss is required.
#
#   single   pushwire /topics/{t}/sse, one topic       (--topics 1)
#   multi    pushwire /sse?topic=A&topic=B…            (--topics TOPICS --join '&topic=')
#   nchan    nchan /msub/A,B,… (nchan_channel_id_split_delimiter)  (--topics TOPICS --join ,)
#
# Every message reaches every subscriber in all three, so deliveries count
# alike. The figure compared is deliveries per server CPU-second
# (deliveries/s divided by the server's CPU share): on a shared machine the
# wall-clock rate moves with the neighbours, the work per delivery much
# less. The median of the rounds is reported; targets: multi / single
# >= 0.9, multi / nchan >= 1.5.
#
# RATE=R (messages/s) runs every case at the same open-loop rate instead
# (same messages, same deliveries per second in all three): on a shared
# machine the closed loop's rate, and with it how much each write
# batches, moves with the neighbours, which the CPU per delivery follows.
#
#   bench/multi.sh                SUBS=5000 TOPICS=10 WINDOW=4 DURATION=8 ROUNDS=3 RATE=0
source "$(dirname "$0")/lib.sh"
SUBS="${SUBS:-5000}"
TOPICS="${TOPICS:-10}"
WINDOW="${WINDOW:-4}"
DURATION="${DURATION:-8}"
SIZE="${SIZE:-64}"
ROUNDS="${ROUNDS:-3}"
RATE="${RATE:-0}"

build
versions
echo "# sse-fanout --sub SUB --pub PUB --pid SERVER_PID --subs $SUBS --size $SIZE --duration $DURATION --rate $RATE --window $WINDOW --topics {1|$TOPICS} --join {'&topic='|,}"

per_cpu_sec() {
    awk -v d="$1" -v c="$2" 'BEGIN { if (c + 0 == 0) print "-"; else printf "%.0f", d / (c / 100) }'
}

declare -A R
declare -A PER
CASES=(single multi nchan)
for round in $(seq "$ROUNDS"); do
    # Rotate the order, so no case always runs first (or last).
    order=("${CASES[@]:$(( (round - 1) % 3 ))}" "${CASES[@]:0:$(( (round - 1) % 3 ))}")
    for c in "${order[@]}"; do
        case $c in
            single) server=pushwire; topic_urls pushwire "/topics/{t}/sse" -; extra=(--topics 1) ;;
            multi) server=pushwire; topic_urls pushwire "/sse?topic={t}" -; extra=(--topics "$TOPICS" --join '&topic=') ;;
            nchan) server=nchan; topic_urls nchan - "/msub/{t}"; extra=(--topics "$TOPICS" --join ,) ;;
        esac
        start_server "$server"
        wait_quiet
        run_load "$c round $round" sse-fanout --sub "$SUB_URL" --pub "$PUB_URL" --pid "$SERVER_PID" \
            --subs "$SUBS" --size "$SIZE" --duration "$DURATION" --rate "$RATE" --window "$WINDOW" "${extra[@]}"
        keep "$c.$round" deliveries_per_sec lost out_of_order server_cpu_pct loadgen_cpu_pct p50_ms p99_ms
        PER[$c]+=" $(per_cpu_sec "${R[$c.$round.deliveries_per_sec]}" "${R[$c.$round.server_cpu_pct]}")"
        R[$c.lost]=$(( ${R[$c.lost]:-0} + ${R[$c.$round.lost]:-1} ))
        stop_server
    done
done

med() { local f="$1" k="$2" r vals=(); for r in $(seq "$ROUNDS"); do vals+=("${R[$f.$r.$k]}"); done; median "${vals[@]}"; }
echo
printf "%-36s %12s %12s %12s %10s %10s\n" "(median of $ROUNDS rounds)" "multi" "single" "nchan" "m/single" "m/nchan"
row() { printf "%-36s %12s %12s %12s %10s %10s\n" "$1" "$2" "$3" "$4" "$(ratio "$2" "$3")" "$(ratio "$2" "$4")"; }
m_cpu="$(median ${PER[multi]})"
s_cpu="$(median ${PER[single]})"
n_cpu="$(median ${PER[nchan]})"
row "deliveries per server CPU-second" "$m_cpu" "$s_cpu" "$n_cpu"
row "deliveries/s (rate $RATE, window $WINDOW)" "$(med multi deliveries_per_sec)" "$(med single deliveries_per_sec)" "$(med nchan deliveries_per_sec)"
row "  server CPU %" "$(med multi server_cpu_pct)" "$(med single server_cpu_pct)" "$(med nchan server_cpu_pct)"
row "  loadgen CPU %" "$(med multi loadgen_cpu_pct)" "$(med single loadgen_cpu_pct)" "$(med nchan loadgen_cpu_pct)"
row "  p50 ms" "$(med multi p50_ms)" "$(med single p50_ms)" "$(med nchan p50_ms)"
row "  p99 ms" "$(med multi p99_ms)" "$(med single p99_ms)" "$(med nchan p99_ms)"
printf "%-36s %12s %12s %12s\n" "lost (all rounds)" "${R[multi.lost]}" "${R[single.lost]}" "${R[nchan.lost]}"
echo "# per round, deliveries per server CPU-second: multi${PER[multi]}; single${PER[single]}; nchan${PER[nchan]}"
