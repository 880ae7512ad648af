#!/usr/bin/env bash
# Runs Hermes against a real Kubernetes cluster: the one KUBECONFIG names
# (kind, k3d, or any other). See the README section "Against a real cluster".
#
#   e2e/cluster/run.sh                 # examples, checks, cold start over 1000
#   e2e/cluster/run.sh --scale 10000   # a bigger cold start
#   e2e/cluster/run.sh --skip-scale    # everything but the cold start
#   e2e/cluster/run.sh --keep          # leave the namespaces for inspection
#
# Needs: cargo, kubectl access to the cluster, redis-server (unless
# REDIS_URL is set), and docker for a throwaway MySQL (unless DATABASE_URL
# is set; without either, the run uses SQLite and says so).
#
# The operator and server run on this machine, not in the cluster: only the
# CRDs and the test objects go there. Do not run it against a cluster where
# a Hermes operator is installed: both would reconcile the test objects.
set -euo pipefail
cd "$(dirname "$0")/../.."

log() { printf '== %s\n' "$*" >&2; }

export KUBECONFIG="${KUBECONFIG:-$HOME/.kube/config}"
if ! kubectl version >/dev/null 2>&1; then
  echo "cannot reach the cluster of KUBECONFIG=$KUBECONFIG (kubectl version failed)" >&2
  exit 1
fi
log "cluster: $(kubectl config current-context)"

if [ -z "${REDIS_URL:-}" ] && ! command -v redis-server >/dev/null; then
  echo "redis-server is not installed and REDIS_URL is not set" >&2
  exit 1
fi

log "building hermes-operator, hermes-server and cluster-e2e (release)"
cargo build --release --locked -p hermes-operator -p hermes-server -p hermes-e2e --bins

mysql_container=""
cleanup() {
  if [ -n "$mysql_container" ]; then
    docker rm -f "$mysql_container" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

if [ -z "${DATABASE_URL:-}" ] && command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  password="e2e-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
  log "starting a throwaway MySQL 8.4 in docker"
  mysql_container=$(docker run -d --rm -e MYSQL_ROOT_PASSWORD="$password" -e MYSQL_DATABASE=hermes \
    -p 127.0.0.1::3306 mysql:8.4)
  port=$(docker port "$mysql_container" 3306/tcp | head -n1 | sed 's/.*://')
  for _ in $(seq 120); do
    if docker exec "$mysql_container" mysql -uroot -p"$password" -h127.0.0.1 -e 'select 1' hermes >/dev/null 2>&1; then
      break
    fi
    sleep 1
  done
  export DATABASE_URL="mysql://root:${password}@127.0.0.1:${port}/hermes"
fi

status=0
target/release/cluster-e2e --bin-dir target/release "$@" || status=$?
exit "$status"
