#!/usr/bin/env bash
# The SSH backend end to end, against hosts it reaches only over SSH.
#
# Starts SSH_TEST_HOSTS containers of the ssh-host image (the node image
# with openssh-server added: `DWB_IMAGE_VARIANT=ssh-host docker/image/build.sh`)
# on a labelled Docker network of their own, each with its own address,
# its own host keys (made at its start, not the image's), NET_ADMIN
# (iptables inside it) and /dev/fuse with SYS_ADMIN (the lazy filesystem
# of power loss), authorising a key pair generated here for this
# test only. Docker starts and removes the hosts; every fault is the
# workbench's, over SSH, on the hosts' iptables and files: nothing here
# touches this machine's own clock or iptables.
#
# Each host also has two logins besides root with the same key: `dwb`, with
# passwordless sudo, and `nosudo`, without.
#
# Then:
#   1. a host key the known_hosts file does not hold is refused (exit 2,
#      the host named) before any node starts;
#   2. `nosudo` with --ssh-sudo is refused (exit 2, the host named, "no
#      sudo where it is needed") before any node starts, pinning the keys;
#   2a. --ssh-real-clock with clock faults is refused (exit 2, "cannot set
#      its clock") before any node starts: the hosts are containers, whose
#      root lacks CAP_SYS_TIME (they share this machine's clock, which no
#      test may move);
#   2b. the last host loses libfaketime and gets, as its only apt source, a
#      local repository holding the package (downloaded on this machine by
#      apt-get download: the hosts reach no network but their own); a
#      campaign is refused (exit 2, "lacks libfaketime") before any node
#      starts;
#   3. a short campaign (SSH_TEST_SUDO_FLAGS) runs as `dwb` with
#      --ssh-install (the last host gets libfaketime back through `sudo -n
#      apt-get`, from that repository) and
#      --ssh-sudo and --keep-data: partitions and latency, so a link proxy
#      runs in front of each node (as dwb) and every link fault is recorded
#      with the mechanism "linkproxy"; its data directories stay, marked
#      kept, where run.json says;
#   4. a corrupt campaign (SSH_TEST_CORRUPT_FLAGS: the Docker one's, shorter)
#      runs as `dwb`, its hosts given by an [ssh] table in a --config file:
#      a killed node's files damaged on its host, recorded with the
#      mechanism "dd over ssh"; its start spared the kept data;
#   5. the campaign (SSH_TEST_FLAGS) runs as root and must meet its
#      expectations;
#   5b. a power-loss campaign (SSH_TEST_POWER_FLAGS) runs as root: each
#      node's data directory on a lazy filesystem on its host, and with one
#      replica per key and --fsync never, acknowledged adds are lost (as
#      they must be), recorded with the mechanism "lazyfs";
#   6. a campaign is interrupted with SIGINT (Ctrl-C) once its nodes run:
#      it exits 130, and no process, run directory or chain of its run is
#      left on any host, before any `workbench clean`;
#   7. `workbench clean --backend ssh --config` (the hosts of the [ssh]
#      table, as dwb with sudo) runs, and no process, run directory
#      (the kept one included) or iptables chain of ours is left on any host;
#   8. the hosts and the network are removed, and no labelled container or
#      network is left.
#
# Environment: WORKBENCH (default target/release/workbench), SSH_TEST_HOSTS
# (default 4), SSH_TEST_FLAGS (the campaign's flags), SSH_TEST_SUDO_FLAGS (the
# sudo campaign's), SSH_TEST_CORRUPT_FLAGS, SSH_TEST_POWER_FLAGS, SSH_TEST_NAME.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
WORKBENCH="${WORKBENCH:-target/release/workbench}"
HOSTS_COUNT="${SSH_TEST_HOSTS:-4}"
FLAGS="${SSH_TEST_FLAGS:---quorums 1,1 --nemesis partition --time-limit 10 --quiet 2 --expect-anomalies}"
SUDO_FLAGS="${SSH_TEST_SUDO_FLAGS:---quorums 2,2 --nemesis partition+latency --time-limit 6 --quiet 1}"
CORRUPT_FLAGS="${SSH_TEST_CORRUPT_FLAGS:---workload set --resolution siblings --quorums 2,2 --nemesis corrupt \
    --storage lsm --fsync always --memtable-bytes 4096 --keys 100 --time-limit 8 --quiet 3 --seed 1 --expect-anomalies}"
POWER_FLAGS="${SSH_TEST_POWER_FLAGS:---workload set --resolution siblings --nemesis power-loss --storage lsm \
    --concurrency 6 --node-choice fixed --keys 12 --rate 600 --time-limit 8 --quiet 3 --seed 1 --expect-anomalies \
    --n 1 --quorums 1,1 --fsync never}"
NAME="${SSH_TEST_NAME:-ci-ssh-$(date -u +%Y%m%dT%H%M%SZ)}"
LABEL="dynamo-workbench"
TAG_FILE="target/dynamo-ssh-host.image"
[ -f "$TAG_FILE" ] || { echo "ssh-test: $TAG_FILE is missing: run make ssh-host-image" >&2; exit 1; }
TAG="$(tr -d '[:space:]' < "$TAG_FILE")"
RUN="dwb-ssh-$$"
WORK="$(mktemp -d /tmp/dwb-ssh-test.XXXXXX)"
BOOT="$(cat /proc/sys/kernel/random/boot_id)"
LABELS=(--label "$LABEL=1" --label "$LABEL.owner-pid=$$" --label "$LABEL.owner-boot=$BOOT")

log() { echo "[ssh-test] $*" >&2; }

cleanup() {
    local code=$?
    docker ps -aq --filter "label=$LABEL.ssh-test=$RUN" | xargs -r docker rm -f >/dev/null 2>&1 || true
    docker network rm "$RUN" >/dev/null 2>&1 || true
    rm -rf "$WORK"
    exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_hosts() {
    docker network create "${LABELS[@]}" "$RUN" >/dev/null
    ssh-keygen -q -t ed25519 -N '' -C "$RUN" -f "$WORK/id_ed25519"
    local i fuse=(--device /dev/fuse --cap-add SYS_ADMIN)
    # Docker's default AppArmor profile denies mount(2), FUSE's included.
    if [ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" = Y ]; then
        fuse+=(--security-opt apparmor=unconfined)
    fi
    for i in $(seq 1 "$HOSTS_COUNT"); do
        docker run -d --init --name "$RUN-h$i" --hostname "h$i" --network "$RUN" --cap-add NET_ADMIN "${fuse[@]}" \
            "${LABELS[@]}" --label "$LABEL.ssh-test=$RUN" \
            -e "AUTHORIZED_KEY=$(cat "$WORK/id_ed25519.pub")" --entrypoint /bin/sh "$TAG" -c \
            'mkdir -p /root/.ssh /run/sshd && chmod 700 /root/.ssh &&
             printf "%s\n" "$AUTHORIZED_KEY" > /root/.ssh/authorized_keys &&
             chmod 600 /root/.ssh/authorized_keys &&
             for u in dwb nosudo; do
                 useradd -m -p "*" -s /bin/sh "$u" && mkdir -p "/home/$u/.ssh" &&
                 cp /root/.ssh/authorized_keys "/home/$u/.ssh/" && chown -R "$u:$u" "/home/$u/.ssh" || exit 1;
             done &&
             printf "dwb ALL=(ALL) NOPASSWD: ALL\n" > /etc/sudoers.d/dwb && chmod 440 /etc/sudoers.d/dwb &&
             rm -f /etc/ssh/ssh_host_*_key* && ssh-keygen -A >/dev/null &&
             exec /usr/sbin/sshd -D -e' >/dev/null
    done
}

# The hosts' addresses, comma-separated, once each one's sshd listens.
host_list() {
    local i ip list="" tries
    for i in $(seq 1 "$HOSTS_COUNT"); do
        ip="$(docker inspect -f "{{(index .NetworkSettings.Networks \"$RUN\").IPAddress}}" "$RUN-h$i")"
        for tries in $(seq 1 100); do
            (exec 3<>"/dev/tcp/$ip/22") 2>/dev/null && break
            [ "$tries" -lt 100 ] || { log "sshd on $ip never listened"; docker logs "$RUN-h$i" >&2; exit 1; }
            sleep 0.1
        done
        list="${list:+$list,}$ip"
    done
    echo "$list"
}

# Exit 2 and the host named, before any node starts, when its key is unknown.
refuses_unknown_key() {
    local hosts="$1" out code=0
    out="$("$WORKBENCH" campaign --name "$NAME-strict" --results-dir "$WORK/results" --backend ssh --hosts "$hosts" \
        --ssh-key "$WORK/id_ed25519" --ssh-known-hosts "$WORK/empty_known_hosts" \
        --nemesis none --quorums 1,1 --time-limit 1 --quiet 0 2>&1)" || code=$?
    # Hosts are asked at once: any of them may be the one named.
    local named
    named="$(grep -oE "root@[0-9.]+:22: host key refused" <<< "$out" | head -n1 | cut -d@ -f2 | cut -d: -f1)"
    if [ "$code" -ne 2 ] || [ -z "$named" ] || ! tr ',' '\n' <<< "$hosts" | grep -qxF "$named"; then
        log "an unknown host key was not refused with exit 2 (exit $code):"; echo "$out" >&2; exit 1
    fi
    log "unknown host key refused (exit 2): $(grep -m1 'host key refused' <<< "$out")"
}

# Exit 2 and the host named, before any node starts, for a login without sudo
# on hosts that need it (this also pins the hosts' keys).
refuses_no_sudo() {
    local hosts="$1" out code=0
    out="$("$WORKBENCH" campaign --name "$NAME-nosudo" --results-dir "$WORK/results" --backend ssh --hosts "$hosts" \
        --ssh-user nosudo --ssh-sudo --ssh-key "$WORK/id_ed25519" --ssh-known-hosts "$WORK/known_hosts" \
        --ssh-accept-new --nemesis none --quorums 1,1 --time-limit 1 --quiet 0 2>&1)" || code=$?
    if [ "$code" -ne 2 ] || ! grep -qE "nosudo@[0-9.]+:22: no sudo where it is needed" <<< "$out"; then
        log "a login without sudo was not refused with exit 2 (exit $code):"; echo "$out" >&2; exit 1
    fi
    log "login without sudo refused (exit 2): $(grep -m1 -oE 'nosudo@[^ ]+: no sudo where it is needed' <<< "$out")"
    hosts_are_clean
}

# Exit 2 and the host named, before any node starts, for --ssh-real-clock on
# hosts that may not set the clock.
refuses_real_clock() {
    local hosts="$1" out code=0
    out="$("$WORKBENCH" campaign --name "$NAME-realclock" --results-dir "$WORK/results" --backend ssh --hosts "$hosts" \
        --ssh-key "$WORK/id_ed25519" --ssh-known-hosts "$WORK/known_hosts" --ssh-real-clock \
        --nemesis clock --quorums 1,1 --time-limit 1 --quiet 0 2>&1)" || code=$?
    if [ "$code" -ne 2 ] || ! grep -qE "root@[0-9.]+:22: cannot set its clock" <<< "$out"; then
        log "--ssh-real-clock on containers was not refused with exit 2 (exit $code):"; echo "$out" >&2; exit 1
    fi
    log "--ssh-real-clock refused on containers (exit 2): $(grep -m1 -oE 'root@[^ ]+: cannot set its clock' <<< "$out")"
}

# The last host loses libfaketime, and its apt knows one source only: a
# local repository holding the libfaketime package.
host_lacks_libfaketime() {
    local last="$RUN-h$HOSTS_COUNT" deb
    (cd "$WORK" && apt-get download -q libfaketime >/dev/null) || { log "apt-get download libfaketime failed"; exit 1; }
    deb="$(ls "$WORK"/libfaketime_*.deb)"
    docker exec "$last" mkdir -p /var/local/debs
    docker cp "$deb" "$last:/var/local/debs/"
    docker exec "$last" sh -c 'cd /var/local/debs && for d in *.deb; do dpkg-deb -f "$d"; echo "Filename: ./$d";
            echo "Size: $(stat -c %s "$d")"; echo "SHA256: $(sha256sum "$d" | cut -d" " -f1)"; echo; done > Packages &&
        rm -rf /etc/apt/sources.list /etc/apt/sources.list.d/* &&
        echo "deb [trusted=yes] file:/var/local/debs ./" > /etc/apt/sources.list.d/local.list &&
        dpkg -r --force-depends faketime libfaketime >/dev/null 2>&1 && ! ls /usr/lib/*/faketime/libfaketimeMT.so.1 2>/dev/null' \
        || { log "could not take libfaketime off host $HOSTS_COUNT"; exit 1; }
}

# Exit 2 and the host named, before any node starts, for a host that lacks a tool.
refuses_lacking_host() {
    local hosts="$1" out code=0
    out="$("$WORKBENCH" campaign --name "$NAME-lacking" --results-dir "$WORK/results" --backend ssh --hosts "$hosts" \
        --ssh-key "$WORK/id_ed25519" --ssh-known-hosts "$WORK/known_hosts" \
        --nemesis none --quorums 1,1 --time-limit 1 --quiet 0 2>&1)" || code=$?
    if [ "$code" -ne 2 ] || ! grep -qE "root@[0-9.]+:22: lacks libfaketime .*--ssh-install" <<< "$out"; then
        log "a host without libfaketime was not refused with exit 2 (exit $code):"; echo "$out" >&2; exit 1
    fi
    log "a host without libfaketime refused (exit 2): $(grep -m1 -oE 'root@[^ ]+: lacks libfaketime' <<< "$out")"
}

# The hosts as an [ssh] table: user dwb with sudo and the test key for all.
write_ssh_table() {
    local ip
    printf '[ssh]\nuser = "dwb"\nsudo = true\nkey = "%s"\nhosts = [\n' "$WORK/id_ed25519"
    for ip in ${1//,/ }; do printf '  { address = "%s" },\n' "$ip"; done
    printf ']\n'
}

# The first host holds the kept run directory $1, marked kept, with node data in it.
has_kept_data() {
    docker exec "$RUN-h1" sh -c 'test -e "$1/.kept" && test -d "$1/n1/data"' sh "$1" \
        || { log "host 1 has no kept data in $1"; exit 1; }
}

# Nothing of ours is left on any host: no process, no run directory but
# the kept one ($1, if given), no chain.
hosts_are_clean() {
    local i left kept="${1:-}"
    for i in $(seq 1 "$HOSTS_COUNT"); do
        left="$(docker exec "$RUN-h$i" sh -c \
            'pgrep -af "/tmp/dynamo-workbench/bi[n]/" || true;
             for d in /tmp/dynamo-workbench/*/; do
                 case "$d" in */bin/) continue;; esac; [ -d "$d" ] && [ "${d%/}" != "$1" ] && echo "$d"; done;
             iptables -w -S dynamo-workbench 2>/dev/null || true' sh "$kept")"
        if [ -n "$left" ]; then log "left on host $i:"; echo "$left" >&2; exit 1; fi
    done
    log "no process, run directory${kept:+ (but the kept $kept)} or iptables chain left on the $HOSTS_COUNT hosts"
}

# Every link fault of the campaign $1 went through the link proxies.
faults_through_proxies() {
    local mechanisms
    mechanisms="$(grep -ho '"mechanism":"[a-z ]*"' results/"$1"/*/history.jsonl | sort | uniq -c)"
    grep -q '"mechanism":"linkproxy"' <<< "$mechanisms" && ! grep -q '"mechanism":"iptables"' <<< "$mechanisms" \
        || { log "the link faults of $1 did not all go through the proxies:"; echo "$mechanisms" >&2; exit 1; }
    log "link faults through the proxies: $(tr -s ' \n' ' ' <<< "$mechanisms")"
}

# A campaign interrupted by SIGINT once its nodes run exits 130 and leaves
# nothing on the hosts but the kept data ($2), without `workbench clean`.
interrupted_run_leaves_nothing() {
    local hosts="$1" kept="$2" pid code=0 tries
    "$WORKBENCH" campaign --name "$NAME-interrupted" --results-dir "$WORK/results" --backend ssh --hosts "$hosts" \
        --ssh-key "$WORK/id_ed25519" --ssh-known-hosts "$WORK/known_hosts" \
        --quorums 2,2 --nemesis partition+latency --time-limit 60 --quiet 0 &
    pid=$!
    for tries in $(seq 1 300); do
        docker exec "$RUN-h1" pgrep -f "/tmp/dynamo-workbench/bin/dynamo-nod[e]" >/dev/null 2>&1 && break
        kill -0 "$pid" 2>/dev/null || { log "the campaign to interrupt ended early"; exit 1; }
        [ "$tries" -lt 300 ] || { log "no node ever ran on host 1"; exit 1; }
        sleep 0.1
    done
    sleep 3
    kill -INT "$pid"
    wait "$pid" || code=$?
    [ "$code" -eq 130 ] || { log "the interrupted campaign exited $code, not 130"; exit 1; }
    log "the campaign interrupted by SIGINT exited 130"
    hosts_are_clean "$kept"
}

start_hosts
HOSTS="$(host_list)"
log "hosts: $HOSTS"
refuses_unknown_key "$HOSTS"
refuses_no_sudo "$HOSTS"
refuses_real_clock "$HOSTS"
host_lacks_libfaketime
refuses_lacking_host "$HOSTS"
hosts_are_clean
# shellcheck disable=SC2086 # SUDO_FLAGS is a list of flags
"$WORKBENCH" campaign --name "$NAME-sudo" --backend ssh --hosts "$HOSTS" --ssh-user dwb --ssh-sudo \
    --ssh-key "$WORK/id_ed25519" --ssh-known-hosts "$WORK/known_hosts" --ssh-install --keep-data $SUDO_FLAGS
docker exec "$RUN-h$HOSTS_COUNT" sh -c 'ls /usr/lib/*/faketime/libfaketimeMT.so.1' >/dev/null \
    || { log "--ssh-install did not install libfaketime on host $HOSTS_COUNT"; exit 1; }
log "--ssh-install installed libfaketime on host $HOSTS_COUNT with its apt-get"
KEPT="$(grep -h -A1 '"kept_data"' results/"$NAME-sudo"/*/run.json | tail -n1 | grep -oE '/tmp/dynamo-workbench/[^/"]+')" \
    || { log "the --keep-data run does not say where its data is"; exit 1; }
has_kept_data "$KEPT"
faults_through_proxies "$NAME-sudo"
log "the campaign as dwb with --ssh-sudo passed; its data is kept in $KEPT"
write_ssh_table "$HOSTS" > "$WORK/hosts.toml"
# shellcheck disable=SC2086 # CORRUPT_FLAGS is a list of flags
"$WORKBENCH" campaign --config "$WORK/hosts.toml" --name "$NAME-corrupt" --backend ssh \
    --ssh-known-hosts "$WORK/known_hosts" $CORRUPT_FLAGS
grep -q '"corrupt": "dd over ssh"' results/"$NAME-corrupt"/*/run.json \
    || { log "the corrupt run does not record its mechanism"; exit 1; }
has_kept_data "$KEPT"
log "the corrupt campaign ([ssh] table) passed (mechanism: dd over ssh); the kept data was spared"
# shellcheck disable=SC2086 # FLAGS is a list of flags
"$WORKBENCH" campaign --name "$NAME" --backend ssh --hosts "$HOSTS" --ssh-key "$WORK/id_ed25519" \
    --ssh-known-hosts "$WORK/known_hosts" --ssh-accept-new $FLAGS
# shellcheck disable=SC2086 # POWER_FLAGS is a list of flags
"$WORKBENCH" campaign --name "$NAME-power" --backend ssh --hosts "$HOSTS" --ssh-key "$WORK/id_ed25519" \
    --ssh-known-hosts "$WORK/known_hosts" $POWER_FLAGS
grep -q '"mechanism":"lazyfs"' results/"$NAME-power"/*/history.jsonl \
    || { log "the power-loss run does not record its mechanism"; exit 1; }
log "the power-loss campaign passed (mechanism: lazyfs; unsynced adds lost with --fsync never)"
# Each run's replay runs on the same hosts, and names the key by its path only.
for run_json in results/"$NAME"/*/run.json; do
    grep -qE -- "--backend ssh --hosts '?root@" "$run_json" && grep -qF -- "--ssh-key $WORK/id_ed25519" "$run_json" \
        && ! grep -q "PRIVATE KEY" "$run_json" || { log "$run_json: no replay on the same hosts"; exit 1; }
done
interrupted_run_leaves_nothing "$HOSTS" "$KEPT"
# The hosts of the [ssh] table, as the corrupt campaign got them.
"$WORKBENCH" clean --backend ssh --config "$WORK/hosts.toml" --ssh-known-hosts "$WORK/known_hosts"
hosts_are_clean
docker ps -aq --filter "label=$LABEL.ssh-test=$RUN" | xargs -r docker rm -f >/dev/null
docker network rm "$RUN" >/dev/null
left=$(docker ps -aq --filter "label=$LABEL.ssh-test=$RUN" | wc -l)
nets=$(docker network ls -q --filter "name=^$RUN\$" | wc -l)
[ "$left" -eq 0 ] && [ "$nets" -eq 0 ] || { log "leftovers: $left containers, $nets networks"; exit 1; }
log "passed; results in results/$NAME"
