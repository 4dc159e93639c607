#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# fluid-image against qemu-img convert on the same machine in the same run: a raw image of
# SIZE MiB (default 4096) with about 40% random data in scattered 1 MiB runs and 60% holes,
# converted by both tools alternately (the order flips every repetition), REPS times
# (default 3). Prints a markdown table: median wall time of each, the ratio, median CPU time
# (user + system: less sensitive than wall time to a busy machine), peak RSS. Rows marked
# "to a pipe" run fluid-image with DST - into `cat > file` (planned streaming output, or the
# spool where the format cannot be planned), timed to the end of cat, next to qemu-img
# converting to a file (it cannot write these formats to a pipe). The load average is
# printed before and after: the machine is shared, so the numbers are indicative. For those
# rows, "pipe floor" is `cat OUTPUT | cat > file` on fluid-image's own output: what moving
# that many bytes through a pipe into a file costs here, whoever produces them.
# usage: bench.sh FLUID_IMAGE WORKDIR [REPS] [SIZE_MIB]
# BENCH_ONLY=regex runs only the conversions whose name matches (e.g. 'raw→qcow2$').
set -euo pipefail
fluid=$1
work=$2
reps=${3:-3}
mib=${4:-4096}
here=$(cd "$(dirname "$0")" && pwd)
qemu=$(command -v qemu-img) || { echo "qemu-img is needed" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time is needed (Debian package time)" >&2; exit 1; }
mkdir -p "$work"
src=$work/bench-$mib.raw
if [ ! -f "$src" ]; then
    echo "making $src" >&2
    python3 "$here/make-image.py" "$src" "$mib"
fi
[ -f "$work/bench-$mib.qcow2" ] || "$qemu" convert -O qcow2 "$src" "$work/bench-$mib.qcow2"
q=$work/bench-$mib.qcow2
out=$work/bench-out

# name|args after "convert" without SRC DST|SRC[|pipe: fluid-image writes to a pipe]
cases=(
    "raw→qcow2|-O qcow2|$src"
    "qcow2→raw|-O raw|$q"
    "raw→vmdk (monolithicSparse)|-O vmdk|$src"
    "raw→vmdk (streamOptimized)|-O vmdk -o subformat=streamOptimized|$src"
    "qcow2→vpc|-O vpc|$q"
    "raw→qcow2 -c (compressed)|-c -O qcow2|$src"
    "raw→qcow2 to a pipe|-O qcow2|$src|pipe"
    "qcow2→qcow2 to a pipe|-O qcow2|$q|pipe"
    "raw→vmdk (monolithicSparse) to a pipe|-O vmdk|$src|pipe"
    "qcow2→vpc to a pipe|-O vpc|$q|pipe"
    "raw→qcow2 -c to a pipe (spooled)|-c -O qcow2|$src|pipe"
)

median() { sort -n | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# Before each run: sync, remove the last output, then write and remove a 2 GiB scratch file
# (never flushed: removing it discards its dirty pages), so that every run starts with the
# same 2 GiB of page-cache memory just freed, whichever tool ran before. (This VM's balloon
# reports free memory to the host about two seconds after it is freed, and the host then
# drops it: a run that writes into such memory pays a host page fault per page, 2-8x the
# copy cost, measured. The last output alone is not enough: fluid-image writes much of its
# output with O_DIRECT, which leaves little page cache to free, and the next run, the peer
# tool's half the time, would find cold memory.)
warm() {
    sync
    rm -f "$out"
    dd if=/dev/zero of="$work/warm.tmp" bs=2M count=1024 status=none
    rm -f "$work/warm.tmp"
}
run() { # tool args... -> "wall rss_kb cpu"
    warm
    /usr/bin/time -f "%e %M %U %S" -o "$work/time.out" nice -n 10 "$@" >/dev/null 2>"$work/err.out" ||
        { echo "failed: $*" >&2; cat "$work/err.out" >&2; exit 1; }
    awk '{printf "%s %s %.2f\n", $1, $2, $3 + $4}' "$work/time.out"
}

# tool args... writing to stdout, into cat > $out -> "wall rss_kb cpu" (wall to cat's end,
# RSS and CPU of the tool)
run_pipe() {
    warm
    local t0 t1
    t0=$(date +%s.%N)
    /usr/bin/time -f "%e %M %U %S" -o "$work/time.out" nice -n 10 "$@" 2>"$work/err.out" |
        nice -n 10 cat >"$out" || { echo "failed: $*" >&2; cat "$work/err.out" >&2; exit 1; }
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" '{printf "%.2f %s %.2f\n", b - a, $2, $3 + $4}' "$work/time.out"
}

# the pipe floor: fluid-image's last output through cat | cat > file -> "wall"
run_floor() {
    sync
    rm -f "$work/floor.out"
    local t0 t1
    t0=$(date +%s.%N)
    nice -n 10 cat "$out" | nice -n 10 cat >"$work/floor.out"
    t1=$(date +%s.%N)
    rm -f "$work/floor.out"
    awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f\n", b - a}'
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| conversion | fluid-image (s) | qemu-img (s) | ratio | fluid CPU (s) | qemu CPU (s) | fluid RSS (MiB) | qemu RSS (MiB) | pipe floor (s) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for c in "${cases[@]}"; do
    IFS='|' read -r name args in mode <<<"$c"
    if [ -n "${BENCH_ONLY:-}" ] && ! [[ $name =~ $BENCH_ONLY ]]; then
        continue
    fi
    : >"$work/f.t"
    : >"$work/q.t"
    : >"$work/p.t"
    # the input's pages in the page cache before either tool's first run: the first run of
    # a row would otherwise pay for them alone
    cat "$in" >/dev/null
    l0=$(cut -d' ' -f1 /proc/loadavg)
    # shellcheck disable=SC2086
    fluid_run() {
        if [ "${mode:-}" = pipe ]; then
            run_pipe "$fluid" convert $args "$in" -
            run_floor >>"$work/p.t"
        else
            run "$fluid" convert $args "$in" "$out"
        fi
    }
    for ((i = 0; i < reps; i++)); do
        # shellcheck disable=SC2086
        if ((i % 2 == 0)); then
            fluid_run >>"$work/f.t"
            run "$qemu" convert $args "$in" "$out" >>"$work/q.t"
        else
            run "$qemu" convert $args "$in" "$out" >>"$work/q.t"
            fluid_run >>"$work/f.t"
        fi
    done
    fm=$(cut -d' ' -f1 "$work/f.t" | median)
    qm=$(cut -d' ' -f1 "$work/q.t" | median)
    fr=$(cut -d' ' -f2 "$work/f.t" | sort -n | tail -1)
    qr=$(cut -d' ' -f2 "$work/q.t" | sort -n | tail -1)
    fc=$(cut -d' ' -f3 "$work/f.t" | median)
    qc=$(cut -d' ' -f3 "$work/q.t" | median)
    pm=$(if [ -s "$work/p.t" ]; then median <"$work/p.t"; else echo -; fi)
    fall=$(cut -d' ' -f1 "$work/f.t" | tr '\n' ' ')
    qall=$(cut -d' ' -f1 "$work/q.t" | tr '\n' ' ')
    fcall=$(cut -d' ' -f3 "$work/f.t" | tr '\n' ' ')
    qcall=$(cut -d' ' -f3 "$work/q.t" | tr '\n' ' ')
    echo "runs $name: fluid [ $fall] qemu [ $qall] cpu: fluid [ $fcall] qemu [ $qcall]" \
        "load $l0 -> $(cut -d' ' -f1 /proc/loadavg)" >&2
    awk -v n="$name" -v f="$fm" -v q="$qm" -v fr="$fr" -v qr="$qr" -v fc="$fc" -v qc="$qc" \
        -v p="$pm" 'BEGIN {
        printf "| %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.0f | %.0f | %s |\n", n, f, q,
               (q > 0 ? f / q : 0), fc, qc, fr / 1024, qr / 1024, p }'
done
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
rm -f "$out" "$work/time.out" "$work/err.out" "$work/f.t" "$work/q.t" "$work/p.t" "$work/warm.tmp"
