#!/bin/sh
# Runs the Invoke API / process function benchmark (invoke_bench.c says what it
# measures): triggerd with no-op Python and Node.js handlers on 127.0.0.1, stopped by its
# PID at the end.
# Usage: BUILD=build-bench sh bench/invoke/run.sh [--requests N] [--cold N]
set -eu
BUILD="${BUILD:-build-bench}"
"$BUILD/bench/invoke/invoke_bench" --triggerd "$BUILD/triggerd" "$@"
