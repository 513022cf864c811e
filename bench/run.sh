#!/bin/sh
# bench/run.sh [pack-seed|tasks|spread|spread-netfs|spread-ssh]... - run benchmarks (all by default)
# and print their results as markdown.  Needs VINE_BIN (make bench sets it).
# Not run by default (root, network namespaces, many minutes): spread-scale.
set -eu
cd "$(dirname "$0")"
: "${VINE_BIN:?run through make bench}"
[ $# -gt 0 ] || set -- pack-seed tasks spread spread-netfs spread-ssh
for b in "$@"; do
	[ -f "./$b.sh" ] || { echo "bench: no benchmark '$b'" >&2; exit 2; }
	"./$b.sh"
done
