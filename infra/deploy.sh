#!/usr/bin/env bash
# Builds every function with cargo lambda (arm64 where this machine has the aarch64 std, else
# x86_64, said in one line), then uploads and deploys the stack with heimdall-deploy and prints
# its outputs (the API URL among them). Idempotent: a second run with nothing changed changes
# nothing. With AWS_ENDPOINT_URL set it deploys to LocalStack or the emulator instead of AWS.
#   HEIMDALL_CODE_BUCKET=my-code-bucket HEIMDALL_JWT_ISSUER=https://… HEIMDALL_JWT_AUDIENCE=client-id \
#   HEIMDALL_CONFIG_FILE=my-config.yml infra/deploy.sh   # the config is optional (default: the bundled one)
# Arguments go to heimdall-deploy, e.g. the data plugins' rights:
#   infra/deploy.sh --parameter DynamoDbTableArns=arn:aws:dynamodb:us-east-1:123456789012:table/orders
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export PATH="$("$root/scripts/python-env" "$root/scripts/requirements-lambda.txt")/bin:$PATH"
functions=(api dispatcher events janitor plugin-ping plugin-shell plugin-dynamodb plugin-glue plugin-spark plugin-snowflake)
architecture=(--arm64)
if ! rustc --print sysroot >/dev/null 2>&1 || [ ! -d "$(rustc --print sysroot)/lib/rustlib/aarch64-unknown-linux-gnu" ]; then
  echo "deploy: no aarch64-unknown-linux-gnu std here (rustup target add aarch64-unknown-linux-gnu); building x86_64 and deploying it as arm64 will not run: set HEIMDALL_ALLOW_X86=1 only for an emulator" >&2
  [ "${HEIMDALL_ALLOW_X86:-}" = 1 ] || exit 1
  architecture=()
fi
# The api function in the release profile (opt-level 3: it answers requests, measured 14 % faster
# per request than opt-level "s"); the others in the `lambda` profile (opt-level "z", fat LTO:
# about 45 % smaller, no slower to start). docs/BENCHMARKS.md, "Lambda binaries".
cargo lambda build --release "${architecture[@]}" --output-format zip --bin api
cargo lambda build --profile lambda "${architecture[@]}" --output-format zip $(printf -- '--bin %s ' "${functions[@]:1}")
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
packages="$(mktemp -d)"
trap 'rm -rf "$packages"' EXIT
for function in "${functions[@]}"; do
  cp "$target_dir/lambda/$function/bootstrap.zip" "$packages/$function.zip"
done
version="$(git describe --always --dirty 2>/dev/null || date +%s)"
cargo run --quiet --release -p heimdall-deploy -- deploy --packages "$packages" --version "$version" "$@"
