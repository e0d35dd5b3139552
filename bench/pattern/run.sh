#!/bin/sh
# Pattern engine benchmark (see README.md): generates the citylots events and both rule
# mixes once (not committed), then runs pattern_bench on each mix. Run from the
# repository root, after `make bench` built build-bench/bench/pattern/pattern_bench
# (`make bench` runs this script itself).
#
#   BUILD                 build folder (default build-bench)
#   TD_PATTERN_BENCH_DATA where the data goes (default $BUILD/pattern-data)
#   TD_BENCH_GEN_DIR      folder of gen_citylots.py, gen_rules.py, expected_matches.tsv
#                         (default: ../shared/bench beside the repository)
#   REPEAT                runs per K, the median is reported (default 5)
#   BENCH_CPU             CPU to pin to with taskset (default 1; empty: no pinning)
set -e
BUILD=${BUILD:-build-bench}
DATA=${TD_PATTERN_BENCH_DATA:-$BUILD/pattern-data}
GEN=${TD_BENCH_GEN_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/../shared/bench}
BIN=${PATTERN_BENCH:-$BUILD/bench/pattern/pattern_bench}
REPEAT=${REPEAT:-5}
BENCH_CPU=${BENCH_CPU-1}

if [ ! -x "$BIN" ]; then
	echo "run.sh: $BIN is missing: run 'make bench' first" >&2
	exit 2
fi
mkdir -p "$DATA"
if [ ! -s "$DATA/events.jsonl" ]; then
	python3 "$GEN/gen_citylots.py" -n 100000 --seed 1 -o "$DATA/events.jsonl.tmp"
	mv "$DATA/events.jsonl.tmp" "$DATA/events.jsonl"
fi
for mix in portable full; do
	if [ ! -s "$DATA/rules_$mix.tsv" ]; then
		python3 "$GEN/gen_rules.py" -k 10000 --mix "$mix" -o "$DATA/rules_$mix.tsv.tmp"
		mv "$DATA/rules_$mix.tsv.tmp" "$DATA/rules_$mix.tsv"
	fi
done

PIN=
if [ -n "$BENCH_CPU" ] && command -v taskset >/dev/null 2>&1; then
	PIN="taskset -c $BENCH_CPU"
fi
status=0
for mix in portable full; do
	$PIN "$BIN" --repeat "$REPEAT" --mix "$mix" --expected "$GEN/expected_matches.tsv" \
		"$DATA/rules_$mix.tsv" "$DATA/events.jsonl" || status=1
done
exit $status
