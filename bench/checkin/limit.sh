#!/bin/sh
# Runs every -limit comparison issue 14 asks for, one after the other, with
# the machine's load average before and after each:
# SQLite and PostgreSQL, routine and event-carrying check-ins, 100,000
# installations, and both stores with 1,000,000 installations.
#   bench/checkin/limit.sh [DURATION [ROUNDS]]     (default 20s, 4)
set -eu
d=${1:-20s}
r=${2:-4}
bin=$(mktemp -d)/checkin
trap 'rm -rf "$(dirname "$bin")"' EXIT
go build -o "$bin" ./bench/checkin
nproc=$(nproc)
for args in \
	"-store sqlite -installations 100000 -event-share 0" \
	"-store sqlite -installations 100000 -event-share 1" \
	"-store postgres -installations 100000 -event-share 0" \
	"-store postgres -installations 100000 -event-share 1" \
	"-store sqlite -installations 1000000 -event-share 0" \
	"-store sqlite -installations 1000000 -event-share 1" \
	"-store postgres -installations 1000000 -event-share 0" \
	"-store postgres -installations 1000000 -event-share 1"; do
	echo "== go run ./bench/checkin -limit -seed $args -duration $d -rounds $r"
	echo "cores $nproc, $(date -u +%H:%M:%SZ), load before: $(cut -d' ' -f1-3 /proc/loadavg)"
	# shellcheck disable=SC2086
	"$bin" -limit -seed $args -duration "$d" -rounds "$r"
	echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
done
