// java-interop: the official Nacos Java client against a Nacos server, as a test oracle.
// It registers an instance, subscribes to a service, reads and listens to configs, and prints
// one JSON line per event on stdout, so a test can assert on what the client saw. Commands on
// stdin (one per line): `publish <dataId> <content>`, `listen <dataId>`, `quit`.
package dev.flowtag.interop;

import com.alibaba.nacos.api.NacosFactory;
import com.alibaba.nacos.api.PropertyKeyConst;
import com.alibaba.nacos.api.config.ConfigService;
import com.alibaba.nacos.api.config.listener.AbstractListener;
import com.alibaba.nacos.api.naming.NamingService;
import com.alibaba.nacos.api.naming.listener.NamingEvent;
import com.alibaba.nacos.api.naming.pojo.Instance;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;

public final class Interop {
  private Interop() {}

  private static String quote(String s) {
    if (s == null) return "null";
    StringBuilder b = new StringBuilder("\"");
    for (char c : s.toCharArray()) {
      switch (c) {
        case '"': b.append("\\\""); break;
        case '\\': b.append("\\\\"); break;
        case '\n': b.append("\\n"); break;
        case '\r': b.append("\\r"); break;
        case '\t': b.append("\\t"); break;
        default:
          if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
          else b.append(c);
      }
    }
    return b.append('"').toString();
  }

  /** One event line; values are strings, or already-encoded JSON when the key ends in '#'. */
  private static synchronized void emit(String event, String... kv) {
    StringBuilder b = new StringBuilder("{\"event\":").append(quote(event));
    b.append(",\"t\":").append(System.currentTimeMillis());
    for (int i = 0; i + 1 < kv.length; i += 2) {
      String k = kv[i];
      boolean raw = k.endsWith("#");
      b.append(',').append(quote(raw ? k.substring(0, k.length() - 1) : k)).append(':');
      b.append(raw ? kv[i + 1] : quote(kv[i + 1]));
    }
    System.out.println(b.append('}'));
    System.out.flush();
  }

  private static Map<String, String> flags(String[] args) {
    Map<String, String> out = new HashMap<>();
    for (int i = 0; i < args.length; i++) {
      if (!args[i].startsWith("--")) throw new IllegalArgumentException("unexpected argument " + args[i]);
      String name = args[i].substring(2);
      if (i + 1 >= args.length) throw new IllegalArgumentException("--" + name + " needs a value");
      out.put(name, args[++i]);
    }
    return out;
  }

  private static void listen(ConfigService config, String dataId, String group) throws Exception {
    config.addListener(dataId, group, new AbstractListener() {
      @Override
      public void receiveConfigInfo(String content) {
        emit("config", "dataId", dataId, "content", content);
      }
    });
    emit("listening", "dataId", dataId);
  }

  public static void main(String[] args) throws Exception {
    Map<String, String> f = flags(args);
    String group = f.getOrDefault("group", "DEFAULT_GROUP");
    Properties p = new Properties();
    p.put(PropertyKeyConst.SERVER_ADDR, f.getOrDefault("addr", "127.0.0.1:8848"));
    if (f.containsKey("namespace")) p.put(PropertyKeyConst.NAMESPACE, f.get("namespace"));
    if (f.containsKey("user")) p.put(PropertyKeyConst.USERNAME, f.get("user"));
    if (f.containsKey("password")) p.put(PropertyKeyConst.PASSWORD, f.get("password"));

    String version = com.alibaba.nacos.common.utils.VersionUtils.version;
    emit("started", "client", version == null ? "unknown" : version);

    NamingService naming = NacosFactory.createNamingService(p);
    ConfigService config = NacosFactory.createConfigService(p);

    String subscribe = f.get("subscribe");
    if (subscribe != null) {
      naming.subscribe(subscribe, group, event -> {
        if (!(event instanceof NamingEvent)) return;
        List<String> hosts = new ArrayList<>();
        for (Instance i : ((NamingEvent) event).getInstances()) {
          hosts.add(quote(i.getIp() + ":" + i.getPort() + (i.isHealthy() ? "" : " unhealthy")));
        }
        emit("instances", "service", subscribe, "hosts#", "[" + String.join(",", hosts) + "]");
      });
      emit("subscribed", "service", subscribe);
    }
    String register = f.get("register");
    if (register != null) {
      Instance instance = new Instance();
      instance.setIp(f.getOrDefault("ip", "127.0.0.9"));
      instance.setPort(Integer.parseInt(f.getOrDefault("port", "9009")));
      Map<String, String> metadata = new HashMap<>();
      metadata.put("version", f.getOrDefault("lane", "stable"));
      instance.setMetadata(metadata);
      naming.registerInstance(register, group, instance);
      emit("registered", "service", register);
    }
    String dataIds = f.get("data-id");
    if (dataIds != null) {
      for (String dataId : dataIds.split(",")) {
        emit("config-read", "dataId", dataId, "content", config.getConfig(dataId, group, 5000));
        listen(config, dataId, group);
      }
    }
    emit("ready", "server", config.getServerStatus());

    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    for (String line; (line = in.readLine()) != null; ) {
      String[] cmd = line.trim().split(" ", 3);
      try {
        if (cmd[0].equals("quit")) break;
        if (cmd[0].equals("publish") && cmd.length == 3) {
          emit("published", "dataId", cmd[1], "ok", String.valueOf(config.publishConfig(cmd[1], group, cmd[2])));
        } else if (cmd[0].equals("listen") && cmd.length == 2) {
          listen(config, cmd[1], group);
        } else if (!cmd[0].isEmpty()) {
          emit("error", "message", "unknown command: " + line);
        }
      } catch (Exception e) {
        emit("error", "message", e.toString());
      }
    }
    if (register != null) naming.deregisterInstance(register, group, f.getOrDefault("ip", "127.0.0.9"), Integer.parseInt(f.getOrDefault("port", "9009")));
    naming.shutDown();
    config.shutDown();
    emit("stopped");
    System.exit(0);
  }
}
