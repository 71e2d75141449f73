#!/usr/bin/env bash
# Start the head node: GCS on $RTS_PORT_BASE, Jobs API/dashboard on $RTS_PORT_BASE+1 bound to 127.0.0.1, Ray Client
# on +2. Creates the cluster's auth token (mode 600) on first use. See README.md.
source "$(dirname "$0")/common.sh"

if [[ ! -s $RAY_AUTH_TOKEN_PATH ]]; then
  (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$RAY_AUTH_TOKEN_PATH")
fi
b=$RTS_PORT_BASE
started=$(date +%s%N)
# shellcheck disable=SC2046
start_node head --head --port "$b" --ray-client-server-port $((b + 2)) \
  --include-dashboard true --dashboard-host 127.0.0.1 --dashboard-port $((b + 1)) $(node_port_args "$b")
wait_started head
echo "head started in $(elapsed "$started")s (PID $(cat "$RTS_CLUSTER_DIR/head.pid"))"
echo "  join:    RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH=$RAY_AUTH_TOKEN_PATH ray start --address $RTS_NODE_IP:$b"
echo "  submit:  RAY_AUTH_TOKEN_PATH=$RAY_AUTH_TOKEN_PATH raytune-suite submit CONFIG --address http://127.0.0.1:$((b + 1))"
