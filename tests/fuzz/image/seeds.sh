#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Seed corpus for the image fuzzers: small images made by qemu-img (no binaries in git).
# usage: seeds.sh DIR  ->  DIR/qcow2, DIR/vmdk, DIR/vpc
set -eu
d=$1
command -v qemu-img >/dev/null || { echo "qemu-img (qemu-utils) is needed" >&2; exit 1; }
mkdir -p "$d/qcow2" "$d/vmdk" "$d/vpc"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
qemu-img create -q -f raw "$t/s.raw" 300k
qemu-io -f raw -c "write -P 0xab 4k 60k" -c "write -P 0x11 128k 8k" -c "write -P 0 200k 4k" \
    "$t/s.raw" >/dev/null
qemu-img convert -O qcow2 -o cluster_size=4k "$t/s.raw" "$d/qcow2/v3.qcow2"
qemu-img convert -O qcow2 -o compat=0.10,cluster_size=4k "$t/s.raw" "$d/qcow2/v2.qcow2"
qemu-img convert -c -O qcow2 -o cluster_size=4k "$t/s.raw" "$d/qcow2/c.qcow2"
qemu-img convert -O vmdk "$t/s.raw" "$d/vmdk/sparse.vmdk"
qemu-img convert -O vmdk -o subformat=streamOptimized "$t/s.raw" "$d/vmdk/stream.vmdk"
qemu-img convert -O vpc "$t/s.raw" "$d/vpc/dyn.vhd"
qemu-img convert -O vpc -o subformat=fixed "$t/s.raw" "$d/vpc/fixed.vhd"
