#!/usr/bin/env bash
# tests/perf/run.sh measures agora against the performance targets written down in
# docs/performance.md:
#
#   - GET /v1/products/{id} through the whole stack (huma, bus, SQLite) reaches at
#     least 60% of the requests/s of tests/perf/bare, a bare net/http handler that
#     returns the same JSON bytes, measured with wrk in the same run, same settings;
#   - the binary idles under 40 MiB resident (VmRSS), after start and after the load;
#   - it is ready in under 300 ms on an existing data dir (exec until /readyz is 200).
#
# What it does: builds agora and bare into a temporary directory; starts
# `agora serve --demo` on a fresh data dir at 127.0.0.1:<free port> with
# AGORA_LOG_LEVEL=warn; fetches one product's JSON and serves exactly those bytes
# from bare; warms both up, then runs wrk against each, alternating, ROUNDS times;
# reads VmRSS after start and after the load; then (LOG_INFO=1) runs agora again at
# log level info, writing its JSON access log to a file, to price the access log;
# then stops agora and starts it READY_RUNS times on the same data dir, polling
# /readyz every few ms, for the time to ready. It prints a summary table and stops
# everything it started on exit, however it exits. It only ever talks to 127.0.0.1.
#
# Logging at info writes one JSON access-log line (~270 bytes, one write(2)) per
# request; on the reference machine that cost about 12% of agora's requests/s, or
# ~10 µs (+16%) of CPU per request (see docs/performance.md), which is why the
# comparison runs at warn.
#
# With PIN=1 (the default, on 2 or more CPUs) the servers run on CPU 0 and wrk on
# CPU 1, so load generator and server do not fight over cores; Go then runs the
# servers with GOMAXPROCS=1. PIN=0 lets them share every core.
#
# Usage: tests/perf/run.sh           (about 3 minutes with the defaults, more on retries)
# Settings (environment): DURATION=15 (seconds per wrk run) WARMUP=3 THREADS=2
#   CONNS=64 ROUNDS=3 READY_RUNS=10 PIN=1 LOG_INFO=1 KEEP=0 (1: keep the temp dir)
#   CACHE_TTL=1s (the catalog's read cache; -1s sends every request to SQLite)
#   STRICT=0 (1: exit 1 when a target is missed) MAX_OTHER=10 RETRIES=2 (a wrk run
#   during which other processes used more than MAX_OTHER % of the CPUs is run
#   again, up to RETRIES times; the "other load" column shows that share)
# Needs: go, wrk, curl, and taskset when PIN=1.
set -euo pipefail

DURATION=${DURATION:-15}
WARMUP=${WARMUP:-3}
THREADS=${THREADS:-2}
CONNS=${CONNS:-64}
ROUNDS=${ROUNDS:-3}
READY_RUNS=${READY_RUNS:-10}
PIN=${PIN:-1}
LOG_INFO=${LOG_INFO:-1}
KEEP=${KEEP:-0}
STRICT=${STRICT:-0}
MAX_OTHER=${MAX_OTHER:-10}
RETRIES=${RETRIES:-2}

TARGET_RATIO=60 # percent of bare's requests/s
TARGET_RSS_KB=$((40 * 1024))
TARGET_READY_MS=300

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HOST=127.0.0.1

die() { echo "run.sh: $*" >&2; exit 1; }
for tool in go wrk curl; do command -v "$tool" >/dev/null || die "$tool is not installed (wrk: apt-get install -y wrk)"; done

# The caller's AGORA_* settings must not leak into the measured processes.
while read -r v; do unset "$v"; done < <(compgen -e | grep '^AGORA_' || true)

SERVER_PIN=() LOAD_PIN=()
if [[ $PIN == 1 ]] && (($(nproc) >= 2)); then
	command -v taskset >/dev/null || die "taskset is not installed (PIN=0 to run without pinning)"
	SERVER_PIN=(taskset -c 0) LOAD_PIN=(taskset -c 1)
	PINNING="servers on CPU 0 (GOMAXPROCS=1), wrk on CPU 1"
else
	PIN=0
	PINNING="none: servers and wrk share $(nproc) CPUs"
fi

WORK=$(mktemp -d /tmp/agora-perf.XXXXXX)
DATA=$WORK/data
AGORA_PID="" BARE_PID="" WRK_PID=""

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	[[ -n $WRK_PID ]] && stop_pid "$WRK_PID"
	[[ -n $AGORA_PID ]] && stop_pid "$AGORA_PID"
	[[ -n $BARE_PID ]] && stop_pid "$BARE_PID"
	if [[ $KEEP == 1 ]]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# stop_pid sends SIGTERM to one process this script started and waits for it,
# SIGKILL after 20 s.
stop_pid() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 2000; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		nap
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# nap sleeps ~10 ms without forking: a read that times out on a pipe nobody writes.
exec {NAPFD}<> <(:)
nap() { read -r -t "${1:-0.01}" -u "$NAPFD" REPLY || true; }

# is200 PORT PATH succeeds when GET PATH answers 200. Pure bash, no fork, so the
# ready-time polling loop is cheap and fine-grained. Fails when nothing listens.
is200() {
	local fd line
	exec {fd}<>"/dev/tcp/$HOST/$1" || return 1
	printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$2" "$HOST" >&"$fd"
	if ! read -r -t 2 -u "$fd" line; then exec {fd}<&-; return 1; fi
	exec {fd}<&-
	[[ $line == "HTTP/1."?" 200 "* ]]
}

free_port() {
	local p i
	for ((i = 0; i < 100; i++)); do
		p=$((20000 + RANDOM % 40000))
		[[ $p == "${1:-}" ]] && continue
		if ! (exec 3<>"/dev/tcp/$HOST/$p") 2>/dev/null; then echo "$p"; return; fi
	done
	die "no free port found"
}

rss_kb() { alive "$1" && awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
hwm_kb() { alive "$1" && awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
alive() {
	kill -0 "$1" 2>/dev/null && return
	die "process $1 exited unexpectedly; last log lines: $(tail -n 5 "$WORK"/*.log 2>/dev/null)"
}

# to_ms turns wrk's durations (812.00us, 2.98ms, 1.02s) into milliseconds.
to_ms() { awk '{v = $1 + 0; if ($1 ~ /us$/) v /= 1000; else if ($1 ~ /[^m]s$/) v *= 1000; printf "%.2f\n", v}'; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f MiB", k / 1024}'; }

# median and max of the numbers given as arguments.
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2)}'; }
maxof() { printf '%s\n' "$@" | sort -g | tail -n1; }

# start_agora LEVEL LOGFILE starts agora on $DATA and sets AGORA_PID.
start_agora() {
	AGORA_DATA_DIR=$DATA AGORA_HTTP_ADDR=$HOST:$APORT AGORA_LOG_LEVEL=$1 AGORA_CATALOG_CACHE_TTL=${CACHE_TTL:-1s} \
		"${SERVER_PIN[@]}" "$WORK/agora" serve --demo >>"$2" 2>&1 &
	AGORA_PID=$!
}

# wait_ready TIMEOUT_S polls /readyz every ~2 ms until it answers 200 and sets
# READY_US to the microseconds since T0 (taken by the caller just before start_agora).
wait_ready() {
	local deadline=$((${EPOCHREALTIME/./} + $1 * 1000000))
	while :; do
		if is200 "$APORT" /readyz 2>/dev/null; then
			READY_US=$((${EPOCHREALTIME/./} - T0))
			return
		fi
		kill -0 "$AGORA_PID" 2>/dev/null || die "agora exited during start; log: $(tail -n 5 "$WORK"/agora-*.log)"
		((${EPOCHREALTIME/./} < deadline)) || die "agora not ready after $1 s"
		nap 0.002
	done
}

stop_agora() { stop_pid "$AGORA_PID"; AGORA_PID=""; }

# children_cpu VAR sets VAR to the user + system seconds of this shell's waited-for
# children (wrk, through timeout), from the times builtin. It must run in this shell,
# not in a $(…) subshell, which would see only its own children.
children_cpu() {
	times >"$WORK/times.txt"
	printf -v "$1" '%s' "$(awk 'NR == 2 {for (i = 1; i <= 2; i++) {split($i, t, /[ms]/); s += t[1] * 60 + t[2]}; print s}' "$WORK/times.txt")"
}

HZ=$(getconf CLK_TCK)
NCPU=$(nproc)
busy_ticks() { awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
proc_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# bench NAME PORT SECONDS PID runs wrk once against the product route and sets
# LAST_RPS, LAST_LAT (average latency, ms), LAST_P99 (ms), LAST_CPU (the server's
# CPU time per request, µs: less sensitive to other load than requests/s) and
# LAST_FOREIGN: the share of the machine's CPU that neither wrk nor the server used
# during the run, i.e. other processes competing with the measurement (plus a few %
# of loopback network work the kernel does outside both).
bench() {
	local name=$1 port=$2 secs=$3 pid=$4 out b0 s0 s1 t0 c0 c1 wrk_s
	out=$WORK/wrk-$name-$((++BENCH_N)).txt
	b0=$(busy_ticks) s0=$(proc_ticks "$pid") t0=${EPOCHREALTIME/./}
	children_cpu c0
	# In the background and waited for, so a signal to this script stops it at once
	# (cleanup kills timeout, which passes the signal on to wrk).
	timeout -k 5 $((secs + 30)) "${LOAD_PIN[@]}" wrk -t"$THREADS" -c"$CONNS" -d"${secs}s" --timeout 5s --latency \
		"http://$HOST:$port/v1/products/$PRODUCT_ID" >"$out" 2>&1 &
	WRK_PID=$!
	wait "$WRK_PID" || die "wrk failed against $name: $(cat "$out")"
	WRK_PID=""
	children_cpu c1
	wrk_s=$(awk -v a="$c0" -v b="$c1" 'BEGIN {print b - a}')
	s1=$(proc_ticks "$pid")
	LAST_FOREIGN=$(awk -v b=$(($(busy_ticks) - b0)) -v s=$((s1 - s0)) -v w="$wrk_s" \
		-v us=$((${EPOCHREALTIME/./} - t0)) -v hz="$HZ" -v n="$NCPU" \
		'BEGIN {f = 100 * (b - s - w * hz) / (us / 1e6 * n * hz); printf "%.0f", (f < 0 ? 0 : f)}')
	LAST_CPU=$(awk -v s=$((s1 - s0)) -v hz="$HZ" '/ requests in / {printf "%.1f", s / hz * 1e6 / $1}' "$out")
	if grep -qE 'Non-2xx|Socket errors' "$out"; then
		echo "  warning: $name: $(grep -E 'Non-2xx|Socket errors' "$out" | tr -s ' ' | paste -sd ';')" >&2
	fi
	alive "$pid"
	LAST_RPS=$(awk '/^Requests\/sec:/ {print $2}' "$out")
	LAST_LAT=$(awk '$1 == "Latency" {print $2; exit}' "$out" | to_ms)
	LAST_P99=$(awk '$1 == "99%" {print $2}' "$out" | to_ms)
}

# measure NAME PORT PID ROUND runs one measured wrk run, and runs it again (up to
# RETRIES more times) when other processes took more than MAX_OTHER % of the machine.
measure() {
	local try
	for ((try = 0; ; try++)); do
		bench "$1" "$2" "$DURATION" "$3"
		printf '   round %d %-10s %10s req/s  avg %6s ms  p99 %6s ms  %5s µs CPU/req  other load %s%%' \
			"$4" "$1" "$LAST_RPS" "$LAST_LAT" "$LAST_P99" "$LAST_CPU" "$LAST_FOREIGN"
		if ((LAST_FOREIGN > MAX_OTHER && try < RETRIES)); then
			echo "  (discarded, again)"
			sleep 5
			continue
		fi
		echo
		FOREIGN+=("$LAST_FOREIGN")
		return
	done
}

echo "== building agora and bare into $WORK"
(cd "$ROOT" && go build -o "$WORK/agora" ./cmd/agora && go build -o "$WORK/bare" ./tests/perf/bare)

APORT=$(free_port)
BPORT=$(free_port "$APORT")
echo "== agora on $HOST:$APORT, bare on $HOST:$BPORT; pinning: $PINNING"
echo "   wrk -t$THREADS -c$CONNS -d${DURATION}s, $ROUNDS rounds after a ${WARMUP}s warm-up of each"

# --- first start: empty data dir, migrations and the demo catalog ----------------
T0=${EPOCHREALTIME/./}
start_agora warn "$WORK/agora-warn.log"
wait_ready 60
FIRST_READY_US=$READY_US
sleep 2
RSS_START=$(rss_kb "$AGORA_PID")

PRODUCT_ID=$(curl -fsS "http://$HOST:$APORT/v1/products?limit=1" | grep -oE '"id":"[0-9a-f-]{36}"' | head -n1 | cut -d'"' -f4)
[[ -n $PRODUCT_ID ]] || die "no product in the demo catalog"
curl -fsS -o "$WORK/body.json" "http://$HOST:$APORT/v1/products/$PRODUCT_ID"
BODY_BYTES=$(wc -c <"$WORK/body.json")
echo "== product $PRODUCT_ID ($BODY_BYTES bytes of JSON)"

"${SERVER_PIN[@]}" "$WORK/bare" -addr "$HOST:$BPORT" -body "$WORK/body.json" 2>>"$WORK/bare.log" &
BARE_PID=$!
for ((i = 0; i < 500; i++)); do
	is200 "$BPORT" "/v1/products/$PRODUCT_ID" 2>/dev/null && break
	nap
done
cmp -s "$WORK/body.json" <(curl -fsS "http://$HOST:$BPORT/v1/products/$PRODUCT_ID") || die "bare does not return agora's bytes"
RSS_BARE=$(rss_kb "$BARE_PID")

# --- throughput: agora (warn) and bare, alternating ------------------------------
BENCH_N=0
echo "== warm-up"
bench agora "$APORT" "$WARMUP" "$AGORA_PID"
bench bare "$BPORT" "$WARMUP" "$BARE_PID"
FOREIGN=() A_RPS=() A_LAT=() A_P99=() A_CPU=() B_RPS=() B_LAT=() B_P99=() B_CPU=()
for ((r = 1; r <= ROUNDS; r++)); do
	order=(agora bare)
	((r % 2 == 0)) && order=(bare agora)
	for who in "${order[@]}"; do
		if [[ $who == agora ]]; then
			measure agora "$APORT" "$AGORA_PID" "$r"
			A_RPS+=("$LAST_RPS") A_LAT+=("$LAST_LAT") A_P99+=("$LAST_P99") A_CPU+=("$LAST_CPU")
		else
			measure bare "$BPORT" "$BARE_PID" "$r"
			B_RPS+=("$LAST_RPS") B_LAT+=("$LAST_LAT") B_P99+=("$LAST_P99") B_CPU+=("$LAST_CPU")
		fi
	done
done
RSS_LOAD=$(rss_kb "$AGORA_PID")
HWM_LOAD=$(hwm_kb "$AGORA_PID")
sleep 5
RSS_LOAD_IDLE=$(rss_kb "$AGORA_PID")
stop_agora

# --- the price of the access log: agora at info, logging to a file ---------------
I_RPS=() I_CPU=()
if [[ $LOG_INFO == 1 ]]; then
	echo "== agora at log level info (JSON access log to a file)"
	T0=${EPOCHREALTIME/./}
	start_agora info "$WORK/agora-info.log"
	wait_ready 30
	bench agora-info "$APORT" "$WARMUP" "$AGORA_PID"
	for ((r = 1; r <= ROUNDS; r++)); do
		measure agora-info "$APORT" "$AGORA_PID" "$r"
		I_RPS+=("$LAST_RPS") I_CPU+=("$LAST_CPU")
	done
	LOG_BYTES=$(wc -c <"$WORK/agora-info.log")
	LOG_LINES=$(wc -l <"$WORK/agora-info.log")
	stop_agora
fi

# --- time to ready on the existing data dir --------------------------------------
echo "== time to ready, $READY_RUNS starts on the existing data dir"
READY_MS=()
for ((r = 1; r <= READY_RUNS; r++)); do
	T0=${EPOCHREALTIME/./}
	start_agora warn "$WORK/agora-ready.log"
	wait_ready 30
	READY_MS+=("$((READY_US / 1000)).$((READY_US % 1000 / 100))")
	if ((r == 1)); then
		sleep 2
		RSS_RESTART=$(rss_kb "$AGORA_PID")
	fi
	stop_agora
done
echo "   ${READY_MS[*]} ms"

# --- summary ----------------------------------------------------------------------
A_MED=$(median "${A_RPS[@]}")
B_MED=$(median "${B_RPS[@]}")
RATIO=$(awk -v a="$A_MED" -v b="$B_MED" 'BEGIN {printf "%.1f", 100 * a / b}')
R_MED=$(median "${READY_MS[@]}")
R_MAX=$(maxof "${READY_MS[@]}")
RSS_MAX=$(maxof "$RSS_START" "$RSS_LOAD" "$RSS_RESTART")
MISSED=0
verdict() { if (($2)); then printf -v "$1" PASS; else printf -v "$1" MISS; MISSED=1; fi; }
verdict V_RATIO "$(awk -v r="$RATIO" -v t=$TARGET_RATIO 'BEGIN {print (r >= t)}')"
verdict V_RSS "RSS_MAX < TARGET_RSS_KB"
verdict V_READY "$(awk -v m="$R_MAX" -v t=$TARGET_READY_MS 'BEGIN {print (m < t)}')"

echo
echo "== summary ($(nproc) CPUs, $(go env GOVERSION), pinning: $PINNING; wrk -t$THREADS -c$CONNS -d${DURATION}s x $ROUNDS)"
printf '%-44s %-28s %s\n' "measure" "value" "target"
printf '%-44s %-28s %s\n' "bare net/http req/s (median)" "$B_MED  [${B_RPS[*]}]" ""
printf '%-44s %-28s %s\n' "agora GET /v1/products/{id} req/s (median)" "$A_MED  [${A_RPS[*]}]" ""
printf '%-44s %-28s %s\n' "agora / bare" "$RATIO%" ">= $TARGET_RATIO%  $V_RATIO"
printf '%-44s %-28s %s\n' "agora latency avg / p99 (median run)" "$(median "${A_LAT[@]}") ms / $(median "${A_P99[@]}") ms" ""
printf '%-44s %-28s %s\n' "bare latency avg / p99 (median run)" "$(median "${B_LAT[@]}") ms / $(median "${B_P99[@]}") ms" ""
printf '%-44s %-28s %s\n' "server CPU per request, agora / bare (median)" "$(median "${A_CPU[@]}") µs / $(median "${B_CPU[@]}") µs" \
	"$(awk -v a="$(median "${A_CPU[@]}")" -v b="$(median "${B_CPU[@]}")" 'BEGIN {printf "bare = %.1f%% of agora", 100 * b / a}')"
if ((${#I_RPS[@]})); then
	I_MED=$(median "${I_RPS[@]}")
	printf '%-44s %-28s %s\n' "agora at log level info req/s (median)" "$I_MED  [${I_RPS[*]}]" \
		"$(awk -v i="$I_MED" -v a="$A_MED" 'BEGIN {printf "%+.1f%% vs warn", 100 * (i - a) / a}')"
	printf '%-44s %-28s %s\n' "  CPU per request at info (median)" "$(median "${I_CPU[@]}") µs" \
		"$(awk -v i="$(median "${I_CPU[@]}")" -v a="$(median "${A_CPU[@]}")" 'BEGIN {printf "%+.1f%% vs warn", 100 * (i - a) / a}')"
	printf '%-44s %-28s %s\n' "  access log written" "$LOG_LINES lines, $((LOG_BYTES / LOG_LINES)) B/line" ""
fi
printf '%-44s %-28s %s\n' "other load during each wrk run, % of CPU" "${FOREIGN[*]}" "0-5: quiet machine"
printf '%-44s %-28s %s\n' "agora RSS 2 s after first start (demo seeded)" "$(mib "$RSS_START")" "< 40 MiB"
printf '%-44s %-28s %s\n' "agora RSS right after the load" "$(mib "$RSS_LOAD") (peak $(mib "$HWM_LOAD"))" "< 40 MiB"
printf '%-44s %-28s %s\n' "agora RSS 5 s after the load" "$(mib "$RSS_LOAD_IDLE")" ""
printf '%-44s %-28s %s\n' "agora RSS 2 s after a restart" "$(mib "$RSS_RESTART")" "< 40 MiB"
printf '%-44s %-28s %s\n' "  idle RSS, worst of the three" "$(mib "$RSS_MAX")" "< 40 MiB  $V_RSS"
printf '%-44s %-28s %s\n' "bare RSS at start" "$(mib "$RSS_BARE")" ""
printf '%-44s %-28s %s\n' "ready, first start (empty dir + demo seed)" "$(awk -v u="$FIRST_READY_US" 'BEGIN {printf "%.1f ms", u / 1000}')" ""
printf '%-44s %-28s %s\n' "ready, existing dir: median / max of $READY_RUNS" "$R_MED ms / $R_MAX ms" \
	"< $TARGET_READY_MS ms  $V_READY (max)"

if (($(maxof "${FOREIGN[@]}") > MAX_OTHER)); then
	echo "note: other processes used up to $(maxof "${FOREIGN[@]}")% of the machine during a wrk run; the figures are noisy, run again on a quiet machine"
fi

if [[ $STRICT == 1 && $MISSED == 1 ]]; then exit 1; fi
