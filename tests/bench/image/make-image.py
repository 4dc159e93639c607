#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Makes the benchmark's raw image: SIZE bytes, about 40% random data in scattered 1 MiB
# runs (chosen with a fixed seed), the rest holes. usage: make-image.py PATH [SIZE_MIB]
import os
import random
import sys

path = sys.argv[1]
mib = int(sys.argv[2]) if len(sys.argv) > 2 else 4096
rng = random.Random(4)
runs = sorted(rng.sample(range(mib), mib * 40 // 100))
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.ftruncate(fd, mib << 20)
for r in runs:
    os.pwrite(fd, os.urandom(1 << 20), r << 20)
os.close(fd)
