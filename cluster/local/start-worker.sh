#!/usr/bin/env bash
# Start worker node K (1, 2, ...) and join it to the head at $RTS_HEAD (default $RTS_NODE_IP:$RTS_PORT_BASE).
# Its ports are the block RTS_PORT_BASE + 100*K. The node needs the head's token file (RAY_AUTH_TOKEN_PATH).
source "$(dirname "$0")/common.sh"

k=${1:?usage: start-worker.sh K  (worker number, 1, 2, ...)}
head=${RTS_HEAD:-$RTS_NODE_IP:$RTS_PORT_BASE}
if [[ ! -s $RAY_AUTH_TOKEN_PATH ]]; then
  echo "no token at $RAY_AUTH_TOKEN_PATH: copy the head's token there (mode 600) or set RAY_AUTH_TOKEN_PATH" >&2
  exit 1
fi
started=$(date +%s%N)
# shellcheck disable=SC2046
start_node "worker-$k" --address "$head" $(node_port_args $((RTS_PORT_BASE + 100 * k)))
wait_started "worker-$k"
echo "worker-$k joined $head in $(elapsed "$started")s (PID $(cat "$RTS_CLUSTER_DIR/worker-$k.pid"))"
