#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""mkimage.py OUT SIZE_MIB PERCENT SEED: a sparse raw disk image of SIZE_MIB MiB in which
PERCENT % of the 1 MiB blocks, chosen by a seeded PRNG (the same on every run), hold random
bytes and the rest are holes (zeros). Prints the number of data blocks."""
import os
import random
import sys

out, size_mib, pct, seed = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
rng = random.Random(seed)
blocks = sorted(rng.sample(range(size_mib), round(size_mib * pct / 100)))
fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
try:
    os.ftruncate(fd, size_mib << 20)
    for b in blocks:
        os.pwrite(fd, rng.randbytes(1 << 20), b << 20)
finally:
    os.close(fd)
print(len(blocks))
