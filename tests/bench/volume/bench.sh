#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Benchmark: fluid-volume (SFTP mode, helper mode) against scp, `ssh host 'cat > f'` and
# rsync --sparse --inplace over loopback, alternating, in one run. Reports medians of wall
# time and of CPU seconds of both ends (client: the tool's process tree; server: the private
# sshd's session processes, read from the listener's reaped-children times), and ratios.
#   bench.sh BIN_DIR SOURCE_DIR WORK_DIR [ROUNDS]
# Images: sparse.img 4 GiB (40% random data in scattered 1 MiB runs, 60% zeros),
# dense.img 2 GiB random; then a 1% change (41 chunks) for the re-sync runs (fv-helper-pre:
# --delta onto what fluid-volume's own verified pre-copy left, hash record and all; the
# others onto a plain copy, which every tool must read); tiny.img (1 MiB)
# measures the fixed cost of a run (connection, authentication, starting the helper through
# the remote user's shell) next to `ssh host true`.
# BENCH_SPARSE_MIB / BENCH_DENSE_MIB override the sizes (for a quick check of the script);
# BENCH_TOOLS="fv-helper scp ..." runs only those tools. BENCH_HASHCOST=path of
# bench_volume_hashcost (the bench-volume target sets it): each round also measures, on one
# thread, reading and SHA-256 of the sparse image's data chunks (what each side of a --delta
# must do), so that the delta's CPU floor is known.
set -euo pipefail
bin=${1:?BIN_DIR}; src=${2:?SOURCE_DIR}; work=${3:?WORK_DIR}; rounds=${4:-3}
vol=$bin/fluid-volume
mkdir -p "$work"
work=$(cd "$work" && pwd)
"$src/tests/fixtures/sshd.sh" start "$work/run" >/dev/null
trap '"$src/tests/fixtures/sshd.sh" stop "$work/run" >/dev/null; rm -rf "$work/dst"' EXIT
. "$work/run/sshd.env"
cfg=$SSHD_SSH_CONFIG
url=ssh://$SSHD_USER@$SSHD_HOST:$SSHD_PORT
mkdir -p "$work/dst"
hz=$(getconf CLK_TCK)
sparse_mib=${BENCH_SPARSE_MIB:-4096}
dense_mib=${BENCH_DENSE_MIB:-2048}

make_images() {
    if [[ ! -f $work/sparse.img ]]; then
        python3 - "$work" "$sparse_mib" "$dense_mib" <<'PY'
import os, random, sys
w = sys.argv[1]
random.seed(42)
size = int(sys.argv[2]) << 20
n = size >> 20
with open(w + '/sparse.img', 'wb') as f:
    f.truncate(size)
    for i in sorted(random.sample(range(n), int(n * 0.4))):
        f.seek(i << 20)
        f.write(os.urandom(1 << 20))
with open(w + '/dense.img', 'wb') as f:
    for i in range(int(sys.argv[3])):
        f.write(os.urandom(1 << 20))
PY
        cp --sparse=always "$work/sparse.img" "$work/sparse-v2.img"
        head -c 1048576 /dev/urandom >"$work/tiny.img"
        python3 - "$work" "$sparse_mib" <<'PY'
import os, random, sys
w = sys.argv[1]
random.seed(7)
n = int(sys.argv[2])
with open(w + '/sparse-v2.img', 'r+b') as f:
    for i in random.sample(range(n), n // 100):      # 1% of the chunks
        f.seek((i << 20) + random.randrange(0, (1 << 20) - 4096))
        f.write(os.urandom(4096))
PY
    fi
}

srv_ticks() { awk '{print $16 + $17}' "/proc/$SSHD_PID/stat"; }

# run NAME CMD...: prints "NAME wall client_cpu server_cpu"
run() {
    local name=$1; shift
    sync
    local s0 t0 t1 s1 out
    s0=$(srv_ticks)
    out=$(/usr/bin/time -o "$work/time.txt" -f "%e %U %S" "$@" 2>"$work/last.err" >/dev/null &&
          tail -1 "$work/time.txt") || { echo "FAILED: $name" >&2; cat "$work/last.err" >&2; exit 1; }
    sleep 0.3 # let sshd reap the session
    s1=$(srv_ticks)
    read -r wall u s <<<"$out"
    echo "$name $wall $(echo "$u + $s" | bc) $(echo "scale=2; ($s1 - $s0) / $hz" | bc)"
}

fv=(nice "$vol" copy --identity "$SSHD_IDENTITY" --known-hosts "$SSHD_KNOWN_HOSTS")

full_copy() {   # tool image
    local t=$1 img=$work/$2.img d=$work/dst/$1-$2.img
    rm -f "$d" "$d.fluid-part"
    case $t in
    fv-sftp) run "$t/$2" "${fv[@]}" --remote-helper none "$img" "$url$d" ;;
    fv-helper) run "$t/$2" "${fv[@]}" --remote-helper "$vol" "$img" "$url$d" ;;
    fv-helper-zstd) run "$t/$2" "${fv[@]}" --remote-helper "$vol" --compress zstd:1 "$img" "$url$d" ;;
    scp) run "$t/$2" nice scp -F "$cfg" "$img" "fluid-test:$d" ;;
    ssh-cat) run "$t/$2" nice sh -c 'ssh -F "$1" fluid-test "cat > $2" < "$3"' - "$cfg" "$d" "$img" ;;
    rsync) run "$t/$2" nice rsync --sparse --inplace -e "ssh -F $cfg" "$img" "fluid-test:$d" ;;
    esac
    rm -f "$d"
}

resync() {      # tool: destination holds sparse.img, source is sparse-v2.img
    local t=$1 d=$work/dst/resync-$1.img
    rm -f "$d" "$d.fluid-part" "$d.fluid-hashes"
    if [[ $t == fv-helper-pre ]]; then
        # the pre-copy / final-sync pattern: the destination is what fluid-volume's verified
        # pre-copy left (with its hash record), untimed; the re-sync is timed
        "${fv[@]}" --remote-helper "$vol" "$work/sparse.img" "$url$d" >/dev/null 2>"$work/pre.err" ||
            { echo "FAILED: pre-copy for $t" >&2; cat "$work/pre.err" >&2; exit 1; }
        [[ -f $d.fluid-hashes ]] || { echo "no hash record after the pre-copy" >&2; exit 1; }
    else
        # a destination fluid-volume did not write (no record): it is read and hashed
        cp --sparse=always "$work/sparse.img" "$d"
    fi
    case $t in
    fv-helper-pre) run "$t/resync" "${fv[@]}" --delta --remote-helper "$vol" "$work/sparse-v2.img" "$url$d" ;;
    fv-sftp) run "$t/resync" "${fv[@]}" --delta --remote-helper none "$work/sparse-v2.img" "$url$d" ;;
    fv-helper) run "$t/resync" "${fv[@]}" --delta --remote-helper "$vol" "$work/sparse-v2.img" "$url$d" ;;
    rsync) run "$t/resync" nice rsync --sparse --inplace -e "ssh -F $cfg" "$work/sparse-v2.img" "fluid-test:$d" ;;
    esac
    cmp "$work/sparse-v2.img" "$d" || { echo "RESYNC RESULT DIFFERS: $t" >&2; exit 1; }
    rm -f "$d" "$d.fluid-hashes"
}

setup_cost() {  # the fixed cost of one run
    local d=$work/dst/tiny.img
    rm -f "$d"
    run fv-helper/tiny "${fv[@]}" --remote-helper "$vol" "$work/tiny.img" "$url$d"
    run ssh-true/tiny nice ssh -F "$cfg" fluid-test true
    rm -f "$d"
}

make_images
echo "# $(date -u +%FT%TZ) $(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg), rounds $rounds"
trap '"$src/tests/fixtures/sshd.sh" stop "$work/run" >/dev/null; rm -rf "$work/dst"
      echo "# end $(date -u +%FT%TZ), load $(cut -d" " -f1-3 /proc/loadavg)"' EXIT
only=" ${BENCH_TOOLS:-fv-sftp fv-helper scp ssh-cat rsync fv-helper-zstd} "
want() { [[ $only == *" $1 "* ]]; }
tools=()
for t in fv-sftp fv-helper scp ssh-cat rsync fv-helper-zstd; do want "$t" && tools+=("$t"); done
for ((r = 0; r < rounds; r++)); do
    n=${#tools[@]}
    for ((i = 0; i < n; i++)); do     # rotate the order each round
        t=${tools[$(((i + r) % n))]}
        full_copy "$t" sparse
    done
    for t in fv-helper fv-sftp scp ssh-cat; do want "$t" && full_copy "$t" dense; done
    for t in fv-helper-pre fv-helper fv-sftp rsync; do
        [[ $t == fv-helper-pre ]] && ! want fv-helper && continue
        [[ $t != fv-helper-pre ]] && ! want "$t" && continue
        resync "$t"
    done
    want fv-helper && setup_cost
    if [[ -n ${BENCH_HASHCOST:-} ]]; then
        sync
        nice "$BENCH_HASHCOST" "$work/sparse-v2.img" sparse
    fi
    echo "# round $r done, load $(cut -d' ' -f1-3 /proc/loadavg)"
done
