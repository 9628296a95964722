#!/usr/bin/env bash
# make bench-sim: what the simulator costs, on this machine.
# - 5 nodes, N=3 W=2 R=2, open loop at 1,000 ops/s for 20 simulated s:
#   simulated seconds per wall second, client ops per wall second;
# - 100 nodes (N=3) at 200 ops/s for 10 simulated s: the same figures;
# - explore: 20 seeds of a 10 s partition schedule on 3 nodes, seeds/minute;
# - peak RSS of each (GNU time's maximum resident set size).
set -euo pipefail
WB=${WORKBENCH:-target/release/workbench}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=results/bench-sim-$STAMP
mkdir -p "$OUT"

figures() { # campaign dir, label, time log
  local run; run=$(find "$1" -name run.json | head -1)
  local dir; dir=$(dirname "$run")
  local ops; ops=$(grep -c '"type":"\(ok\|fail\|info\)"' "$dir/history.jsonl" || true)
  python3 - "$run" "$ops" "$2" "$3" <<'PY'
import json, re, sys
run = json.load(open(sys.argv[1])); ops = int(sys.argv[2]); label = sys.argv[3]
rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(sys.argv[4]).read())
sim = run["sim"]
print(f"{label}: {sim['sim_seconds']:.1f} simulated s in {sim['wall_seconds']:.1f} wall s = "
      f"{sim['sim_seconds_per_wall_second']:.1f}x real time; {ops} client ops = {ops / sim['wall_seconds']:.0f} ops per wall s; "
      f"peak RSS {int(rss.group(1)) / 1024 if rss else float('nan'):.0f} MiB")
PY
}

/usr/bin/time -v "$WB" campaign --backend sim --name "bench-sim-$STAMP/five" --nodes 5 --quorums "2,2" --nemesis none \
  --arrival open --rate 1000 --concurrency 32 --time-limit 20 --quiet 1 --test-count 1 >/dev/null 2>"$OUT/five.time"
figures "results/bench-sim-$STAMP/five" "5 nodes, 1,000 ops/s" "$OUT/five.time"

/usr/bin/time -v "$WB" campaign --backend sim --name "bench-sim-$STAMP/hundred" --nodes 100 --n 3 --quorums "2,2" --nemesis none \
  --arrival open --rate 200 --concurrency 16 --time-limit 10 --quiet 1 --test-count 1 >/dev/null 2>"$OUT/hundred.time"
figures "results/bench-sim-$STAMP/hundred" "100 nodes, N=3, 200 ops/s" "$OUT/hundred.time"

/usr/bin/time -v "$WB" explore --seeds 1..21 --name "bench-sim-$STAMP/explore" --quorums "2,2" --nemesis partition \
  --time-limit 10 --quiet 1 >"$OUT/explore.txt" 2>"$OUT/explore.time" || true
grep "seeds/minute" "$OUT/explore.txt"
echo "explore peak RSS: $(grep 'Maximum resident' "$OUT/explore.time" | awk '{print int($NF/1024)}') MiB"
