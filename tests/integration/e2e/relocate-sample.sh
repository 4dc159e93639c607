#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# End to end with real guests: the sample service (deploy/sample/sample-service: two QEMU
# guests, a data volume, a floating IP, two security groups, a key pair, a network and an
# application config) relocated from project `source` to project `target` of the devcloud by
# fluid-conduit and two fluid-brokers, as the quick start does. Checks: the relocation ends
# `done`; the overview reports no difference; the application answers on its new floating
# IP with its rewritten configuration and the volume's data file is byte-identical
# (sample-service check); the same request again creates nothing; no password of either
# cloud appears in any log, event or the conduit's store.
# Run by ctest with the rabbitmq and devcloud-guests fixtures.
set -euo pipefail
run=${FLUID_TEST_RUN_DIR:?} bin=${FLUID_BIN_DIR:?} src=${FLUID_SOURCE_DIR:?}
fail() { echo "FAIL: $*" >&2; exit 1; }
[ -f "$run/rabbitmq.env" ] || fail "no rabbitmq fixture ($run/rabbitmq.env)"
[ -f "$run/devcloud-guests.env" ] || fail "no devcloud-guests fixture ($run/devcloud-guests.env)"
set -a
# shellcheck disable=SC1091
. "$run/rabbitmq.env"
# shellcheck disable=SC1091
. "$run/devcloud-guests.env"
set +a
export FLUID_LOG_FORMAT=json FLUID_LOG_LEVEL=debug
work=$run/e2e-sample
rm -rf "$work"
mkdir -p "$work/logs"
chmod 755 "$work"
sample=$src/deploy/sample/sample-service
export FLUID_SAMPLE_STATE=$work/sample

pids=()
finish() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    "$sample" delete --cloud target >/dev/null 2>&1 || true
    "$sample" delete --cloud source >/dev/null 2>&1 || true
}
trap finish EXIT

cat >"$work/conduit.conf" <<CONF
state_dir = $work/conduit
clouds_file = $OS_CLIENT_CONFIG_FILE
CONF
for i in 1 2; do
    setsid "$bin/fluid-broker" --broker-id "e2e-$i" --capacity 4 </dev/null \
        >"$work/logs/broker-$i.log" 2>&1 &
    pids+=($!)
done
setsid "$bin/fluid-conduit" --config "$work/conduit.conf" </dev/null >"$work/logs/conduit.log" 2>&1 &
pids+=($!)

echo "== the sample service in source (real guests)"
# what a killed earlier run left (its trap never ran): the key pair in source would not be
# this run's key
"$sample" delete --cloud target
"$sample" delete --cloud source
"$sample" create --cloud source --guests | tee "$work/sample.json"

# What the target holds of the sample service and of this relocation, by kind and name (the
# second run must not change it). Only those: on a shared devcloud other tests make and delete
# their own resources in project target at the same time.
inventory() {
    /usr/bin/python3 - "$1" <<'PY'
import openstack, sys
rid = sys.argv[1]
c = openstack.connect(cloud="target")
mine = lambda n: bool(n) and (n == "sample" or n.startswith("sample-"))
ours = lambda o: rid in (o.description or "") or ("fluid-relocation=" + rid) in (o.tags or [])
out = []
out += ["server " + s.name for s in c.compute.servers() if mine(s.name)]
out += ["volume " + v.name for v in c.block_storage.volumes() if mine(v.name)]
out += ["port " + p.name for p in c.network.ports() if mine(p.name)]
out += ["fip " + f.floating_ip_address for f in c.network.ips() if ours(f)]
groups = {g.id: g.name for g in c.network.security_groups()}
out += ["secgroup " + n for n in groups.values() if mine(n)]
out += ["rule %s %s %s %s" % (groups.get(r.security_group_id), r.direction, r.port_range_min,
                              groups.get(r.remote_group_id, r.remote_group_id))
        for r in c.network.security_group_rules()
        if mine(groups.get(r.security_group_id)) or ours(r)]
out += ["keypair " + k.name for k in c.compute.keypairs() if mine(k.name)]
out += ["network " + n.name for n in c.network.networks() if mine(n.name)]
out += ["router " + r.name for r in c.network.routers() if mine(r.name)]
out += ["image " + i.name for i in c.image.images()
        if i.owner == c.current_project_id and mine(i.name)]
print("\n".join(sorted(out)))
PY
}

rid=r-e2e-sample-$$
"$bin/fluidctl" relocate --from source --to target --tag sample \
    --rules "$src/deploy/sample/rules.json" --relocation-id "$rid" --print >"$work/request.json"
# the config step logs in as root with the sample's key (host keys from the consoles)
/usr/bin/python3 - "$work/request.json" "$FLUID_SAMPLE_STATE/sample_key" <<'PY'
import json, sys
req = json.load(open(sys.argv[1]))
req.setdefault("options", {})["config_ssh"] = {"user": "root", "identity": sys.argv[2]}
json.dump(req, open(sys.argv[1], "w"), indent=1)
PY
relocate() {
    "$bin/fluidctl" relocate --request "$work/request.json" --watch --json --timeout 3000 \
        >>"$work/watch.jsonl"
}
echo "== relocating ($rid)"
relocate || fail "fluidctl relocate failed: $(tail -3 "$work/watch.jsonl")"
"$bin/fluidctl" status --json "$rid" >"$work/status.json"
state=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["state"])' "$work/status.json")
[ "$state" = done ] || fail "relocation state: $state"

echo "== overview"
"$bin/fluidctl" overview --json "$rid" >"$work/overview.json"
/usr/bin/python3 - "$work/overview.json" <<'PY'
import json, sys
ov = json.load(open(sys.argv[1]))
diffs = ov.get("differences")
if diffs is None:
    sys.exit("FAIL: the overview has no \"differences\" list: %s" % list(ov))
if diffs:
    sys.exit("FAIL: the overview reports %d differences: %s" % (len(diffs), json.dumps(diffs)[:2000]))
print("overview: no difference")
PY

echo "== the relocated service works on target"
"$sample" check --cloud target || fail "sample-service check on target"

echo "== the same request again creates nothing"
inventory "$rid" >"$work/target-1.txt"
# the inventory sees the relocated service (a filter that saw nothing would compare nothing)
for want in "server 2" "fip 2" "secgroup 2" "keypair 1" "network 1" "router 1" "volume 1"; do
    n=$(grep -c "^${want% *} sample" "$work/target-1.txt" || true)
    [ "${want% *}" = fip ] && n=$(grep -c '^fip ' "$work/target-1.txt" || true)
    [ "$n" = "${want#* }" ] || fail "target holds $n ${want% *}(s) of the service, want ${want#* }: $(tr '\n' ' ' <"$work/target-1.txt")"
done
relocate || fail "second fluidctl relocate failed"
inventory "$rid" >"$work/target-2.txt"
diff -u "$work/target-1.txt" "$work/target-2.txt" || fail "the second run changed the target"

echo "== no password in any log, event or store"
for cloud in source target devcloud-admin; do
    pw=$(/usr/bin/python3 -c 'import openstack.config,sys; print(openstack.config.OpenStackConfig().get_one(cloud=sys.argv[1]).auth["password"])' "$cloud")
    [ ${#pw} -ge 6 ] || fail "cannot read the $cloud password to look for it"
    if grep -rlF -- "$pw" "$work/logs" "$work/watch.jsonl" "$work/conduit" "$work/overview.json" \
        "$work/status.json"; then
        fail "the $cloud password appears in the files above"
    fi
done
echo "PASS: the sample service relocated with real guests"
