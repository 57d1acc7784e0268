# Sourced by scripts/test: makes sure the tests can reach PostgreSQL.
#
# `ensure_test_postgres` leaves EXTENSOR_TEST_POSTGRES_URL alone when it is
# set. Otherwise, when 127.0.0.1:5432 (EXTENSOR_TEST_POSTGRES_PROBE, for
# testing this function) answers, the tests use it; when it does not, a
# throwaway cluster is started from the local server binaries
# (/usr/lib/postgresql/*/bin) in a temporary directory on a free loopback
# port, exported as EXTENSOR_TEST_POSTGRES_URL, and removed by
# `stop_test_postgres` (call it from an EXIT trap).

test_postgres_dir=""

# Whether something accepts TCP connections at HOST:PORT.
tcp_answers() {
    timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

# A free loopback port, chosen by the kernel.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Runs a server binary as an unprivileged user: initdb and postgres refuse root.
as_postgres_user() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

ensure_test_postgres() {
    if [ -n "${EXTENSOR_TEST_POSTGRES_URL:-}" ]; then
        echo "== postgres: using EXTENSOR_TEST_POSTGRES_URL"
        return
    fi
    local probe=${EXTENSOR_TEST_POSTGRES_PROBE:-127.0.0.1:5432}
    if tcp_answers "${probe%:*}" "${probe##*:}"; then
        echo "== postgres: using the server at $probe"
        export EXTENSOR_TEST_POSTGRES_URL="postgres://postgres@$probe/postgres"
        return
    fi
    local bin
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
        echo "error: no PostgreSQL at $probe and no server binaries in /usr/lib/postgresql/*/bin" >&2
        echo "       (install the postgresql package, or set EXTENSOR_TEST_POSTGRES_URL)" >&2
        return 1
    fi
    local port
    port=$(free_port)
    test_postgres_dir=$(mktemp -d -t extensor-test-postgres.XXXXXX)
    chmod 755 "$test_postgres_dir"
    if [ "$(id -u)" = 0 ]; then chown postgres "$test_postgres_dir"; fi
    echo "== postgres: nothing at $probe; starting a throwaway cluster on 127.0.0.1:$port in $test_postgres_dir"
    as_postgres_user "$bin/initdb" -D "$test_postgres_dir/data" -U postgres --auth=trust \
        -E UTF8 --no-instructions >"$test_postgres_dir/initdb.log" 2>&1 || {
        cat "$test_postgres_dir/initdb.log" >&2
        return 1
    }
    as_postgres_user "$bin/pg_ctl" -D "$test_postgres_dir/data" -l "$test_postgres_dir/server.log" -w \
        -o "-p $port -k $test_postgres_dir -c listen_addresses=127.0.0.1 -c max_connections=300" \
        start >/dev/null || {
        cat "$test_postgres_dir/server.log" >&2
        return 1
    }
    export EXTENSOR_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
}

stop_test_postgres() {
    [ -n "$test_postgres_dir" ] || return 0
    local bin
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    as_postgres_user "$bin/pg_ctl" -D "$test_postgres_dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$test_postgres_dir"
    test_postgres_dir=""
}
