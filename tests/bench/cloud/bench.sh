#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# bench.sh FLUIDCTL WORKDIR [SERVERS] [CLI_SAMPLE]: inspection of a project of SERVERS fake
# servers (10 with a volume, 10 with a floating IP, two security groups, one network),
# fluidctl inspect --all next to the openstack CLI route for the same facts:
#   openstack server list --long, then per server `server show` and `port list --server`,
#   plus the project-wide lists (flavors with specs, groups with rules, floating IPs,
#   volumes, networks, subnets, routers, keypairs).
# Both are run in the same session, alternating; requests are counted from each tool's own
# debug log (fluidctl: "msg":"http" records; openstack --debug: urllib3's reply lines
# `http://HOST:PORT "GET /path HTTP/1.1" 200 LEN`, one per request sent, the token requests
# included: keystoneauth logs those without a "REQ: curl" line).
# CLI_SAMPLE > 0 runs the per-server CLI calls for that many servers only and scales them up
# (the report says so). Needs the devcloud running and root (reads its clouds.yaml).
# The figures are valid only if all SERVERS servers are ACTIVE before and after the runs, every
# fluidctl and CLI invocation succeeded and the topology holds SERVERS servers; otherwise the
# report says "NOT VALID" with the reasons and the exit status is 1. Servers in ERROR are
# replaced (up to FLUID_BENCH_REPLACE_TRIES times, default 2) unless FLUID_BENCH_AS_IS=1.
# At exit (also on failure or interrupt) the servers, volumes and floating IPs are deleted
# (the devcloud is shared), unless FLUID_BENCH_KEEP=1; the project, its user and network stay
# for the next run.
set -euo pipefail
FLUIDCTL=${1:?usage: bench.sh FLUIDCTL WORKDIR [SERVERS] [CLI_SAMPLE]}
WORK=${2:?workdir}
N=${3:-200}
SAMPLE=${4:-0}
OS=/usr/bin/openstack
PROJECT=${FLUID_BENCH_PROJECT:-fluid-bench}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
LOG=$WORK/bench.log
: >"$LOG"
trap 'echo "bench-cloud: failed at line $LINENO; see $LOG" >&2' ERR

SRC=$(cd "$(dirname "$0")/../../.." && pwd)
DEVCLOUD_CFG=$("$SRC/deploy/devcloud/devcloud" env 2>/dev/null | sed -n 's/^OS_CLIENT_CONFIG_FILE=//p' || true)
DEVCLOUD_CFG=${DEVCLOUD_CFG:-/var/lib/devcloud/clouds.yaml}
[ -r "$DEVCLOUD_CFG" ] || { echo "bench-cloud: no devcloud clouds.yaml ($DEVCLOUD_CFG): run deploy/devcloud/devcloud up" >&2; exit 1; }
[ -x "$OS" ] || { echo "bench-cloud: $OS (python3-openstackclient) is missing" >&2; exit 1; }
[ -x "$FLUIDCTL" ] || { echo "bench-cloud: $FLUIDCTL is not an executable fluidctl" >&2; exit 1; }

admin() { OS_CLIENT_CONFIG_FILE=$DEVCLOUD_CFG "$OS" --os-cloud devcloud-admin "$@" 2>>"$LOG"; }

# ---- a project of our own, a user in it, and its clouds.yaml -------------------------------
CFG=$WORK/clouds.yaml
if [ ! -s "$WORK/password" ]; then
    (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$WORK/password")
fi
PW=$(cat "$WORK/password")
AUTH_URL=$(sed -n 's/^ *auth_url: *//p' "$DEVCLOUD_CFG" | head -1)
admin project show $PROJECT >/dev/null 2>&1 || admin project create $PROJECT >/dev/null
admin user show $PROJECT-user >/dev/null 2>&1 || admin user create --project $PROJECT --password "$PW" $PROJECT-user >/dev/null
admin user set --password "$PW" $PROJECT-user
admin role add --project $PROJECT --user $PROJECT-user member
(umask 077; cat >"$CFG" <<EOT
clouds:
  bench:
    auth:
      auth_url: $AUTH_URL
      username: $PROJECT-user
      password: $PW
      project_name: $PROJECT
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    interface: public
    identity_api_version: 3
EOT
)
export OS_CLIENT_CONFIG_FILE=$CFG
bos() { "$OS" --os-cloud bench "$@" 2>>"$LOG"; }

cleanup() {
    local rc=$? s v f i
    trap - EXIT
    set +e
    if [ "${FLUID_BENCH_KEEP:-0}" != 1 ]; then
        echo "bench-cloud: deleting the servers, volumes and floating IPs (FLUID_BENCH_KEEP=1 keeps them)" >&2
        for f in $(bos floating ip list -f value -c ID); do bos floating ip delete "$f"; done
        s=$(bos server list -f value -c ID)
        [ -z "$s" ] || bos server delete $s
        for i in $(seq 1 360); do # nova-compute deletes them one by one (minutes for 200)
            [ "$( (bos server list -f value -c ID || true) | wc -l)" -eq 0 ] && break
            sleep 5
        done
        for v in $(bos volume list -f value -c ID); do bos volume delete "$v"; done
        for i in $(seq 1 60); do
            [ "$( (bos volume list -f value -c ID || true) | wc -l)" -eq 0 ] && break
            sleep 2
        done
        s=$(bos server list -f value -c ID | wc -l)
        v=$(bos volume list -f value -c ID | wc -l)
        f=$(bos floating ip list -f value -c ID | wc -l)
        if [ "$s" = 0 ] && [ "$v" = 0 ] && [ "$f" = 0 ]; then
            echo "bench-cloud: cleaned up: no server, volume or floating IP left in $PROJECT" >&2
        else
            echo "bench-cloud: cleanup INCOMPLETE: $s servers, $v volumes, $f floating IPs left in $PROJECT" >&2
            [ "$rc" != 0 ] || rc=1
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

server_states() { (bos server list -f value -c Status || true) | sort | uniq -c | tr -s ' ' | tr '\n' ',' | sed 's/^ //; s/,$//'; }
count_status() { (bos server list --status "$1" -f value -c ID || true) | wc -l; }
settle() { # until no server is in BUILD and there are at least N
    local i
    for i in $(seq 1 "${FLUID_BENCH_SETTLE_TRIES:-900}"); do
        states=$(server_states)
        total=$( (bos server list -f value -c ID || true) | wc -l)
        case $states in *BUILD*) ;; *) [ "$total" -ge "$N" ] && return 0 ;; esac
        sleep 4
    done
    return 1
}
# ---- the servers (created once; a re-run reuses them; FLUID_BENCH_SKIP_SETUP=1 skips this) --
if [ "${FLUID_BENCH_SKIP_SETUP:-0}" != 1 ]; then
bos network show bench-net >/dev/null 2>&1 || bos network create bench-net >/dev/null
bos subnet show bench-subnet >/dev/null 2>&1 || bos subnet create --network bench-net --subnet-range 10.200.0.0/22 bench-subnet >/dev/null
bos router show bench-router >/dev/null 2>&1 || { bos router create --external-gateway public bench-router >/dev/null; bos router add subnet bench-router bench-subnet; }
for g in bench-web bench-db; do
    bos security group show $g >/dev/null 2>&1 || bos security group create $g >/dev/null
done
# rules: a re-run finds them (409 "already exists" is fine)
bos security group rule create --protocol tcp --dst-port 80 bench-web >/dev/null || true
bos security group rule create --protocol tcp --dst-port 5432 --remote-group bench-web bench-db >/dev/null || true
bos security group rule create --protocol tcp --dst-port 22 --remote-group bench-db bench-web >/dev/null || true
bos keypair show bench-key >/dev/null 2>&1 || bos keypair create --public-key <(echo "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFqyrk2AK28PIi8AVDdyZe+26C/4LsIqzZ96sIXi8Lsv bench@example") bench-key >/dev/null
# servers in ERROR (e.g. left by a restarted fake nova-compute) are deleted and replaced, up
# to FLUID_BENCH_REPLACE_TRIES times, unless FLUID_BENCH_AS_IS=1 (measure the project as it is)
tries=0
while :; do
    if [ "${FLUID_BENCH_AS_IS:-0}" != 1 ]; then
        err=$(bos server list --status ERROR -f value -c ID)
        if [ -n "$err" ]; then
            echo "bench-cloud: deleting $(echo "$err" | wc -l) servers in ERROR" >&2
            bos server delete --wait $err || true
        fi
    fi
    have=$( (bos server list -f value -c ID || true) | wc -l)
    if [ "$have" -lt "$N" ]; then
        need=$((N - have))
        echo "bench-cloud: creating $need servers" >&2
        bos server create --image devcloud-tiny --flavor m1.tiny --network bench-net \
            --security-group bench-web --security-group bench-db --key-name bench-key \
            --property role=bench --min "$need" --max "$need" "bench-$(date +%s)" >/dev/null
    fi
    settle || true
    echo "bench-cloud: servers: $states" >&2
    [ "$(count_status ERROR)" -gt 0 ] || break
    [ "${FLUID_BENCH_AS_IS:-0}" != 1 ] || break
    tries=$((tries + 1))
    if [ "$tries" -gt "${FLUID_BENCH_REPLACE_TRIES:-2}" ]; then
        echo "bench-cloud: servers still in ERROR after $((tries - 1)) replacements: the devcloud is unhealthy (openstack compute service list; nova-compute.log)" >&2
        break
    fi
done
active=$(count_status ACTIVE)
if [ "$active" != "$N" ] || [ "$total" != "$N" ]; then
    if [ "${FLUID_BENCH_AS_IS:-0}" != 1 ]; then
        echo "bench-cloud: NOT VALID: $active of $N servers ACTIVE, $total in the project ($states); not measured" >&2
        exit 1
    fi
    echo "bench-cloud: FLUID_BENCH_AS_IS=1: measuring with $active of $N servers ACTIVE; the figures will be marked NOT VALID" >&2
fi
mapfile -t IDS < <(bos server list --status ACTIVE -f value -c ID | head -n 10)
mapfile -t ALL < <(bos server list -f value -c ID)
for i in $(seq 0 $(( ${#IDS[@]} < 10 ? ${#IDS[@]} - 1 : 9 ))); do
    id=${IDS[$i]}
    if ! bos volume show "bench-vol-$i" >/dev/null 2>&1; then
        bos volume create --size 1 "bench-vol-$i" >/dev/null
        for t in $(seq 1 60); do [ "$(bos volume show -f value -c status bench-vol-$i)" = available ] && break; sleep 1; done
        bos server add volume "$id" "bench-vol-$i" >/dev/null
    fi
    if [ "$(bos floating ip list --port "$(bos port list --server "$id" -f value -c ID | head -1)" -f value | wc -l)" -eq 0 ]; then
        fip=$(bos floating ip create public -f value -c id)
        bos server add floating ip "$id" "$(bos floating ip show "$fip" -f value -c floating_ip_address)"
    fi
done

fi
mapfile -t ALL < <(bos server list -f value -c ID)
states=$(server_states)
states_before=$states
active_before=$(count_status ACTIVE)
total_before=${#ALL[@]}
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- the runs ---------------------------------------------------------------------------------
now() { date +%s.%N; }
run_ours() {
    local t0 t1
    t0=$(now)
    FLUID_LOG_LEVEL=debug FLUID_LOG_FORMAT=json "$FLUIDCTL" inspect --cloud bench --all --json \
        >"$WORK/ours.json" 2>"$WORK/ours.err" || OURS_FAILED=$((OURS_FAILED + 1))
    t1=$(now)
    OURS_T=$(echo "$t1 - $t0" | bc)
    OURS_R=$(grep -c '"msg":"http"' "$WORK/ours.err" || true)
}
cli_requests() { grep -cE '^https?://[^ ]+ "[A-Z]+ [^"]* HTTP/1\.[01]" [0-9]{3} ' "$WORK/cli.err" || true; }
run_cli() {
    local t0 t1 ts n fixed_r per_r
    : >"$WORK/cli.err"
    cli() { "$OS" --os-cloud bench --debug "$@" >/dev/null 2>>"$WORK/cli.err" || CLI_FAILED=$((CLI_FAILED + 1)); }
    CLI_FAILED=0
    t0=$(now)
    cli server list --long
    cli flavor list --long
    cli security group list
    cli security group rule list --long
    cli floating ip list --long
    cli volume list --long
    cli network list --long
    cli subnet list --long
    cli router list --long
    cli keypair show --public-key bench-key
    ts=$(now)
    fixed_r=$(cli_requests)
    n=${#ALL[@]}
    if [ "$SAMPLE" -gt 0 ] && [ "$SAMPLE" -lt "$n" ]; then n=$SAMPLE; fi
    for id in "${ALL[@]:0:$n}"; do
        cli server show "$id"
        cli port list --server "$id" --long
    done
    t1=$(now)
    per_r=$(( $(cli_requests) - fixed_r ))
    if [ "$n" -lt "${#ALL[@]}" ]; then  # scale the per-server part up to every server
        CLI_T=$(echo "($ts - $t0) + ($t1 - $ts) / $n * ${#ALL[@]}" | bc -l)
        CLI_R=$(echo "$fixed_r + $per_r * ${#ALL[@]} / $n" | bc)
        CLI_NOTE="CLI per-server calls run for $n of ${#ALL[@]} servers and scaled up"
    else
        CLI_T=$(echo "$t1 - $t0" | bc -l)
        CLI_R=$((fixed_r + per_r))
        CLI_NOTE="every CLI per-server call run"
    fi
    CLI_INVOCATIONS=$((10 + 2 * n))
}
echo "bench-cloud: $N servers; 3 rounds, alternating" >&2
RES=$WORK/results.txt
: >"$RES"
OURS_FAILED=0
for round in 1 2 3; do
    run_ours
    echo "ours $OURS_T $OURS_R" | tee -a "$RES"
    if [ "$round" = 1 ]; then # the CLI route takes minutes: once
        run_cli
        echo "cli $CLI_T $CLI_R" | tee -a "$RES"
    fi
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
OURS_MED=$(awk '$1=="ours" {print $2}' "$RES" | sort -n | sed -n 2p)
OURS_REQ=$(awk '$1=="ours" {print $3}' "$RES" | sort -n | sed -n 2p)
SERVERS=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["servers"]))' "$WORK/ours.json" 2>/dev/null || echo 0)
states_after=$(server_states)
active_after=$(count_status ACTIVE)
total_after=$( (bos server list -f value -c ID || true) | wc -l)

# ---- validity: every server ACTIVE before and after, every invocation succeeded -----------------
WHY=()
[ "$active_before" = "$N" ] && [ "$total_before" = "$N" ] ||
    WHY+=("before the runs $active_before of $N servers ACTIVE, $total_before in the project ($states_before)")
[ "$active_after" = "$N" ] && [ "$total_after" = "$N" ] ||
    WHY+=("after the runs $active_after of $N servers ACTIVE, $total_after in the project ($states_after)")
[ "$SERVERS" = "$N" ] || WHY+=("the topology holds $SERVERS servers, not $N")
[ "$OURS_FAILED" = 0 ] || WHY+=("$OURS_FAILED of 3 fluidctl runs failed (see $WORK/ours.err)")
[ "$CLI_FAILED" = 0 ] || WHY+=("$CLI_FAILED CLI invocations failed (their requests are missing from the count)")

COMMIT=$(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo unknown)
printf '\nbench-cloud: %s, commit %s, %s servers in the topology (%s), %s\n' \
    "$(date -u '+%Y-%m-%d %H:%M UTC')" "$COMMIT" "$SERVERS" "$states_after" "$CLI_NOTE"
printf '  load average (1/5/15 min) before: %s, after: %s\n' "$LOAD_BEFORE" "$LOAD_AFTER"
printf '  %-44s %10s %10s\n' tool "wall s" requests
printf '  %-44s %10.2f %10s   (runs: %s)\n' "fluidctl inspect --all --json (median of 3)" "$OURS_MED" "$OURS_REQ" \
    "$(awk '$1=="ours" {printf "%s%.2f s/%s", sep, $2, $3; sep=", "}' "$RES")"
printf '  %-44s %10.2f %10s   (%s invocations)\n' "openstack CLI route" "$CLI_T" "$CLI_R" "$CLI_INVOCATIONS"
printf '  ratio ours/CLI: time %.4f, requests %.4f\n' \
    "$(echo "$OURS_MED / $CLI_T" | bc -l)" "$(echo "$OURS_REQ / $CLI_R" | bc -l)"
if [ "${#WHY[@]}" -gt 0 ]; then
    printf '  RESULT NOT VALID:\n'
    printf '    - %s\n' "${WHY[@]}"
    exit 1
fi
printf '  result valid: %s of %s servers ACTIVE before and after, no invocation failed\n' "$N" "$N"
