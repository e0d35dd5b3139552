#!/bin/sh
# The MQTT benchmark (see README.md beside this file): messages/s from a publisher through
# mosquitto and triggerd to an HTTP function at QoS 0 and 1 with 256-byte payloads, beside
# (a) a plain paho subscriber on the same broker and (b) Node-RED (an `mqtt in` node wired
# to an `http request` node) doing the same flow; then p50/p99 latency at 2,000 msg/s and
# triggerd's resident memory. Everything runs on loopback and every load is bounded.
#
#   BUILD=build-bench sh bench/mqtt/run.sh        (what `make bench` runs)
#
# Environment: BUILD (where triggerd and bench/mqtt/mqtt_bench are), COUNT (messages per
# flow run, default 20000), NODE_RED=0 to leave Node-RED out (it is installed with npm
# into $BUILD/node-red on the first run), DURABILITY (the queue's, default fsync).
set -eu
BUILD=${BUILD:-build}
COUNT=${COUNT:-20000}
NODE_RED=${NODE_RED:-1}
DURABILITY=${DURABILITY:-fsync}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
BENCH=$BUILD/bench/mqtt/mqtt_bench
TRIGGERD=$BUILD/triggerd
WORK=$(mktemp -d /tmp/triggerd-mqtt-bench.XXXXXX)
PIDS=""

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

stop_pid() { # PID: SIGTERM, then SIGKILL after 10 s
	[ -n "$1" ] || return 0
	kill "$1" 2>/dev/null || return 0
	i=0
	while kill -0 "$1" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	kill -9 "$1" 2>/dev/null || true
}

cleanup() {
	for p in $PIDS; do stop_pid "$p"; done
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

wait_http() { # URL: until it answers 200 (at most 20 s)
	i=0
	until [ "$(curl -s -o /dev/null -w '%{http_code}' "$1" 2>/dev/null)" = 200 ]; do
		i=$((i + 1))
		[ $i -lt 200 ] || { echo "bench: $1 never became ready" >&2; return 1; }
		sleep 0.1
	done
}

BROKER_PORT=$(free_port)
mkdir -p "$WORK/broker"
cat >"$WORK/broker/mosquitto.conf" <<EOF
listener $BROKER_PORT 127.0.0.1
allow_anonymous true
max_queued_messages 0
max_inflight_messages 0
set_tcp_nodelay true
user root
log_dest file $WORK/broker/mosquitto.log
EOF
mosquitto -c "$WORK/broker/mosquitto.conf" >/dev/null 2>&1 &
BROKER_PID=$!
PIDS="$BROKER_PID"
sleep 0.5
URI=tcp://127.0.0.1:$BROKER_PORT
echo "broker: mosquitto $(mosquitto -h 2>/dev/null | head -1 | awk '{print $3}') on $URI;" \
	"queue durability: $DURABILITY; $(nproc) CPUs"

run_triggerd() { # QOS COUNT MODE [latency]: one triggerd run, prints its figures and RSS
	qos=$1
	fn_port=$(free_port)
	admin_port=$(free_port)
	dir="$WORK/triggerd-$qos-$3"
	mkdir -p "$dir"
	cat >"$dir/triggerd.cfg" <<EOF
queue = { durability = "$DURABILITY"; };
log = { level = "warn"; };
sources = ( { name = "bench"; kind = "mqtt"; uri = "$URI"; topics = ["bench/in"];
              qos = $qos; client_id = "triggerd-bench-$qos-$3"; clean_start = true;
              receive_maximum = 1000; } );
functions = ( { name = "fn"; kind = "http"; url = "http://127.0.0.1:$fn_port/";
                concurrency = 64; timeout = "10s"; } );
triggers = ( { name = "all"; sources = ["bench"]; function = "fn"; invocation = "async"; } );
EOF
	"$TRIGGERD" -c "$dir/triggerd.cfg" --state-dir "$dir/state" \
		--admin-listen "127.0.0.1:$admin_port" --webhook-listen 127.0.0.1:0 \
		>"$dir/triggerd.log" 2>&1 &
	td=$!
	PIDS="$PIDS $td"
	wait_http "http://127.0.0.1:$admin_port/readyz"
	if [ "${4:-}" = latency ]; then
		printf 'triggerd   '
		"$BENCH" latency "$URI" "$qos" 2000 5 "$fn_port" || true
	else
		printf 'triggerd   '
		"$BENCH" flow "$URI" "$qos" "$2" "$fn_port" || true
	fi
	rss=$(awk '/VmRSS/ {print $2}' "/proc/$td/status")
	hwm=$(awk '/VmHWM/ {print $2}' "/proc/$td/status")
	echo "triggerd   resident memory: ${rss} kB now, ${hwm} kB peak"
	stop_pid "$td"
}

node_red_ready() {
	[ "$NODE_RED" = 1 ] || return 1
	NR_DIR=$BUILD/node-red
	if [ ! -x "$NR_DIR/node_modules/.bin/node-red" ]; then
		echo "node-red: installing node-red@4 with npm into $NR_DIR"
		mkdir -p "$NR_DIR"
		(cd "$NR_DIR" && npm install --no-audit --no-fund --loglevel=error node-red@4 \
			>"$NR_DIR/npm.log" 2>&1) || { echo "node-red: npm install failed"; return 1; }
	fi
	return 0
}

run_node_red() { # QOS COUNT
	qos=$1
	fn_port=$(free_port)
	nr_port=$(free_port)
	dir="$WORK/node-red-$qos"
	mkdir -p "$dir"
	cat >"$dir/flows.json" <<EOF
[
 {"id":"broker","type":"mqtt-broker","name":"bench","broker":"127.0.0.1","port":"$BROKER_PORT",
  "clientid":"node-red-bench-$qos","autoConnect":true,"usetls":false,"protocolVersion":"4",
  "keepalive":"60","cleansession":true},
 {"id":"flow","type":"tab","label":"bench"},
 {"id":"in","type":"mqtt in","z":"flow","name":"","topic":"bench/in","qos":"$qos",
  "datatype":"buffer","broker":"broker","nl":false,"rap":false,"inputs":0,"wires":[["req"]]},
 {"id":"req","type":"http request","z":"flow","name":"","method":"POST","ret":"txt",
  "paytoqs":"ignore","url":"http://127.0.0.1:$fn_port/","persist":true,"wires":[[]]}
]
EOF
	cat >"$dir/settings.js" <<EOF
module.exports = { uiPort: $nr_port, uiHost: "127.0.0.1", flowFile: "flows.json",
  userDir: "$dir", logging: { console: { level: "warn" } }, editorTheme: { tours: false } };
EOF
	"$NR_DIR/node_modules/.bin/node-red" --settings "$dir/settings.js" --userDir "$dir" \
		"$dir/flows.json" >"$dir/node-red.log" 2>&1 &
	nr=$!
	PIDS="$PIDS $nr"
	wait_http "http://127.0.0.1:$nr_port/" || { stop_pid "$nr"; return 0; }
	sleep 2 # the MQTT connection and subscription
	printf 'node-red   '
	"$BENCH" flow "$URI" "$qos" "$2" "$fn_port" || true
	rss=$(awk '/VmRSS/ {print $2}' "/proc/$nr/status")
	echo "node-red   resident memory: ${rss} kB"
	stop_pid "$nr"
}

for qos in 0 1; do
	echo "== QoS $qos, 256-byte payloads"
	printf 'paho       '
	"$BENCH" raw "$URI" "$qos" "$COUNT" || true
	run_triggerd "$qos" "$COUNT" flow
	if node_red_ready; then
		nr_count=$((COUNT / 4))
		run_node_red "$qos" "$nr_count"
	fi
done
echo "== latency at 2,000 msg/s for 5 s"
run_triggerd 0 0 lat latency
run_triggerd 1 0 lat latency
