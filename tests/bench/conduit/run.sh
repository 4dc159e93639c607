#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Runs bench_conduit against a private RabbitMQ node (tests/fixtures/rabbitmq.sh), then stops it.
#   run.sh BENCH_BINARY BIN_DIR RUN_DIR [ntasks]
set -euo pipefail
BENCH=$1 BIN=$2 RUN=$3 N=${4:-1000}
FIXTURE=$(cd "$(dirname "$0")/../../fixtures" && pwd)/rabbitmq.sh
mkdir -p "$RUN"
"$FIXTURE" start "$RUN" >/dev/null
trap '"$FIXTURE" stop "$RUN" >/dev/null 2>&1 || true' EXIT
# shellcheck disable=SC1091
. "$RUN/rabbitmq.env"
export FLUID_AMQP_URL
nice -n 5 "$BENCH" "$BIN" "$RUN" "$N"
