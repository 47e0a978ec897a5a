#!/usr/bin/env bash
# The local AWS stack without Docker: moto's server (pinned, in the project's venv) with Step
# Functions execution on, the Lambda router on moto's MOTO_PORT running our plugin functions
# in-process, and the stack's resources created by the same bootstrap as LocalStack's init hook.
# Prints the environment for the functions (api under `cargo lambda watch`, heimdall-emulator),
# then runs until Ctrl-C.
#   localstack/emulator.sh            # moto on 127.0.0.1:5000, router on 127.0.0.1:5001
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
moto_port="${MOTO_SERVER_PORT:-5000}"
router_port="${ROUTER_PORT:-5001}"
prefix="${HEIMDALL_PREFIX:-heimdall}"
venv="$("$root/scripts/python-env")"

cargo build --quiet --manifest-path "$root/Cargo.toml" -p heimdall-emulator
target_dir="$(cargo metadata --manifest-path "$root/Cargo.toml" --format-version 1 --no-deps | "$venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
emulator="$target_dir/debug/heimdall-emulator"

MOTO_PORT="$router_port" "$venv/bin/moto_server" -H 127.0.0.1 -p "$moto_port" > /tmp/heimdall-moto.log 2>&1 &
moto=$!
trap 'kill $moto ${router:-} 2>/dev/null || true; wait 2>/dev/null || true' EXIT INT TERM
"$venv/bin/python" - "$moto_port" <<'PY'
import json, sys, time, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/moto-api/config"
for _ in range(300):
    try:
        request = urllib.request.Request(url, data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode(), method="POST")
        urllib.request.urlopen(request, timeout=2)
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("moto_server did not start; see /tmp/heimdall-moto.log")
PY

export AWS_ENDPOINT_URL="http://127.0.0.1:$moto_port" AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
environment="$("$emulator" bootstrap --prefix "$prefix" --role-arn arn:aws:iam::123456789012:role/heimdall-state-machine)"
eval "$environment"
"$emulator" router --listen "127.0.0.1:$router_port" --moto "http://127.0.0.1:$moto_port" &
router=$!

cat <<MSG
The local AWS stack is up. Use this environment for the functions:
export AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
$environment
Ctrl-C stops moto and the router.
MSG
wait "$moto"
