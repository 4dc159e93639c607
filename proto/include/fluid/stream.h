/* SPDX-License-Identifier: Apache-2.0 */
/* The data stream that joins migrators (docs/stream.md is the reference).
 *
 * A producer drives a sink with begin(), then write() and zero() covering the virtual size
 * in order, then end() with the SHA-256 of the whole content (zero runs included). Between
 * processes the same four calls travel as frames over a pipe, so zero runs cross it without
 * being sent as bytes. A migrator also reads and writes plain bytes, for other tools.
 *
 * Frames (all integers big-endian), after an 8-byte preamble "FCSTRM01":
 *   struct { u32 type; u32 aux; u64 offset; u64 length; } then a payload for some types
 *   BEGIN 1: offset 0, length = virtual size, aux = bytes of JSON metadata that follow (<=64 KiB)
 *   DATA  2: offset, length (1..FC_STREAM_MAX_DATA), then length bytes
 *   ZERO  3: offset, length (>0), no payload
 *   END   4: offset = virtual size, length 32, aux = 1 if a digest follows (32 bytes), else 0
 *   ABORT 5: aux = fc_rc of the producer's failure, length = message bytes (<=4096) that follow
 * DATA and ZERO frames are contiguous: each starts where the previous one ended. */
#ifndef FLUID_STREAM_H
#define FLUID_STREAM_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fluid/rc.h"
#include "fluid/sha256.h"

#define FC_STREAM_MAGIC "FCSTRM01"
#define FC_STREAM_MAGIC_LEN 8
#define FC_STREAM_HDR_LEN 24
#define FC_STREAM_MAX_DATA (16u << 20)
#define FC_STREAM_MAX_META (64u << 10)
#define FC_STREAM_MAX_ABORT 4096u
#define FC_SIZE_UNKNOWN UINT64_MAX

enum fc_frame_type {
    FC_FRAME_BEGIN = 1,
    FC_FRAME_DATA = 2,
    FC_FRAME_ZERO = 3,
    FC_FRAME_END = 4,
    FC_FRAME_ABORT = 5,
};

struct fc_stream_info {
    uint64_t size;   /* virtual size, or FC_SIZE_UNKNOWN for plain bytes from a pipe */
    char format[32]; /* format of the content when known ("raw" for a disk's bytes), else "" */
};

/* The four calls; a stage embeds struct fc_sink first and casts back. */
struct fc_sink {
    fc_rc (*begin)(struct fc_sink *s, const struct fc_stream_info *info);
    fc_rc (*write)(struct fc_sink *s, uint64_t off, const void *buf, size_t len);
    fc_rc (*zero)(struct fc_sink *s, uint64_t off, uint64_t len);
    /* sha256 is NULL when no digest is known. With an unknown size, off is the final size. */
    fc_rc (*end)(struct fc_sink *s, uint64_t size, const uint8_t *sha256);
};

struct fc_stream_stats {
    uint64_t bytes_io;   /* bytes read from or written to the fd (frames included) */
    uint64_t data_bytes; /* content carried as bytes */
    uint64_t zero_bytes; /* content carried as zero runs */
};

/* ---- writing: a sink that puts frames or plain bytes on an fd ---- */
struct fc_stream_writer {
    struct fc_sink sink; /* first */
    int fd;
    bool framed;
    bool seekable;  /* plain mode on a regular file: zero runs become holes */
    uint64_t size;
    uint64_t pos;
    struct fc_stream_stats stats;
    char *zbuf;     /* plain mode on a pipe: zeros to write */
};
/* framed: write frames; else plain bytes. The fd is not owned. */
void fc_stream_writer_init(struct fc_stream_writer *w, int fd, bool framed);
void fc_stream_writer_fini(struct fc_stream_writer *w);
/* Tells a downstream framed reader that the producer failed (best effort). */
void fc_stream_writer_abort(struct fc_stream_writer *w, fc_rc rc, const char *msg);

/* ---- reading: drives a sink from an fd holding frames or plain bytes ---- */
struct fc_stream_reader_opts {
    bool verify;          /* framed: recompute SHA-256 and compare with END (FC_E_CHECKSUM) */
    bool hash_plain;      /* plain: compute SHA-256 and pass it to end() */
    size_t zero_block;    /* plain: granularity of zero detection (0 = 64 KiB) */
    size_t buf_size;      /* plain: read size (0 = 1 MiB) */
    const volatile sig_atomic_t *cancel; /* checked between frames, may be NULL */
    /* called at most every progress_every bytes of content (0 = never) */
    void (*progress)(void *arg, const struct fc_stream_stats *st, uint64_t size);
    void *progress_arg;
    uint64_t progress_every;
};
/* Auto-detects frames by the preamble; anything else is plain bytes (a regular file or block
 * device gives the size; on a regular file holes are skipped with SEEK_DATA). Errors name
 * the frame and offset. FC_E_CANCELLED if *cancel became non-zero. A framed ABORT ends
 * with the producer's rc and message. */
fc_rc fc_stream_read(int fd, struct fc_sink *sink, const struct fc_stream_reader_opts *o,
                     struct fc_stream_stats *st);

/* Parses one 24-byte frame header (exposed for the fuzzer and tests). */
struct fc_frame {
    uint32_t type, aux;
    uint64_t offset, length;
};
void fc_frame_decode(const uint8_t hdr[FC_STREAM_HDR_LEN], struct fc_frame *f);
void fc_frame_encode(const struct fc_frame *f, uint8_t hdr[FC_STREAM_HDR_LEN]);

/* True when len bytes at buf are all zero (fast). */
bool fc_is_zero(const void *buf, size_t len);
/* Full write/read loops with EINTR handling; read returns bytes read (< len only at EOF).
 * A signal that interrupts them after fc_cancel_requested was set (migrator.h: SIGTERM and
 * SIGINT do both) ends them with FC_E_CANCELLED, so a blocked pipe does not delay a cancel. */
fc_rc fc_write_all(int fd, const void *buf, size_t len);
fc_rc fc_read_full(int fd, void *buf, size_t len, size_t *got);

#endif
