# The workbench's entry points. `make test` is what CI runs; `make campaign`
# runs a real campaign (Docker when an engine answers, else the simulator).
# Both first install the system packages they need and the machine lacks
# (`deps`, scripts/deps.sh), before anything compiles.

CARGO ?= cargo
WORKBENCH := target/release/workbench
# The short real campaigns `make test` ends with, and the expectations they
# must meet (workbench/src/expect.rs):
# - register, strict and weak quorums, with and without partitions: no stale
#   reads without faults, stale reads with W=R=1 under partitions; nodes
#   joining and leaving (membership) leave every run valid (~30 s more);
# - set (shopping cart), 3 sticky clients on 2 keys: LWW loses acknowledged
#   adds and siblings with union merge loses none; clock skew under LWW loses
#   adds to the skewed clock; kill/restart on the LSM engine loses none.
#   Sticky, so that LWW's losses come from real contention between the same
#   clients every run; 6 clients at 600 ops/s, because with 3 at 300 the
#   faster node left LWW losing as few as 1 of 1,939 adds (a thin margin).
#   Near the end the carts pass the 10 KiB value limit and further adds fail
#   with a clear INVALID_ARGUMENT (counted as fail, never as lost).
# - set with a random coordinator per op, siblings only: dotted versions and
#   in-flight versions shipped along (node/src/inflight.rs) lose no add where
#   coordinator-increment clocks lost ~15%.
TEST_CAMPAIGN_FLAGS ?= --quorums "1,1 2,2" --nemesis none,partition,membership --time-limit 10 --quiet 2 --expect-anomalies
TEST_SET_CAMPAIGN_FLAGS ?= --workload set --resolution lww,siblings --quorums "2,2" --nemesis none,clock,kill \
	--concurrency 6 --node-choice fixed --keys 2 --rate 600 --time-limit 10 --quiet 3 --expect-anomalies
TEST_RANDOM_SET_CAMPAIGN_FLAGS ?= --workload set --resolution siblings --quorums "2,2" --nemesis none \
	--concurrency 6 --node-choice random --keys 2 --time-limit 10 --quiet 3 --expect-anomalies
# - peers under partitions: etcd with linearizable reads serves no stale
#   read; etcd serializable reads and Redis replica reads do.
TEST_PEERS_CAMPAIGN_FLAGS ?= --stores etcd-linearizable,etcd-serializable,redis-replica --nemesis partition \
	--node-choice random --time-limit 10 --quiet 2 --expect-anomalies
# - file corruption: one node at a time is killed, a bit flipped in or a cut
#   made to one of its WAL segments or SSTables (a small memtable makes a
#   short run write tables), and restarted; it must quarantine what is bad,
#   serve no value nobody wrote (phantom-reads) and, with N=3, lose no
#   acknowledged add.
TEST_CORRUPT_CAMPAIGN_FLAGS ?= --workload set --resolution siblings --quorums "2,2" --nemesis corrupt --storage lsm \
	--fsync always --memtable-bytes 4096 --keys 100 --time-limit 20 --quiet 5 --seed 1 --expect-anomalies
# - latency on Docker: `tc netem` where the kernel has it, else the link
#   proxy inside each container (this project's machines); either way ops
#   invoked in a latency window must be slower by at least the injected
#   50 ms (median), measured through the cluster, and strict quorums valid.
TEST_LATENCY_CAMPAIGN_FLAGS ?= --quorums "2,2" --nemesis latency --time-limit 10 --quiet 2 --seed 7 --expect-anomalies
# - two datacenters on Docker: 6 containers, n1-n3 in dc1 and n4-n6 in dc2,
#   2 replicas of every key in each; the WAN's faults through the link
#   proxies (a DC's own links untouched). Local quorums: reads across the
#   cut DCs miss writes, reads at home miss none, and a WAN delay does not
#   reach a local write; each-quorum writes are unavailable while cut and
#   wait for the WAN when it is slow (workbench/src/expect_dc.rs).
TEST_DC_CAMPAIGN_FLAGS ?= --nodes 6 --dcs 2 --replicas-per-dc 2 --quorums "local,local each,local" \
	--nemesis dc-partition,wan-latency --time-limit 10 --quiet 2 --expect-anomalies
# - power loss on Docker: the node's data directory on lazyfs; a power
#   loss SIGKILLs a node and drops every write it had not synced. With one
#   replica per key and --fsync never acknowledged adds are lost (and the
#   run is invalid, as it must be); with --fsync always, or N=3 W=2 R=2 and
#   the default group commit (batch), none is.
TEST_POWER_CAMPAIGN_FLAGS ?= --workload set --resolution siblings --nemesis power-loss --storage lsm \
	--concurrency 6 --node-choice fixed --keys 12 --rate 600 --time-limit 10 --quiet 3 --seed 1 --expect-anomalies
TEST_POWER_ONE_REPLICA_FLAGS ?= --n 1 --quorums "1,1"
TEST_POWER_THREE_REPLICAS_FLAGS ?= --n 3 --quorums "2,2" --fsync batch
# - the SSH backend (scripts/ssh-test.sh): 4 containers of the ssh-host image
#   reached only over SSH, N=3 on three of them (the fourth is the spare
#   joiners take); W=R=1 under iptables partitions on the hosts serves stale
#   reads, W=R=2 none; SIGKILL and restart, and membership, leave every
#   run valid. Quorums are separated by ';' (the script splits flags on spaces).
SSH_TEST_FLAGS ?= --quorums 1,1;2,2 --nemesis partition,kill,membership --time-limit 10 --quiet 2 --expect-anomalies
CAMPAIGN_FLAGS ?= --expect-anomalies
# Simulated campaigns (--backend sim: every node's library code in this
# process under turmoil, network, clocks and disks simulated, fixed seeds, a
# few seconds each): every nemesis on the register, strict quorums valid
# under all of them, W=R=1 stale reads under partitions; LWW loses adds and siblings none; clock skew loses adds under
# LWW; a kill is a power loss: with one replica per key (N=1) and --fsync
# never the killed node's acknowledged adds are lost, only in its page cache
# (and the run is invalid, as it must be), with --fsync always none is.
SIM_TEST_FLAGS ?= --backend sim --quorums "1,1 2,2" --nemesis none,partition,kill,pause,clock,latency,membership,partition+kill \
	--time-limit 10 --quiet 2 --expect-anomalies
SIM_TEST_SET_FLAGS ?= --backend sim --workload set --resolution lww,siblings --quorums "2,2" --nemesis none,clock \
	--concurrency 6 --node-choice fixed --keys 2 --rate 600 --time-limit 10 --quiet 3 --expect-anomalies
SIM_TEST_POWER_FLAGS ?= --backend sim --workload set --resolution siblings --n 1 --quorums "1,1" --nemesis kill \
	--concurrency 6 --node-choice fixed --keys 2 --rate 600 --time-limit 10 --quiet 3 --expect-anomalies
# Consistent prefix (the prefix workload): under both resolutions, strict
# quorums without faults show no observer an answer without its question, and
# W=R=1 under partitions does (seed 42: 36 of 608 observations under LWW,
# 132 of 608 under siblings). 8 runs of 5 s, about 22 s on a loaded 2-core machine.
SIM_TEST_PREFIX_FLAGS ?= --backend sim --workload prefix --resolution lww,siblings --quorums "1,1 2,2" --nemesis none,partition \
	--time-limit 5 --quiet 1 --expect-anomalies
# Two datacenters of 3 nodes, 2 replicas per DC (N=4): local, each and a
# global strict quorum (W=3 R=2) under a cut WAN, a lost DC and a slow WAN.
# Local reads across the cut miss writes and at home miss none; each-quorum
# writes are unavailable while cut; the surviving DC serves (local) while the
# other is down; the strict global quorum serves no stale read; a slow WAN
# delays each-quorum writes, never local ones. 9 runs of 12 s simulated.
SIM_TEST_DC_FLAGS ?= --backend sim --nodes 6 --dcs 2 --replicas-per-dc 2 --quorums "local,local each,local 3,2" \
	--nemesis dc-partition,dc-outage,wan-latency --time-limit 10 --quiet 2 --expect-anomalies

# The planted-bug sweep: the same 50 seeds of 5 nodes, N=3 W=2 R=2, under
# partitions, first on a workbench whose simulated nodes answer a write
# after one ack (`--features planted-bug-one-ack`, node/src/planted.rs),
# which must be flagged on most seeds (stale reads a strict quorum promised
# away), then on the clean build, which must be flagged on none. 10 s of
# faults and 1 s quiet at the default 200 ops/s over 5 keys. Measured on a
# shared 2-core machine: 41 of 50 seeds flagged with the bug planted (stale
# reads and read-your-writes, invalid), 34 s; 0 of 50 clean, 19 s (seeds 9,
# 20 and 45 each measured one monotonic-read violation, which no quorum
# promises away: listed, not flagged). To shrink a flagged seed:
# `target/release/workbench-planted explore --allow-planted-bugs <the flags
# below, --seeds 1..2> --shrink`.
PLANTED_SWEEP_FLAGS ?= --backend sim --seeds 1..51 --nodes 5 --quorums "2,2" --nemesis partition --time-limit 10 --quiet 1
PLANTED_EXPECT_FLAGGED ?= 26
# The same sweep with --swarm (each seed adds its own subset of kill, pause,
# clock, latency and membership to the partitions, its own rhythms and
# workload knobs; workbench/src/swarm.rs): the clean build must be flagged
# on no seed under any of those configurations, the planted one on at least
# PLANTED_SWARM_EXPECT_FLAGGED. Measured on the shared 2-core machine: 36 of
# 50 flagged with the bug (fewer than the 46 without swarm: a read fraction
# of 0.9, a single key and kills suppress it), 37 to 58 s; 0 of 50 clean.
PLANTED_SWARM_EXPECT_FLAGGED ?= 26
WORKBENCH_PLANTED := target/release/workbench-planted

.PHONY: docs-check bench-peers bench-lazyfs bench-load all build deps lint image unit-test e2e-test sim-test planted-test test campaign clean-docker docker-available

all: build

# The docs check: every command of the README runs (workbench/tests/readme.rs:
# the quick start for real in the simulator, other campaigns with --dry-run,
# make targets looked up here), its legend is the campaigns' and its links ship.
docs-check:
	$(CARGO) test --release --workspace --test readme

# System packages, by what needs them (scripts/deps.sh says what it installs,
# or names what is missing and stops). The image needs debootstrap; `make
# test` also runs the peer stores as local processes (etcd-server,
# redis-server) and mounts lazyfs (fusermount3, used when not root); `make
# campaign` needs the image only when Docker answers.
# A target-specific DEPS reaches this prerequisite.
DEPS ?= image
deps:
	@scripts/deps.sh $(DEPS)

test: DEPS = image peers browser lazyfs ssh-test
campaign: DEPS = image-if-docker
bench-peers bench-load: DEPS = image-if-docker peers
bench-lazyfs: DEPS = image-if-docker
ssh-host-image ssh-test: DEPS = ssh-test

# `make test` builds every target at once (--all-targets): its tests need the
# dev-dependencies, and cargo resolves every crate's features differently when
# they are in (syn, serde, regex...), so a build without them and `cargo test`
# would compile the whole dependency tree twice. With one feature set the
# tests, the binaries the campaigns run and the image share one compile.
BUILD_TARGETS ?=
test: BUILD_TARGETS = --all-targets

build:
	$(CARGO) build --release --workspace $(BUILD_TARGETS)

# The gates every change passes before anything is built or run: the tree
# is formatted (rustfmt.toml) and clippy finds nothing, the workspace's
# lint table (Cargo.toml) included, with every warning an error. Both tools
# are rustup components; a toolchain without them gets them added, or the
# target stops with one line naming what is missing.
lint:
	@for tool in fmt clippy; do \
	  $(CARGO) $$tool --version >/dev/null 2>&1 && continue; \
	  component=$$([ $$tool = fmt ] && echo rustfmt || echo clippy); \
	  { command -v rustup >/dev/null 2>&1 && rustup component add $$component >/dev/null 2>&1 \
	    && $(CARGO) $$tool --version >/dev/null 2>&1; } \
	    || { echo "make lint: missing $$component (cargo $$tool); install it with: rustup component add $$component"; exit 1; }; \
	done
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings

# The node image, built from nothing (debootstrap + docker import), cached by
# a hash of its inputs; writes the tag to target/dynamo-node.image. It carries
# the binaries `build` made, so they are not compiled a second time.
image: deps build
	DWB_NODE_BIN=$(CURDIR)/target/release/dynamo-node DWB_LINKPROXY_BIN=$(CURDIR)/target/release/dynamo-linkproxy \
	  DWB_LAZYFS_BIN=$(CURDIR)/target/release/dynamo-lazyfs docker/image/build.sh

# The test hosts of the SSH backend: the node image's recipe with
# openssh-server added (DWB_IMAGE_VARIANT=ssh-host; its own debootstrap,
# cached like the node image's), carrying the binaries `build` made.
.PHONY: ssh-host-image ssh-test
ssh-host-image: deps build
	DWB_IMAGE_VARIANT=ssh-host DWB_NODE_BIN=$(CURDIR)/target/release/dynamo-node \
	  DWB_LINKPROXY_BIN=$(CURDIR)/target/release/dynamo-linkproxy \
	  DWB_LAZYFS_BIN=$(CURDIR)/target/release/dynamo-lazyfs docker/image/build.sh

# The SSH backend end to end: 4 hosts it reaches only over SSH, a key pair
# made for the run, the campaign's expectations, and nothing left behind
# (scripts/ssh-test.sh).
ssh-test: build ssh-host-image
	WORKBENCH=$(WORKBENCH) SSH_TEST_FLAGS='$(SSH_TEST_FLAGS)' scripts/ssh-test.sh

# In the release profile, so the tests share one build of the workspace with
# `build` (one cold compile instead of two keeps CI well under 30 minutes);
# the invariants are assert!s, which release keeps.
unit-test:
	$(CARGO) test --release --workspace

# Real containers, real iptables partitions, kills and libfaketime clocks;
# fails unless the campaigns find what they must (TEST_*_FLAGS above) and
# leave nothing behind.
e2e-test: build image
	$(WORKBENCH) campaign --name ci-$$(date -u +%Y%m%dT%H%M%SZ) --backend docker $(TEST_CAMPAIGN_FLAGS)
	$(WORKBENCH) campaign --name ci-set-$$(date -u +%Y%m%dT%H%M%SZ) --backend docker $(TEST_SET_CAMPAIGN_FLAGS)
	$(WORKBENCH) campaign --name ci-set-random-$$(date -u +%Y%m%dT%H%M%SZ) --backend docker $(TEST_RANDOM_SET_CAMPAIGN_FLAGS)
	$(WORKBENCH) campaign --name ci-peers-$$(date -u +%Y%m%dT%H%M%SZ) --backend docker $(TEST_PEERS_CAMPAIGN_FLAGS)
	$(WORKBENCH) campaign --name ci-corrupt-$$(date -u +%Y%m%dT%H%M%SZ) --backend docker $(TEST_CORRUPT_CAMPAIGN_FLAGS)
	$(WORKBENCH) campaign --name ci-latency-$$(date -u +%Y%m%dT%H%M%SZ) --backend docker $(TEST_LATENCY_CAMPAIGN_FLAGS)
	$(WORKBENCH) campaign --name ci-dc-$$(date -u +%Y%m%dT%H%M%SZ) --backend docker $(TEST_DC_CAMPAIGN_FLAGS)
	$(WORKBENCH) campaign --name ci-power-never-$$(date -u +%Y%m%dT%H%M%SZ) --backend docker $(TEST_POWER_CAMPAIGN_FLAGS) \
	  $(TEST_POWER_ONE_REPLICA_FLAGS) --fsync never
	$(WORKBENCH) campaign --name ci-power-always-$$(date -u +%Y%m%dT%H%M%SZ) --backend docker $(TEST_POWER_CAMPAIGN_FLAGS) \
	  $(TEST_POWER_ONE_REPLICA_FLAGS) --fsync always
	$(WORKBENCH) campaign --name ci-power-batch-$$(date -u +%Y%m%dT%H%M%SZ) --backend docker $(TEST_POWER_CAMPAIGN_FLAGS) \
	  $(TEST_POWER_THREE_REPLICAS_FLAGS)
	@left=$$(docker ps -aq --filter label=dynamo-workbench | wc -l); \
	 nets=$$(docker network ls -q --filter label=dynamo-workbench | wc -l); \
	 if [ "$$left" -ne 0 ] || [ "$$nets" -ne 0 ]; then \
	   echo "leftovers: $$left containers, $$nets networks with the dynamo-workbench label"; exit 1; fi

# The simulated campaigns: no Docker needed, seconds each, fixed seeds.
sim-test: build
	$(WORKBENCH) campaign --name ci-sim-$$(date -u +%Y%m%dT%H%M%SZ) $(SIM_TEST_FLAGS)
	$(WORKBENCH) campaign --name ci-sim-set-$$(date -u +%Y%m%dT%H%M%SZ) $(SIM_TEST_SET_FLAGS)
	$(WORKBENCH) campaign --name ci-sim-power-never-$$(date -u +%Y%m%dT%H%M%SZ) $(SIM_TEST_POWER_FLAGS) --fsync never
	$(WORKBENCH) campaign --name ci-sim-power-always-$$(date -u +%Y%m%dT%H%M%SZ) $(SIM_TEST_POWER_FLAGS) --fsync always
	$(WORKBENCH) campaign --name ci-sim-prefix-$$(date -u +%Y%m%dT%H%M%SZ) $(SIM_TEST_PREFIX_FLAGS)
	$(WORKBENCH) campaign --name ci-sim-dc-$$(date -u +%Y%m%dT%H%M%SZ) $(SIM_TEST_DC_FLAGS)

# The planted build goes to its own file name, and the clean one is rebuilt
# at once (cargo keeps both variants' artifacts, so the switch back only
# relinks); target/release/workbench must then say it has no planted bug.
# Were it left planted (an interrupted make), it refuses every run without
# --allow-planted-bugs and names its bugs in --version.
# Under `make test` both builds also name the benches: a bench needs the
# dev-dependencies, so cargo keeps the feature set `build` compiled with and
# rebuilds only the crates the planted feature reaches (dynamo-node, the
# simulator, workbench), not the dependency tree.
PLANTED_TARGETS ?=
test: PLANTED_TARGETS = --bins --benches
planted-test: build
	$(CARGO) build --release --workspace $(PLANTED_TARGETS) --features workbench/planted-bug-one-ack
	cp $(WORKBENCH) $(WORKBENCH_PLANTED)
	$(CARGO) build --release --workspace $(PLANTED_TARGETS)
	@$(WORKBENCH) --version | grep -q 'planted bugs: none' || { echo "$(WORKBENCH) is not the clean build: $$($(WORKBENCH) --version)"; exit 1; }
	@$(WORKBENCH_PLANTED) --version | grep -q 'planted bugs: planted-bug-one-ack' || { echo "$(WORKBENCH_PLANTED) has no planted bug: $$($(WORKBENCH_PLANTED) --version)"; exit 1; }
	$(WORKBENCH_PLANTED) explore --allow-planted-bugs --name ci-planted-$$(date -u +%Y%m%dT%H%M%SZ) $(PLANTED_SWEEP_FLAGS) --expect-flagged $(PLANTED_EXPECT_FLAGGED)
	$(WORKBENCH) explore --name ci-unplanted-$$(date -u +%Y%m%dT%H%M%SZ) $(PLANTED_SWEEP_FLAGS) --max-flagged 0

# The swarm sweeps (see PLANTED_SWARM_EXPECT_FLAGGED), after planted-test has
# built both binaries: about 2 minutes more, so not part of `make test`,
# whose CI budget is 40 minutes.
.PHONY: planted-swarm
planted-swarm: planted-test
	$(WORKBENCH_PLANTED) explore --allow-planted-bugs --name ci-planted-swarm-$$(date -u +%Y%m%dT%H%M%SZ) $(PLANTED_SWEEP_FLAGS) --swarm --expect-flagged $(PLANTED_SWARM_EXPECT_FLAGGED)
	$(WORKBENCH) explore --name ci-unplanted-swarm-$$(date -u +%Y%m%dT%H%M%SZ) $(PLANTED_SWEEP_FLAGS) --swarm --max-flagged 0

test: deps lint image unit-test sim-test planted-test e2e-test ssh-test

docker-available:
	@docker info >/dev/null 2>&1

# Docker when an engine answers (building the image first), else the
# simulator (--backend auto), which performs the whole matrix, partitions included.
campaign: deps build
	@if docker info >/dev/null 2>&1; then $(MAKE) --no-print-directory image; fi
	$(WORKBENCH) campaign $(CAMPAIGN_FLAGS)

clean-docker: build
	$(WORKBENCH) clean

# Criterion benchmarks of the node's LSM engine against fjall on the same
# data (random put, get hit/miss, scan); prints ours/fjall ratios at the end.
# LSM_BENCH_KEYS keys of 100 B (default 1M); LSM_BENCH_FSYNC=never|always.
LSM_BENCH_KEYS ?= 1000000
LSM_BENCH_FSYNC ?= never
# The simulator's speed: simulated seconds per wall second and client ops
# per wall second for 5 nodes at 1,000 ops/s and for 100 nodes (N=3), the
# seeds per minute `workbench explore` achieves, and peak RSS.
.PHONY: bench-sim
bench-sim: build
	scripts/bench-sim.sh

# Every checker on a seeded generated register history (linearizable by
# construction), the same under siblings (dotted versions, concurrent
# writes kept as siblings) and a seeded set history (no add lost by
# construction), CHECKER_BENCH_OPS client ops each (default 1M): a table of
# wall and CPU seconds, ops/s and peak RSS per checker
# (checker/benches/checkers.rs). CHECKER_BENCH_ONLY=<name,...> runs only
# those checkers. Then `workbench check` on each history end to end (read,
# parse, every checker), with its wall time and peak RSS (the workbench built
# with every target, as `cargo bench` resolves features, so nothing compiles twice).
CHECKER_BENCH_DIR ?= /tmp/bench-checkers
.PHONY: bench-checkers
bench-checkers:
	CHECKER_BENCH_DIR=$(CHECKER_BENCH_DIR) $(CARGO) bench --workspace --bench checkers
	$(CARGO) build --release --workspace --all-targets
	for h in register siblings set; do \
	  /usr/bin/time -f "workbench check $$h: %e s wall, peak %M KiB" \
	    target/release/workbench check $(CHECKER_BENCH_DIR)/$$h >/dev/null 2>$(CHECKER_BENCH_DIR)/$$h.time \
	    || { cat $(CHECKER_BENCH_DIR)/$$h.time; exit 1; }; \
	  tail -1 $(CHECKER_BENCH_DIR)/$$h.time; \
	done

.PHONY: bench
bench:
	LSM_BENCH_KEYS=$(LSM_BENCH_KEYS) LSM_BENCH_FSYNC=$(LSM_BENCH_FSYNC) $(CARGO) bench -p dynamo-node --bench lsm
	$(CARGO) bench -p dynamo-node --bench anti_entropy

# Instructions per client operation of one node (N=1, LSM, fsync batch),
# put and get, counted by callgrind (three runs differing only in operation
# counts; scripts/bench-instructions.sh says how): a figure that survives a
# noisy machine. BENCH_INSTRUCTIONS_OPS (default 1000) operations per phase.
.PHONY: bench-instructions
bench-instructions: DEPS = valgrind
bench-instructions: deps build
	scripts/bench-instructions.sh

# Our store next to etcd and Redis under one closed-loop load (a benchmark,
# not a test): prints the table and writes results/bench/<time>/bench.md.
BENCH_PEERS_FLAGS ?= --duration 20 --concurrency 32
bench-peers: deps build
	@if docker info >/dev/null 2>&1; then $(MAKE) --no-print-directory image; fi
	$(WORKBENCH) bench-peers $(BENCH_PEERS_FLAGS)

# What the power-loss nemesis's lazy filesystem costs the node (a benchmark,
# not a test): our single node (N1, --fsync batch) with its data directory
# on dynamo-lazyfs against the same node on a plain directory, puts only,
# one after the other; prints ops/s, CPU us/op and the ratios. Needs Docker
# and /dev/fuse (the lazyfs contender runs where the power-loss nemesis does).
BENCH_LAZYFS_FLAGS ?= --duration 20 --concurrency 32
bench-lazyfs: deps build
	@docker info >/dev/null 2>&1 || { echo "bench-lazyfs: needs a Docker engine (the node runs on lazyfs in its container)" >&2; exit 2; }
	$(MAKE) --no-print-directory image
	$(WORKBENCH) bench-peers --backend docker --only dynamo1,dynamo1-lazyfs --read-fraction 0 $(BENCH_LAZYFS_FLAGS)

# Goodput against offered load (a benchmark, not a test): closed loops of
# 32 to 4,096 clients, 10 s each, against our 3-node cluster with adaptive
# admission control and with `--client-limit off`, our single node, etcd
# and Redis, one load generator for all (workbench/src/bench_load.rs);
# writes results/load/<time>/ (load.md, load.json, goodput.png, p99.png)
# and ends with `goodput at 16x overload / peak goodput: R`.
BENCH_LOAD_FLAGS ?=
bench-load: deps build
	@if docker info >/dev/null 2>&1; then $(MAKE) --no-print-directory image; fi
	$(WORKBENCH) bench-load $(BENCH_LOAD_FLAGS)
