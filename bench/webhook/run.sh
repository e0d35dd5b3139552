#!/bin/sh
# Webhook benchmark: requests/s and latency of a webhook through triggerd to an HTTP
# function, against wrk driving the same function directly in the same run.
#   sync   POST /hooks/sync  -> http function, the function's answer is the response
#   async  POST /hooks/async -> durably queued (fsync group commit), 202
# Latency at a fixed rate (50% of the direct rate) comes from hey (-q per worker).
# Everything listens on 127.0.0.1 and every load run is bounded by DURATION seconds.
# Usage: BUILD=build-bench sh bench/webhook/run.sh   (make bench does this)
set -eu
BUILD=${BUILD:-build-bench}
DURATION=${DURATION:-10}
CONNS=${CONNS:-32}
THREADS=${THREADS:-2}
dir=$(mktemp -d)
pids=""
cleanup() { for p in $pids; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT INT TERM
command -v wrk >/dev/null && command -v hey >/dev/null || {
	echo "bench/webhook: needs wrk and hey (apt-get install wrk hey)"; exit 1; }

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
FN_PORT=$(port); WH_PORT=$(port); AD_PORT=$(port)
"$BUILD/bench/webhook/fn_server" "$FN_PORT" & pids="$pids $!"
cat > "$dir/bench.cfg" <<CFG
log = { level = "warn"; };
queue = { durability = "fsync"; };
sources = ( { name = "sync"; kind = "webhook"; path = "/hooks/sync"; },
            { name = "async"; kind = "webhook"; path = "/hooks/async"; } );
functions = ( { name = "fn"; kind = "http"; url = "http://127.0.0.1:$FN_PORT/"; concurrency = 256;
                queue_max = 10000000; } );
triggers = ( { name = "s"; sources = ["sync"]; function = "fn"; invocation = "sync"; },
             { name = "a"; sources = ["async"]; function = "fn"; invocation = "async"; } );
CFG
"$BUILD/triggerd" -c "$dir/bench.cfg" --state-dir "$dir/state" \
	--webhook-listen "127.0.0.1:$WH_PORT" --admin-listen "127.0.0.1:$AD_PORT" 2>"$dir/triggerd.log" &
TD=$!; pids="$pids $TD"
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$AD_PORT/healthz" >/dev/null && break; sleep 0.05; done
echo '{"order": 42, "items": ["a", "b"], "total": 12.5}' > "$dir/body.json"
cat > "$dir/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"order": 42, "items": ["a", "b"], "total": 12.5}'
LUA
rate() { wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" -s "$dir/post.lua" "$1" | awk '/Requests\/sec/ {print int($2)}'; }
direct=$(rate "http://127.0.0.1:$FN_PORT/")
sync=$(rate "http://127.0.0.1:$WH_PORT/hooks/sync")
async=$(rate "http://127.0.0.1:$WH_PORT/hooks/async")
half=$((direct / 2))
q=$((half / CONNS)); [ "$q" -gt 0 ] || q=1
lat() { hey -z "${DURATION}s" -c "$CONNS" -q "$q" -m POST -T application/json -D "$dir/body.json" "$1" |
	awk '/ 50% in/ {p50=$3} / 99% in/ {p99=$3} END {printf "%.3f %.3f", p50*1000, p99*1000}'; }
direct_lat=$(lat "http://127.0.0.1:$FN_PORT/")
sync_lat=$(lat "http://127.0.0.1:$WH_PORT/hooks/sync")
rss=$(awk '/VmRSS/ {print $2}' "/proc/$TD/status")
echo "webhook benchmark ($DURATION s per run, $CONNS connections, wrk -t$THREADS; requests/s)"
printf '  direct to the function   %8d\n' "$direct"
printf '  sync through triggerd    %8d  (%d%% of direct)\n' "$sync" $((100 * sync / direct))
printf '  async accepted (fsync)   %8d\n' "$async"
echo "latency at $((q * CONNS)) requests/s (50% of direct), hey, ms:"
echo "  direct p50/p99: $direct_lat"
echo "  sync   p50/p99: $sync_lat"
echo "  triggerd resident memory: $((rss / 1024)) MB"
