#!/usr/bin/env bash
# tests/perf/idle.sh measures what an idle Agora costs PostgreSQL (issue 17): the
# transactions PostgreSQL commits a second (pg_stat_database.xact_commit of the agora
# database: every transaction, a lone statement outside a transaction included, reads
# too) and rolls back (xact_rollback) while `agora serve --demo` has nothing to do,
# with Agora's own count by module (agora_db_commits_total: its store.InTx commits)
# and, from PostgreSQL's statement log, the transactions and the statements of each
# module's connections (application_name agora-<module>), most frequent first.
#
# What "idle" is: the single binary with every module and the demo data, its
# simulated fleet drivers off (AGORA_FLEET_DEMO_DRIVERS=0, so no positions, offers or
# rides), the demo's stock seeded (in the settle time), no HTTP client but this
# script's two /metrics reads; what still runs is the background work: the relays and
# job queues (outbox, payment operations, emails, the orders and rides saga sweeps),
# the reservation expiry sweep, identity's revocation feed (a long poll every process
# keeps open) and signing-key reload (every 30 s), the fleet's position checkpoints
# (nothing moved: no writes) and the rides supply refresh (a bus request to fleet).
#
# What it does: builds agora into a temporary directory; starts a PostgreSQL 15 server
# from /usr/lib/postgresql/15/bin on a fresh cluster at 127.0.0.1:<free port> (default
# durability settings; log_statement=all into its log, prefixed with the application
# name and the virtual transaction id), then `agora serve --demo` on it at
# 127.0.0.1:<free port> with AGORA_LOG_LEVEL=warn; waits for /readyz, lets it settle
# SETTLE seconds, then reads the counters at the start and the end of a WINDOW-second
# window and prints the rates. It stops everything it started, however it exits, and
# only ever talks to 127.0.0.1. The machine's load (uptime) is printed before and after.
#
# Usage: tests/perf/idle.sh      (about 1.5 minutes with the defaults)
# Settings (environment): SETTLE=10 WINDOW=60 (seconds) TOP=15 (statements listed)
#   KEEP=0 (1: keep the temp dir, with the logs) PGBIN=/usr/lib/postgresql/15/bin
# Needs: go, curl, psql, the PostgreSQL 15 server binaries and (as root) the postgres
# user to run them.
set -euo pipefail

SETTLE=${SETTLE:-10}
WINDOW=${WINDOW:-60}
TOP=${TOP:-15}
KEEP=${KEEP:-0}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HOST=127.0.0.1

die() { echo "idle.sh: $*" >&2; exit 1; }
for tool in go curl psql; do command -v "$tool" >/dev/null || die "$tool is not installed"; done
[[ -x $PGBIN/postgres ]] || die "no PostgreSQL server in $PGBIN (apt-get install -y postgresql-15, or set PGBIN)"

# shellcheck source=lib.sh
source "$ROOT/tests/perf/lib.sh"
perf_setup agora-idle


start_agora() {
	local port i
	port=$(free_port)
	env AGORA_DATA_DIR="$WORK/data" AGORA_HTTP_ADDR="$HOST:$port" AGORA_LOG_LEVEL=warn AGORA_LOG_FORMAT=json \
		AGORA_DATABASE_URL="$DB_URL" AGORA_FLEET_DEMO_DRIVERS=0 \
		"$WORK/agora" serve --demo >>"$WORK/agora.log" 2>&1 &
	AGORA_PID=$!
	URL="http://$HOST:$port"
	for ((i = 0; i < 600; i++)); do
		curl -fsS -o /dev/null "$URL/readyz" 2>/dev/null && return
		kill -0 "$AGORA_PID" 2>/dev/null || die "agora exited during start: $(tail -n 5 "$WORK/agora.log")"
		sleep 0.05
	done
	die "agora not ready after 30 s: $(tail -n 5 "$WORK/agora.log")"
}

# pg_xacts prints "commits rollbacks" of the agora database.
pg_xacts() {
	psql "$DB_URL" -qAt -F ' ' -c 'SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname = current_database()'
}

# agora_commits prints "module count" lines of agora_db_commits_total.
agora_commits() {
	curl -fsS "$URL/metrics" | sed -n 's/^agora_db_commits_total{module="\([a-z_]*\)"} \([0-9.e+]*\)$/\1 \2/p'
}

echo "== building agora into $WORK ($(nproc) CPUs, $(go env GOVERSION))"
(cd "$ROOT" && go build -o "$WORK/agora" ./cmd/agora)
start_postgres "-c log_statement=all -c log_line_prefix='%a|%v|'"  # every statement, with its connection's module
start_agora
echo "== ready; settling ${SETTLE}s; uptime: $(uptime)"
sleep "$SETTLE"

agora_commits >"$WORK/agora0"
log0=$(stat -c %s "$PGDATA/server.log")
read -r p0 r0 < <(pg_xacts)
sleep "$WINDOW"
read -r p1 r1 < <(pg_xacts)
log1=$(stat -c %s "$PGDATA/server.log")
agora_commits >"$WORK/agora1"
# The window's statement log, one "application|vxid|statement" line per statement.
tail -c "+$((log0 + 1))" "$PGDATA/server.log" | head -c "$((log1 - log0))" |
	sed -n 's/^\([^|]*\)|\([^|]*\)|LOG:  \(statement\|execute [^:]*\): \(.*\)$/\1|\2|\4/p' >"$WORK/window.log"

echo
echo "== idle for ${WINDOW}s (uptime: $(uptime))"
# Less the first read's own commit (its transaction counts; the second's is not in p1).
awk -v a="$p0" -v b="$p1" -v s="$WINDOW" 'BEGIN {printf "PostgreSQL commits/s (xact_commit): %.2f  (%d in %ds)\n", (b - a - 1) / s, b - a - 1, s}'
# A look that found nothing rolls back: no commit, no WAL flush, but still a transaction.
awk -v a="$r0" -v b="$r1" -v s="$WINDOW" 'BEGIN {printf "PostgreSQL rollbacks/s (xact_rollback): %.2f  (%d in %ds)\n", (b - a) / s, b - a, s}'
join -a1 -e0 -o 0,1.2,2.2 "$WORK/agora1" "$WORK/agora0" |
	awk -v s="$WINDOW" '{d = $2 - $3; t += d; if (d > 0) m = m sprintf(" %s %.2f", $1, d / s)} END {printf "Agora commits/s (agora_db_commits_total): %.2f  by module:%s\n", t / s, m}'
echo
echo "== PostgreSQL transactions and statements by application over the window"
awk -F'|' -v s="$WINDOW" '$1 != "psql" {tx[$1 "|" $2] = 1; st[$1]++}
	END {for (k in tx) {split(k, p, "|"); n[p[1]]++}
	     for (a in st) printf "  %-22s %8.2f transactions/s %8.2f statements/s\n", a, n[a] / s, st[a] / s}' "$WORK/window.log" | sort -k2 -nr
echo
echo "== the $TOP most frequent statements (per second, by application)"
awk -F'|' -v s="$WINDOW" '$1 != "psql" {q = $3; gsub(/[ \t]+/, " ", q); c[$1 "  " substr(q, 1, 110)]++}
	END {for (k in c) printf "  %7.2f  %s\n", c[k] / s, k}' "$WORK/window.log" | sort -nr | head -n "$TOP"
