/* SPDX-License-Identifier: Apache-2.0 */
/* qcow2 on-disk constants shared by the reader and the writer (docs/interop/qcow2.txt in
 * QEMU's tree is the reference). */
#ifndef FLUID_IMAGE_QCOW2_H
#define FLUID_IMAGE_QCOW2_H

#define QCOW2_MAGIC "QFI\xfb"
#define QCOW2_HDR2_LEN 72u
#define QCOW2_HDR3_MIN 104u
#define QCOW2_HDR3_LEN 112u
#define QCOW2_MAX_L1 ((32u << 20) / 8) /* QEMU's limit: 32 MiB of L1 entries */

#define QCOW2_INCOMPAT_DIRTY 1u
#define QCOW2_INCOMPAT_CORRUPT 2u
#define QCOW2_INCOMPAT_DATAFILE 4u
#define QCOW2_INCOMPAT_COMPRESSION 8u
#define QCOW2_INCOMPAT_EXTL2 16u
#define QCOW2_INCOMPAT_KNOWN 31u

#define QCOW2_OFLAG_COPIED (1ull << 63)
#define QCOW2_OFLAG_COMPRESSED (1ull << 62)
#define QCOW2_OFLAG_ZERO 1ull
#define QCOW2_OFFSET_MASK 0x00fffffffffffe00ull
#define QCOW2_L1_RESERVED 0x7f000000000001ffull
#define QCOW2_L2_RESERVED 0x3f000000000001feull

#endif
