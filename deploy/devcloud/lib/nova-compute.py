# SPDX-License-Identifier: Apache-2.0
# devcloud: starts nova-compute from python3-nova (Debian's nova-compute package would pull
# in libvirt and QEMU, which the fake driver does not need). Run with /usr/bin/python3.
import sys

from nova.cmd import compute

sys.exit(compute.main())
