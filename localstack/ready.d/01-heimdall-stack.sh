#!/usr/bin/env bash
# LocalStack init hook: creates the Heimdall stack with the same bootstrap as the emulator script.
set -euo pipefail
export AWS_ENDPOINT_URL=http://localhost:4566 AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
/opt/heimdall/heimdall-emulator bootstrap --prefix heimdall --role-arn arn:aws:iam::000000000000:role/heimdall-state-machine \
  | tee /tmp/heimdall-environment.sh
