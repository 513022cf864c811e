#!/bin/sh
# bench/mkvenv.sh DIR - the benchmark environment of TESTBED.md: a venv made
# with --copies holding the standard library and numpy, scipy, pandas,
# matplotlib and scikit-learn from Debian's packages (~590 MB, ~23,000 files).
set -eu
dir=$1
[ -e "$dir/.complete" ] && exit 0
rm -rf "$dir"
/usr/bin/python3 -m venv --copies "$dir"
cp -a /usr/lib/python3.11/. "$dir/lib/python3.11/"
cp -a /usr/lib/python3/dist-packages/. "$dir/lib/python3.11/site-packages/"
"$dir/bin/python3" -c 'import numpy, scipy, pandas, matplotlib, sklearn' 
touch "$dir/.complete"
