#!/bin/sh
# install-deps.sh build|check|demo|bench|fuzz - install the Debian packages
# vine needs for building, for its tests, for the demo, for the benchmarks
# or for fuzzing (clang and its libFuzzer and sanitizer runtimes).
# Installs as root or through passwordless sudo; otherwise prints the exact
# apt-get line and fails.
set -eu

build="build-essential pkg-config libarchive-dev libssh2-1-dev zlib1g-dev
	libsqlite3-dev libssl-dev libjansson-dev libdeflate-dev"
check="$build bats bats-assert bats-support bats-file python3 python3-venv pigz
	openssh-server openssh-client mandoc parallel slurm-wlm munge strace
	python3-dill python3-tblib python3-psutil python3-zmq python3-requests
	python3-sortedcontainers python3-setproctitle python3-filelock python3-paramiko
	python3-sqlalchemy"
demo="$build python3 python3-venv"
fuzz="$build clang libclang-rt-14-dev"
bench="$check pigz hyperfine bc linux-perf sshfs python3-numpy python3-scipy python3-pandas
	python3-matplotlib python3-sklearn"

case "${1:-build}" in
build) want=$build ;;
check) want=$check ;;
demo) want=$demo ;;
bench) want=$bench ;;
fuzz) want=$fuzz ;;
*) echo "usage: install-deps.sh build|check|demo|bench|fuzz" >&2; exit 2 ;;
esac

if ! command -v dpkg-query >/dev/null 2>&1; then
	echo "install-deps: not a Debian system; make sure these are installed:" $want >&2
	exit 0
fi

missing=
for p in $want; do
	s=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$s" in
	*" installed") ;;
	*) missing="$missing $p" ;;
	esac
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
	sudo=
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
	sudo="sudo -n"
else
	echo "install-deps: missing packages; run as root:" >&2
	echo "  apt-get update && apt-get install -y$missing" >&2
	exit 1
fi
echo "install-deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
