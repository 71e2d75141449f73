# Shared settings of the local-cluster scripts; sourced, not run. Every value can be set in the environment.
#   RTS_CLUSTER_DIR  state folder: token, PID files, logs, one Ray temp dir per node (default /tmp/rts-cluster-$USER)
#   RTS_PORT_BASE    first port of the head's block; worker k uses the block RTS_PORT_BASE + 100*k (default 16100)
#   RTS_NODE_IP      address this node advertises (default 127.0.0.1; a LAN address to span machines)
#   RTS_NUM_CPUS / RTS_NUM_GPUS   resources this node offers (default: Ray detects them)
#   RAY              the ray executable (default: `ray` next to $PYTHON, else on PATH)
set -euo pipefail

RTS_CLUSTER_DIR=${RTS_CLUSTER_DIR:-/tmp/rts-cluster-${USER:-$(id -un)}}
RTS_PORT_BASE=${RTS_PORT_BASE:-16100}
RTS_NODE_IP=${RTS_NODE_IP:-127.0.0.1}
RAY=${RAY:-$(command -v ray || true)}
# Jobs run `python` from PATH on the nodes: the environment that holds ray (and torch, the suite) must come first.
[[ -n $RAY ]] && export PATH="$(dirname "$RAY"):$PATH"
export RAY_USAGE_STATS_ENABLED=0
# Token authentication on: without it `ray start` warns that anyone who can reach the ports can run code (and
# exposed Ray clusters were exploited in the wild, CVE-2023-48022). Nodes and clients read the token file.
export RAY_AUTH_MODE=token
export RAY_AUTH_TOKEN_PATH=${RAY_AUTH_TOKEN_PATH:-$RTS_CLUSTER_DIR/auth_token}
mkdir -p "$RTS_CLUSTER_DIR" && chmod 700 "$RTS_CLUSTER_DIR"

# The ports of one node: a block of 100 starting at $1. Explicit, so two nodes on one host never collide and a
# firewall can allow exactly these.
node_port_args() {
  local b=$1
  echo "--node-manager-port $((b + 3)) --object-manager-port $((b + 4))" \
    "--dashboard-agent-listen-port $((b + 5)) --dashboard-agent-grpc-port $((b + 6))" \
    "--runtime-env-agent-port $((b + 7)) --metrics-export-port $((b + 8))" \
    "--min-worker-port $((b + 10)) --max-worker-port $((b + 59))"
}

# Start `ray start ... --block` in its own session (process group) and record its PID, which is the group id.
start_node() {
  local name=$1; shift
  local pidfile="$RTS_CLUSTER_DIR/$name.pid"
  [[ -x $RAY ]] || { echo "no ray executable: activate the project's environment or set RAY=/path/to/bin/ray" >&2; exit 1; }
  if [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "$name is already running (PID $(cat "$pidfile")); stop it first: $(dirname "$0")/stop.sh $name" >&2
    exit 1
  fi
  # Each node its own temp dir: two nodes sharing one would garbage-collect each other's job working dirs.
  local temp="$RTS_CLUSTER_DIR/$name"
  mkdir -p "$temp"
  setsid "$RAY" start --block --temp-dir "$temp" --node-ip-address "$RTS_NODE_IP" --disable-usage-stats \
    ${RTS_NUM_CPUS:+--num-cpus "$RTS_NUM_CPUS"} ${RTS_NUM_GPUS:+--num-gpus "$RTS_NUM_GPUS"} "$@" \
    >"$RTS_CLUSTER_DIR/$name.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
}

# Wait until `ray start` printed its success line, or fail with the log's tail.
wait_started() {
  local name=$1 pid
  pid=$(cat "$RTS_CLUSTER_DIR/$name.pid")
  for _ in $(seq 1 240); do
    if grep -q "Ray runtime started" "$RTS_CLUSTER_DIR/$name.log" 2>/dev/null; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.5
  done
  echo "$name did not start; last lines of $RTS_CLUSTER_DIR/$name.log:" >&2
  tail -n 20 "$RTS_CLUSTER_DIR/$name.log" >&2
  exit 1
}

# Seconds since a `date +%s%N` stamp, with one decimal.
elapsed() {
  local ms=$((($(date +%s%N) - $1) / 1000000))
  printf '%d.%d' $((ms / 1000)) $((ms % 1000 / 100))
}
