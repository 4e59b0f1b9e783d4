#!/usr/bin/env bash
# Build the Java-client oracle for one nacos-client version and print its directory:
#
#   tools/java-interop/build.sh [version]     # default: the pom's version (newest 3.x that resolves)
#
# Resolves com.alibaba.nacos:nacos-client:<version> and its dependencies from Maven Central into
# <dir>/lib (mvn dependency:copy-dependencies) and compiles Interop.java with javac into
# <dir>/classes. <dir> is target/<version>-<hash of pom.xml and the source>: a second build of
# the same inputs does nothing, so a test run pays for Maven once per checkout.
# Run it: java -cp "<dir>/classes:<dir>/lib/*" dev.flowtag.interop.Interop --addr host:port ...
# Env: MVN (mvn), JAVAC (javac).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
version=${1:-$(sed -n 's:.*<nacos.client.version>\(.*\)</nacos.client.version>.*:\1:p' "$here/pom.xml")}
[[ "$version" =~ ^[0-9][0-9A-Za-z.-]*$ ]] || { echo "build.sh: bad nacos-client version '$version'" >&2; exit 2; }
src="$here/src/main/java/dev/flowtag/interop/Interop.java"
hash=$(cat "$here/pom.xml" "$src" | sha256sum | cut -c1-12)
dir="$here/target/$version-$hash"
if [[ ! -f "$dir/.built" ]]; then
  rm -rf "$dir"
  mkdir -p "$dir/classes"
  if ! out=$(cd "$here" && "${MVN:-mvn}" -B -q -Dnacos.client.version="$version" dependency:copy-dependencies -DoutputDirectory="$dir/lib" 2>&1); then
    echo "build.sh: Maven could not resolve nacos-client $version:" >&2
    echo "$out" | grep -E 'ERROR' | head -n 3 >&2
    exit 1
  fi
  "${JAVAC:-javac}" -nowarn -encoding UTF-8 --release 8 -cp "$dir/lib/*" -d "$dir/classes" "$src" 2>&1 | grep -v 'warning: \[options\]' >&2 || true
  [[ -f "$dir/classes/dev/flowtag/interop/Interop.class" ]] || { echo "build.sh: javac failed" >&2; exit 1; }
  touch "$dir/.built"
fi
echo "$dir"
