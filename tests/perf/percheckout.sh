#!/usr/bin/env bash
# tests/perf/percheckout.sh measures what one checkout costs the single binary
# (issue 17), on SQLite and on PostgreSQL, over the load generator's timed window:
#   - server CPU-ms per completed checkout (process_cpu_seconds_total from /metrics;
#     the customers' sign-ins happen in the warm-up, before the window);
#   - database commits per checkout: Agora's own count (agora_db_commits_total: on
#     SQLite a group commit counts once; agora_db_transactions_committed_total: the
#     transactions in them) and, on PostgreSQL, pg_stat_database.xact_commit (every
#     transaction PostgreSQL ran, reads outside a transaction included);
#   - bus messages per checkout by type (agora_bus_messages_sent_total) and bus hops
#     per checkout (agora_bus_messages_handled_total: deliveries to a handler);
#   - and, before the load, the commits and CPU-ms per second of the idle server
#     (its pollers: part of every figure above, in proportion to the window).
# The load generator reads the counters at the start of its window and 2 s after the
# drain (`agora loadgen --json`, field "server"; see tools/loadgen/doc.go).
#
# What it does: builds agora into a temporary directory; for each store in STORES,
# starts (for postgres) a PostgreSQL 15 server from /usr/lib/postgresql/15/bin on a
# fresh cluster at 127.0.0.1:<free port> with its default settings (synchronous_commit
# and fsync on), then `agora serve --demo` on a fresh data dir at 127.0.0.1:<free port>
# with AGORA_LOG_LEVEL=warn and sign-in rate limits lifted; waits for /readyz, lets
# it idle IDLE seconds, runs the load, and stops everything it started, however it
# exits. It only ever talks to 127.0.0.1. Load average (1/5/15 min) is printed
# before and after each run.
#
# Usage: tests/perf/percheckout.sh      (about 1.5 minutes with the defaults)
# Settings (environment): STORES="sqlite postgres" RATE=50 DURATION=20s CUSTOMERS=100
#   BROWSE_RATE=0 SEED=1 IDLE=10 (seconds) KEEP=0 (1: keep the temp dir, with logs
#   and the JSON reports) PGBIN=/usr/lib/postgresql/15/bin LOADGEN_ARGS="" (more flags)
#   PG_SETTINGS="" (more PostgreSQL settings, e.g. "-c log_statement=all -c
#   log_line_prefix='%a|%v|'" to count each module's statements in pg/server.log)
#   PROFILE=0 (seconds: >0 takes a CPU profile of the server over that long, from
#   2 s into the timed window, into $WORK/<store>.pprof — with KEEP=1 to keep it;
#   `go tool pprof -top agora <store>.pprof` reads it; and <store>.goroutines.txt,
#   where the goroutines wait at its end, and <store>.metrics.txt, the server's
#   metrics then; see docs/performance.md)
#   DEMO_DRIVERS=0 (the demo's simulated fleet drivers, AGORA_FLEET_DEMO_DRIVERS: off,
#   so that their positions and offers are not counted as the checkouts' work)
# Needs: go, curl, jq; for postgres the PostgreSQL 15 server binaries, psql, and
# (as root) the postgres user to run them.
set -euo pipefail

STORES=${STORES:-sqlite postgres}
RATE=${RATE:-50}
DURATION=${DURATION:-20s}
CUSTOMERS=${CUSTOMERS:-100}
BROWSE_RATE=${BROWSE_RATE:-0}
SEED=${SEED:-1}
IDLE=${IDLE:-10}
KEEP=${KEEP:-0}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
LOADGEN_ARGS=${LOADGEN_ARGS:-}
DEMO_DRIVERS=${DEMO_DRIVERS:-0}
PG_SETTINGS=${PG_SETTINGS:-}
PROFILE=${PROFILE:-0}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HOST=127.0.0.1

die() { echo "percheckout.sh: $*" >&2; exit 1; }
for tool in go curl jq; do command -v "$tool" >/dev/null || die "$tool is not installed"; done
for s in $STORES; do
	[[ $s == sqlite || $s == postgres ]] || die "STORES takes sqlite and postgres, not $s"
	if [[ $s == postgres ]]; then
		[[ -x $PGBIN/postgres ]] || die "no PostgreSQL server in $PGBIN (apt-get install -y postgresql-15, or set PGBIN)"
		command -v psql >/dev/null || die "psql is not installed"
	fi
done

# shellcheck source=lib.sh
source "$ROOT/tests/perf/lib.sh"
perf_setup agora-percheckout

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }


# start_agora DATA [KEY=VALUE…] starts `agora serve --demo` and sets URL.
start_agora() {
	local data=$1 port i
	shift
	port=$(free_port)
	env AGORA_DATA_DIR="$data" AGORA_HTTP_ADDR="$HOST:$port" AGORA_LOG_LEVEL=warn AGORA_LOG_FORMAT=json \
		AGORA_AUTH_PER_IP_PER_MINUTE=100000 AGORA_FLEET_DEMO_DRIVERS="$DEMO_DRIVERS" "$@" \
		"$WORK/agora" serve --demo >>"$data.log" 2>&1 &
	AGORA_PID=$!
	URL="http://$HOST:$port"
	for ((i = 0; i < 600; i++)); do
		curl -fsS -o /dev/null "$URL/readyz" 2>/dev/null && return
		kill -0 "$AGORA_PID" 2>/dev/null || die "agora exited during start: $(tail -n 5 "$data.log")"
		sleep 0.05
	done
	die "agora not ready after 30 s: $(tail -n 5 "$data.log")"
}

# agora_commits prints the sum of agora_db_commits_total over the modules.
agora_commits() {
	curl -fsS "$URL/metrics" | awk '/^agora_db_commits_total/ {n += $2} END {printf "%d\n", n}'
}

pg_commits() {
	psql "$DB_URL" -qAtc 'SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()'
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# idle_rates sets IDLE_AGORA, IDLE_PG and IDLE_CPU: commits and CPU-ms a second of
# the idle server.
idle_rates() {
	local a0 a1 p0=0 p1=0 c0 c1
	c0=$(cpu_ticks "$AGORA_PID")
	a0=$(agora_commits)
	[[ $1 == postgres ]] && p0=$(pg_commits)
	sleep "$IDLE"
	a1=$(agora_commits)
	c1=$(cpu_ticks "$AGORA_PID")
	[[ $1 == postgres ]] && p1=$(pg_commits)
	IDLE_CPU=$(awk -v a="$c0" -v b="$c1" -v s="$IDLE" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", (b - a) * 1000 / hz / s}')
	IDLE_AGORA=$(awk -v a="$a0" -v b="$a1" -v s="$IDLE" 'BEGIN {printf "%.1f", (b - a) / s}')
	IDLE_PG="-"
	[[ $1 == postgres ]] && IDLE_PG=$(awk -v a="$p0" -v b="$p1" -v s="$IDLE" 'BEGIN {printf "%.1f", (b - a - 1) / s}') # less the first read's own commit
	return 0
}

# profile_window STORE waits for the load generator's warm-up to end, then takes a
# CPU profile of PROFILE seconds from the server's debug listener.
profile_window() {
	local log=$WORK/loadgen-$1.log i
	for ((i = 0; i < 1200; i++)); do
		grep -q 'warm-up: \(restocked\|no restocking\)' "$log" 2>/dev/null && break
		sleep 0.1
	done
	sleep 2
	curl -fsS -o "$WORK/$1.pprof" "http://$DEBUG_ADDR/debug/pprof/profile?seconds=$PROFILE" ||
		echo "percheckout.sh: no profile taken" >&2
	# The server's metrics at the end of the profile (backlogs, queue depths).
	curl -fsS -o "$WORK/$1.metrics.txt" "$URL/metrics" || true
	# Where the goroutines wait, at the end of the profile (pool, locks, I/O).
	curl -fsS -o "$WORK/$1.goroutines.txt" "http://$DEBUG_ADDR/debug/pprof/goroutine?debug=1" || true
}

echo "== building agora into $WORK ($(nproc) CPUs, $(go env GOVERSION))"
(cd "$ROOT" && go build -o "$WORK/agora" ./cmd/agora)

declare -A LOAD_BEFORE LOAD_AFTER IDLE_A IDLE_P IDLE_C
for store in $STORES; do
	extra=() dbflag=()
	if [[ $store == postgres ]]; then
		start_postgres "$PG_SETTINGS"
		extra=(AGORA_DATABASE_URL="$DB_URL")
		dbflag=(--database-url "$DB_URL")
	fi
	if ((PROFILE > 0)); then
		DEBUG_ADDR=$HOST:$(free_port)
		extra+=(AGORA_DEBUG_ADDR="$DEBUG_ADDR")
	fi
	start_agora "$WORK/$store" "${extra[@]}"
	idle_rates "$store"
	IDLE_A[$store]=$IDLE_AGORA IDLE_P[$store]=$IDLE_PG IDLE_C[$store]=$IDLE_CPU
	LOAD_BEFORE[$store]=$(loadavg)
	echo "== $store: idle ${IDLE_CPU} CPU-ms/s, ${IDLE_AGORA} Agora commits/s, ${IDLE_PG} PostgreSQL commits/s; load average ${LOAD_BEFORE[$store]}"
	echo "   agora loadgen --rate $RATE --duration $DURATION --customers $CUSTOMERS --browse-rate $BROWSE_RATE --seed $SEED ${dbflag[*]:+--database-url …}"
	((PROFILE > 0)) && profile_window "$store" &
	# shellcheck disable=SC2086 # LOADGEN_ARGS is a list of flags
	"$WORK/agora" loadgen --url "$URL" --rate "$RATE" --duration "$DURATION" --customers "$CUSTOMERS" \
		--browse-rate "$BROWSE_RATE" --seed "$SEED" --json "${dbflag[@]}" $LOADGEN_ARGS \
		>"$WORK/$store.json" 2>"$WORK/loadgen-$store.log" || die "loadgen on $store failed: $(tail -n 5 "$WORK/loadgen-$store.log")"
	LOAD_AFTER[$store]=$(loadavg)
	jq -e '.server' "$WORK/$store.json" >/dev/null || die "the report has no server figures: $(grep 'no server' "$WORK/loadgen-$store.log")"
	stop_agora
	stop_postgres
done

# --- the figures, one column per store ----------------------------------------------
col() { local s; for s in $STORES; do printf ' %16s' "$(jq -r "$1" "$WORK/$s.json")"; done; echo; }
row() { printf '%-46s' "$1"; col "$2"; }
echo
echo "== per checkout (rate $RATE/s, $DURATION, $CUSTOMERS customers, browse $BROWSE_RATE, seed $SEED)"
printf '%-46s' ""; for s in $STORES; do printf ' %16s' "$s"; done; echo
printf '%-46s' "load average before / after (1 min)"
for s in $STORES; do printf ' %16s' "${LOAD_BEFORE[$s]%% *} / ${LOAD_AFTER[$s]%% *}"; done; echo
row "completed checkouts (per second)" '"\(.checkouts.completed) (\(.throughput.completed_per_second*10|round/10))"'
row "p50 / p99 POST→confirmed (ms)" '"\(.checkout_latency_ms.confirmed.p50|round) / \(.checkout_latency_ms.confirmed.p99|round)"'
row "server window (s)" '.server.seconds*10|round/10'
row "server CPU-ms per checkout" '.server.cpu_ms_per_checkout*100|round/100'
row "Agora DB commits per checkout" '.server.db_commits_per_checkout*10|round/10'
row "Agora DB transactions per checkout" '.server.db_transactions_per_checkout*10|round/10'
row "PostgreSQL xact_commit per checkout" '.server.postgres_commits_per_checkout // "-" | if type == "number" then .*10|round/10 else . end'
row "bus messages sent per checkout" '.server.messages_sent_per_checkout*10|round/10'
row "bus hops (handled) per checkout" '.server.bus_hops_per_checkout*10|round/10'
printf '%-46s' "idle: server CPU-ms/s"; for s in $STORES; do printf ' %16s' "${IDLE_C[$s]}"; done; echo
printf '%-46s' "idle: Agora commits/s"; for s in $STORES; do printf ' %16s' "${IDLE_A[$s]}"; done; echo
printf '%-46s' "idle: PostgreSQL commits/s"; for s in $STORES; do printf ' %16s' "${IDLE_P[$s]}"; done; echo
echo
echo "== Agora commits per checkout by module"
mods=$(for s in $STORES; do jq -r '.server.db_commits_by_module | keys[]' "$WORK/$s.json"; done | sort -u)
for m in $mods; do row "  $m" "(.server.db_commits_by_module[\"$m\"] // 0) / .server.checkouts * 100 | round / 100"; done
echo
echo "== bus messages per checkout by type: sent / handled"
while IFS= read -r t; do
	row "  $t" ".server.messages[\"$t\"] // {} | \"\(.sent_per_checkout // 0 | .*100|round/100) / \(.handled_per_checkout // 0 | .*100|round/100)\""
done < <(for s in $STORES; do jq -r '.server.messages | keys[]' "$WORK/$s.json"; done | sort -u)
