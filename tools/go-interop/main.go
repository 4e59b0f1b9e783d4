// go-interop: the official Nacos Go SDK (gRPC only) against a Nacos server, as a test fixture.
// It registers an instance, subscribes to a service and listens to a config, then prints one
// JSON line per event on stdout, so a test can assert on pushes received over gRPC.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nacos-group/nacos-sdk-go/v2/clients"
	"github.com/nacos-group/nacos-sdk-go/v2/common/constant"
	"github.com/nacos-group/nacos-sdk-go/v2/model"
	"github.com/nacos-group/nacos-sdk-go/v2/vo"
)

func emit(kind string, fields map[string]any) {
	fields["event"] = kind
	fields["t"] = time.Now().UnixMilli()
	b, _ := json.Marshal(fields)
	fmt.Println(string(b))
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8848", "host:httpPort (gRPC is port+1000)")
	grpcPort := flag.Int("grpc-port", 0, "gRPC port (default http port + 1000)")
	namespace := flag.String("namespace", "", "namespace id")
	user := flag.String("user", "", "username")
	pass := flag.String("password", "", "password")
	register := flag.String("register", "", "service to register an instance of (ip:port after it)")
	ip := flag.String("ip", "127.0.0.9", "instance ip")
	port := flag.Int("port", 9009, "instance port")
	subscribe := flag.String("subscribe", "", "service to subscribe to")
	dataID := flag.String("data-id", "", "config dataId to read and listen to")
	group := flag.String("group", "DEFAULT_GROUP", "group")
	cacheDir := flag.String("cache-dir", os.TempDir(), "SDK cache/log dir")
	flag.Parse()

	host, portStr, _ := strings.Cut(*addr, ":")
	httpPort, _ := strconv.Atoi(portStr)
	sc := []constant.ServerConfig{*constant.NewServerConfig(host, uint64(httpPort), constant.WithContextPath("/nacos"))}
	if *grpcPort != 0 {
		sc[0].GrpcPort = uint64(*grpcPort)
	}
	cc := *constant.NewClientConfig(
		constant.WithNamespaceId(*namespace),
		constant.WithTimeoutMs(5000),
		constant.WithNotLoadCacheAtStart(true),
		constant.WithUpdateCacheWhenEmpty(true),
		constant.WithLogDir(*cacheDir+"/log"),
		constant.WithCacheDir(*cacheDir+"/cache"),
		constant.WithLogLevel(os.Getenv("NACOS_GO_LOG_LEVEL")+map[bool]string{true: "warn", false: ""}[os.Getenv("NACOS_GO_LOG_LEVEL") == ""]),
		constant.WithUsername(*user),
		constant.WithPassword(*pass),
	)
	param := vo.NacosClientParam{ClientConfig: &cc, ServerConfigs: sc}

	naming, err := clients.NewNamingClient(param)
	if err != nil {
		emit("error", map[string]any{"where": "naming", "message": err.Error()})
		os.Exit(1)
	}
	if *subscribe != "" {
		err = naming.Subscribe(&vo.SubscribeParam{ServiceName: *subscribe, GroupName: *group,
			SubscribeCallback: func(services []model.Instance, err error) {
				list := []string{}
				for _, s := range services {
					list = append(list, fmt.Sprintf("%s:%d", s.Ip, s.Port))
				}
				emit("instances", map[string]any{"service": *subscribe, "instances": list})
			}})
		if err != nil {
			emit("error", map[string]any{"where": "subscribe", "message": err.Error()})
		}
	}
	if *register != "" {
		ok, err := naming.RegisterInstance(vo.RegisterInstanceParam{Ip: *ip, Port: uint64(*port),
			ServiceName: *register, GroupName: *group, Weight: 1, Enable: true, Healthy: true, Ephemeral: true,
			Metadata: map[string]string{"lane": "go"}})
		if err != nil || !ok {
			emit("error", map[string]any{"where": "register", "message": fmt.Sprint(err)})
		} else {
			emit("registered", map[string]any{"service": *register})
		}
	}
	if *dataID != "" {
		config, err := clients.NewConfigClient(param)
		if err != nil {
			emit("error", map[string]any{"where": "config", "message": err.Error()})
			os.Exit(1)
		}
		content, err := config.GetConfig(vo.ConfigParam{DataId: *dataID, Group: *group})
		emit("config-read", map[string]any{"content": content, "error": fmt.Sprint(err)})
		err = config.ListenConfig(vo.ConfigParam{DataId: *dataID, Group: *group,
			OnChange: func(namespace, group, dataId, data string) {
				emit("config", map[string]any{"dataId": dataId, "content": data})
			}})
		if err != nil {
			emit("error", map[string]any{"where": "listen", "message": err.Error()})
		}
	}
	emit("ready", map[string]any{})
	select {}
}
