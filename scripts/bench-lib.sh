# shellcheck shell=bash
# Shared functions of scripts/bench and scripts/bench-reload (sourced, not run).
#
# Method: /work/shared/BENCH.md. Core 0 runs the load generator (wrk -t1), core 1 the
# backend (nginx, one worker, `return 200 "ok"`) and the proxy under test, each
# single-threaded. Proxy cost is CPU µs per request from /proc (utime+stime ticks of the
# proxy's process tree), which stays stable where req/s swings on a shared machine.
#
# Knobs (environment):
#   BENCH_DURATION=10   seconds per measured wrk run      BENCH_RUNS=3     runs per target
#   BENCH_WARMUP=2      seconds of warm-up per target     BENCH_CONNS=50   wrk connections
#   BENCH_C1=5          seconds of each c=1 latency run (0 = skip)   BENCH_C1_RUNS=3  how many
#   BENCH_RELOAD_DURATION=20  seconds of each reload-under-load run (steady and during)
#   BENCH_RELOAD_EVERY=0.5    seconds between reloads
#   BENCH_RELOAD_RUNS=$BENCH_RUNS  pairs of steady/during runs per reload target
#   BENCH_DEPLOY_REPEAT=5     deploys per unit size       BENCH_MANY=10000 proxies of the big unit
#   BENCH_SECTIONS="reload inflight deploy many"  parts of scripts/bench-reload to run
#   BENCH_QUIET_WAIT=10 BENCH_QUIET_MAX=30  before each run, wait up to 10 s for the machine
#                       to be less than 30 % busy (others' builds), then measure anyway
#   BENCH_ONLY="esb-pass nginx"  only these data-plane targets (keys as in the table)
#   BENCH_NO_PINGORA=1  leave the pingora peer out (it is built from bench/pingora-peer)
#   BENCH_IDLE_CONNS=5000  idle keep-alive connections of the memory section (0 = skip)
#   BENCH_MEM_PROXIES=10000  proxies loaded for esb's RSS per proxy (0 = skip)
#   BENCH_WORKERS=1 BENCH_ESB_CORES=1  esb's --workers and the cores it may run on
#   BENCH_NO_BUILD=1    use target/dist/esb (scripts/build-release) and target/release/esb as
#                       they are; ESB_BIN=path another esb, ESB_PLAIN_BIN=path another plain one
#   BENCH_KEEP_WORK=1   keep the temporary directory (configs, logs) for inspection
#   BENCH_OUT=dir       raw results and sections (default target/bench)
#   BENCH_MD=file       the report (default BENCHMARKS.md; BENCH_MD= to skip writing it)
# Quick run: BENCH_DURATION=3 BENCH_RUNS=1 BENCH_WARMUP=1 BENCH_C1=2 BENCH_RELOAD_DURATION=6 scripts/bench

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DURATION="${BENCH_DURATION:-10}"
RUNS="${BENCH_RUNS:-3}"
WARMUP="${BENCH_WARMUP:-2}"
CONNS="${BENCH_CONNS:-50}"
C1_DURATION="${BENCH_C1:-5}"
RELOAD_DURATION="${BENCH_RELOAD_DURATION:-20}"
RELOAD_EVERY="${BENCH_RELOAD_EVERY:-0.5}"
DEPLOY_REPEAT="${BENCH_DEPLOY_REPEAT:-5}"
MANY="${BENCH_MANY:-10000}"
OUT="${BENCH_OUT:-$ROOT/target/bench}"
MD="${BENCH_MD-$ROOT/BENCHMARKS.md}"
ESB="${ESB_BIN:-$ROOT/target/dist/esb}"
ESB_PLAIN="${ESB_PLAIN_BIN:-$ROOT/target/release/esb}"

# Ports: nothing here collides with the sample conf (8280/8281/9000/9900/9101/9102).
P_BACKEND=19000      # nginx backend, return 200 "ok"
P_BACKEND_STATUS=19009
P_SLOW=19010         # slow backend (python) for the in-flight test
P_NGINX=19001        # nginx proxy_pass
P_HAPROXY=19002      # haproxy
P_PINGORA=19003      # pingora pass-through peer (bench/pingora-peer)
P_ESB=19080          # esb transport
P_MGMT=19900         # esb management
CORE_LOAD=0
CORE_SUT=1
HZ="$(getconf CLK_TCK)"

WORK=""
PIDS=()

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- set-up and clean-up

bench_init() {
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/esb-bench.XXXXXX")"
  mkdir -p "$OUT"
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
  # The memory section holds 5,000 client connections (and as many towards a backend).
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  [ "$(nproc)" -ge 2 ] || log "warning: fewer than 2 cores; load generator and proxy share one"
  if [ "$(nproc)" -lt 2 ]; then CORE_SUT=0; fi
}

# Every process started through start_bg, with its descendants (nginx/haproxy workers,
# old haproxy workers after reloads), is ended here; nothing else is touched.
bench_cleanup() {
  local rc=$?
  set +e
  local p all=()
  for p in "${PIDS[@]}"; do
    [ -d "/proc/$p" ] && all+=($(tree_pids "$p"))
  done
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  sleep 0.5
  for p in "${all[@]}"; do [ -d "/proc/$p" ] && kill -KILL "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  if [ -n "$WORK" ] && [ -z "${BENCH_KEEP_WORK:-}" ]; then rm -rf "$WORK"; fi
  exit "$rc"
}

SUDO=""
ensure_tools() {
  local need=()
  command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
  command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
  command -v wrk >/dev/null || need+=(wrk)
  command -v curl >/dev/null || need+=(curl)
  command -v jq >/dev/null || need+=(jq)
  command -v ss >/dev/null || need+=(iproute2)
  command -v taskset >/dev/null || need+=(util-linux)
  command -v pgrep >/dev/null || need+=(procps)
  command -v python3 >/dev/null || need+=(python3)
  # The pingora peer's zlib-ng is built with cmake.
  [ -n "${BENCH_NO_PINGORA:-}" ] || command -v cmake >/dev/null || need+=(cmake)
  if [ ${#need[@]} -gt 0 ]; then
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    log "installing ${need[*]}"
    $SUDO apt-get update -qq
    # policy-rc.d or not: the Debian packages must not leave a system nginx/haproxy running
    # on our machine's default ports; we start our own instances only.
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
  PATH="$PATH:/usr/sbin:/sbin"
}

# Builds esb, then runs a private copy of the binary: the build is shared with whoever
# else builds in this checkout, and a rebuild in the middle of a run must not mix two
# versions into one report. ESB_REV records which source the copy was built from.
# The esb measured is the shipped build, scripts/build-release's profile-guided one
# (target/dist/esb); the plain `cargo build --release` (target/release/esb) is kept beside
# it as ESB_PLAIN for the rows that show what the profile buys.
build_esb() {
  if [ -z "${BENCH_NO_BUILD:-}" ] && [ -z "${ESB_BIN:-}" ]; then
    local i ok=""
    for i in 1 2 3; do
      log "scripts/build-release and cargo build --release -p esb-core (attempt $i)"
      if "$ROOT/scripts/build-release" && (cd "$ROOT" && cargo build --release -p esb-core --bin esb --quiet); then
        ok=1
        break
      fi
      log "build failed (other work in progress?); retrying in 60 s"
      sleep 60
    done
    [ -n "$ok" ] || die "esb does not build"
  fi
  [ -x "$ESB" ] || die "$ESB missing (scripts/build-release builds it)"
  if [ -z "${ESB_REV:-}" ]; then
    ESB_REV="$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')"
    if [ -n "$(cd "$ROOT" && git status --porcelain -- esb-core deployments Cargo.lock 2>/dev/null)" ]; then
      ESB_REV="$ESB_REV + uncommitted changes in esb-core/deployments"
    fi
    [ -n "${ESB_BIN:-}" ] && ESB_REV="$ESB ($ESB_REV in the checkout)"
  fi
  export ESB_REV
  cp "$ESB" "$WORK/esb-bin"
  ESB="$WORK/esb-bin"
  # Another esb named by ESB_BIN has no plain twin unless ESB_PLAIN_BIN names one.
  if [ -n "${ESB_BIN:-}" ] && [ -z "${ESB_PLAIN_BIN:-}" ]; then
    ESB_PLAIN=""
  elif [ -x "$ESB_PLAIN" ]; then
    cp "$ESB_PLAIN" "$WORK/esb-plain-bin"
    ESB_PLAIN="$WORK/esb-plain-bin"
  else
    ESB_PLAIN=""
  fi
}

# Builds the pingora peer (bench/pingora-peer, its own workspace: never built by CI or
# scripts/test). BENCH_NO_PINGORA=1 skips it (and its rows).
PINGORA=""
build_pingora() {
  [ -z "${BENCH_NO_PINGORA:-}" ] || return 0
  local dir="$ROOT/bench/pingora-peer"
  log "cargo build --release (bench/pingora-peer)"
  (cd "$dir" && CARGO_TARGET_DIR="$ROOT/target/pingora-peer" cargo build --release --quiet) ||
    die "bench/pingora-peer does not build (BENCH_NO_PINGORA=1 to leave pingora out)"
  cp "$ROOT/target/pingora-peer/release/pingora-peer" "$WORK/pingora-peer"
  PINGORA="$WORK/pingora-peer"
}

start_pingora() {
  [ -n "$PINGORA" ] || return 0
  start_bg pingora "$CORE_SUT" "$PINGORA" "127.0.0.1:$P_PINGORA" "127.0.0.1:$P_BACKEND"
  PINGORA_PID=$BG_PID
  wait_port "$P_PINGORA" pingora
}

# Resident memory (kB) of a process tree (nginx and haproxy: master and workers).
rss_kb() {
  local t=0 p v
  for p in $(tree_pids "$1"); do
    v=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null) || v=0
    t=$((t + ${v:-0}))
  done
  echo "$t"
}

port_free() { ! ss -Htln "( sport = :$1 )" | grep -q .; }

check_ports() {
  local p
  for p in "$@"; do port_free "$p" || die "port $p is in use"; done
}

# start_bg NAME CORE CMD... : runs CMD pinned to CORE, output in $WORK/NAME.log.
# Sets BG_PID.
start_bg() {
  local name=$1 core=$2; shift 2
  taskset -c "$core" "$@" >"$WORK/$name.log" 2>&1 &
  BG_PID=$!
  PIDS+=("$BG_PID")
}

stop_bg() {
  local pid=$1 p all
  all=$(tree_pids "$pid")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
  for p in $all; do [ -d "/proc/$p" ] && kill -KILL "$p" 2>/dev/null; done
  wait "$pid" 2>/dev/null || true
  local keep=() q
  for q in "${PIDS[@]}"; do [ "$q" = "$pid" ] || keep+=("$q"); done
  PIDS=("${keep[@]}")
}

wait_port() {
  local port=$1 name=$2
  for _ in $(seq 1 200); do
    ss -Htln "( sport = :$port )" | grep -q . && return 0
    sleep 0.05
  done
  cat "$WORK/$name.log" >&2 || true
  die "$name did not listen on :$port"
}

# ---------------------------------------------------------------- /proc accounting

tree_pids() {
  local p=$1 c
  [ -d "/proc/$p" ] || return 0
  echo "$p"
  for c in $(pgrep -P "$p" 2>/dev/null); do tree_pids "$c"; done
}

# CPU ticks of a process tree: utime+stime of each live process (process-level counters
# include exited threads) plus cutime+cstime (children that exited and were reaped, e.g.
# nginx or haproxy workers retired by a reload).
ticks() {
  local t=0 p v
  for p in $(tree_pids "$1"); do
    v=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 + $14 + $15 }' "/proc/$p/stat" 2>/dev/null) || v=0
    t=$((t + ${v:-0}))
  done
  echo "$t"
}

# "busy steal" ticks of one core from /proc/stat.
core_ticks() {
  awk -v c="cpu$1" '$1 == c { print $2+$3+$4+$7+$8+$9, $9 }' /proc/stat
}

# Waits (at most BENCH_QUIET_WAIT seconds, default 10) until the whole machine is less
# than BENCH_QUIET_MAX % busy (default 30) over one second, so that a run does not start
# in the middle of a neighbour's compile. Our own processes are idle at this point.
QUIET_WAITED=0
wait_quiet() {
  local max="${BENCH_QUIET_MAX:-30}" limit="${BENCH_QUIET_WAIT:-10}" start=$SECONDS b0 t0 b1 t1 busy
  while :; do
    read -r b0 t0 < <(awk '$1 == "cpu" { print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9 }' /proc/stat)
    sleep 1
    read -r b1 t1 < <(awk '$1 == "cpu" { print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9 }' /proc/stat)
    busy=$(( (b1 - b0) * 100 / (t1 - t0 > 0 ? t1 - t0 : 1) ))
    [ "$busy" -lt "$max" ] && return 0
    if [ $((SECONDS - start)) -ge "$limit" ]; then
      log "machine still ${busy}% busy after ${limit} s of waiting; measuring anyway"
      return 0
    fi
    QUIET_WAITED=$((QUIET_WAITED + 1))
  done
}

# TIME_WAIT sockets towards the backend, one "local peer" line each (sorted).
time_wait_list() { ss -Htan state time-wait "( dport = :$P_BACKEND )" | awk '{ print $(NF-1), $NF }' | sort; }
backend_accepts() { curl -s "http://127.0.0.1:$P_BACKEND_STATUS/" | awk 'NR == 3 { print $1 }'; }

# ---------------------------------------------------------------- configurations

write_lua() {
  # One wrk script for every run, driven by environment variables:
  #   WRK_METHOD, WRK_BODY_FILE, WRK_HEADER ("name: value"), WRK_COUNT_HEADER (a response
  #   header whose values are counted, e.g. x-rev). done() prints one machine-readable line.
  cat >"$WORK/bench.lua" <<'LUA'
local threads = {}
function setup(thread) table.insert(threads, thread) end

wrk.method = os.getenv("WRK_METHOD") or "GET"
local bf = os.getenv("WRK_BODY_FILE")
if bf and bf ~= "" then
  local f = assert(io.open(bf, "rb")); wrk.body = f:read("*a"); f:close()
  wrk.headers["Content-Type"] = "application/json"
end
local h = os.getenv("WRK_HEADER")
if h and h ~= "" then
  local k, v = h:match("^([^:]+):%s*(.*)$")
  wrk.headers[k] = v
end

local count = os.getenv("WRK_COUNT_HEADER")
if count and count ~= "" then
  count = count:lower()
  function init(args) rev_a = 0; rev_b = 0; rev_other = 0 end
  function response(status, headers, body)
    local v
    for k, val in pairs(headers) do
      if k:lower() == count then v = val end
    end
    if v == "A" then rev_a = rev_a + 1
    elseif v == "B" then rev_b = rev_b + 1
    else rev_other = rev_other + 1 end
  end
end

function done(summary, latency, requests)
  local a, b, o = 0, 0, 0
  if count and count ~= "" then
    for _, t in ipairs(threads) do
      a = a + t:get("rev_a"); b = b + t:get("rev_b"); o = o + t:get("rev_other")
    end
  end
  local e = summary.errors
  io.write(string.format(
    "BENCHRESULT requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d connect=%d read=%d write=%d status=%d timeout=%d rev_a=%d rev_b=%d rev_other=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect, e.read, e.write, e.status, e.timeout, a, b, o))
end
LUA
}

# $WORK/idle.py PORT PATH N: opens N keep-alive connections, sends one GET on each and
# reads its answer, prints "ready N-ok", then holds them idle until stdin closes.
write_idle_py() {
  cat >"$WORK/idle.py" <<'PY'
import asyncio, sys
port, path, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
req = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
async def one(sem):
    async with sem:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(req); await w.drain()
        head = await r.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await r.readexactly(length)
        return (r, w, head.startswith(b"HTTP/1.1 200"))
async def main():
    sem = asyncio.Semaphore(200)
    conns = await asyncio.gather(*(one(sem) for _ in range(n)), return_exceptions=True)
    ok = sum(1 for c in conns if not isinstance(c, Exception) and c[2])
    print(f"ready {ok}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
asyncio.run(main())
PY
}

# hold_idle PORT PATH N PID -> "RSS_before RSS_with ok": RSS (kB) of process tree PID
# before and with N idle keep-alive client connections (each served one request).
hold_idle() {
  local port=$1 path=$2 n=$3 pid=$4 before with ok fifo="$WORK/idle.fifo"
  before=$(rss_kb "$pid")
  rm -f "$fifo"; mkfifo "$fifo"
  taskset -c "$CORE_LOAD" python3 "$WORK/idle.py" "$port" "$path" "$n" <"$fifo" >"$WORK/idle.out" 2>&1 &
  local hp=$!
  exec 9>"$fifo"
  for _ in $(seq 1 600); do grep -q '^ready' "$WORK/idle.out" 2>/dev/null && break; sleep 0.1; done
  ok=$(awk '/^ready/ { print $2 }' "$WORK/idle.out")
  sleep 1
  with=$(rss_kb "$pid")
  exec 9>&-
  wait "$hp" 2>/dev/null || true
  sleep 1
  echo "$before $with ${ok:-0}"
}

# A 1 KB JSON order (exactly 1024 bytes).
write_body() {
  local head='{"order":{"id":"ord-4711","region":"eu","customer":{"id":"c-17","tier":"gold"},"items":[{"sku":"A1","qty":3},{"sku":"B2","qty":1}]},"pad":"'
  local tail='"}'
  local n=$((1024 - ${#head} - ${#tail}))
  { printf '%s' "$head"; head -c "$n" /dev/zero | tr '\0' 'x'; printf '%s' "$tail"; } >"$WORK/body-1k.json"
}

nginx_common() { # $1 = dir
  cat <<EOF
worker_processes 1;
daemon off;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 8192; }
EOF
}

nginx_temp() { # $1 = dir
  cat <<EOF
  client_body_temp_path $1/tmp/body;
  proxy_temp_path $1/tmp/proxy;
  fastcgi_temp_path $1/tmp/fastcgi;
  uwsgi_temp_path $1/tmp/uwsgi;
  scgi_temp_path $1/tmp/scgi;
EOF
}

start_backend() {
  local d="$WORK/backend"; mkdir -p "$d/tmp"
  {
    nginx_common "$d"
    echo "http {"
    nginx_temp "$d"
    cat <<EOF
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  server { listen 127.0.0.1:$P_BACKEND backlog=4096; location / { return 200 "ok"; } }
  server { listen 127.0.0.1:$P_BACKEND_STATUS; location / { stub_status; } }
}
EOF
  } >"$d/nginx.conf"
  start_bg backend "$CORE_SUT" nginx -p "$d" -e "$d/error.log" -c "$d/nginx.conf"
  BACKEND_PID=$BG_PID
  wait_port "$P_BACKEND" backend
}

# nginx as a proxy. $1 = X-Rev value to add ("" = none)
write_nginx_proxy_conf() {
  local d="$WORK/nginx" rev=$1
  mkdir -p "$d/tmp"
  {
    nginx_common "$d"
    echo "http {"
    nginx_temp "$d"
    cat <<EOF
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  upstream backend { server 127.0.0.1:$P_BACKEND; keepalive 128; keepalive_requests 10000000; }
  server {
    listen 127.0.0.1:$P_NGINX backlog=4096;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
EOF
    [ -n "$rev" ] && echo "      add_header X-Rev $rev always;"
    echo "    }"
    echo "  }"
    echo "}"
  } >"$d/nginx.conf.new"
  mv "$d/nginx.conf.new" "$d/nginx.conf"
}

start_nginx_proxy() {
  write_nginx_proxy_conf "${1:-}"
  local d="$WORK/nginx"
  start_bg nginx "$CORE_SUT" nginx -p "$d" -e "$d/error.log" -c "$d/nginx.conf"
  NGINX_PID=$BG_PID
  wait_port "$P_NGINX" nginx
}

# haproxy. $1 = X-Rev value ("" = none)
write_haproxy_conf() {
  local d="$WORK/haproxy" rev=$1
  mkdir -p "$d"
  {
    cat <<EOF
global
  nbthread 1
  maxconn 8000
  stats socket $d/admin.sock mode 600 level admin expose-fd listeners
defaults
  mode http
  option http-keep-alive
  http-reuse safe
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend fe
  bind 127.0.0.1:$P_HAPROXY
  default_backend be
EOF
    [ -n "$rev" ] && echo "  http-response set-header X-Rev $rev"
    cat <<EOF
backend be
  server s1 127.0.0.1:$P_BACKEND
EOF
  } >"$d/haproxy.cfg.new"
  mv "$d/haproxy.cfg.new" "$d/haproxy.cfg"
}

# $1 = X-Rev value, $2 = "mw" for master-worker mode (reloadable with USR2)
start_haproxy() {
  write_haproxy_conf "${1:-}"
  local d="$WORK/haproxy"
  if [ "${2:-}" = mw ]; then
    start_bg haproxy "$CORE_SUT" haproxy -W -S "$d/master.sock" -f "$d/haproxy.cfg"
  else
    start_bg haproxy "$CORE_SUT" haproxy -db -f "$d/haproxy.cfg"
  fi
  HAPROXY_PID=$BG_PID
  wait_port "$P_HAPROXY" haproxy
}

# ---------------------------------------------------------------- esb

ESB_DIR=""
# The esb unit under test: one endpoint-only proxy, a header switch, a JSON-pointer switch
# with a transform. All endpoints point at the same backend.
write_bench_unit() { # file
  mkdir -p "$(dirname "$1")"
  cat >"$1" <<EOF
version = "bench"

[[proxy]]
name = "pass"
transports = ["bench"]
path = "/pass"
endpoint = "backend"

[[proxy]]
name = "hswitch"
transports = ["bench"]
path = "/hswitch"
sequence = "route-by-header"
endpoint = "backend"

[[proxy]]
name = "jswitch"
transports = ["bench"]
path = "/jswitch"
methods = ["POST"]
sequence = "route-by-json"
endpoint = "backend"

[[sequence]]
name = "route-by-header"
steps = [
  { switch = { on = "\${header.x-region}", cases = { eu = "backend-eu", us = "backend-us" }, default = "backend" } },
]

[[sequence]]
name = "route-by-json"
steps = [
  { switch = { on = "\${json./order/region}", cases = { eu = "backend-eu", us = "backend-us" }, default = "backend" } },
  { transform = { body = { id = "\${json./order/id}", region = "\${json./order/region}", customer = "\${json./order/customer/id}", items = "\${json./order/items}", channel = "esb" } } },
]

[[endpoint]]
name = "backend"
addresses = ["http://127.0.0.1:$P_BACKEND"]

[[endpoint]]
name = "backend-eu"
addresses = ["http://127.0.0.1:$P_BACKEND"]

[[endpoint]]
name = "backend-us"
addresses = ["http://127.0.0.1:$P_BACKEND"]
EOF
}
start_esb() { # [name transport-port management-port binary]: another esb beside the first
  local name=${1:-esb} P_ESB=${2:-$P_ESB} P_MGMT=${3:-$P_MGMT} ESB=${4:-$ESB}
  ESB_DIR="$WORK/$name"
  mkdir -p "$ESB_DIR/deployments"
  cat >"$ESB_DIR/esb.toml" <<EOF
[server]
name = "esb-bench"
state_dir = "state"
drain_timeout = "30s"
history = 5

[management]
bind = "127.0.0.1:$P_MGMT"
max_body = 67108864

[hot_deploy]
watch = false

[[transport]]
name = "bench"
kind = "http"
bind = "127.0.0.1:$P_ESB"
EOF
  # BENCH_WORKERS / BENCH_ESB_CORES: for the --workers scaling check (default: one worker
  # on the proxy's core, as every other proxy here).
  ESB_LOG="${ESB_LOG:-warn}" start_bg "$name" "${BENCH_ESB_CORES:-$CORE_SUT}" "$ESB" --conf "$ESB_DIR" --no-watch --workers "${BENCH_WORKERS:-1}"
  ESB_PID=$BG_PID
  wait_port "$P_ESB" esb
  wait_port "$P_MGMT" esb
  for _ in $(seq 1 50); do [ -s "$ESB_DIR/state/control.token" ] && break; sleep 0.1; done
  ESB_TOKEN=$(cat "$ESB_DIR/state/control.token")
}

# jolokia_exec OPERATION ARGS_JSON -> prints the response (also in $WORK/jolokia-resp.json);
# sets JOLOKIA_WALL_MS (when not called in a subshell).
jolokia_exec() {
  jq -n --arg op "$1" --argjson args "$2" \
    '{type: "exec", mbean: "esb:type=DeploymentManager", operation: $op, arguments: $args}' \
    >"$WORK/jolokia-req.json"
  jolokia_post
  cat "$WORK/jolokia-resp.json"
}

# POSTs $WORK/jolokia-req.json; the answer lands in $WORK/jolokia-resp.json.
jolokia_post() {
  local t
  t=$(curl -s -o "$WORK/jolokia-resp.json" -w '%{time_total}' \
    -H "Authorization: Bearer $ESB_TOKEN" -H 'Content-Type: application/json' \
    --data-binary @"$WORK/jolokia-req.json" "http://127.0.0.1:$P_MGMT/jolokia")
  JOLOKIA_WALL_MS=$(awk -v t="$t" 'BEGIN { printf "%.2f", t * 1000 }')
}

# esb_deploy UNIT FILE -> sets DEPLOY_OUTCOME, DEPLOY_MS (server), JOLOKIA_WALL_MS
esb_deploy() {
  local unit=$1 file=$2 resp
  # The TOML goes through files: a 10,000-proxy unit is larger than one argv string may be.
  jq -n --arg u "$unit" --rawfile c "$file" \
    '{type: "exec", mbean: "esb:type=DeploymentManager", operation: "deploy", arguments: [$u, $c]}' \
    >"$WORK/jolokia-req.json"
  jolokia_post
  resp=$(cat "$WORK/jolokia-resp.json")
  DEPLOY_OUTCOME=$(jq -r '.value.outcome // "error"' <<<"$resp")
  DEPLOY_MS=$(jq -r '.value.duration_ms // "-" | if type == "number" then (. * 1000 | round / 1000) else . end' <<<"$resp")
  if [ "$DEPLOY_OUTCOME" != activated ] && [ "$DEPLOY_OUTCOME" != unchanged ]; then
    log "deploy $unit: $(head -c 600 <<<"$resp")"
  fi
}

esb_reload() {
  local unit=$1 resp
  jolokia_exec reload "$(jq -n --arg u "$unit" '[$u]')" >/dev/null
  resp=$(cat "$WORK/jolokia-resp.json")
  DEPLOY_OUTCOME=$(jq -r '.value.outcome // "error"' <<<"$resp")
  DEPLOY_MS=$(jq -r '.value.duration_ms // "-" | if type == "number" then (. * 1000 | round / 1000) else . end' <<<"$resp")
  if [ "$DEPLOY_OUTCOME" != activated ]; then log "reload $unit: $(head -c 600 <<<"$resp")"; fi
}

# ---------------------------------------------------------------- wrk runs

# wrk_run DURATION CONNS URL [VAR=VALUE...] -> prints the BENCHRESULT line fields.
wrk_run() {
  local d=$1 c=$2 url=$3; shift 3
  local out
  out=$(env "$@" taskset -c "$CORE_LOAD" wrk -t1 -c"$c" -d"${d}s" --timeout 5s -s "$WORK/bench.lua" "$url" 2>&1) || {
    echo "$out" >&2; die "wrk failed on $url"
  }
  echo "$out" >>"$WORK/wrk.log"
  grep '^BENCHRESULT' <<<"$out" | sed 's/^BENCHRESULT //' || { echo "$out" >&2; die "no wrk result"; }
}

# field NAME "k=v k=v" -> value
field() { tr ' ' '\n' <<<"$2" | awk -F= -v k="$1" '$1 == k { print $2 }'; }

# measure_run DURATION CONNS URL PROXY_PID [VAR=VALUE...] -> one TSV fragment:
# requests rps p50 p99 errors(sum) err_detail proxy_us backend_us new_conns time_wait foreign% steal% rev_a rev_b
measure_run() {
  local d=$1 c=$2 url=$3 ppid=$4; shift 4
  local p0 b0 a0 c0 s0 p1 b1 a1 c1 s1 r t0 t1
  p0=0; [ "$ppid" != - ] && p0=$(ticks "$ppid")
  time_wait_list >"$WORK/tw-before"
  b0=$(ticks "$BACKEND_PID"); a0=$(backend_accepts)
  read -r c0 s0 < <(core_ticks "$CORE_SUT")
  t0=$(date +%s%N)
  r=$(wrk_run "$d" "$c" "$url" "$@")
  t1=$(date +%s%N)
  read -r c1 s1 < <(core_ticks "$CORE_SUT")
  p1=0; [ "$ppid" != - ] && p1=$(ticks "$ppid")
  b1=$(ticks "$BACKEND_PID"); a1=$(backend_accepts)
  # TIME_WAIT sockets towards the backend that appeared during the run (they live 60 s, so
  # a plain count would include earlier targets' leftovers).
  local tw; tw=$(time_wait_list | comm -13 "$WORK/tw-before" - | wc -l)
  local req dur
  req=$(field requests "$r"); dur=$(field duration_us "$r")
  awk -v req="$req" -v dur="$dur" -v p50="$(field p50_us "$r")" -v p99="$(field p99_us "$r")" \
      -v ec="$(field connect "$r")" -v er="$(field read "$r")" -v ew="$(field write "$r")" \
      -v es="$(field status "$r")" -v et="$(field timeout "$r")" \
      -v pt=$((p1 - p0)) -v bt=$((b1 - b0)) -v hz="$HZ" -v ppid="$ppid" \
      -v conns=$((a1 - a0 - 1)) -v tw="$tw" -v core=$((c1 - c0)) -v steal=$((s1 - s0)) \
      -v wall=$(((t1 - t0) / 1000)) -v ra="$(field rev_a "$r")" -v rb="$(field rev_b "$r")" \
      'BEGIN {
        rps = req / (dur / 1e6)
        pus = (ppid == "-") ? "-" : sprintf("%.2f", pt * 1e6 / hz / req)
        bus = sprintf("%.2f", bt * 1e6 / hz / req)
        foreign = (core - pt - bt) * 100 / (wall / 1e6 * hz); if (foreign < 0) foreign = 0
        stealp = steal * 100 / (wall / 1e6 * hz)
        errs = ec + er + ew + es + et
        printf "%d\t%.0f\t%d\t%d\t%d\t%s\t%s\t%s\t%d\t%d\t%.1f\t%.1f\t%d\t%d\n", req, rps, p50, p99, errs,
          sprintf("c%d/r%d/w%d/s%d/t%d", ec, er, ew, es, et), pus, bus, conns, tw, foreign, stealp, ra, rb
      }'
}

# ---------------------------------------------------------------- statistics and markdown

median() { awk '$1 != "-" && $1 != ""' | sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# ratio A B -> "A/B" with 2 decimals, or "-"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }
fmt0() { awk -v a="$1" 'BEGIN { if (a == "-") print "-"; else printf "%.0f", a }'; }
fmt1() { awk -v a="$1" 'BEGIN { if (a == "-") print "-"; else printf "%.1f", a }'; }
fmt2() { awk -v a="$1" 'BEGIN { if (a == "-") print "-"; else printf "%.2f", a }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "-" && b != "-" && a + 0 <= b + 0) }'; }
verdict() { if "$@"; then echo "✅ met"; else echo "❌ not met"; fi; }

machine_md() {
  local cpu kernel
  cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
  kernel=$(uname -r)
  cat <<EOF
| | |
|---|---|
| date | $(date -u '+%Y-%m-%d %H:%M UTC') |
| cores (nproc) | $(nproc) |
| CPU | ${cpu:-unknown} |
| kernel | $kernel |
| esb | ${ESB_REV:-?} |
| nginx | $(nginx -v 2>&1 | sed 's/.*version: //') |
| haproxy | $(haproxy -v 2>/dev/null | awk 'NR == 1 { print $3 }') |
| wrk | $(wrk -v 2>&1 | awk 'NR == 1 { print $2 }') |
| load average at start | $(cut -d' ' -f1-3 /proc/loadavg) |
EOF
}

# Writes BENCHMARKS.md: the header, the machine and the hand-written analysis between the
# notes markers of the existing file, then its sections in their order, with "Data plane" and
# "Deployment" replaced by the ones this run wrote to $OUT (dataplane.md, reload.md): a run of
# one script, or with another BENCH_OUT, leaves every other section as it was (those the
# other bench scripts splice in too).
assemble_md() {
  [ -n "$MD" ] || return 0
  local notes=""
  if [ -f "$MD" ]; then
    notes=$(awk '/<!-- notes:begin -->/ { on = 1; next } /<!-- notes:end -->/ { on = 0 } on' "$MD")
  fi
  {
    cat <<'EOF'
# Benchmarks

Generated by `scripts/bench` (data plane) and `scripts/bench-reload` (deployment) from
their own output; the method is the one of `shared/BENCH.md`: wrk on core 0, the backend
(nginx, one worker, `return 200 "ok"`) and the proxy under test on core 1, each
single-threaded (nginx `worker_processes 1`, haproxy `nbthread 1`, `esb --workers 1`).
**CPU µs/request** = utime+stime ticks of the proxy's process tree (from `/proc/PID/stat`,
which also counts exited threads) × 10⁶ / CLK_TCK / requests. It is the figure to compare:
req/s swings with the neighbours on this shared machine, CPU per request much less.
Every figure is the median of the runs; ratios are against nginx unless said otherwise.

## Machine

EOF
    cat "$OUT/machine.md"
    echo
    echo "## Analysis"
    echo
    echo "<!-- notes:begin -->"
    if [ -n "$notes" ]; then echo "$notes"; else echo; echo "(no notes yet)"; echo; fi
    echo "<!-- notes:end -->"
    echo
    python3 - "$MD" "$OUT" <<'PY'
import os, sys
md, out = sys.argv[1], sys.argv[2]
fresh = {}
for title, name in (("Data plane", "dataplane.md"), ("Deployment", "reload.md")):
    path = os.path.join(out, name)
    if os.path.exists(path):
        fresh[title] = open(path).read().rstrip("\n") + "\n"
# The existing file's sections after the analysis, each from its "## " line to the next.
old = []
if os.path.exists(md):
    for chunk in ("\n" + open(md).read()).split("\n## ")[1:]:
        title = chunk.split("\n", 1)[0].strip()
        if title not in ("Machine", "Analysis"):
            old.append((title, "## " + chunk.rstrip("\n") + "\n"))
for title, text in old:
    sys.stdout.write(fresh.pop(title, text) + "\n")
for title in ("Data plane", "Deployment"):
    if title in fresh:
        sys.stdout.write(fresh[title] + "\n")
PY
  } >"$MD.new"
  mv "$MD.new" "$MD"
  log "wrote $MD"
}
