#!/bin/sh
# bench/pack-seed.sh - vine-pack and vine-seed against tar, gzip and pigz on
# the TESTBED venv (bench/mkvenv.sh), same run, RUNS repetitions each
# (default 3), everything unpacked onto a private tmpfs (extraction onto
# disk is too noisy on this machine).  Prints markdown tables.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
RUNS=${RUNS:-3}
LEVEL=${LEVEL:-6}
. "$here/lib.sh"
bench_enter "$0"
T=$BENCH_WORK/tmpfs
src=$BENCH_WORK/venv
files=$(find "$src" | wc -l)
bytes=$(du -sb "$src" | cut -f1)

echo "## pack and seed: $(du -sh "$src" | cut -f1), $files files, level $LEVEL, $(nproc) cores, $RUNS runs"
echo
echo "| pack | min s | median s | max s | size MB |"
echo "|---|---|---|---|---|"
p_vine= p_gz= p_pigz=
for i in $(seq "$RUNS"); do
	t_run p_vine vine-pack -q -f -l "$LEVEL" -o "$T/vine.tar.gz" "$src"
	t_run p_gz tar -C "$src" -cf "$T/tar.tar.gz" -I "gzip -$LEVEL" .
	t_run p_pigz tar -C "$src" -cf "$T/pigz.tar.gz" -I "pigz -$LEVEL" .
done
mb() { echo "scale=1; $(stat -c %s "$1") / 1000000" | bc; }
row "vine-pack -j $(nproc)" "$p_vine" "$(mb "$T/vine.tar.gz")"
row "tar czf (gzip -$LEVEL)" "$p_gz" "$(mb "$T/tar.tar.gz")"
row "tar -I pigz cf" "$p_pigz" "$(mb "$T/pigz.tar.gz")"
echo

echo "| unpack onto tmpfs | min s | median s | max s |"
echo "|---|---|---|---|"
s_j1= s_j2= x_gz= x_pigz= warm=
for i in $(seq "$RUNS"); do
	rm -rf "$T/c1" "$T/c2" "$T/x1" "$T/x2"
	t_run s_j1 vine-seed -q -j 1 -c "$T/c1" "$T/vine.tar.gz"
	t_run s_j2 vine-seed -q -j 2 -c "$T/c2" "$T/vine.tar.gz"
	mkdir "$T/x1" "$T/x2"
	t_run x_gz tar -C "$T/x1" -xzf "$T/tar.tar.gz"
	t_run x_pigz tar -C "$T/x2" -I pigz -xf "$T/pigz.tar.gz"
done
for i in $(seq 10); do
	t_run warm vine-seed -q -c "$T/c2" "$T/vine.tar.gz"
done
row "vine-seed -j 1 (cold: copy+verify+unpack+relocate)" "$s_j1"
row "vine-seed -j 2 (cold)" "$s_j2"
row "tar xzf" "$x_gz"
row "tar -I pigz xf" "$x_pigz"
row "vine-seed (warm, 10 runs)" "$warm"
echo
m1=$(median "$s_j1") m2=$(median "$s_j2") mg=$(median "$x_gz") mw=$(median "$warm")
echo "speed-up of cold vine-seed -j 2 over tar xzf: $(echo "scale=2; $mg / $m2" | bc)x (bar 1.5x)"
echo "speed-up of -j 2 over -j 1: $(echo "scale=2; $m1 / $m2" | bc)x (bar 1.6x)"
echo "warm seed median: $(echo "$mw * 1000" | bc | cut -d. -f1) ms (bar 50 ms)"
# the seeded environment must work
"$(vine-seed -q -c "$T/c2" "$T/vine.tar.gz")/bin/python3" -c 'import numpy, scipy' || { echo "bench: seeded env broken" >&2; exit 1; }
