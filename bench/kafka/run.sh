#!/bin/sh
# Runs the kafka source benchmark (kafka_bench.c says what it measures) against a mock
# cluster that kafka_bench starts itself (tests/tools/mock_kafka, on loopback ports) and
# stops at the end. Usage: BUILD=build-bench sh bench/kafka/run.sh [--records N]
#   [--unbatched N] [--partitions P]
set -eu
BUILD="${BUILD:-build-bench}"
exec "$BUILD/bench/kafka/kafka_bench" --triggerd "$BUILD/triggerd" \
	--mock "$BUILD/tools/mock_kafka" "$@"
