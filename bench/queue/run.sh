#!/bin/sh
# Queue throughput (bench/queue/queue_bench.c): push + commit per durability mode and
# group size, entries/s, median of 5 runs, with the state directory on this disk
# (under the build folder, not a tmpfs). Run by `make bench` with BUILD=build-bench.
set -e
BUILD=${BUILD:-build}
bin=$BUILD/bench/queue/queue_bench
state=${QUEUE_BENCH_STATE:-$BUILD/bench/queue/state}
if [ ! -x "$bin" ]; then
	echo "queue bench: $bin is missing (make bench builds it)" >&2
	exit 1
fi
mkdir -p "$state"
df -T "$state" | awk 'NR == 2 { printf "state dir on %s (%s)\n", $1, $2 }'
"$bin" "$state"
rm -rf "$state"
