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
# into $BUILD/node-red on the first run), DURABILITY (the queue's, default fsync),
# QOS (the QoS levels to run, default "0 1"), RUNS (flow rounds, default 1; with more,
# the medians are printed at the end), INSTANCES (triggerd processes sharing the load
# through one shared_group, default 1), LATENCY=0 to leave the latency runs out.
set -eu
BUILD=${BUILD:-build}
COUNT=${COUNT:-20000}
NODE_RED=${NODE_RED:-1}
DURABILITY=${DURABILITY:-fsync}
QOS=${QOS:-0 1}
RUNS=${RUNS:-1}
INSTANCES=${INSTANCES:-1}
LATENCY=${LATENCY:-1}
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

cpu_ticks() { # total and idle jiffies of the machine, from /proc/stat
	awk '/^cpu / {t = 0; for (i = 2; i <= NF; i++) t += $i; print t, $5 + $6; exit}' /proc/stat
}

idle_since() { # "TOTAL IDLE" from cpu_ticks: the machine's idle share since then, in %
	set -- $1 $(cpu_ticks)
	awk -v t0="$1" -v i0="$2" -v t1="$3" -v i1="$4" \
		'BEGIN {printf "%.0f", (t1 > t0 ? 100 * (i1 - i0) / (t1 - t0) : 0)}'
}

rate_of() { # the rate= figure of a mqtt_bench line
	sed -n 's/.* rate=\([0-9]*\) msg\/s.*/\1/p'
}

# One triggerd run: INSTANCES processes (several share the topic through a shared_group,
# each with its own client id and state directory). Prints the figures, the machine's
# idle CPU during the run and each process's resident memory. Each run has a group of
# its own: the broker keeps giving a group member whose session outlived its process
# (session_expiry) its share, which would wait for that session to come back.
run_triggerd() { # QOS COUNT MODE [latency]
	qos=$1
	fn_port=$(free_port)
	tds=""
	group=""
	RUN_SEQ=$((${RUN_SEQ:-0} + 1))
	[ "$INSTANCES" -gt 1 ] && group="shared_group = \"bench$RUN_SEQ\";"
	k=1
	while [ "$k" -le "$INSTANCES" ]; do
		admin_port=$(free_port)
		dir="$WORK/triggerd-$qos-$3-$k"
		mkdir -p "$dir"
		cat >"$dir/triggerd.cfg" <<EOF
queue = { durability = "$DURABILITY"; };
log = { level = "warn"; };
sources = ( { name = "bench"; kind = "mqtt"; uri = "$URI"; topics = ["bench/in"];
              qos = $qos; client_id = "triggerd-bench-$qos-$3-$k"; clean_start = true;
              receive_maximum = 1000; $group } );
functions = ( { name = "fn"; kind = "http"; url = "http://127.0.0.1:$fn_port/";
                concurrency = 64; timeout = "10s"; } );
triggers = ( { name = "all"; sources = ["bench"]; function = "fn"; invocation = "async"; } );
EOF
		"$TRIGGERD" -c "$dir/triggerd.cfg" --state-dir "$dir/state" \
			--admin-listen "127.0.0.1:$admin_port" --webhook-listen 127.0.0.1:0 \
			>"$dir/triggerd.log" 2>&1 &
		td=$!
		PIDS="$PIDS $td"
		tds="$tds $td"
		wait_http "http://127.0.0.1:$admin_port/readyz"
		k=$((k + 1))
	done
	t0=$(cpu_ticks)
	if [ "${4:-}" = latency ]; then
		line=$("$BENCH" latency "$URI" "$qos" 2000 5 "$fn_port" || true)
	else
		line=$("$BENCH" flow "$URI" "$qos" "$2" "$fn_port" || true)
	fi
	echo "triggerd   $line (machine idle $(idle_since "$t0")%)"
	LAST_RATE=$(echo "$line" | rate_of)
	for td in $tds; do
		rss=$(awk '/VmRSS/ {print $2}' "/proc/$td/status")
		hwm=$(awk '/VmHWM/ {print $2}' "/proc/$td/status")
		echo "triggerd   resident memory: ${rss} kB now, ${hwm} kB peak"
		stop_pid "$td"
	done
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
	line=$("$BENCH" flow "$URI" "$qos" "$2" "$fn_port" || true)
	echo "node-red   $line"
	NR_RATE=$(echo "$line" | rate_of)
	rss=$(awk '/VmRSS/ {print $2}' "/proc/$nr/status")
	echo "node-red   resident memory: ${rss} kB"
	stop_pid "$nr"
}

ratio() { # A B: A/B in %, or - when B is empty or 0
	awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN {if (b > 0) printf "%.0f%%", 100 * a / b; else print "-"}'
}

median() { # numbers on stdin: their median (the lower middle one of an even count)
	sort -n | awk '{v[NR] = $1} END {if (NR) print v[int((NR + 1) / 2)]}'
}

# Whether several paho clients of one process can hold several messages at once (the
# idea of several clients per source in one shared subscription): see README.md.
echo "== paho: callback threads of 1 and 4 clients in one process"
for n in 1 4; do
	printf 'paho       '
	"$BENCH" threads "$URI" "$n" || true
done

RESULTS=$WORK/results.txt
: >"$RESULTS"
run=1
while [ "$run" -le "$RUNS" ]; do
	for qos in $QOS; do
		echo "== QoS $qos, 256-byte payloads (round $run of $RUNS, $INSTANCES triggerd)"
		t0=$(cpu_ticks)
		line=$("$BENCH" raw "$URI" "$qos" "$COUNT" || true)
		echo "paho       $line (machine idle $(idle_since "$t0")%)"
		raw=$(echo "$line" | rate_of)
		LAST_RATE=""
		run_triggerd "$qos" "$COUNT" flow
		echo "ratio      triggerd / raw paho: $(ratio "$LAST_RATE" "$raw")"
		echo "$qos raw ${raw:-0}" >>"$RESULTS"
		echo "$qos triggerd ${LAST_RATE:-0}" >>"$RESULTS"
		echo "$qos ratio $(awk -v a="${LAST_RATE:-0}" -v b="${raw:-0}" \
			'BEGIN {printf "%.1f", (b > 0 ? 100 * a / b : 0)}')" >>"$RESULTS"
		if node_red_ready; then
			NR_RATE=""
			run_node_red "$qos" $((COUNT / 4))
			echo "ratio      triggerd / Node-RED: $(awk -v a="${LAST_RATE:-0}" \
				-v b="${NR_RATE:-0}" 'BEGIN {if (b > 0) printf "%.1f x", a / b; else print "-"}')"
			echo "$qos node-red ${NR_RATE:-0}" >>"$RESULTS"
		fi
	done
	run=$((run + 1))
done
if [ "$RUNS" -gt 1 ]; then
	echo "== medians of $RUNS rounds (COUNT=$COUNT, durability $DURABILITY, $INSTANCES triggerd)"
	for qos in $QOS; do
		m_raw=$(awk -v q="$qos" '$1 == q && $2 == "raw" {print $3}' "$RESULTS" | median)
		m_td=$(awk -v q="$qos" '$1 == q && $2 == "triggerd" {print $3}' "$RESULTS" | median)
		m_ratio=$(awk -v q="$qos" '$1 == q && $2 == "ratio" {print $3}' "$RESULTS" | median)
		all=$(awk -v q="$qos" '$1 == q && $2 == "ratio" {printf "%s%.0f%%", n++ ? " " : "", $3}' \
			"$RESULTS")
		echo "median     QoS $qos: raw paho $m_raw msg/s, triggerd $m_td msg/s," \
			"triggerd / raw $m_ratio% (rounds: $all)"
		m_nr=$(awk -v q="$qos" '$1 == q && $2 == "node-red" {print $3}' "$RESULTS" | median)
		[ -z "$m_nr" ] || echo "median     QoS $qos: Node-RED $m_nr msg/s"
	done
fi
[ "$LATENCY" = 1 ] || exit 0
echo "== latency at 2,000 msg/s for 5 s"
run_triggerd 0 0 lat latency
run_triggerd 1 0 lat latency
