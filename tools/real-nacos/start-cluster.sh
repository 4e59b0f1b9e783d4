#!/usr/bin/env bash
# Start a real Nacos 2.5.0 cluster of three nodes on loopback (embedded storage: Derby on each
# node, replicated by JRaft), each node run by start.sh with NACOS_CLUSTER set.
#
#   tools/real-nacos/start-cluster.sh
#
# Env: NACOS_CLUSTER_PORTS ('8848 8858 8868'; each node binds P, P+1000, P+1001 and P-1000),
# NACOS_START_TIMEOUT (180 s, per node and again for the cluster to form), NACOS_JVM_OPTS
# (default below, smaller than a standalone's), REAL_NACOS_HOME, MVN: as start.sh.
# Prints NACOS_SERVER_ADDR=127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3 once every node lists every
# member UP with a JRaft leader for config and for naming's persistent data, answers naming and
# config, and serves a config published on another node. On failure stops the nodes it started
# and exits non-zero. tools/real-nacos/stop.sh P1 P2 P3 (or stop.sh) stops them.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
read -r -a ports <<<"${NACOS_CLUSTER_PORTS:-8848 8858 8868}"
timeout=${NACOS_START_TIMEOUT:-180}
# Three JVMs on a small machine: a smaller heap than a standalone server's, the same GC.
export NACOS_JVM_OPTS=${NACOS_JVM_OPTS:--Xms96m -Xmx320m -XX:+UseSerialGC -XX:TieredStopAtLevel=1}
(( ${#ports[@]} >= 3 )) || { echo "start-cluster.sh: NACOS_CLUSTER_PORTS needs three ports or more, got '${ports[*]}'" >&2; exit 2; }
# Every port of every node (P, P+1000, P+1001, P-1000) must be distinct.
bound=$(for p in "${ports[@]}"; do echo "$p $((p + 1000)) $((p + 1001)) $((p - 1000))"; done | tr ' ' '\n' | sort | uniq -d)
[[ -z "$bound" ]] || { echo "start-cluster.sh: NACOS_CLUSTER_PORTS '${ports[*]}' collide on port(s) $bound (each node binds P, P+1000, P+1001, P-1000)" >&2; exit 2; }

members=""
for p in "${ports[@]}"; do members+="${members:+,}127.0.0.1:$p"; done
export NACOS_CLUSTER=$members

started=$(date +%s%N)
NACOS_CLUSTER='' "$here/start.sh" 2 --jars-only

# The nodes start side by side: a node waits for its peers before its JRaft groups elect. On a
# starved machine a node can give up first ("The Raft Group [nacos_config] did not find the
# Leader node" while loading config at start): it is started again, up to three times in all,
# while the others keep running.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
todo=("${ports[@]}")
for attempt in 1 2 3; do
  pids=()
  for p in "${todo[@]}"; do
    NACOS_PORT=$p "$here/start.sh" 2 >"$tmp/$p.out" 2>"$tmp/$p.err" &
    pids+=($!)
  done
  failed=()
  for i in "${!todo[@]}"; do
    wait "${pids[$i]}" || failed+=("${todo[$i]}")
  done
  for p in "${todo[@]}"; do
    if [[ " ${failed[*]} " == *" $p "* ]]; then
      why=$(grep -o 'Caused by: .*\|start.sh: .*' "$tmp/$p.err" | grep -v 'last lines' | tail -n 1 | cut -c1-300 || true)
      echo "start-cluster.sh: node $p failed to start (attempt $attempt): $why" >&2
    else
      cat "$tmp/$p.err" >&2
    fi
  done
  (( ${#failed[@]} == 0 )) && break
  todo=("${failed[@]}")
done

give_up() {
  echo "start-cluster.sh: $1; stopping the nodes" >&2
  "$here/stop.sh" "${ports[@]}" >&2 || true
  exit 1
}
(( ${#failed[@]} == 0 )) || give_up "node(s) ${failed[*]} did not start"

# Ready: on every node, every member UP and the node's own view of the JRaft groups has a leader.
cluster_ready() {
  local p
  for p in "${ports[@]}"; do
    curl -s --max-time 3 "http://127.0.0.1:$p/nacos/v1/core/cluster/nodes" | python3 -c '
import json, sys
want, me = set(sys.argv[1].split(",")), sys.argv[2]
nodes = json.load(sys.stdin)["data"]
assert {n["address"] for n in nodes} == want and all(n["state"] == "UP" for n in nodes)
groups = next(n for n in nodes if n["address"] == me)["extendInfo"]["raftMetaData"]["metaDataMap"]
assert all(groups.get(g, {}).get("leader") for g in ("nacos_config", "naming_persistent_service_v2"))
' "$members" "127.0.0.1:$p" 2>/dev/null || return 1
  done
}
deadline=$(( $(date +%s) + timeout ))
until cluster_ready; do
  (( $(date +%s) < deadline )) || give_up "the cluster did not form within ${timeout}s (members UP, JRaft leaders)"
  sleep 0.5
done

# Naming on every node, and a config written through the first node (a JRaft write) read on all.
probe="flowtag-cluster-probe-$$"
first="http://127.0.0.1:${ports[0]}/nacos"
until [[ "$(curl -s --max-time 5 -X POST "$first/v1/cs/configs" --data-urlencode "dataId=$probe" \
    --data-urlencode group=DEFAULT_GROUP --data-urlencode content=up || true)" == true ]]; do
  (( $(date +%s) < deadline )) || give_up "publishing a config through ${ports[0]} failed until the deadline"
  sleep 0.5
done
for p in "${ports[@]}"; do
  base="http://127.0.0.1:$p/nacos"
  until [[ "$(curl -s --max-time 3 -o /dev/null -w '%{http_code}' "$base/v1/ns/instance/list?serviceName=$probe" || true)" == 200 &&
    "$(curl -s --max-time 3 "$base/v1/cs/configs?dataId=$probe&group=DEFAULT_GROUP" || true)" == up ]]; do
    (( $(date +%s) < deadline )) || give_up "node $p did not answer naming, or serve the probe config, within ${timeout}s"
    sleep 0.5
  done
done
curl -s --max-time 5 -X DELETE "$first/v1/cs/configs?dataId=$probe&group=DEFAULT_GROUP" >/dev/null || true

ms=$(( ($(date +%s%N) - started) / 1000000 ))
rss=""
for p in "${ports[@]}"; do
  pid=$(cat "${REAL_NACOS_HOME:-$here/../../.real-nacos}/v2-$p/nacos.pid")
  rss+="${rss:+ / }$(( $(ps -o rss= -p "$pid" | tr -d ' ') / 1024 ))"
done
echo "real-nacos: cluster of ${#ports[@]} (2.5.0, embedded storage) $members ready in ${ms} ms, RSS $rss MiB" >&2
echo "NACOS_SERVER_ADDR=$members"
