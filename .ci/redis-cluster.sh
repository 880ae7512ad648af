#!/usr/bin/env bash
# A throwaway three-master Redis Cluster for the store conformance tests.
#
#   .ci/redis-cluster.sh [start]   start it (or reuse a healthy one) and print
#                                  REDIS_CLUSTER_URLS=redis://127.0.0.1:7101,...
#   .ci/redis-cluster.sh stop      shut it down and remove its data folder
#   .ci/redis-cluster.sh status    exit 0 when it is up and healthy
#
# Only the REDIS_CLUSTER_URLS line goes to stdout, so callers can
# `eval "$(.ci/redis-cluster.sh start)"`; progress goes to stderr.
#
# The nodes are plain `redis-server` processes from this machine, listening
# on 127.0.0.1 only, without persistence, in a folder under $TMPDIR. Set
# HERMES_REDIS_CLUSTER_PORTS (three space-separated ports) to move them.
set -euo pipefail

read -r -a PORTS <<<"${HERMES_REDIS_CLUSTER_PORTS:-7101 7102 7103}"
DIR="${HERMES_REDIS_CLUSTER_DIR:-${TMPDIR:-/tmp}/hermes-redis-cluster}"
HOST=127.0.0.1

# How long to wait for nodes to answer and for the cluster to agree, in tenths of a second.
WAIT_TENTHS=300

log() { printf '%s\n' "redis-cluster: $*" >&2; }

cli() { redis-cli -h "$HOST" -p "$1" "${@:2}"; }

node_up() { cli "$1" ping 2>/dev/null | grep -q PONG; }

node_down() { ! node_up "$1"; }

# Healthy means: every node answers, sees cluster_state:ok, and knows all the others.
cluster_ok() {
  local port info
  for port in "${PORTS[@]}"; do
    info="$(cli "$port" cluster info 2>/dev/null)" || return 1
    grep -q '^cluster_state:ok' <<<"$info" || return 1
    grep -q "^cluster_known_nodes:${#PORTS[@]}" <<<"$info" || return 1
  done
}

# Polls a condition (a function name and its arguments) until it holds or the wait runs out.
await() {
  local i
  for ((i = 0; i < WAIT_TENTHS; i++)); do
    "$@" && return 0
    sleep 0.1
  done
  return 1
}

print_urls() {
  local urls=() port
  for port in "${PORTS[@]}"; do urls+=("redis://$HOST:$port"); done
  local IFS=,
  printf 'REDIS_CLUSTER_URLS=%s\n' "${urls[*]}"
}

# Shuts down the nodes this script started (those with a pid file in $DIR), never anything else.
stop_nodes() {
  local port
  for port in "${PORTS[@]}"; do
    if [ -f "$DIR/$port/redis.pid" ] && node_up "$port"; then
      cli "$port" shutdown nosave >/dev/null 2>&1 || true
    fi
  done
  for port in "${PORTS[@]}"; do
    if ! await node_down "$port"; then
      log "node on port $port did not shut down"
      return 1
    fi
  done
  rm -rf "$DIR"
}

start() {
  command -v redis-server >/dev/null || { log "redis-server is not installed"; exit 1; }
  command -v redis-cli >/dev/null || { log "redis-cli is not installed"; exit 1; }

  if cluster_ok; then
    log "reusing the running cluster on ports ${PORTS[*]}"
    print_urls
    return
  fi

  # A half-made cluster of ours (a failed earlier run) is removed; a port held
  # by anything else is a conflict we refuse to touch.
  local port
  for port in "${PORTS[@]}"; do
    if node_up "$port" && [ ! -f "$DIR/$port/redis.pid" ]; then
      log "port $port is taken by a Redis this script did not start; set HERMES_REDIS_CLUSTER_PORTS"
      exit 1
    fi
  done
  stop_nodes

  for port in "${PORTS[@]}"; do
    mkdir -p "$DIR/$port"
    redis-server \
      --bind "$HOST" --port "$port" \
      --cluster-enabled yes --cluster-config-file "$DIR/$port/nodes.conf" --cluster-node-timeout 5000 \
      --save '' --appendonly no \
      --dir "$DIR/$port" --pidfile "$DIR/$port/redis.pid" --logfile "$DIR/$port/redis.log" \
      --daemonize yes
  done
  for port in "${PORTS[@]}"; do
    if ! await node_up "$port"; then
      log "node on port $port did not start; see $DIR/$port/redis.log"
      exit 1
    fi
  done

  local nodes=()
  for port in "${PORTS[@]}"; do nodes+=("$HOST:$port"); done
  log "creating the cluster on ${nodes[*]}"
  redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >&2

  if ! await cluster_ok; then
    log "the cluster did not reach cluster_state:ok; see $DIR/*/redis.log"
    exit 1
  fi
  log "cluster ok"
  print_urls
}

case "${1:-start}" in
  start) start ;;
  stop) stop_nodes && log "stopped" ;;
  status) cluster_ok ;;
  *)
    log "usage: $0 [start|stop|status]"
    exit 2
    ;;
esac
