#!/bin/sh
# Runs the redis source benchmark (redis_bench.c says what it measures) against a
# redis-server started here on a free loopback port, stopped by its PID at the end.
# Usage: BUILD=build-bench sh bench/redis/run.sh [--entries N] [--rate R]
set -eu
BUILD="${BUILD:-build-bench}"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
dir=$(mktemp -d /tmp/redis-bench.XXXXXX)
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" \
	--logfile "$dir/redis.log" --daemonize no &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$dir"' EXIT INT TERM
i=0
until redis-cli -p "$port" ping >/dev/null 2>&1; do
	i=$((i + 1))
	[ "$i" -lt 100 ] || { echo "redis-server did not start" >&2; exit 1; }
	sleep 0.05
done
"$BUILD/bench/redis/redis_bench" --redis-port "$port" --triggerd "$BUILD/triggerd" "$@"
