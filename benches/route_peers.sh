#!/usr/bin/env bash
# The plugin-route benchmark of docs/BENCHMARKS.md: requests/s and p99 of an
# Extensor plugin route (QuickJS and V8) and of Extensor's own /healthz,
# beside two peers answering the same JSON in the same run on the same
# machine: workerd (npm `workerd`) and Deno.serve (npm `deno`).
#
#   benches/route_peers.sh            # build release, install peers, run all
#   ONLY="v8 deno" benches/route_peers.sh
#
# Settings (environment):
#   EXTENSOR_BIN   a built binary (default: cargo build --release, target/release/extensor)
#   BASELINE_BIN   optional second binary (e.g. a build of main): its QuickJS and
#                  V8 routes are measured in the same run, as "baseline" rows
#   PEERS_DIR      where the peers are installed with npm (default
#                  ${TMPDIR:-/tmp}/extensor-route-peers); never inside the repo
#   WRK_ARGS       default "-t2 -c64 -d8s"; WARMUP_S seconds of wrk before each (2)
#   FLOOR_BIN      the HTTP floor (default: cargo build --release -p extensor-api
#                  --example http_floor): poem alone answering the same JSON;
#                  "notfound" is Extensor's 404 through every middleware
#   ONLY           a subset of: floor healthz notfound quickjs v8 workerd deno baseline-quickjs
#                  baseline-v8 quickjs-queue1 v8-queue1 (the last two: the same
#                  binary with EXTENSOR_ISOLATE_QUEUE_MAX=1, one invocation per
#                  isolate at a time, as before pipelining)
#
# Besides wrk's figures, every row gives the server's CPU per request
# (user + system time of all its threads, and of its children for the npm
# wrappers, over the measured wrk run, divided by the requests wrk counted)
# and its context switches per request. On a 2-core machine that wrk shares,
# CPU per request is the figure that moves: what the server saves goes to
# more requests. Extensor rows split it: tokio's threads (its async workers:
# HTTP, middleware, the engine's bookkeeping; and its blocking pool, which
# store reads use) and the isolate threads (JS, and the idle look).
#
# Needs wrk (Debian: apt-get install -y wrk), node/npm, curl. A missing tool
# is an error, never a skipped row.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEERS_DIR=${PEERS_DIR:-${TMPDIR:-/tmp}/extensor-route-peers}
WRK_ARGS=${WRK_ARGS:--t2 -c64 -d8s}
WARMUP_S=${WARMUP_S:-2}
if [ -z "${ONLY:-}" ]; then
  if [ -n "${BASELINE_BIN:-}" ]; then
    ONLY="floor healthz baseline-quickjs quickjs baseline-v8 v8 workerd deno"
  else
    ONLY="floor healthz quickjs-queue1 quickjs v8-queue1 v8 workerd deno"
  fi
fi
WORKERD_VERSION=${WORKERD_VERSION:-1.20261123.1}
DENO_VERSION=${DENO_VERSION:-2.9.6}
PORT_EXTENSOR=${PORT_EXTENSOR:-18080}
PORT_WORKERD=${PORT_WORKERD:-18081}
PORT_DENO=${PORT_DENO:-18082}
PORT_FLOOR=${PORT_FLOOR:-18083}
BODY='{"hello":"world"}'

for tool in wrk npm node curl pgrep getconf awk; do
  command -v "$tool" >/dev/null || { echo "route_peers: $tool is missing" >&2; exit 1; }
done
case "$PEERS_DIR" in "$ROOT"/*) echo "route_peers: PEERS_DIR must be outside the repository" >&2; exit 1;; esac

WORK=$(mktemp -d "${TMPDIR:-/tmp}/extensor-route-bench.XXXXXX")
PIDS=()
RUNS=0
cleanup() {
  for pid in "${PIDS[@]}"; do
    pkill -TERM -P "$pid" 2>/dev/null || true
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

if [ -z "${EXTENSOR_BIN:-}" ]; then
  (cd "$ROOT" && cargo build --release --bin extensor)
  EXTENSOR_BIN="$ROOT/target/release/extensor"
fi

if [ -z "${FLOOR_BIN:-}" ] && [[ " $ONLY " == *" floor "* ]]; then
  (cd "$ROOT" && cargo build --release -p extensor-api --example http_floor)
  FLOOR_BIN="$ROOT/target/release/examples/http_floor"
fi

install_peers() {
  mkdir -p "$PEERS_DIR"
  if [ ! -x "$PEERS_DIR/node_modules/.bin/workerd" ] || [ ! -x "$PEERS_DIR/node_modules/.bin/deno" ]; then
    (cd "$PEERS_DIR" && { [ -f package.json ] || npm init -y >/dev/null; } \
      && npm install --no-audit --no-fund --ignore-scripts "workerd@$WORKERD_VERSION" "deno@$DENO_VERSION")
  fi
}

# Nothing may answer on a server's port before it starts: a leftover
# server would be measured in its place.
port_free() { # port
  if curl -sS -o /dev/null "http://127.0.0.1:$1/" 2>/dev/null; then
    echo "route_peers: something already answers on port $1" >&2
    exit 1
  fi
}

wait_http() { # url
  for _ in $(seq 1 200); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "route_peers: $1 never answered" >&2
  exit 1
}

# Every thread of a process and of its descendants (the npm wrappers run the
# real server as a child): "tid name cpu_ticks voluntary nonvoluntary" per
# line.
threads() { # pid
  local pid=$1 child t
  for t in /proc/"$pid"/task/*; do
    [ -r "$t/stat" ] || continue
    # The name is the field in parentheses; the fields after it count from 3.
    awk -v tid="${t##*/}" -v name="$(cat "$t/comm" 2>/dev/null)" '
      FNR == NR { sub(/^.*\) /, ""); split($0, f, " "); cpu = f[12] + f[13]; next }
      /^voluntary_ctxt_switches/ { v = $2 }
      /^nonvoluntary_ctxt_switches/ { n = $2 }
      END { gsub(/ /, "_", name); print tid, name, cpu, v, n }' "$t/stat" "$t/status" 2>/dev/null || true
  done
  for child in $(pgrep -P "$pid" 2>/dev/null); do threads "$child"; done
}

# CPU µs and context switches per request between two `threads` snapshots,
# as "total | tokio | isolates | switches" cells (tokio and isolates only
# where such threads exist: Extensor's; tokio's workers and blocking pool
# share the name `tokio-rt-worker`). Threads are matched by id: one made
# during the run counts from zero, one that ended during it is left out.
per_request() { # before after requests
  local tick_us
  tick_us=$((1000000 / $(getconf CLK_TCK)))
  awk -v reqs="$3" -v tick_us="$tick_us" '
    function group(name) {
      if (name == "tokio-rt-worker") return "workers"
      if (name ~ /^extensor-(v8|js)$/) return "isolates"
      return "other"
    }
    FNR == NR { cpu[$1] = $3; sw[$1] = $4 + $5; next }
    {
      d = $3 - cpu[$1]; dc[group($2)] += d; all += d
      dsw += $4 + $5 - sw[$1]
    }
    END {
      w = ("workers" in dc) ? sprintf("%.1f", dc["workers"] * tick_us / reqs) : "-"
      i = ("isolates" in dc) ? sprintf("%.1f", dc["isolates"] * tick_us / reqs) : "-"
      printf "%.1f | %s | %s | %.2f", all * tick_us / reqs, w, i, dsw / reqs
    }' <(echo "$1") <(echo "$2")
}

# wrk's requests/s, p50 and p99, and the server's CPU per request, as one
# markdown row.
measure() { # label url
  local out before after
  curl -sS "$2" | grep -q '"hello"' || [[ "$1" == "extensor /"* ]] \
    || { echo "route_peers: $2 did not answer the JSON" >&2; exit 1; }
  wrk -t2 -c64 -d"${WARMUP_S}s" "$2" >/dev/null
  before=$(threads "${PIDS[-1]}")
  # shellcheck disable=SC2086
  out=$(wrk $WRK_ARGS --latency "$2")
  after=$(threads "${PIDS[-1]}")
  echo "$out" >"$WORK/$(echo "$1" | tr -c 'a-z0-9' _).txt"
  local rps p50 p99 errors requests cpu
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  errors=$(grep -E "Non-2xx|Socket errors" <<<"$out" | tr -s ' ' | paste -sd';' - || true)
  cpu=$(per_request "$before" "$after" "$requests")
  printf '| %s | %s | %s | %s | %s | %s |\n' "$1" "$rps" "$p50" "$p99" "$cpu" "${errors:-none}"
}

extensor_up() { # engine [binary] [isolate queue]
  local bin=${2:-$EXTENSOR_BIN} queue=${3:-}
  RUNS=$((RUNS + 1))
  local data="$WORK/data-$1-$RUNS" plugin="$WORK/plugin" token
  mkdir -p "$plugin"
  cat >"$plugin/manifest.json" <<JSON
{"slug": "hello", "name": "Hello", "version": "1.0.0", "entry": "main.js",
 "permissions": ["routes.public"],
 "routes": [{"method": "GET", "path": "/hello", "public": true}]}
JSON
  cat >"$plugin/main.js" <<JS
import { route } from 'extensor:sdk';
route('GET', '/hello', () => ({ hello: 'world' }));
JS
  token=$("$bin" --data-dir "$data" tenant create --slug bench --name Bench \
    | sed -n 's/^owner token[^:]*: //p')
  port_free "$PORT_EXTENSOR"
  EXTENSOR_JS_ENGINE=$1 EXTENSOR_RATE_ROUTES_PER_S=0 EXTENSOR_LOG=${EXTENSOR_LOG:-info} \
    env ${queue:+EXTENSOR_ISOLATE_QUEUE_MAX=$queue} "$bin" --data-dir "$data" serve --listen "127.0.0.1:$PORT_EXTENSOR" \
    >"$WORK/extensor-$1.log" 2>&1 &
  PIDS+=($!)
  wait_http "http://127.0.0.1:$PORT_EXTENSOR/healthz"
  EXTENSOR_JS_ENGINE=$1 "$bin" plugin push "$plugin" --server "http://127.0.0.1:$PORT_EXTENSOR" \
    --token "$token" --tenant bench --enable >/dev/null
}

# Stops the last server started, and its children: the npm packages'
# `workerd` and `deno` are Node wrappers that run the real binary as a
# child, which killing the wrapper alone left running (still bound to the
# port, so the next run's peer failed to bind and the old one answered).
stop_last() {
  local pid=${PIDS[-1]}
  pkill -TERM -P "$pid" 2>/dev/null || true
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  unset 'PIDS[-1]'
}

workerd_up() {
  cat >"$WORK/worker.js" <<JS
export default { fetch() { return Response.json({ hello: 'world' }); } };
JS
  cat >"$WORK/workerd.capnp" <<CAPNP
using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [ (name = "main", worker = .worker) ],
  sockets = [ (name = "http", address = "127.0.0.1:$PORT_WORKERD", http = (), service = "main") ],
);
const worker :Workerd.Worker = (
  modules = [ (name = "worker", esModule = embed "worker.js") ],
  compatibilityDate = "2024-09-23",
);
CAPNP
  port_free "$PORT_WORKERD"
  "$PEERS_DIR/node_modules/.bin/workerd" serve "$WORK/workerd.capnp" >"$WORK/workerd.log" 2>&1 &
  PIDS+=($!)
  wait_http "http://127.0.0.1:$PORT_WORKERD/"
}

floor_up() {
  port_free "$PORT_FLOOR"
  "$FLOOR_BIN" "127.0.0.1:$PORT_FLOOR" >"$WORK/floor.log" 2>&1 &
  PIDS+=($!)
  wait_http "http://127.0.0.1:$PORT_FLOOR/"
}

deno_up() {
  cat >"$WORK/deno.js" <<JS
Deno.serve({ hostname: '127.0.0.1', port: $PORT_DENO, onListen() {} },
  () => Response.json({ hello: 'world' }));
JS
  port_free "$PORT_DENO"
  DENO_DIR="$PEERS_DIR/deno-dir" DENO_NO_UPDATE_CHECK=1 \
    "$PEERS_DIR/node_modules/.bin/deno" run --allow-net "$WORK/deno.js" >"$WORK/deno.log" 2>&1 &
  PIDS+=($!)
  wait_http "http://127.0.0.1:$PORT_DENO/"
}

install_peers
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load: $(cut -d' ' -f1-3 /proc/loadavg); $(date -u '+%F %T UTC'); wrk $WRK_ARGS"
echo "extensor: $("$EXTENSOR_BIN" --version), commit $(git -C "$ROOT" rev-parse --short HEAD)"
[ -z "${BASELINE_BIN:-}" ] || echo "baseline: $BASELINE_BIN"
echo
echo "| server | requests/s | p50 | p99 | CPU µs/request | of it: tokio's threads | of it: isolate threads | context switches/request | errors |"
echo "|---|---|---|---|---|---|---|---|---|"
for what in $ONLY; do
  case $what in
    floor) floor_up; measure "HTTP floor: poem alone" "http://127.0.0.1:$PORT_FLOOR/"; stop_last ;;
    notfound) extensor_up v8; measure "extensor /nothing (404 through every middleware)" "http://127.0.0.1:$PORT_EXTENSOR/nothing"; stop_last ;;
    healthz) extensor_up v8; measure "extensor /healthz" "http://127.0.0.1:$PORT_EXTENSOR/healthz"; stop_last ;;
    quickjs|v8) extensor_up "$what"
      measure "extensor plugin route ($what)" "http://127.0.0.1:$PORT_EXTENSOR/t/bench/ext/hello/hello"
      stop_last ;;
    quickjs-queue1|v8-queue1) engine=${what%-queue1}
      extensor_up "$engine" "$EXTENSOR_BIN" 1
      measure "extensor plugin route ($engine, EXTENSOR_ISOLATE_QUEUE_MAX=1)" "http://127.0.0.1:$PORT_EXTENSOR/t/bench/ext/hello/hello"
      stop_last ;;
    baseline-quickjs|baseline-v8) engine=${what#baseline-}
      [ -n "${BASELINE_BIN:-}" ] || { echo "route_peers: $what needs BASELINE_BIN" >&2; exit 1; }
      extensor_up "$engine" "$BASELINE_BIN"
      measure "baseline plugin route ($engine)" "http://127.0.0.1:$PORT_EXTENSOR/t/bench/ext/hello/hello"
      stop_last ;;
    workerd) workerd_up; measure "workerd $WORKERD_VERSION" "http://127.0.0.1:$PORT_WORKERD/"; stop_last ;;
    deno) deno_up; measure "Deno.serve (deno $DENO_VERSION)" "http://127.0.0.1:$PORT_DENO/"; stop_last ;;
    *) echo "route_peers: unknown target $what" >&2; exit 1 ;;
  esac
done
