#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# bench.sh FLUIDCTL WORKDIR [SERVERS] [CLI_SAMPLE]: inspection of a project of SERVERS fake
# servers (10 with a volume, 10 with a floating IP, two security groups, one network),
# fluidctl inspect --all next to the openstack CLI route for the same facts:
#   openstack server list --long, then per server `server show` and `port list --server`,
#   plus the project-wide lists (flavors with specs, groups with rules, floating IPs,
#   volumes, networks, subnets, routers, keypairs).
# Both are run in the same session, alternating; requests are counted from each tool's own
# debug log (fluidctl: "msg":"http" records; openstack --debug: "REQ: curl" lines).
# CLI_SAMPLE > 0 runs the per-server CLI calls for that many servers only and scales them up
# (the report says so). Needs the devcloud running and root (reads its clouds.yaml).
# At the end the servers, volumes and floating IPs are deleted (the devcloud is shared), unless
# FLUID_BENCH_KEEP=1; the project, its user and network stay for the next run.
set -euo pipefail
FLUIDCTL=${1:?usage: bench.sh FLUIDCTL WORKDIR [SERVERS] [CLI_SAMPLE]}
WORK=${2:?workdir}
N=${3:-200}
SAMPLE=${4:-0}
OS=/usr/bin/openstack
PROJECT=fluid-bench
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
# servers in ERROR (e.g. left by a restarted fake nova-compute) are replaced, unless
# FLUID_BENCH_AS_IS=1 (measure the project as it is)
if [ "${FLUID_BENCH_AS_IS:-0}" != 1 ]; then
    for id in $(bos server list --status ERROR -f value -c ID); do bos server delete "$id"; done
fi
have=$(bos server list -f value -c ID | wc -l)
if [ "$have" -lt "$N" ]; then
    need=$((N - have))
    echo "bench-cloud: creating $need servers" >&2
    bos server create --image devcloud-tiny --flavor m1.tiny --network bench-net \
        --security-group bench-web --security-group bench-db --key-name bench-key \
        --property role=bench --min "$need" --max "$need" "bench-$(date +%s)" >/dev/null
fi
# wait until every server has settled (none in BUILD); a few may end in ERROR on a loaded
# devcloud: they are inspected like the others, and counted in the report
for i in $(seq 1 "${FLUID_BENCH_SETTLE_TRIES:-900}"); do
    states=$( (bos server list -f value -c Status || true) | sort | uniq -c | tr -s ' ' | tr '\n' ',')
    total=$( (bos server list -f value -c ID || true) | wc -l)
    case $states in *BUILD*) ;; *) [ "$total" -ge "$N" ] && break ;; esac
    sleep 4
done
active=$( (bos server list --status ACTIVE -f value -c ID || true) | wc -l)
[ "$total" -ge "$N" ] || { echo "bench-cloud: only $active of $N servers ACTIVE ($states)" >&2; exit 1; }
echo "bench-cloud: servers: $states" >&2
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
states=$( (bos server list -f value -c Status || true) | sort | uniq -c | tr -s ' ' | tr '\n' ',')

# ---- the runs ---------------------------------------------------------------------------------
now() { date +%s.%N; }
run_ours() {
    local t0 t1
    t0=$(now)
    FLUID_LOG_LEVEL=debug FLUID_LOG_FORMAT=json "$FLUIDCTL" inspect --cloud bench --all --json \
        >"$WORK/ours.json" 2>"$WORK/ours.err"
    t1=$(now)
    OURS_T=$(echo "$t1 - $t0" | bc)
    OURS_R=$(grep -c '"msg":"http"' "$WORK/ours.err" || true)
}
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
    fixed_r=$(grep -c 'REQ: curl' "$WORK/cli.err" || true)
    n=${#ALL[@]}
    if [ "$SAMPLE" -gt 0 ] && [ "$SAMPLE" -lt "$n" ]; then n=$SAMPLE; fi
    for id in "${ALL[@]:0:$n}"; do
        cli server show "$id"
        cli port list --server "$id" --long
    done
    t1=$(now)
    per_r=$(( $(grep -c 'REQ: curl' "$WORK/cli.err" || true) - fixed_r ))
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
for round in 1 2 3; do
    run_ours
    echo "ours $OURS_T $OURS_R" | tee -a "$RES"
    if [ "$round" = 1 ]; then # the CLI route takes minutes: once
        run_cli
        echo "cli $CLI_T $CLI_R" | tee -a "$RES"
    fi
done
OURS_MED=$(awk '$1=="ours" {print $2}' "$RES" | sort -n | sed -n 2p)
OURS_REQ=$(awk '$1=="ours" {print $3}' "$RES" | sort -n | sed -n 2p)
SERVERS=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["servers"]))' "$WORK/ours.json")
printf '\nbench-cloud (%s servers in the topology: %s %s)\n' "$SERVERS" "$states" "$CLI_NOTE"
printf '  %-44s %10s %10s\n' tool "wall s" requests
printf '  %-44s %10.2f %10s\n' "fluidctl inspect --all --json (median of 3)" "$OURS_MED" "$OURS_REQ"
printf '  %-44s %10.2f %10s\n' "openstack CLI route" "$CLI_T" "$CLI_R"
[ "$CLI_FAILED" = 0 ] || printf '  (%s CLI invocations failed: the devcloud was unstable; the CLI figures are then low)\n' "$CLI_FAILED"
printf '  ratio ours/CLI: time %.3f, requests %.3f\n' \
    "$(echo "$OURS_MED / $CLI_T" | bc -l)" "$(echo "$OURS_REQ / $CLI_R" | bc -l)"

if [ "${FLUID_BENCH_KEEP:-0}" != 1 ]; then
    echo "bench-cloud: deleting the servers, volumes and floating IPs (FLUID_BENCH_KEEP=1 keeps them)" >&2
    for f in $(bos floating ip list -f value -c ID); do bos floating ip delete "$f" || true; done
    bos server delete $(bos server list -f value -c ID) || true
    for i in $(seq 1 120); do
        [ "$( (bos server list -f value -c ID || true) | wc -l)" -eq 0 ] && break
        sleep 5
    done
    for v in $(bos volume list -f value -c ID); do bos volume delete "$v" || true; done
fi
