/* SPDX-License-Identifier: Apache-2.0 */
/* VMDK sparse extent constants shared by the reader and the writer (VMware's "Virtual Disk
 * Format 5.0" is the reference; QEMU's block/vmdk.c reads what these describe). All
 * integers are little-endian; offsets and sizes are in 512-byte sectors. */
#ifndef FLUID_IMAGE_VMDK_H
#define FLUID_IMAGE_VMDK_H

#define VMDK_MAGIC "KDMV"
#define VMDK_FLAG_NL_DETECT 1u
#define VMDK_FLAG_RGD 2u
#define VMDK_FLAG_ZERO_GRAIN 4u
#define VMDK_FLAG_COMPRESS (1u << 16)
#define VMDK_FLAG_MARKER (1u << 17)
#define VMDK_GD_AT_END 0xffffffffffffffffull
#define VMDK_MARKER_EOS 0u
#define VMDK_MARKER_GT 1u
#define VMDK_MARKER_GD 2u
#define VMDK_MARKER_FOOTER 3u

/* header field offsets */
#define VH_VERSION 4
#define VH_FLAGS 8
#define VH_CAPACITY 12
#define VH_GRAIN 20
#define VH_DESC_OFF 28
#define VH_DESC_SIZE 36
#define VH_GTES 44
#define VH_RGD 48
#define VH_GD 56
#define VH_OVERHEAD 64
#define VH_CHECK 73
#define VH_COMPRESS 77

#endif
