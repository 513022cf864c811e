# bench/lib.sh - shared by the benchmark scripts: timing and statistics.

# t_run VAR CMD...: run CMD, append its wall time (s) to $VAR (space separated)
t_run() {
	_var=$1; shift
	_s=$(date +%s.%N)
	"$@" >/dev/null 2>"$BENCH_WORK/last.err" || { echo "bench: failed: $*" >&2; cat "$BENCH_WORK/last.err" >&2; exit 1; }
	_e=$(date +%s.%N)
	eval "$_var=\"\${$_var:-} $(echo "$_e - $_s" | bc -l)\""
}

# stats "t1 t2 ...": prints "min median max" with 3 decimals
stats() {
	echo "$1" | tr ' ' '\n' | grep . | sort -g | awk '
		{ v[NR] = $1 }
		END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
		      printf "%.3f %.3f %.3f\n", v[1], m, v[NR] }'
}

median() { stats "$1" | awk '{ print $2 }'; }

# row NAME "times" [extra columns...]: a markdown table row with min/median/max
row() {
	_n=$1; _t=$2; shift 2
	set -- $(stats "$_t") "$@"
	printf '| %s | %s | %s | %s |' "$_n" "$1" "$2" "$3"
	shift 3
	for c in "$@"; do printf ' %s |' "$c"; done
	printf '\n'
}

# bench_enter SCRIPT: the common start of a benchmark.  Builds the TESTBED
# venv once (bench/mkvenv.sh), then re-runs SCRIPT inside a private mount
# namespace with an 8 GB tmpfs at $BENCH_WORK/tmpfs for all output (disk
# extraction is too noisy on these machines).  Needs $here and VINE_BIN;
# BENCH_SHELL names the shell for SCRIPT (default sh).
bench_enter() {
	: "${VINE_BIN:?run through make bench}"
	export PATH="$VINE_BIN:$PATH"
	export BENCH_WORK="${BENCH_WORK:-$here/work}"
	if [ -z "${VINE_BENCH_NS:-}" ]; then
		mkdir -p "$BENCH_WORK/tmpfs"
		sh "$here/mkvenv.sh" "$BENCH_WORK/venv" >&2
		exec env VINE_BENCH_NS=1 unshare --mount --propagation private \
			sh -c 'mount -t tmpfs -o size=8g tmpfs "$1" && exec "$2" "$0"' "$1" "$BENCH_WORK/tmpfs" "${BENCH_SHELL:-sh}"
	fi
}

# The spreading rounds (spread.sh, spread-ssh.sh).  They use $T (a tmpfs),
# $NODES, $id (the object) and $servers (pids of the running servers).
#
# spread_object: pack the venv into $T/env.tar.gz; sets $size and $id
spread_object() {
	# the venv links sitecustomize.py to /etc, outside it: leave it out
	vine-pack -q -f -x sitecustomize.py -o "$T/env.tar.gz" "$BENCH_WORK/venv" >/dev/null
	size=$(stat -c %s "$T/env.tar.gz")
	id=$(sha256sum "$T/env.tar.gz" | cut -c1-64)
	servers=
}

# fresh: remove the copies of the last round (untimed: freeing the pages of
# 8 copies is not part of getting ready)
fresh() { rm -rf "$T"/n[0-9]* "$T"/d[0-9]*; }

stop_servers() {
	local p
	for p in $servers; do kill "$p" 2>/dev/null || true; done
	for p in $servers; do wait "$p" 2>/dev/null || true; done
	servers=
}

# on_node N CMD...: run CMD as node N sees the world.  Here every node
# sees this host's files; a benchmark whose nodes have mounts of their own
# (spread-netfs.sh) defines it again.
on_node() { shift; "$@"; }

# vine_round STATE: NODES servers registered in STATE (a path or an
# ssh:// URL), then all nodes fetch at once; ready when every fetch has
# ended (stop_servers afterwards, untimed)
vine_round() {
	local st=$1 n p w=
	for n in $(seq "$NODES"); do
		vine-spread -s "$st" -c "$T/n$n" -N "n$n" --serve -l "127.0.0.$((n + 1)):0" \
			>"$T/addr$n" 2>>"$BENCH_WORK/serve.err" </dev/null &
		servers="$servers $!"
	done
	for n in $(seq "$NODES"); do
		while [ ! -s "$T/addr$n" ]; do sleep 0.01; done
	done
	for n in $(seq "$NODES"); do
		on_node "$n" vine-spread -q -s "$st" -c "$T/n$n" -N "n$n" "$id" >/dev/null &
		w="$w $!"
	done
	for p in $w; do wait "$p"; done
}

# direct_verified: NODES nodes each copy $origin at once and verify it
# (vine-spread --origin: copy + SHA-256, as a fetch does)
direct_verified() {
	local n p w=
	for n in $(seq "$NODES"); do
		on_node "$n" vine-spread -q -c "$T/d$n" --origin "$origin" "$id" >/dev/null &
		w="$w $!"
	done
	for p in $w; do wait "$p"; done
}

# path_rounds COPY LABEL: RUNS rounds of vine-spread -s with $origin (a
# path) registered, relaying and with --no-relay, of the function COPY
# (NODES unchecked copies at once) and of direct_verified; then their
# table rows, COPY's named "NODES x LABEL (no check)"
path_rounds() {
	local copy=$1 label=$2 i t_vine= t_norelay= t_copy= t_direct= b_vine= b_norelay=
	for i in $(seq "$RUNS"); do
		rm -f "$T"/st*
		echo true | vine-submit -s "$T/st-relay.db" -e "$origin" >/dev/null
		echo true | vine-submit -s "$T/st-norelay.db" -e "$origin" --no-relay >/dev/null
		fresh
		t_run t_vine vine_round "$T/st-relay.db"
		stop_servers
		b_vine=$(origin_bytes "$T/st-relay.db")
		fresh
		t_run t_norelay vine_round "$T/st-norelay.db"
		stop_servers
		b_norelay=$(origin_bytes "$T/st-norelay.db")
		fresh
		t_run t_copy "$copy"
		fresh
		t_run t_direct direct_verified
	done
	set -- $b_vine
	row "vine-spread -s (relay, K=2, K_origin=2)" "$t_vine" "$(megabytes "$1")" "$2/$3"
	set -- $b_norelay
	row "vine-spread -s --no-relay" "$t_norelay" "$(megabytes "$1")" "$2/$3"
	row "$NODES x $label (no check)" "$t_copy" "$(megabytes $((size * NODES)))" "$NODES/0"
	row "$NODES x vine-spread --origin (copy + verify)" "$t_direct" "$(megabytes $((size * NODES)))" "$NODES/0"
}

# origin_bytes STATE: "bytes_origin served_origin served_peer" of its
# first object
origin_bytes() {
	vine-status -s "$1" --json | python3 -c 'import json, sys; o = json.load(sys.stdin)["objects"][0]; print(o["bytes_origin"], o["served_origin"], o["served_peer"])'
}

spread_table_head() {
	echo
	echo "| method | min s | median s | max s | MB from origin | copies origin/peer |"
	echo "|---|---|---|---|---|---|"
}

# megabytes BYTES: in MB (10^6), one decimal
megabytes() { echo "scale=1; $1 / 1000000" | bc; }
