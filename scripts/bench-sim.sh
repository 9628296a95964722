#!/usr/bin/env bash
# make bench-sim: what the simulator costs, on this machine.
# - 5 nodes, N=3 W=2 R=2, open loop at 1,000 ops/s for 20 simulated s:
#   simulated seconds per wall second, client ops per wall second;
# - 100 nodes (N=3) at 200 ops/s for 10 simulated s: the same figures;
# - explore: 40 seeds of a 10 s partition schedule on 3 nodes, seeds/minute;
# - peak RSS of each (GNU time's maximum resident set size).
set -euo pipefail
WB=${WORKBENCH:-target/release/workbench}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=results/bench-sim-$STAMP
mkdir -p "$OUT"

figures() { # campaign dir, label, time log
  local run; run=$(find "$1" -name run.json | head -1)
  python3 - "$run" "$2" "$3" <<'PY'
import json, os, re, sys
run_path, label, time_log = sys.argv[1:4]
run = json.load(open(run_path))
results = json.load(open(os.path.join(os.path.dirname(run_path), "results.json")))
# Client ops: the stats checker's totals (reads and writes, ok/fail/info), not
# the history's nemesis and phase events.
ops = sum(f["total"] for f in results["checkers"]["stats"]["by_f"].values())
rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(time_log).read())
elapsed = re.search(r"Elapsed \(wall clock\) time.*: ([\d:.]+)", open(time_log).read())
sim = run["sim"]
print(f"{label}: {sim['sim_seconds']:.1f} simulated s in {sim['wall_seconds']:.1f} wall s = "
      f"{sim['sim_seconds_per_wall_second']:.2f} simulated s per wall s; {ops} client ops = "
      f"{ops / sim['wall_seconds']:.0f} ops per wall s; peak RSS {int(rss.group(1)) / 1024 if rss else float('nan'):.0f} MiB; "
      f"whole command (with the checkers) {elapsed.group(1) if elapsed else '?'} wall")
PY
}

/usr/bin/time -v "$WB" campaign --backend sim --name "bench-sim-$STAMP/five" --nodes 5 --quorums "2,2" --nemesis none \
  --arrival open --rate 1000 --concurrency 32 --time-limit 20 --quiet 1 --test-count 1 >/dev/null 2>"$OUT/five.time"
figures "results/bench-sim-$STAMP/five" "5 nodes, 1,000 ops/s" "$OUT/five.time"

/usr/bin/time -v "$WB" campaign --backend sim --name "bench-sim-$STAMP/hundred" --nodes 100 --n 3 --quorums "2,2" --nemesis none \
  --arrival open --rate 200 --concurrency 16 --time-limit 10 --quiet 1 --test-count 1 >/dev/null 2>"$OUT/hundred.time"
figures "results/bench-sim-$STAMP/hundred" "100 nodes, N=3, 200 ops/s" "$OUT/hundred.time"

# One simulation per core (explore's default), as a sweep runs.
rc=0
/usr/bin/time -v "$WB" explore --seeds 1..41 --name "bench-sim-$STAMP/explore" --quorums "2,2" --nemesis partition \
  --time-limit 10 --quiet 1 >"$OUT/explore.txt" 2>"$OUT/explore.time" || rc=$?
if [ "$rc" -ne 0 ]; then
  # No --expect/--max-flagged here: any non-zero exit is a failed simulation.
  echo "explore failed (exit $rc):"; tail -20 "$OUT/explore.time"; exit 1
fi
echo "explore, 40 seeds of 3 nodes, N=3 W=2 R=2, a 10 s partition schedule + 1 s quiet: $(grep 'seeds/minute' "$OUT/explore.txt")"
echo "explore peak RSS: $(grep 'Maximum resident' "$OUT/explore.time" | awk '{print int($NF/1024)}') MiB"
echo "goals: 5 nodes >= 20 simulated s per wall s; 100 nodes >= 2; explore >= 500 seeds/minute (on $(nproc) cores); outputs in $OUT"
