# tests/perf/lib.sh: what the single-binary perf scripts (idle.sh, percheckout.sh)
# share — a scrubbed environment, a work directory removed on exit, and stopping the
# agora and PostgreSQL processes they start, and starting PostgreSQL. Source it after setting KEEP, PGBIN,
# HOST and die(), then call perf_setup with the work directory's name; the script
# sets AGORA_PID and PGDATA when it starts those processes.

# perf_setup unsets the caller's AGORA_* settings (they must not leak into the
# measured process), makes WORK and traps every exit to stop what was started.
perf_setup() {
	while read -r v; do unset "$v"; done < <(compgen -e | grep '^AGORA_' || true)
	WORK=$(mktemp -d "/tmp/$1.XXXXXX")
	chmod 755 "$WORK"
	AGORA_PID="" PGDATA=""
	trap cleanup EXIT
	trap 'exit 130' INT TERM
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_agora
	stop_postgres
	if [[ $KEEP == 1 ]]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
	exit "$rc"
}

stop_agora() {
	[[ -n $AGORA_PID ]] || return 0
	kill -TERM "$AGORA_PID" 2>/dev/null || true
	local n
	for ((n = 0; n < 200; n++)); do kill -0 "$AGORA_PID" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$AGORA_PID" 2>/dev/null || true
	wait "$AGORA_PID" 2>/dev/null || true
	AGORA_PID=""
}

# as_pg runs a PostgreSQL binary as the postgres user when this script runs as root
# (the server refuses to run as root).
as_pg() {
	if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

stop_postgres() {
	[[ -n $PGDATA ]] || return 0
	as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null 2>&1 || true
	PGDATA=""
}

free_port() {
	local p i
	for ((i = 0; i < 100; i++)); do
		p=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/$HOST/$p") 2>/dev/null; then echo "$p"; return; fi
	done
	die "no free port found"
}

# start_postgres [SETTINGS] starts a fresh cluster from $PGBIN at $HOST on a free
# port (default durability), with SETTINGS ("-c name=value …") added, and sets
# DB_URL to its database "agora".
start_postgres() {
	local port
	port=$(free_port)
	PGDATA=$WORK/pg
	mkdir -p "$PGDATA"
	[[ $(id -u) == 0 ]] && chown postgres "$PGDATA"
	as_pg "$PGBIN/initdb" -D "$PGDATA" -U postgres -A trust -E UTF8 >"$WORK/initdb.log" 2>&1 || die "initdb failed: $(tail -n 5 "$WORK/initdb.log")"
	as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -w -l "$PGDATA/server.log" \
		-o "-c listen_addresses=$HOST -c port=$port -c unix_socket_directories=$PGDATA -c max_connections=200 ${1:-}" \
		start >/dev/null || die "PostgreSQL did not start: $(tail -n 5 "$PGDATA/server.log")"
	psql -h "$HOST" -p "$port" -U postgres -d postgres -qAtc 'CREATE DATABASE agora' >/dev/null
	DB_URL="postgres://postgres@$HOST:$port/agora?sslmode=disable"
}
