#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Medians and ratios from bench.sh output (lines "tool/image wall client_cpu server_cpu").
import statistics, sys
runs = {}
for line in sys.stdin:
    if line.startswith('#') or not line.strip():
        print(line.rstrip())
        continue
    name, wall, ccpu, scpu = line.split()
    runs.setdefault(name, []).append((float(wall), float(ccpu), float(scpu)))
med = {k: tuple(statistics.median(x[i] for x in v) for i in range(3)) for k, v in runs.items()}
print("| run | n | wall s (median) | client CPU s | server CPU s | total CPU s |")
print("|---|---|---|---|---|---|")
for k in sorted(med):
    w, c, s = med[k]
    print(f"| {k} | {len(runs[k])} | {w:.2f} | {c:.2f} | {s:.2f} | {c + s:.2f} |")
def ratio(a, b, label):
    if a in med and b in med:
        print(f"- {label}: wall {med[b][0] / med[a][0]:.2f}x, total CPU "
              f"{(med[b][1] + med[b][2]) / (med[a][1] + med[a][2]):.2f}x")
print()
print("Speed-up = peer time / fluid-volume time (>1: fluid-volume is faster):")
for img in ("sparse", "dense"):
    for fv in ("fv-helper", "fv-sftp", "fv-helper-zstd"):
        for peer in ("scp", "ssh-cat", "rsync"):
            ratio(f"{fv}/{img}", f"{peer}/{img}", f"{fv} vs {peer} ({img})")
for fv, full in (("fv-helper-pre", "fv-helper"), ("fv-helper", "fv-helper"),
                 ("fv-sftp", "fv-sftp")):
    what = f"{fv} --delta" + (" after its own pre-copy (hash record)" if fv != full else "")
    ratio(f"{fv}/resync", "rsync/resync", f"{what} vs rsync --inplace (1% change)")
    ratio(f"{fv}/resync", f"{full}/sparse", f"{what} vs its own full copy")
    ratio(f"{fv}/resync", "scp/sparse", f"{what} vs a full copy with scp")
ratio("fv-helper/tiny", "ssh-true/tiny", "fixed cost: fv-helper on 1 MiB vs ssh host true")
# The CPU floor of --delta with the whole-volume digest checked on both sides: each side reads
# and hashes every data chunk once (hashcost, one thread), plus the fixed cost of a session.
rs, tiny, full = "hashcost-read+sha/sparse", "fv-helper/tiny", "fv-helper/sparse"
if rs in med and tiny in med and full in med:
    floor = 2 * med[rs][1] + med[tiny][1] + med[tiny][2]
    fcpu = med[full][1] + med[full][2]
    print(f"- --delta CPU floor: 2 x {med[rs][1]:.2f} (read + SHA-256 of the data, per side) + "
          f"{med[tiny][1] + med[tiny][2]:.2f} (a session) = {floor:.2f} CPU-s; "
          f"full helper copy {fcpu:.2f} CPU-s: at most {fcpu / floor:.2f}x in CPU")
    if "fv-helper/resync" in med:
        d = med["fv-helper/resync"]
        print(f"- measured --delta: {d[1] + d[2]:.2f} CPU-s ({(d[1] + d[2]) / floor:.2f}x the floor)")
    if "fv-helper-pre/resync" in med:
        floor1 = med[rs][1] + med[tiny][1] + med[tiny][2]
        d = med["fv-helper-pre/resync"]
        print(f"- --delta after its own pre-copy (the destination's hashes from the record: only "
              f"the source is read and hashed): floor {floor1:.2f} CPU-s, at most "
              f"{fcpu / floor1:.2f}x in CPU; measured {d[1] + d[2]:.2f} CPU-s")
