# Sourced by scripts/consumer-test.sh (uses its $root, $work, $tarballs, $node22, $node24 and
# check): @flowtag/nestjs in a Nest project of its own per supported Nest major, built by tsc
# with decorator syntax and emitDecoratorMetadata, run on Node 24 and 22.
for major in 12 11; do
  dir="$work/nest$major"
  mkdir -p "$dir"
  cp "$root"/tests/consumer/nest/{main.ts,transports.ts,scenario.mjs,tsconfig.json,inventory.proto} "$dir/"
  # Nest 12 is ESM and so is its project; a Nest 11 `nest new` project is CommonJS (module nodenext,
  # no "type"): there, tsc emits require('@flowtag/nestjs'), Node's require() of an ES module.
  if [ "$major" -ge 12 ]; then type=module; else type=commonjs; fi
  echo "{ \"name\": \"flowtag-nest-consumer\", \"private\": true, \"type\": \"$type\" }" > "$dir/package.json"
  (cd "$dir" && npm install --no-audit --no-fund --loglevel=error "${tarballs[@]}" \
    "@nestjs/common@$major" "@nestjs/core@$major" "@nestjs/platform-express@$major" "@nestjs/platform-fastify@$major" \
    "@nestjs/microservices@$major" "@nestjs/terminus@$major" @grpc/proto-loader@0.8 \
    reflect-metadata@0.2 rxjs@7 @grpc/grpc-js@1 kafkajs@2 amqplib@2 amqp-connection-manager@5 typescript@5.9 @types/node@24 @types/express@5 >/dev/null)
  check "Nest $major ($("$node24" -p "require('$dir/node_modules/@nestjs/core/package.json').version")): tsc with decorators" "$node24" "$dir/node_modules/typescript/bin/tsc" -p "$dir/tsconfig.json"
  check "Nest $major: scenario on Node 24" timeout 120 "$node24" "$dir/scenario.mjs"
  check "Nest $major: scenario on Node 22" timeout 120 "$node22" "$dir/scenario.mjs"
done
