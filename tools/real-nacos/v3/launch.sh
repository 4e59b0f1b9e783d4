# Sourced by ../start.sh for Nacos 3.x: sets props, main and ready_path.
# Nacos 3 insists on an application.properties: the distribution ships one, the Maven modules
# do not. It is found through spring.config.additional-location; system properties still win.
mkdir -p "$home/conf"
cat >"$home/conf/application.properties" <<PROPS
nacos.deployment.type=server
nacos.server.main.port=$port
nacos.server.contextPath=/nacos
server.error.include-message=always
PROPS
props+=(
  -Dspring.config.additional-location="file:$home/conf/"
  -Dnacos.deployment.type=server
  -Dnacos.server.main.port="$port"
  -Dnacos.server.contextPath=/nacos
  -Dnacos.k8s.sync.enabled=false
  -Dnacos.extension.ai.enabled=false
  -Dnacos.ai.mcp.registry.enabled=false
)
main=("$proj/ServerLauncher.java")
ready_path="/v1/ns/operator/metrics"
