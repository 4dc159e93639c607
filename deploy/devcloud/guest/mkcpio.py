# SPDX-License-Identifier: Apache-2.0
# guest-image helper: writes a "newc" cpio archive of a folder to stdout with fixed inode
# numbers, owners (0:0) and times, in sorted order, so the initramfs is the same on every
# build. Run with /usr/bin/python3: mkcpio.py DIR MTIME
import os
import stat
import sys


def main():
    top, mtime = sys.argv[1], int(sys.argv[2])
    out = sys.stdout.buffer
    paths = ["."]
    for root, dirs, files in os.walk(top):
        dirs.sort()
        rel = os.path.relpath(root, top)
        for n in sorted(dirs + files):
            paths.append(os.path.normpath(os.path.join(rel, n)))
    paths = sorted(set(paths))
    for ino, p in enumerate(paths + ["TRAILER!!!"], start=1):
        if p == "TRAILER!!!":
            mode, data, nlink = 0, b"", 1
        else:
            st = os.lstat(os.path.join(top, p))
            mode = st.st_mode
            if stat.S_ISLNK(mode):
                data = os.readlink(os.path.join(top, p)).encode()
            elif stat.S_ISREG(mode):
                with open(os.path.join(top, p), "rb") as f:
                    data = f.read()
            else:
                data = b""
            nlink = 2 if stat.S_ISDIR(mode) else 1
        name = p.encode() + b"\0"
        hdr = "070701" + "".join("%08x" % v for v in (
            ino if p != "TRAILER!!!" else 0, mode, 0, 0, nlink,
            mtime if p != "TRAILER!!!" else 0, len(data), 0, 0, 0, 0, len(name), 0))
        out.write(hdr.encode() + name)
        out.write(b"\0" * ((4 - (110 + len(name)) % 4) % 4))
        out.write(data)
        out.write(b"\0" * ((4 - len(data) % 4) % 4))
    out.flush()


if __name__ == "__main__":
    main()
