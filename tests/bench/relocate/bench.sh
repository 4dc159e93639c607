#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# bench.sh BIN_DIR WORK [REPS] [SERVERS]: the relocation benchmark of issue 8, on the devcloud.
#
# Part A (image): a 2 GiB disk with 40 % data (1 MiB runs of random bytes scattered by a
# seeded PRNG, the rest zeros), stored in Glance as qcow2 (the format Nova's libvirt driver
# snapshots a qcow2 guest to; allocated size ~ the data), moved to the other project:
#   ours        the plan's image task: fluid-openstack image-export --framed |
#               fluid-openstack image-import, joined by a pipe as the broker joins them
#               (overlapped download and upload, SHA-256/512 checked end to end);
#   sequential  the S2D paper's method: download the image to a file, then upload the file
#               as a new image (curl against the Glance v2 API: Keystone token, lookup,
#               GET .../file -o FILE; token, POST /v2/images, PUT .../file -T FILE).
# REPS repetitions, alternating which goes first; medians, the ratio ours/sequential, and
# the bytes each moved (HTTP body bytes: image-export's bytes_received and image-import's
# bytes from their done results, curl's size_download and size_upload) next to the image's
# allocated size. Scenario A2 (FLUID_BENCH_CONVERT=0 skips it): the same disk stored raw and
# moved to qcow2 (ours: export | fluid-image convert | import; sequential: download,
# qemu-img convert, upload).
#
# Part B (fake driver): SERVERS servers (20) relocated by one request through fluid-conduit
# and two fluid-brokers on a private RabbitMQ node (tests/fixtures/rabbitmq.sh):
# wall time of `fluidctl relocate --watch` (planning, every task, the overview), and the
# CPU seconds (utime+stime from /proc/PID/stat) of the conduit, of the brokers themselves
# and of their migrators (the brokers' cutime+cstime), per task of the plan.
#
# Runs in two projects of its own (fluid-bench-reloc-src, -dst, made with the devcloud's
# admin cloud); everything it made is deleted at exit, projects and users included
# (FLUID_BENCH_KEEP=1 keeps them). FLUID_BENCH_PARTS=a|b|ab (default ab);
# FLUID_BENCH_IMAGE_MIB sets the disk size (default 2048; smaller for a quick try).
# FLUID_BENCH_RATE=R (e.g. 40M: bytes per second, k/M/G in powers of 1024) models a link
# between the clouds: every image byte moves at most R per second each way, for both methods
# alike (ours: fluid-openstack --max-rate R; sequential: curl --limit-rate R). Unset: no
# limit (loopback: then the CPU and one Glance's upload bound both methods).
# Needs the devcloud running (deploy/devcloud/devcloud up), root, python3, curl, jq,
# qemu-img and the openstack CLI (setup and cleanup only).
set -euo pipefail
BIN=$(cd "${1:?usage: bench.sh BIN_DIR WORK [REPS] [SERVERS]}" && pwd)
WORK=${2:?work dir}
REPS=${3:-5}
NSRV=${4:-20}
PARTS=${FLUID_BENCH_PARTS:-ab}
RATE=${FLUID_BENCH_RATE:-}
OURS_RATE=() CURL_RATE=()
if [ -n "$RATE" ]; then
    OURS_RATE=(--max-rate "$RATE")
    CURL_RATE=(--limit-rate "$RATE")
fi
P=fluid-bench-reloc
SRC=$(cd "$(dirname "$0")/../../.." && pwd)
HERE=$SRC/tests/bench/relocate
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
LOG=$WORK/bench.log
: >"$LOG"
RESULTS=$WORK/results.txt
: >"$RESULTS"
say() { echo "$*" | tee -a "$RESULTS" >&2; }
note() { echo "$(date -u +%T) $*" >>"$LOG"; }
trap 'echo "bench-relocate: failed at line $LINENO; see $LOG" >&2' ERR

DEVCLOUD_CFG=$("$SRC/deploy/devcloud/devcloud" env 2>/dev/null | sed -n 's/^OS_CLIENT_CONFIG_FILE=//p' || true)
DEVCLOUD_CFG=${DEVCLOUD_CFG:-/var/lib/devcloud/clouds.yaml}
[ -r "$DEVCLOUD_CFG" ] || { echo "bench-relocate: no devcloud clouds.yaml: run deploy/devcloud/devcloud up" >&2; exit 1; }
for t in python3 curl jq qemu-img openstack; do
    command -v $t >/dev/null || { echo "bench-relocate: $t is missing" >&2; exit 1; }
done
for b in fluid-openstack fluid-image fluid-conduit fluid-broker fluidctl; do
    [ -x "$BIN/$b" ] || { echo "bench-relocate: $BIN/$b is not built" >&2; exit 1; }
done

admin() { OS_CLIENT_CONFIG_FILE=$DEVCLOUD_CFG openstack --os-cloud devcloud-admin "$@" 2>>"$LOG"; }
AUTH_URL=$(sed -n 's/^ *auth_url: *//p' "$DEVCLOUD_CFG" | head -1)
now() { date +%s.%N; }
ticks=$(getconf CLK_TCK)
# CPU seconds (utime+stime) used so far by the devcloud's Glance (its uwsgi master and
# workers): read from /proc, so that the bench can say how much of the two cores Glance's
# own hashing and writing takes (other engineers' Glance calls at the same time count too)
glance_cpu() {
    local p sum=0
    for p in $(pgrep -f '^devcloud-glance-' || true); do
        sum=$(awk -v t="$ticks" -v s="$sum" '{sub(/^.*\) /, ""); printf "%.2f\n", s + ($12+$13)/t}' \
              "/proc/$p/stat" 2>/dev/null || echo "$sum")
    done
    echo "$sum"
}
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }

# ---- two projects of our own, a user in each, a clouds.yaml with clouds bsrc and bdst --------
CFG=$WORK/clouds.yaml
(umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$WORK/password")
PW=$(cat "$WORK/password")
declare -A PID
for side in src dst; do
    admin project show $P-$side >/dev/null 2>&1 || admin project create $P-$side >/dev/null
    PID[$side]=$(admin project show $P-$side -f value -c id)
    admin user show $P-$side-user >/dev/null 2>&1 ||
        admin user create --project $P-$side --password "$PW" $P-$side-user >/dev/null
    admin user set --password "$PW" $P-$side-user
    admin role add --project $P-$side --user $P-$side-user member
done
(umask 077; {
    echo "clouds:"
    for side in src dst; do cat <<EOT
  b$side:
    auth:
      auth_url: $AUTH_URL
      username: $P-$side-user
      password: $PW
      project_name: $P-$side
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    interface: public
    identity_api_version: 3
EOT
    done
} >"$CFG")
export OS_CLIENT_CONFIG_FILE=$CFG
bos() { local c=$1; shift; openstack --os-cloud "$c" "$@" 2>>"$LOG"; }

# Deletes everything in the project of cloud $1 (servers, floating IPs, routers, ports,
# subnets, networks, groups, the user's keypairs, the project's own images).
sweep() {
    local c=$1 pid=$2 id
    local ids
    ids=$(bos "$c" server list -f value -c ID)
    if [ -n "$ids" ]; then
        # shellcheck disable=SC2086
        bos "$c" server delete $ids || true
        for _ in $(seq 1 100); do [ -z "$(bos "$c" server list -f value -c ID)" ] && break; sleep 3; done
    fi
    for id in $(bos "$c" floating ip list --project "$pid" -f value -c ID); do bos "$c" floating ip delete "$id" || true; done
    for id in $(bos "$c" router list --project "$pid" -f value -c ID); do
        for s in $(bos "$c" port list --router "$id" --device-owner network:router_interface -f json |
                   jq -r '.[]."Fixed IP Addresses"[]?.subnet_id' 2>/dev/null); do
            bos "$c" router remove subnet "$id" "$s" || true
        done
        bos "$c" router delete "$id" || true
    done
    for id in $(bos "$c" port list --project "$pid" -f json |
                jq -r '.[] | select((.device_owner // "") != "network:dhcp") | .ID' 2>/dev/null); do
        bos "$c" port delete "$id" || true
    done
    for id in $(bos "$c" network list --project "$pid" -f value -c ID); do bos "$c" network delete "$id" || true; done
    for id in $(bos "$c" security group list --project "$pid" -f value -c ID -c Name |
                awk '$2 != "default" {print $1}'); do bos "$c" security group delete "$id" || true; done
    for id in $(bos "$c" keypair list -f value -c Name); do bos "$c" keypair delete "$id" || true; done
    for id in $(bos "$c" image list --long -f json | jq -r --arg p "$pid" '.[] | select(.Project == $p) | .ID'); do
        bos "$c" image delete "$id" || true
    done
}
# what an interrupted earlier run left (the projects are ours alone)
sweep bsrc "${PID[src]}"
sweep bdst "${PID[dst]}"
RMQ=$SRC/tests/fixtures/rabbitmq.sh
STACK_PIDS=()
finish() {
    local rc=$?
    trap - ERR
    for p in "${STACK_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${STACK_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    [ -f "$WORK/run/rabbitmq.env" ] && "$RMQ" stop "$WORK/run" >/dev/null 2>&1 || true
    rm -f "$WORK"/seq.* "$WORK"/auth-*.json
    if [ "${FLUID_BENCH_KEEP:-0}" != 1 ]; then
        echo "bench-relocate: cleaning up both projects" >&2
        sweep bsrc "${PID[src]}" || true
        sweep bdst "${PID[dst]}" || true
        for side in src dst; do
            admin user delete $P-$side-user || true
            admin project delete $P-$side || true
        done
    fi
    rm -f "$WORK/password"
    [ "${FLUID_BENCH_KEEP:-0}" = 1 ] || rm -f "$CFG"
    exit $rc
}
trap finish EXIT

say "bench-relocate $(date -u +%FT%TZ) on $(hostname), $(nproc) cores"
say "load at start: $(uptime)"
say "rate limit per direction: ${RATE:-none (loopback)}"

# ---- part A -------------------------------------------------------------------------------
# A Keystone token for cloud $1 ($2: project) in variable TOKEN (the body with the password
# is a file of mode 600, never an argument).
token() {
    local side=$1 f=$WORK/auth-$1.json
    (umask 077; jq -n --arg u "$P-$side-user" --arg p "$PW" --arg pr "$P-$side" \
        '{auth:{identity:{methods:["password"],password:{user:{name:$u,domain:{name:"Default"},password:$p}}},
          scope:{project:{name:$pr,domain:{name:"Default"}}}}}' >"$f")
    TOKEN=$(curl -sS -D - -o /dev/null -H 'Content-Type: application/json' --data @"$f" \
            "$AUTH_URL/auth/tokens" | tr -d '\r' | sed -n 's/^[Xx]-[Ss]ubject-[Tt]oken: //p')
    [ -n "$TOKEN" ] || { echo "bench-relocate: no token for $side" >&2; return 1; }
}

# The sequential method: download image $1 (name) of bsrc to a file, upload it to bdst as $2
# with disk format $3 ($4: a conversion to that format in between, or empty). Prints
# "bytes_down bytes_up".
sequential() {
    local name=$1 dst=$2 fmt=$3 conv=$4 id nid down up file=$WORK/seq.img t0 t1 t2 g0 g1 g2
    g0=$(glance_cpu)
    t0=$(now)
    token src
    id=$(curl -sS -H "X-Auth-Token: $TOKEN" "$GLANCE/v2/images?name=$name" | jq -r '.images[0].id')
    down=$(curl -sS -f "${CURL_RATE[@]}" -H "X-Auth-Token: $TOKEN" -o "$file" -w '%{size_download}' "$GLANCE/v2/images/$id/file")
    if [ -n "$conv" ]; then
        qemu-img convert -O "$fmt" "$file" "$file.$fmt"
        mv "$file.$fmt" "$file"
    fi
    t1=$(now)
    g1=$(glance_cpu)
    token dst
    nid=$(curl -sS -f -H "X-Auth-Token: $TOKEN" -H 'Content-Type: application/json' \
          --data "{\"name\":\"$dst\",\"disk_format\":\"$fmt\",\"container_format\":\"bare\"}" \
          "$GLANCE/v2/images" | jq -r .id)
    up=$(curl -sS -f "${CURL_RATE[@]}" -X PUT -H "X-Auth-Token: $TOKEN" -H 'Content-Type: application/octet-stream' \
         -T "$file" -w '%{size_upload}' "$GLANCE/v2/images/$nid/file")
    [ "$(curl -sS -H "X-Auth-Token: $TOKEN" "$GLANCE/v2/images/$nid" | jq -r .status)" = active ] ||
        { echo "bench-relocate: sequential upload of $dst did not end active" >&2; return 1; }
    t2=$(now)
    g2=$(glance_cpu)
    echo "$down $up $(printf %.2f "$(echo "$t1 - $t0" | bc)") $(printf %.2f "$(echo "$t2 - $t1" | bc)")" \
         "$(echo "$g1 - $g0" | bc) $(echo "$g2 - $g1" | bc)"
}

# Ours: the plan's image task, stages joined by pipes. Prints "bytes_received bytes_sent".
viaduct() {
    local name=$1 dst=$2 fmt=$3 conv=$4 rid=$5 ex im c
    local T="/usr/bin/time -f %U+%S -o"
    rm -f "$WORK"/cpu-*.txt
    if [ -n "$conv" ]; then
        $T "$WORK/cpu-ex.txt" "$BIN/fluid-openstack" image-export --cloud bsrc --relocation-id "$rid" --image-name "$name" \
            "${OURS_RATE[@]}" --framed 2>"$WORK/ex.err" |
            $T "$WORK/cpu-conv.txt" "$BIN/fluid-image" convert --framed -O "$fmt" - - 2>"$WORK/conv.err" |
            $T "$WORK/cpu-im.txt" "$BIN/fluid-openstack" image-import --cloud bdst --relocation-id "$rid" --name "$dst" \
                "${OURS_RATE[@]}" --disk-format "$fmt" --container-format bare >"$WORK/im.out" 2>"$WORK/im.err"
    else
        $T "$WORK/cpu-ex.txt" "$BIN/fluid-openstack" image-export --cloud bsrc --relocation-id "$rid" --image-name "$name" \
            "${OURS_RATE[@]}" --framed 2>"$WORK/ex.err" |
            $T "$WORK/cpu-im.txt" "$BIN/fluid-openstack" image-import --cloud bdst --relocation-id "$rid" --name "$dst" \
                "${OURS_RATE[@]}" --disk-format "$fmt" --container-format bare >"$WORK/im.out" 2>"$WORK/im.err"
    fi
    ex=$(grep '"bytes_received"' "$WORK/ex.err" | tail -1)
    im=$(grep '"glance_hash_checked"' "$WORK/im.out" | tail -1)
    [ "$(jq -r .glance_hash_checked <<<"$im")" = true ] ||
        { echo "bench-relocate: image-import did not check Glance's hash" >&2; return 1; }
    c=""
    for f in ex conv im; do
        c+=" $( [ -s "$WORK/cpu-$f.txt" ] && tail -1 "$WORK/cpu-$f.txt" | bc || echo 0)"
    done
    echo "$(jq -r .bytes_received <<<"$ex") $(jq -r .bytes <<<"$im") $(jq -r .sha256 <<<"$im")$c"
}

# delete the images named $1 in bdst (the copy of one round)
drop_dst() {
    local id
    for id in $(bos bdst image list --name "$1" -f value -c ID); do bos bdst image delete "$id"; done
}

# scenario: label, local file, Glance source format, target format, convert (1 or empty)
scenario() {
    local label=$1 file=$2 sfmt=$3 tfmt=$4 conv=$5 snap=$P-$1-snap i
    note "scenario $label: upload $file to bsrc as $snap ($sfmt)"
    bos bsrc image create --disk-format "$sfmt" --container-format bare --file "$file" "$snap" >/dev/null
    local alloc virt sha_tgt
    alloc=$(stat -c %s "$file")            # what Glance stores and serves
    [ "$sfmt" = raw ] && alloc=$(( $(stat -c %b "$file") * $(stat -c %B "$file") ))
    virt=$(qemu-img info --output=json "$file" | jq -r '."virtual-size"')
    local ours=() seq=() obd=() obu=() sbd=() sbu=() ocpu=() scpu=() sha_local='' TIMEFORMAT='%R %U %S' w u k
    local cex=() cconv=() cim=() c1 c2 c3 sdl=() sul=() gours=() gsdl=() gsul=() g0 gd gu
    [ -z "$conv" ] && sha_local=$(sha256sum "$file" | cut -c1-64)
    for i in $(seq 1 "$REPS"); do
        for who in $( ((i % 2)) && echo "ours seq" || echo "seq ours"); do
            local r
            # bash's time: wall, and the user and system CPU of every process it waited for
            if [ $who = ours ]; then
                g0=$(glance_cpu)
                { time r=$(viaduct "$snap" "$P-$label-ours-$i" "$tfmt" "$conv" "$P-a-$label-$i"); } 2>"$WORK/time.txt"
                gours+=("$(echo "$(glance_cpu) - $g0" | bc)")
                cat "$WORK/time.txt" >>"$LOG"; read -r w u k < <(tail -1 "$WORK/time.txt")
                ours+=("$w"); ocpu+=("$(echo "$u + $k" | bc)")
                read -r b1 b2 sha_tgt c1 c2 c3 <<<"$r"; obd+=("$b1"); obu+=("$b2")
                cex+=("$c1"); cconv+=("$c2"); cim+=("$c3")
                [ -z "$sha_local" ] || [ "$sha_tgt" = "$sha_local" ] ||
                    { echo "bench-relocate: $label rep $i: SHA-256 $sha_tgt arrived, $sha_local sent" >&2; exit 1; }
                drop_dst "$P-$label-ours-$i"
                note "$label rep $i ours ${ours[-1]} s (CPU ${ocpu[-1]} s: $c1 $c2 $c3; Glance ${gours[-1]} s), $b1 B in, $b2 B out"
            else
                { time r=$(sequential "$snap" "$P-$label-seq-$i" "$tfmt" "$conv"); } 2>"$WORK/time.txt"
                cat "$WORK/time.txt" >>"$LOG"; read -r w u k < <(tail -1 "$WORK/time.txt")
                seq+=("$w"); scpu+=("$(echo "$u + $k" | bc)")
                read -r b1 b2 c1 c2 gd gu <<<"$r"; sbd+=("$b1"); sbu+=("$b2"); sdl+=("$c1"); sul+=("$c2")
                gsdl+=("$gd"); gsul+=("$gu")
                rm -f "$WORK/seq.img"
                drop_dst "$P-$label-seq-$i"
                note "$label rep $i seq ${seq[-1]} s (steps $c1 $c2 s; CPU ${scpu[-1]} s; Glance $gd $gu s), $b1 B in, $b2 B out"
            fi
        done
    done
    local mo ms
    mo=$(printf '%s\n' "${ours[@]}" | median); ms=$(printf '%s\n' "${seq[@]}" | median)
    say ""
    say "A/$label: virtual $((virt >> 20)) MiB, allocated $((alloc >> 20)) MiB ($alloc B:" \
        "$([ "$sfmt" = raw ] && echo "the disk's allocated blocks; Glance stores and serves the whole file" ||
           echo "the qcow2 file, as Glance stores it")); $sfmt -> $tfmt"
    say "  ours (export | ${conv:+convert | }import) s: ${ours[*]}"
    say "  sequential (download, ${conv:+qemu-img convert, }upload) s: ${seq[*]}"
    local pair=()
    for i in "${!ours[@]}"; do pair+=("$(echo "scale=3; ${ours[$i]} / ${seq[$i]}" | bc)"); done
    say "  median ours $mo s, sequential $ms s, ratio ours/sequential $(echo "scale=3; $mo / $ms" | bc)"
    say "  sequential's steps (median s): download${conv:+ and convert} $(printf '%s\n' "${sdl[@]}" | median)," \
        "upload $(printf '%s\n' "${sul[@]}" | median)"
    say "  CPU s of our processes (median): ours $(printf '%s\n' "${ocpu[@]}" | median)," \
        "sequential $(printf '%s\n' "${scpu[@]}" | median) (Glance's own CPU not counted)"
    say "  Glance's CPU s (median, its uwsgi processes): during ours $(printf '%s\n' "${gours[@]}" | median)," \
        "during the sequential download${conv:+ and convert} $(printf '%s\n' "${gsdl[@]}" | median)," \
        "upload $(printf '%s\n' "${gsul[@]}" | median)"
    say "  CPU s per stage of ours (median): image-export $(printf '%s\n' "${cex[@]}" | median)," \
        "${conv:+convert $(printf '%s\n' "${cconv[@]}" | median), }image-import $(printf '%s\n' "${cim[@]}" | median)"
    say "  ratio per repetition: ${pair[*]} (median $(printf '%s\n' "${pair[@]}" | median))"
    say "  bytes ours: from Glance $(printf '%s\n' "${obd[@]}" | median), to Glance $(printf '%s\n' "${obu[@]}" | median);" \
        "sequential: from $(printf '%s\n' "${sbd[@]}" | median), to $(printf '%s\n' "${sbu[@]}" | median)"
    say "  bytes ours / allocated: in $(echo "scale=3; $(printf '%s\n' "${obd[@]}" | median) / $alloc" | bc)," \
        "out $(echo "scale=3; $(printf '%s\n' "${obu[@]}" | median) / $alloc" | bc)"
    say "  load after: $(uptime)"
    bos bsrc image delete "$snap"
}

if [[ $PARTS == *a* ]]; then
    GLANCE=$(bos bsrc endpoint list --service image --interface public -f value -c URL 2>/dev/null | head -1 || true)
    if [ -z "$GLANCE" ]; then
        token src
        GLANCE=$(curl -sS -H 'Content-Type: application/json' --data @"$WORK/auth-src.json" "$AUTH_URL/auth/tokens" |
                 jq -r '.token.catalog[] | select(.type=="image") | .endpoints[] | select(.interface=="public") | .url' | head -1)
    fi
    GLANCE=${GLANCE%/}
    note "glance $GLANCE"
    MIB=${FLUID_BENCH_IMAGE_MIB:-2048}
    blocks=$(python3 "$HERE/mkimage.py" "$WORK/disk.raw" "$MIB" 40 8)
    qemu-img convert -O qcow2 "$WORK/disk.raw" "$WORK/disk.qcow2"
    say "disk: $MIB MiB, $blocks MiB of random data in 1 MiB runs (seed 8)"
    scenario qcow2 "$WORK/disk.qcow2" qcow2 qcow2 ""
    if [ "${FLUID_BENCH_CONVERT:-1}" = 1 ]; then
        scenario raw2qcow2 "$WORK/disk.raw" raw qcow2 1
    fi
    rm -f "$WORK/disk.raw" "$WORK/disk.qcow2"
fi

# ---- part B -------------------------------------------------------------------------------
# utime+stime and cutime+cstime of PID in seconds: "self children"
cpu_of() { awk -v t="$ticks" '{sub(/^.*\) /, ""); printf "%.2f %.2f\n", ($12+$13)/t, ($14+$15)/t}' "/proc/$1/stat"; }

# epoch seconds of the conduit's last log record with msg $1 (and state $2)
phase_ts() {
    { grep -F "\"msg\":\"$1\"" "$WORK/conduit.log" || true; } |
        { if [ -n "${2:-}" ]; then grep -F "\"state\":\"$2\"" || true; else cat; fi; } | tail -1 |
        jq -r '.ts | (sub("\\.[0-9]+Z$"; "Z") | fromdateiso8601) + (capture("\\.(?<ms>[0-9]+)Z$").ms | tonumber / 1000)'
}

if [[ $PARTS == *b* ]]; then
    PUB="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIChDy7K0MJJ4z6mFyJ0oVEMNNnkQuOGfpxfF5Z/V/nzU bench-relocate"
    bos bsrc network create $P-net >/dev/null
    bos bsrc subnet create --network $P-net --subnet-range 10.201.0.0/24 $P-subnet >/dev/null
    bos bsrc security group create $P-web >/dev/null
    bos bsrc security group rule create --protocol tcp --dst-port 80 $P-web >/dev/null
    bos bsrc keypair create --public-key <(echo "$PUB") $P-key >/dev/null
    note "creating $NSRV fake-driver servers"
    bos bsrc server create --image devcloud-tiny --flavor m1.tiny --network $P-net \
        --security-group $P-web --key-name $P-key --property role=bench \
        --min "$NSRV" --max "$NSRV" $P-s >/dev/null
    for i in $(seq 1 300); do
        st=$(bos bsrc server list -f value -c Status | sort | uniq -c | tr -s ' ' | tr '\n' ',')
        case $st in *BUILD*) sleep 3 ;; *) break ;; esac
    done
    mapfile -t SRV < <(bos bsrc server list --status ACTIVE -f value -c Name | sort)
    [ "${#SRV[@]}" -eq "$NSRV" ] || { echo "bench-relocate: ${#SRV[@]} of $NSRV servers ACTIVE ($st)" >&2; exit 1; }
    RID=$P-b-$(date +%s)
    H=$(printf '%s\n' "$RID" | sha256sum | cut -c1-8)   # fc_plan_target_name's suffix
    # the fake driver never uploads a snapshot: fill each one beforehand, as the tests do
    head -c 1048576 /dev/urandom >"$WORK/snap.raw"
    note "prefilling $NSRV snapshots for $RID"
    for s in "${SRV[@]}"; do
        "$BIN/fluid-openstack" snapshot --cloud bsrc --server "$s" --name "$s-fc$H-snap" \
            --relocation-id "$RID" --test-upload "$WORK/snap.raw" --timeout 300 >>"$LOG" 2>&1 &
        while [ "$(jobs -rp | wc -l)" -ge 4 ]; do wait -n; done
    done
    wait
    # the stack: a private RabbitMQ node, the conduit, two brokers
    "$RMQ" start "$WORK/run" >/dev/null
    # shellcheck disable=SC1091
    . "$WORK/run/rabbitmq.env"
    export FLUID_AMQP_URL
    printf 'clouds_file = %s\n' "$CFG" >"$WORK/conduit.conf"
    rm -rf "$WORK/state"
    "$BIN/fluid-conduit" --config "$WORK/conduit.conf" --state-dir "$WORK/state" \
        --max-parallel "$NSRV" >"$WORK/conduit.log" 2>&1 &
    CONDUIT=$!; STACK_PIDS+=("$CONDUIT")
    BROKERS=()
    for b in 1 2; do
        "$BIN/fluid-broker" --site default --broker-id "$P-$b" --capacity $(( (NSRV + 1) / 2 )) \
            --heartbeat-s 2 >"$WORK/broker-$b.log" 2>&1 &
        BROKERS+=($!); STACK_PIDS+=($!)
    done
    timeout 60 "$BIN/fluidctl" brokers --wait 10 >>"$LOG" 2>&1 || true
    sleep 2
    read -r c0 _ < <(cpu_of "$CONDUIT")
    b0=0; m0=0
    for p in "${BROKERS[@]}"; do read -r s ch < <(cpu_of "$p"); b0=$(echo "$b0 + $s" | bc); m0=$(echo "$m0 + $ch" | bc); done
    args=()
    for s in "${SRV[@]}"; do args+=(--server "$s"); done
    say ""
    say "B: $NSRV fake-driver servers, one request; conduit --max-parallel $NSRV, 2 brokers of capacity $(( (NSRV + 1) / 2 ))"
    say "  load before: $(uptime)"
    t0=$(now)
    rc=0
    "$BIN/fluidctl" relocate --from bsrc --to bdst "${args[@]}" --relocation-id "$RID" \
        --watch --timeout 3000 >"$WORK/relocate.out" 2>"$WORK/relocate.err" || rc=$?
    t1=$(now)
    read -r c1 _ < <(cpu_of "$CONDUIT")
    b1=0; m1=0
    for p in "${BROKERS[@]}"; do read -r s ch < <(cpu_of "$p"); b1=$(echo "$b1 + $s" | bc); m1=$(echo "$m1 + $ch" | bc); done
    "$BIN/fluidctl" status --json "$RID" >"$WORK/status.json" 2>>"$LOG" || true
    ntasks=$(jq '[.tasks[]?] | length' "$WORK/status.json" 2>/dev/null || echo 0)
    state=$(jq -r '.state // "?"' "$WORK/status.json" 2>/dev/null || echo "?")
    ndone=$(jq '[.tasks[]? | select(.state == "done")] | length' "$WORK/status.json" 2>/dev/null || echo 0)
    wall=$(printf %.1f "$(echo "$t1 - $t0" | bc)")
    say "  fluidctl relocate --watch: exit $rc, relocation $state, $ndone of $ntasks tasks done, wall $wall s"
    if [ "$ntasks" -gt 0 ]; then
        say "  CPU s: conduit $(echo "$c1 - $c0" | bc), brokers $(echo "$b1 - $b0" | bc), their migrators $(echo "$m1 - $m0" | bc)"
        say "  CPU ms per task: conduit $(echo "scale=1; ($c1 - $c0) * 1000 / $ntasks" | bc)," \
            "broker $(echo "scale=1; ($b1 - $b0) * 1000 / $ntasks" | bc)," \
            "migrators $(echo "scale=1; ($m1 - $m0) * 1000 / $ntasks" | bc)"
    fi
    # phases from the conduit's log: planning (inspect + plan), the tasks, the overview
    tp0=$(phase_ts "planning a relocation"); tp1=$(phase_ts "relocation planned")
    td=$(phase_ts "relocation state" "done"); tov=$(phase_ts "overview")
    if [ -n "$tp0" ] && [ -n "$tp1" ] && [ -n "$td" ] && [ -n "$tov" ]; then
        say "  phases s: planning $(echo "$tp1 - $tp0" | bc), tasks $(echo "$td - $tp1" | bc)," \
            "overview $(echo "$tov - $td" | bc)"
    fi
    say "  load after: $(uptime)"
    "$BIN/fluidctl" cleanup --timeout 900 "$RID" >>"$LOG" 2>&1 || note "fluidctl cleanup failed (the sweep follows)"
    for p in "${STACK_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${STACK_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    STACK_PIDS=()
fi
say ""
say "results in $RESULTS, log $LOG"
