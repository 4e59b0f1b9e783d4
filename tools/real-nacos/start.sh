#!/usr/bin/env bash
# Start a real Nacos server (standalone, embedded Derby) from Maven Central artifacts.
#
#   tools/real-nacos/start.sh [2|3] [--auth]
#   tools/real-nacos/start.sh [2|3] --jars-only   # only resolve the jars (no server)
#
# Env: NACOS_PORT (8848; gRPC = +1000 and +1001, JRaft = -1000), NACOS_PASSWORD
# ('nacos-test-pw', admin password with --auth), NACOS_START_TIMEOUT (180 s),
# NACOS_JVM_OPTS (heap etc.), REAL_NACOS_HOME (<repo>/.real-nacos), MVN (mvn),
# NACOS_CLUSTER (unset: standalone; else the members, 127.0.0.1:P1,127.0.0.1:P2,..., this port
# among them: one node of a 2.x cluster on embedded storage, as start-cluster.sh runs them),
# NACOS_CLIENT_EXPIRED_MS (cluster only, 30000: when a node drops a dead peer's clients).
# Prints NACOS_SERVER_ADDR=127.0.0.1:PORT once the server answers; on failure exits non-zero
# with the log tail. State (data, logs, pid) lives in $REAL_NACOS_HOME/v<major>-<port>/ and
# is wiped on each start so every run begins empty.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

major=2
auth=false
jars_only=false
for arg in "$@"; do
  case "$arg" in
    2|3) major=$arg ;;
    --auth) auth=true ;;
    --jars-only) jars_only=true ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "start.sh: unknown argument '$arg' (expected 2, 3, --auth or --jars-only)" >&2; exit 2 ;;
  esac
done

port=${NACOS_PORT:-8848}
password=${NACOS_PASSWORD:-nacos-test-pw}
timeout=${NACOS_START_TIMEOUT:-180}
jvm_opts=${NACOS_JVM_OPTS:--Xms128m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1}
state_root=${REAL_NACOS_HOME:-$repo/.real-nacos}
mvn_cmd=${MVN:-mvn}
home="$state_root/v$major-$port"
pidfile="$home/nacos.pid"
log="$home/server.log"
base="http://127.0.0.1:$port/nacos"
cluster=${NACOS_CLUSTER:-}

if [[ ! "$port" =~ ^[0-9]+$ ]] || (( port < 1025 || port > 64534 )); then
  echo "start.sh: NACOS_PORT must be 1025..64534 (gRPC uses port+1001), got '$port'" >&2
  exit 2
fi
if [[ -n "$cluster" ]]; then
  [[ "$major" == 2 ]] || { echo "start.sh: NACOS_CLUSTER is for Nacos 2 only" >&2; exit 2; }
  [[ ",$cluster," == *",127.0.0.1:$port,"* ]] ||
    { echo "start.sh: NACOS_CLUSTER '$cluster' must list this node, 127.0.0.1:$port" >&2; exit 2; }
fi
if [[ "$jars_only" != true && -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  echo "start.sh: a Nacos started by this script already runs on port $port (pid $(cat "$pidfile")); run stop.sh first" >&2
  exit 1
fi
for p in "$port" $((port + 1000)) $((port + 1001)) $((port - 1000)); do
  if [[ "$jars_only" != true ]] && (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    echo "start.sh: port $p is already in use (Nacos needs $port, $((port + 1000)), $((port + 1001)), $((port - 1000)))" >&2
    exit 1
  fi
done

# Resolve the server's jars (downloads into ~/.m2 on the first run; offline afterwards).
proj="$here/v$major"
lib="$proj/target/lib"
mkdir -p "$state_root"
if [[ ! -f "$lib/.complete" || "$proj/pom.xml" -nt "$lib/.complete" ]]; then
  rm -rf "$lib"
  if ! "$mvn_cmd" -B -q -f "$proj/pom.xml" dependency:copy-dependencies \
      -DoutputDirectory="$lib" -DincludeScope=runtime >"$state_root/mvn-v$major.log" 2>&1; then
    echo "start.sh: resolving the Nacos $major.x jars failed:" >&2
    tail -n 40 "$state_root/mvn-v$major.log" >&2
    exit 1
  fi
  touch "$lib/.complete"
fi
# start-cluster.sh resolves the jars once before starting its nodes side by side.
[[ "$jars_only" == true ]] && exit 0

rm -rf "$home"
mkdir -p "$home"

props=(
  -Dnacos.home="$home"
  -Dnacos.server.ip=127.0.0.1
  -Dserver.address=127.0.0.1
  -Dnacos.inetutils.ip-address=127.0.0.1
  -Dserver.tomcat.basedir="$home"
  -Dserver.error.include-message=always
  # Derby's first connection (the schema load) times out after Hikari's 10 s by default, which a
  # starved machine exceeds ("Login timeout exceeded"): give it a minute.
  -Ddb.pool.config.connectionTimeout=60000
  -Dnacos.core.auth.enabled="$auth"
  -Dnacos.core.auth.system.type=nacos
  -Dnacos.core.auth.enable.userAgentAuthWhite=false
  -Dnacos.core.auth.server.identity.key=flowtagIdentity
  -Dnacos.core.auth.server.identity.value=flowtag-real-nacos
  # base64 of "flowtag-real-nacos-token-secret-key-0123456789" (46 bytes)
  -Dnacos.core.auth.plugin.nacos.token.secret.key=Zmxvd3RhZy1yZWFsLW5hY29zLXRva2VuLXNlY3JldC1rZXktMDEyMzQ1Njc4OQ==
)
if [[ -z "$cluster" ]]; then
  props+=(-Dnacos.standalone=true)
else
  # A member of a cluster: the members come from conf/cluster.conf (file lookup); config lives in
  # the embedded Derby of each node, replicated by JRaft (port P-1000), naming's ephemeral data
  # by Distro over the cluster gRPC port (P+1001). Every member is 127.0.0.1:P, so the node's own
  # address must be exactly that (no hostname, no interface guess).
  mkdir -p "$home/conf"
  tr ',' '\n' <<<"$cluster" >"$home/conf/cluster.conf"
  props+=(
    -Dnacos.standalone=false
    -DembeddedStorage=true
    -Dnacos.core.member.lookup.type=file
    -Dnacos.inetutils.prefer-hostname-over-ip=false
    # Instances a node holds for clients connected to another node are renewed by Distro every
    # 5 s and dropped when not renewed for this long (Nacos's default: 3 min), e.g. after that
    # node died. Shorter here so a test sees the survivors without the dead node's copies.
    -Dnacos.naming.client.expired.time="${NACOS_CLIENT_EXPIRED_MS:-30000}"
  )
fi
case "$major" in
  2)
    props+=(
      -Dserver.port="$port"
      -Dserver.servlet.contextPath=/nacos
    )
    main=(org.springframework.boot.SpringApplication
      "--spring.main.sources=com.alibaba.nacos.config.server.Config,file:$proj/nacos-context.xml")
    ready_path="/v1/ns/operator/metrics"
    ;;
  3)
    # shellcheck source=v3/launch.sh
    source "$proj/launch.sh"
    ;;
esac

add_opens=(--add-opens=java.base/java.lang=ALL-UNNAMED
  --add-opens=java.base/java.lang.reflect=ALL-UNNAMED
  --add-opens=java.base/java.util=ALL-UNNAMED
  --add-opens=java.base/java.util.concurrent=ALL-UNNAMED
  --add-opens=java.base/java.net=ALL-UNNAMED
  --add-opens=java.base/sun.net.util=ALL-UNNAMED)

# jraft brings sofa hessian 3.x, which carries its own copy of the com.caucho.hessian.io
# packages next to com.alipay.hessian.clhm. Nacos needs both jars: com.caucho:hessian 4.x must
# win for com.caucho.* (serializers), and sofa hessian must be present for
# com.alipay.hessian.clhm.ConcurrentLinkedHashMap, which RpcAckCallbackSynchronizer needs;
# without it every server push over gRPC that waits for an ack (NotifySubscriberRequest,
# ConfigChangeNotifyRequest) fails with NoClassDefFoundError and times out on the server.
# So 4.x goes first on the classpath; a `lib/*` wildcard has no defined order.
caucho=$(ls "$lib"/hessian-4.*.jar 2>/dev/null | head -n 1 || true)
[[ -n "$caucho" ]] || { echo "start.sh: com.caucho:hessian 4.x missing from $lib" >&2; exit 1; }
classpath="$caucho:$lib/*"

started=$(date +%s%N)
# shellcheck disable=SC2086  # jvm_opts is a word list on purpose
(cd "$home" && exec nohup ${JAVA:-java} $jvm_opts "${add_opens[@]}" "${props[@]}" \
  -cp "$classpath" "${main[@]}" >"$log" 2>&1 </dev/null) &
echo $! >"$pidfile"
pid=$(cat "$pidfile")

fail() {
  echo "start.sh: $1" >&2
  echo "---- last lines of $log ----" >&2
  tail -n 60 "$log" >&2 || true
  # Wait for the JVM to go (SIGKILL after 10 s): a half-started one keeps its ports.
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pidfile"
  exit 1
}

deadline=$(( $(date +%s) + timeout ))
until [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$base$ready_path" || true)" == 200 ]]; do
  kill -0 "$pid" 2>/dev/null || fail "Nacos exited during startup"
  (( $(date +%s) < deadline )) || fail "Nacos did not answer $base$ready_path within ${timeout}s"
  sleep 0.5
done

if [[ "$auth" == true ]]; then
  # Nacos 2.4+ ships no default user: the first admin is created through this endpoint.
  admin_path=/v1/auth/users/admin
  [[ "$major" == 3 ]] && admin_path=/v3/auth/user/admin
  code=$(curl -s -o "$home/admin.json" -w '%{http_code}' --max-time 10 -X POST \
    --data-urlencode "username=nacos" --data-urlencode "password=$password" "$base$admin_path" || true)
  [[ "$code" == 200 ]] || fail "creating the admin user answered HTTP $code: $(cat "$home/admin.json" 2>/dev/null)"
  # The auth plugin serves logins from a user cache it reloads every 15 s: wait for it.
  login_deadline=$(( $(date +%s) + 40 ))
  while :; do
    code=$(curl -s -o "$home/login.json" -w '%{http_code}' --max-time 10 -X POST \
      --data-urlencode "username=nacos" --data-urlencode "password=$password" "$base/v1/auth/login" || true)
    [[ "$code" == 200 ]] && break
    (( $(date +%s) < login_deadline )) ||
      fail "login as the new admin still answered HTTP $code after 40 s: $(cat "$home/login.json" 2>/dev/null)"
    sleep 1
  done
fi

ms=$(( ($(date +%s%N) - started) / 1000000 ))
rss=$(ps -o rss= -p "$pid" | tr -d ' ')
echo "real-nacos: v$major pid $pid port $port auth=$auth${cluster:+ cluster=$cluster} ready in ${ms} ms, RSS $((rss / 1024)) MiB, log $log" >&2
echo "NACOS_SERVER_ADDR=127.0.0.1:$port"
