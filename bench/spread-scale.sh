#!/bin/bash
# bench/spread-scale.sh - one environment to N nodes on rate-limited links
# (tests/helpers-netns.bash: each node a network namespace, its link
# limited to RATE both ways with tc; the manager host, with sshd,
# vine-state and the origin, in a namespace of its own on a link of the
# same rate).  The nodes cannot see the origin's directory (a tmpfs over
# it in each node's mount namespace): its bytes come through the ssh://
# state, over the manager host's link.
#
# For each N in NODES, how long until every node holds a verified copy
# (vine-spread -s fetches, all started at once), divided by t1, the time
# one node alone takes to copy it from the origin over the same link:
#   relay     vine, relaying partial copies (the default; K=2, K_origin=2)
#   norelay   vine-submit --no-relay: a node serves only complete copies
#   direct    every node reads the origin (--no-relay --k-origin N)
# with the origin's and the peers' copies (vine-status --json).
# The object spread is SIZE_MB of random bytes: spreading moves and
# verifies bytes, whatever they are, and packing 500 MB on a loaded
# 2-core machine would take longer than the spreading.
# Then "ready, not just fetched": one node, a real environment (the
# standard library and dist-packages of /usr/lib/python3, vine-packed):
# vine-seed -s (unpacked as it arrives) against the fetch alone over the
# same link and against vine-seed with VINE_TEST_NO_FOLLOW=1 (fetch,
# then unpack), its cache on a tmpfs.
#
# Settings (environment): SIZE_MB (default 500), NODES (default "8 16 32 64"), RATE
# (tc rate of every link, default 16mbit), METHODS (default "relay norelay
# direct"; "none": only t1 and the ready rows), DIRECT_MAX (largest N for direct, default 16: it takes N x t1),
# READY (1: the ready rows, default 1), RUNS (default 1).  Node caches are
# under BENCH_WORK (default bench/work), on disk: N copies may not fit in
# memory.  Needs root; prints markdown.  Run it with nice -n 19.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
: "${VINE_BIN:?set VINE_BIN to the built programs (make bench sets it)}"
export PATH="$VINE_BIN:$PATH"
SIZE_MB=${SIZE_MB:-500}
NODES=${NODES:-"8 16 32 64"}
RATE=${RATE:-16mbit}
METHODS=${METHODS:-"relay norelay direct"}
DIRECT_MAX=${DIRECT_MAX:-16}
READY=${READY:-1}
RUNS=${RUNS:-1}
BENCH_WORK=${BENCH_WORK:-$here/work}
. "$here/lib.sh"

T=$BENCH_WORK/scale
rm -rf "$T"
mkdir -p "$T/origin" "$T/hosts-tmp"
export BATS_FILE_TMPDIR=$T/hosts-tmp VINE_HOSTS_DIR=$T/hosts
skip() {
	echo "bench: cannot run here: $*" >&2
	exit 77
}
. "$here/../tests/helpers-hosts.bash"
. "$here/../tests/helpers-netns.bash"
trap 'netns_cleanup' EXIT
netns_require
nmax=0
for n in $NODES; do [ "$n" -gt "$nmax" ] && nmax=$n; done

# the object spread: SIZE_MB of random bytes
head -c $((SIZE_MB * 1000000)) /dev/urandom >"$T/origin/blob"
size=$(stat -c %s "$T/origin/blob")
id=$(sha256sum "$T/origin/blob" | cut -c1-64)
obj=$T/origin/blob

netns_init "$nmax" "$RATE"
netns_host_start >&2
export VINE_ORIGIN=state

# on I CMD...: CMD as node I: its namespace, the origin's directory hidden
on() {
	local i=$1
	shift
	ip netns exec "${NETNS[i]}" unshare --mount --propagation private sh -c \
		'mount -t tmpfs tmpfs "$0" && exec "$@"' "$T/origin" "$@"
}

# register DB [vine-submit options]: the object in a fresh state
register() {
	local db=$1
	shift
	rm -f "$db" "$db"-*
	echo true | vine-submit -s "$db" -e "$obj" "$@" >/dev/null
}

# $servers: the subshells that `on ... &` forks; each server is the
# subshell's child (ip netns exec execs unshare, sh and then vine-spread),
# so the child is what gets the signal: killing the subshell would leave
# the server running in a namespace no one can name any more
servers=
stop_servers() {
	local p
	for p in $servers; do pkill -TERM -P "$p" 2>/dev/null || true; done
	for p in $servers; do wait "$p" 2>/dev/null || true; done
	servers=
}
trap 'stop_servers; netns_cleanup' EXIT

fresh() { rm -rf "$T"/c[0-9]* "$T"/addr*; }

# fetch_all N DB SERVE: N nodes fetch at once (with SERVE=1 each also
# serves its cache first); the wall time of the fetches goes to $took
fetch_all() {
	local n=$1 db=$2 serve=$3 i p w= s e
	fresh
	if [ "$serve" = 1 ]; then
		for i in $(seq "$n"); do
			on "$i" vine-spread -s "$HOST_URL$db" -c "$T/c$i" -N "n$i" --serve -l "${NETNS_ADDR[i]}:0" \
				>"$T/addr$i" 2>>"$T/serve.err" </dev/null &
			servers="$servers $!"
		done
		for i in $(seq "$n"); do
			k=0
			while [ ! -s "$T/addr$i" ] && [ $k -lt 3000 ]; do sleep 0.02; k=$((k + 1)); done
			[ -s "$T/addr$i" ] || { echo "bench: node $i does not serve" >&2; cat "$T/serve.err" >&2; exit 1; }
		done
	fi
	s=$(date +%s.%N)
	for i in $(seq "$n"); do
		on "$i" vine-spread -q -s "$HOST_URL$db" -c "$T/c$i" -N "n$i" "$id" >/dev/null 2>>"$T/fetch.err" &
		w="$w $!"
	done
	for p in $w; do wait "$p" || { echo "bench: a fetch failed" >&2; cat "$T/fetch.err" >&2; exit 1; }; done
	e=$(date +%s.%N)
	took=$(echo "$e - $s" | bc -l)
	stop_servers
	for i in $(seq "$n"); do
		[ "$(sha256sum <"$T/c$i/objects/$id" | cut -c1-64)" = "$id" ] || { echo "bench: node $i has a bad copy" >&2; exit 1; }
	done
	fresh
}

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

mb=$(megabytes "$size")
rate_mbs=$(echo "$RATE" | sed 's/mbit$//' | awk '{ printf "%.2f", $1 / 8 }')
echo "## spread at scale: $mb MB object (id ${id:0:12}), links of $RATE ($rate_mbs MB/s) each way, $(nproc) cores, $RUNS run(s), $(date -u +%FT%TZ)"
echo
# t1: one node alone from the origin
t1s=
for r in $(seq "$RUNS"); do
	register "$T/st1.db"
	fetch_all 1 "$T/st1.db" 0
	t1s="$t1s $took"
done
t1=$(median "$t1s")
echo "t1 (one node copies it from the origin alone, verified): $(stats "$t1s" | awk '{ print $2 }') s (min/median/max $(stats "$t1s")), load $(loadavg)"
echo
echo "| N | method | median s | ratio T/t1 | copies origin/peer | MB from origin | load (1/5/15 min) |"
echo "|---|---|---|---|---|---|---|"
for n in $NODES; do
	for m in $METHODS; do
		case $m in
		relay) opts= serve=1 ;;
		norelay) opts=--no-relay serve=1 ;;
		direct) [ "$n" -le "$DIRECT_MAX" ] || continue
			opts="--no-relay --k-origin $n" serve=0 ;;
		*) continue ;;
		esac
		ts=
		for r in $(seq "$RUNS"); do
			# shellcheck disable=SC2086
			register "$T/st.db" $opts
			fetch_all "$n" "$T/st.db" "$serve"
			ts="$ts $took"
		done
		t=$(median "$ts")
		set -- $(origin_bytes "$T/st.db")
		printf '| %s | %s | %.2f | %.2f | %s/%s | %s | %s |\n' "$n" "$m" "$t" "$(echo "$t / $t1" | bc -l)" \
			"$2" "$3" "$(megabytes "$1")" "$(loadavg)"
	done
done

[ "$READY" = 1 ] || exit 0
# ready, not just fetched: one node, its cache on a tmpfs
env_dir=$T/env
mkdir -p "$env_dir/lib/python3.11/site-packages"
cp -a /usr/lib/python3.11/. "$env_dir/lib/python3.11/"
cp -a /usr/lib/python3/dist-packages/. "$env_dir/lib/python3.11/site-packages/" 2>/dev/null || true
files=$(find "$env_dir" | wc -l)
vine-pack -q -f -x sitecustomize.py -o "$T/origin/env.tar.gz" "$env_dir" >/dev/null
rm -rf "$env_dir"
obj=$T/origin/env.tar.gz
size=$(stat -c %s "$obj")
id=$(sha256sum "$obj" | cut -c1-64)
# on_tmpfs DB CMD...: DB registered afresh, node 1 runs CMD -s STATE -c
# CACHE -N n1 ID with its cache a fresh tmpfs; the wall time goes to $took
on_tmpfs() {
	local db=$1 s e
	shift
	register "$db"
	rm -rf "$T/c1"
	mkdir -p "$T/c1"
	s=$(date +%s.%N)
	on 1 sh -c 'mount -t tmpfs -o size=8g tmpfs "$1" && shift && exec "$@"' sh "$T/c1" \
		"$@" -s "$HOST_URL$db" -c "$T/c1" -N n1 "$id" >/dev/null
	e=$(date +%s.%N)
	took=$(echo "$e - $s" | bc -l)
}
tf= tn= t0=
for r in $(seq "$RUNS"); do
	on_tmpfs "$T/st-ready.db" vine-spread -q
	t0="$t0 $took"
	on_tmpfs "$T/st-ready.db" vine-seed -q
	tf="$tf $took"
	VINE_TEST_NO_FOLLOW=1 on_tmpfs "$T/st-ready.db" vine-seed -q
	tn="$tn $took"
done
t0=$(median "$t0")
echo
echo "## ready, not just fetched: $(megabytes "$size") MB environment ($files files) to one node over a $RATE link, cache on a tmpfs"
echo
echo "| one node, same link | median s | / fetch alone | load (1/5/15 min) |"
echo "|---|---|---|---|"
printf '| fetch alone (vine-spread -s, verified) | %.2f | 1.00 | %s |\n' "$t0" "$(loadavg)"
printf '| ready: vine-seed -s, unpacked as it arrives | %.2f | %.2f | %s |\n' "$(median "$tf")" "$(echo "$(median "$tf") / $t0" | bc -l)" "$(loadavg)"
printf '| ready: vine-seed -s, VINE_TEST_NO_FOLLOW=1 (fetch, then unpack) | %.2f | %.2f | %s |\n' "$(median "$tn")" "$(echo "$(median "$tn") / $t0" | bc -l)" "$(loadavg)"
