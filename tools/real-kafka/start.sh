#!/usr/bin/env bash
# Start a real Apache Kafka 4.x broker (KRaft: broker and controller in one JVM, one node) on
# loopback from Maven Central artifacts.
#
#   tools/real-kafka/start.sh               # a new, empty broker (state wiped, new cluster id)
#   tools/real-kafka/start.sh --keep-data   # start again on the data a previous run left (after
#                                           # a SIGKILL, say): same log dirs, same cluster id
#   tools/real-kafka/start.sh --jars-only   # only resolve the jars (no broker)
#
# Env: KAFKA_PORT (9092, the client listener), KAFKA_CONTROLLER_PORT (KAFKA_PORT+1),
# KAFKA_START_TIMEOUT (120 s), KAFKA_JVM_OPTS (heap etc.), KAFKA_EXTRA_CONFIG (server.properties
# lines appended last, e.g. "group.min.session.timeout.ms=1000"), REAL_KAFKA_HOME
# (<repo>/.real-kafka), MVN (mvn), JAVA (java).
# Prints KAFKA_BROKERS=127.0.0.1:PORT once the broker answers; on failure exits non-zero with
# the log tail. State (log dirs, server.properties, server.log, kafka.pid) lives in
# $REAL_KAFKA_HOME/<port>/.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

keep_data=false
jars_only=false
for arg in "$@"; do
  case "$arg" in
    --keep-data) keep_data=true ;;
    --jars-only) jars_only=true ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "start.sh: unknown argument '$arg' (expected --keep-data or --jars-only)" >&2; exit 2 ;;
  esac
done

port=${KAFKA_PORT:-9092}
timeout=${KAFKA_START_TIMEOUT:-120}
jvm_opts=${KAFKA_JVM_OPTS:--Xms64m -Xmx384m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:MaxMetaspaceSize=128m}
state_root=${REAL_KAFKA_HOME:-$repo/.real-kafka}
mvn_cmd=${MVN:-mvn}
java_cmd=${JAVA:-java}

valid_port() { [[ "$1" =~ ^[0-9]+$ ]] && (( $1 >= 1025 && $1 <= 65535 )); }
if ! valid_port "$port"; then
  echo "start.sh: KAFKA_PORT must be a port 1025..65535, got '$port'" >&2
  exit 2
fi
controller_port=${KAFKA_CONTROLLER_PORT:-$((port + 1))}
if ! valid_port "$controller_port" || (( controller_port == port )); then
  echo "start.sh: KAFKA_CONTROLLER_PORT must be a port 1025..65535 other than KAFKA_PORT ($port), got '$controller_port'" >&2
  exit 2
fi

home="$state_root/$port"
data="$home/data"
pidfile="$home/kafka.pid"
log="$home/server.log"
props="$home/server.properties"

# A pid from the pid file counts only while it is still this broker's JVM (pids get reused).
# grep reads to the end (no -q): under pipefail an early exit would fail tr with SIGPIPE.
ours() { [[ -r "/proc/$1/cmdline" ]] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -F -- "$props" >/dev/null; }

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [[ "$jars_only" != true ]]; then
  # A broker SIGKILLed a moment ago (a restart test) may still be exiting: give it 10 s to let
  # go of its ports before calling them taken.
  for _ in $(seq 50); do
    { [[ -f "$pidfile" ]] && ours "$(cat "$pidfile")"; } || port_busy "$port" || port_busy "$controller_port" || break
    sleep 0.2
  done
fi
if [[ "$jars_only" != true && -f "$pidfile" ]] && ours "$(cat "$pidfile")"; then
  echo "start.sh: a Kafka started by this script already runs on port $port (pid $(cat "$pidfile")); run stop.sh first" >&2
  exit 1
fi
if [[ "$jars_only" != true ]]; then
  for p in "$port" "$controller_port"; do
    if port_busy "$p"; then
      echo "start.sh: port $p is already in use (Kafka needs $port for clients and $controller_port for its controller)" >&2
      exit 1
    fi
  done
fi

# Resolve the broker's jars (downloads into ~/.m2 on the first run; offline afterwards).
lib="$here/target/lib"
mkdir -p "$state_root" "$here/target"
# Brokers started side by side share target/lib: one resolves it, the others wait for it.
exec 9>"$here/target/.resolve.lock"
flock 9
if [[ ! -f "$lib/.complete" || "$here/pom.xml" -nt "$lib/.complete" ]]; then
  rm -rf "$lib"
  if ! "$mvn_cmd" -B -q -f "$here/pom.xml" dependency:copy-dependencies \
      -DoutputDirectory="$lib" -DincludeScope=runtime >"$state_root/mvn.log" 2>&1; then
    echo "start.sh: resolving the Kafka jars failed:" >&2
    tail -n 40 "$state_root/mvn.log" >&2
    exit 1
  fi
  touch "$lib/.complete"
fi
exec 9>&-
[[ "$jars_only" == true ]] && exit 0

if [[ "$keep_data" == true ]]; then
  if [[ ! -f "$data/meta.properties" ]]; then
    echo "start.sh: --keep-data, but $data holds no formatted log dir (no earlier start on port $port under $state_root?)" >&2
    exit 1
  fi
  # This run's log on its own, the previous one beside it.
  [[ -f "$log" ]] && mv -f "$log" "$log.1"
else
  rm -rf "$home"
fi
mkdir -p "$home"
rm -f "$pidfile"

# Single node, combined roles, a static quorum of itself. Internal topics get one replica (the
# default of 3 cannot be met by one broker) and one partition (with the default 50, a first
# consumer group took 1.35 s instead of 0.49 s here), groups start without the 3 s join delay,
# and the log cleaner's dedupe buffer is small (it is allocated, and touched, at start: 128 MiB
# by default).
cat >"$props" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$data
auto.create.topics.enable=true
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=2
background.threads=2
num.recovery.threads.per.data.dir=1
log.cleaner.dedupe.buffer.size=16777216
EOF
if [[ -n "${KAFKA_EXTRA_CONFIG:-}" ]]; then
  printf '%s\n' "# KAFKA_EXTRA_CONFIG" "$KAFKA_EXTRA_CONFIG" >>"$props"
fi

classpath="$lib/*"
log4j=(-Dlog4j2.configurationFile="$here/log4j2.properties")

started=$(date +%s%N)
if [[ "$keep_data" != true ]]; then
  # A KRaft log dir must be formatted before the first start; the cluster id is 16 random bytes
  # in URL-safe base64 without padding (what `kafka-storage.sh random-uuid` prints). Like Kafka's
  # own Uuid.randomUuid, never one that starts with "-": the tool's parser reads that as a flag
  # (about 1 start in 64 failed with "expected one argument").
  cluster_id=-
  while [[ "$cluster_id" == -* ]]; do
    cluster_id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
  done
  # shellcheck disable=SC2086  # jvm_opts is a word list on purpose
  if ! "$java_cmd" $jvm_opts "${log4j[@]}" -cp "$classpath" kafka.tools.StorageTool \
      format --config "$props" --cluster-id="$cluster_id" >"$home/format.log" 2>&1; then
    echo "start.sh: formatting the log dir failed:" >&2
    tail -n 40 "$home/format.log" >&2
    exit 1
  fi
fi

# shellcheck disable=SC2086  # jvm_opts is a word list on purpose
(cd "$home" && exec nohup "$java_cmd" $jvm_opts -Djava.awt.headless=true "${log4j[@]}" \
  -cp "$classpath" kafka.Kafka "$props" >"$log" 2>&1 </dev/null) &
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

# One Kafka protocol round trip: an ApiVersions v0 request (correlation id 7, empty client id)
# must come back with correlation id 7 and error code 0 (NONE).
api_versions_ok() {
  local reply
  # shellcheck disable=SC2016  # $1 expands in the inner bash
  reply=$(timeout 5 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf "\x00\x00\x00\x0a\x00\x12\x00\x00\x00\x00\x00\x07\x00\x00" >&3
    head -c 10 <&3 | od -An -tx1' _ "$port" 2>/dev/null | tr -d ' \n') || return 1
  [[ "$reply" =~ ^[0-9a-f]{8}000000070000$ ]]
}

# Ready when the server says it started (the broker has caught up with the metadata log and is
# unfenced) and its client listener answers a Kafka request.
deadline=$(( $(date +%s) + timeout ))
until grep -q 'Kafka Server started' "$log" 2>/dev/null && api_versions_ok; do
  kill -0 "$pid" 2>/dev/null || fail "Kafka exited during startup"
  (( $(date +%s) < deadline )) || fail "Kafka did not answer on 127.0.0.1:$port within ${timeout}s"
  sleep 0.3
done

ms=$(( ($(date +%s%N) - started) / 1000000 ))
rss=$(ps -o rss= -p "$pid" | tr -d ' ')
echo "real-kafka: pid $pid port $port controller $controller_port keep-data=$keep_data ready in ${ms} ms, RSS $((rss / 1024)) MiB, log $log" >&2
echo "KAFKA_BROKERS=127.0.0.1:$port"
