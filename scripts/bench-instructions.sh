#!/usr/bin/env bash
# Instructions per client operation of one node (N=1), put and get, counted
# by callgrind: a figure that does not move with the machine's other load,
# so a change to the node's hot path is judged by it (a benchmark, not a
# test: it asserts nothing but that the operations succeed).
#
# Three runs of target/release/dynamo-node under `valgrind --tool=callgrind`
# with the same flags as bench-peers' "dynamo N1" (LSM engine, fsync batch,
# lww), each driven by target/release/dynamo-kv-load outside callgrind:
#   A: preload KEYS puts, then OPS puts, then OPS gets
#   B: the same with 2*OPS puts
#   C: the same with 2*OPS gets
# puts/op = (B - A) / OPS and gets/op = (C - A) / OPS: start, preload and
# shutdown cancel out. callgrind counts user-space instructions only (a
# system call counts as the instructions that issue it); the kernel's part
# is in `make bench-peers`' CPU us/op.
#
# Env: BENCH_INSTRUCTIONS_OPS (default 1000), BENCH_INSTRUCTIONS_KEYS (1000),
# BENCH_INSTRUCTIONS_CONCURRENCY (8), BENCH_INSTRUCTIONS_NODE_ARGS (extra
# dynamo-node flags, e.g. "--replica-batching false"), BENCH_INSTRUCTIONS_NODE
# (another dynamo-node binary, to compare a saved build with the current one).
set -euo pipefail

OPS="${BENCH_INSTRUCTIONS_OPS:-1000}"
KEYS="${BENCH_INSTRUCTIONS_KEYS:-1000}"
CONCURRENCY="${BENCH_INSTRUCTIONS_CONCURRENCY:-8}"
EXTRA_NODE_ARGS="${BENCH_INSTRUCTIONS_NODE_ARGS:-}"
NODE="${BENCH_INSTRUCTIONS_NODE:-target/release/dynamo-node}"
LOAD=target/release/dynamo-kv-load

command -v valgrind >/dev/null || { echo "bench-instructions: valgrind is missing (scripts/deps.sh valgrind)" >&2; exit 1; }
[ -x "$NODE" ] && [ -x "$LOAD" ] || { echo "bench-instructions: build $NODE and $LOAD first (make bench-instructions does)" >&2; exit 1; }

work="$(mktemp -d /tmp/bench-instructions.XXXXXX)"
node_pid=""
cleanup() {
    if [ -n "$node_pid" ]; then kill -TERM "$node_pid" 2>/dev/null || true; wait "$node_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# A loopback port nobody listens on now (a connect to it is refused).
free_port() {
    local port tries
    for tries in $(seq 1 100); do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return; fi
    done
    echo "bench-instructions: no free loopback port found in $tries tries" >&2
    exit 1
}

# run NAME PUTS GETS: prints the node's total instructions (callgrind's Ir).
run() {
    local name="$1" puts="$2" gets="$3" port
    port="$(free_port)"
    local endpoint="http://127.0.0.1:$port" out="$work/$name.callgrind"
    # shellcheck disable=SC2086 # EXTRA_NODE_ARGS is a list of flags
    valgrind --tool=callgrind --callgrind-out-file="$out" --log-file="$work/$name.valgrind.log" \
        "$NODE" --id n1 --listen "127.0.0.1:$port" --peers "n1=127.0.0.1:$port" --data-dir "$work/$name.data" \
        --n 1 --w 1 --r 1 --storage lsm --fsync batch --resolution lww --metrics-listen "" \
        --request-timeout-ms 30000 $EXTRA_NODE_ARGS 2>"$work/$name.node.log" &
    node_pid=$!
    local load=("$LOAD" --endpoint "$endpoint" --keys "$KEYS" --concurrency "$CONCURRENCY")
    "${load[@]}" --op put --ops "$KEYS"
    "${load[@]}" --op put --ops "$puts"
    "${load[@]}" --op get --ops "$gets"
    kill -TERM "$node_pid"
    wait "$node_pid" || { echo "bench-instructions: the node of run $name failed; its log:" >&2; tail -20 "$work/$name.node.log" >&2; exit 1; }
    node_pid=""
    # "summary: <Ir>" (or "totals:") is the whole run's instruction count.
    awk '/^(summary|totals):/ { print $2; exit }' "$out"
}

echo "bench-instructions: 3 runs of dynamo-node under callgrind, $KEYS keys preloaded, $OPS ops per phase, $CONCURRENCY clients" >&2
a="$(run A "$OPS" "$OPS")"
b="$(run B "$((2 * OPS))" "$OPS")"
c="$(run C "$OPS" "$((2 * OPS))")"
echo "| path | instructions/op |"
echo "|---|---|"
echo "| N1 put | $(( (b - a) / OPS )) |"
echo "| N1 get | $(( (c - a) / OPS )) |"
echo "(totals: A $a, B $b, C $c instructions; node flags: --storage lsm --fsync batch --resolution lww ${EXTRA_NODE_ARGS})"
