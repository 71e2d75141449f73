#!/usr/bin/env bash
# Stop nodes started by these scripts, by the process group recorded at start: never `ray stop`, which kills every
# Ray process on the machine, other users' included.   stop.sh [NAME ...]   (default: workers, then the head)
#   RTS_SIGNAL=KILL simulates a node crash instead of a clean stop.
source "$(dirname "$0")/common.sh"

names=("$@")
if [[ ${#names[@]} -eq 0 ]]; then
  for f in "$RTS_CLUSTER_DIR"/worker-*.pid; do [[ -e $f ]] && names+=("$(basename "$f" .pid)"); done
  [[ -e $RTS_CLUSTER_DIR/head.pid ]] && names+=(head)
fi
for name in "${names[@]}"; do
  pidfile="$RTS_CLUSTER_DIR/$name.pid"
  [[ -f $pidfile ]] || { echo "$name: no PID file in $RTS_CLUSTER_DIR" >&2; continue; }
  pgid=$(cat "$pidfile")
  kill "-${RTS_SIGNAL:-TERM}" -- "-$pgid" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 -- "-$pgid" 2>/dev/null || break; sleep 0.25; done
  kill -KILL -- "-$pgid" 2>/dev/null || true
  rm -f "$pidfile"
  echo "stopped $name (process group $pgid)"
done
