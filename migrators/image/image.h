/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-image internals: one reader and one writer per disk format behind a small driver
 * table (qemu's BlockDriver idea, state sized by the driver), the input and output files
 * they work on, and the compression worker pool. A reader pushes the image's content
 * through a struct fc_sink (proto/include/fluid/stream.h) in offset order; a writer is such
 * a sink. Everything a reader parses is untrusted: errors name the field and file offset. */
#ifndef FLUID_IMAGE_H
#define FLUID_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fluid/rc.h"
#include "fluid/stream.h"

/* Largest virtual size accepted from any header (1 EiB); larger is "absurd". */
#define IMG_MAX_VSIZE (1ull << 60)

/* I/O buffers are page aligned: the kernel copies to and from misaligned user memory at a
 * fraction of the speed. Freed with free(). */
void *img_alloc_io(size_t size);

/* ---- byte order ---- */
static inline uint16_t img_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t img_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t img_be64(const uint8_t *p)
{
    return (uint64_t)img_be32(p) << 32 | img_be32(p + 4);
}
static inline uint32_t img_le32(const uint8_t *p)
{
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}
static inline uint64_t img_le64(const uint8_t *p)
{
    return (uint64_t)img_le32(p + 4) << 32 | img_le32(p);
}
static inline void img_put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void img_put_be32(uint8_t *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}
static inline void img_put_be64(uint8_t *p, uint64_t v)
{
    img_put_be32(p, (uint32_t)(v >> 32));
    img_put_be32(p + 4, (uint32_t)v);
}
static inline void img_put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++, v >>= 8)
        p[i] = (uint8_t)v;
}
static inline void img_put_le64(uint8_t *p, uint64_t v)
{
    img_put_le32(p, (uint32_t)v);
    img_put_le32(p + 4, (uint32_t)(v >> 32));
}

/* ---- input ---- */
#define IMG_HEAD_MAX 4096

/* An input image: a regular file read with pread, or a pipe read once in order. */
struct img_in {
    int fd;
    const char *name;      /* for messages */
    bool seekable;         /* regular file or block device: pread works */
    uint64_t size;         /* file size (seekable only) */
    uint8_t head[IMG_HEAD_MAX]; /* the first bytes, already read (probing) */
    size_t head_len;
    uint64_t pos;          /* sequential reads: bytes consumed so far */
    uint64_t bytes_read;   /* statistics */
    const char *backing;   /* the backing file the user vouches for (--backing), or NULL */
};

/* Opens path ("-" = stdin) and reads its head. */
fc_rc img_in_open(struct img_in *in, const char *path);
/* The same for an open descriptor (owned from now on: img_in_close closes it). */
fc_rc img_in_from_fd(struct img_in *in, int fd, const char *name);
void img_in_close(struct img_in *in);
/* Reads exactly len bytes at off (seekable inputs); a short read is an error naming what
 * was read, the offset and the file size. */
fc_rc img_in_pread(struct img_in *in, void *buf, size_t len, uint64_t off, const char *what);
/* Like img_in_pread, but bytes past the end of the file read as zeros: *got says how many
 * came from the file (at least one, or an error naming what and off). */
fc_rc img_in_pread_upto(struct img_in *in, void *buf, size_t len, uint64_t off,
                        const char *what, size_t *got);
/* Sequential read of exactly len bytes (head first, then the fd); what names the field. */
fc_rc img_in_read(struct img_in *in, void *buf, size_t len, const char *what);
/* Sequential read of up to len bytes; *got < len only at end of input. */
fc_rc img_in_read_some(struct img_in *in, void *buf, size_t len, size_t *got);
/* Copies a sequential input (head included) into a sparse temporary file in tmpdir and
 * makes in read from it (seekable). Zero blocks become holes. */
fc_rc img_in_spool(struct img_in *in, const char *tmpdir);

/* ---- output ---- */
/* An output file, written mostly in order through a large buffer; a full buffer is written
 * by a background thread while the next one fills (write-behind). */
struct img_out {
    int fd;
    bool seekable;         /* regular file: pwrite anywhere, gaps stay holes */
    uint64_t pos;          /* next append offset (end of what was appended) */
    uint64_t bytes_written;
    uint8_t *buf;          /* append buffer: bytes [buf_off, buf_off + buf_len) */
    size_t buf_len, buf_cap;
    uint64_t buf_off;
    uint64_t bytes_direct; /* of bytes_written, those written with O_DIRECT */
    uint64_t hi;           /* end of the furthest positioned write (img_out_pwrite) */
    bool no_prealloc;      /* fallocate refused: long runs are not allocated ahead */
    struct img_wb *wb;     /* the write-behind thread, NULL if it could not start */
    struct fc_sink *sink;  /* img_out_init_sink: bytes go to sink->write, not to fd */
};
fc_rc img_out_init(struct img_out *o, int fd);
/* An output whose bytes, in order, are passed to sink->write (never seekable): the planned
 * output carried by the framed stream. begin() and end() on sink are the caller's. */
fc_rc img_out_init_sink(struct img_out *o, struct fc_sink *sink);
void img_out_fini(struct img_out *o);
/* Appends len bytes at off >= pos (a gap is a hole on a file, zeros on a pipe). */
fc_rc img_out_append(struct img_out *o, uint64_t off, const void *buf, size_t len);
/* Like img_out_append for large runs: written from buf at once, not copied (a pipe first
 * waits for what was queued before). */
fc_rc img_out_append_direct(struct img_out *o, uint64_t off, const void *buf, size_t len);
/* Writes at any offset (seekable outputs only); flushes the append buffer first. */
fc_rc img_out_pwrite(struct img_out *o, uint64_t off, const void *buf, size_t len);
fc_rc img_out_flush(struct img_out *o);
/* Sizes a file before it is written (no effect on a pipe). */
fc_rc img_out_presize(struct img_out *o, uint64_t size);
/* Sets the file's final size (seekable), or pads a pipe with zeros up to size. */
fc_rc img_out_finish(struct img_out *o, uint64_t size);

/* ---- drivers ---- */
struct img_info {
    const char *format;     /* driver name */
    char subformat[32];     /* "1.1", "monolithicSparse", "dynamic", ... or "" */
    uint64_t vsize;         /* virtual size in bytes */
    uint64_t cluster;       /* cluster/grain/block size, 0 if none */
    const char *compression; /* "zlib", "deflate" or NULL */
    char backing[1024];     /* backing file name, "" if none */
};

struct img_reader {
    const char *name;
    size_t state_size;
    /* true when this input needs pread (a pipe is then spooled to a temporary file);
     * decided from the head. NULL = reads in order. */
    bool (*random_access)(const struct img_in *in);
    /* true when head (the first len bytes of the image) is this format */
    bool (*probe)(const uint8_t *head, size_t len);
    /* Parses and checks the headers; may keep in (it outlives the state). */
    fc_rc (*open)(void *st, struct img_in *in);
    void (*info)(void *st, struct img_info *info);
    /* Drives sink: begin, write/zero covering the virtual size in order, end. */
    fc_rc (*pump)(void *st, struct fc_sink *sink, const volatile sig_atomic_t *cancel);
    void (*close)(void *st);
};

/* qcow2 compression levels: isa-l's 1..3, or zlib's 1..9 without isa-l */
#ifdef FLUID_HAVE_ISAL
#define IMG_Q2_MAX_LEVEL 3
#else
#define IMG_Q2_MAX_LEVEL 9
#endif

struct img_wopts {
    const char *dst_name;   /* the destination's file name (VMDK descriptors name it) */
    bool compress;          /* -c */
    int threads;            /* compression threads, 0 = number of CPUs */
};

/* ---- planned output (plan.c) ---- */
/* Which units (clusters, grains, blocks) of the virtual disk hold non-zero data: 1 bit per
 * unit. A writer that gets one lays its whole output out before the first byte and writes
 * it strictly in offset order (no seek, no temporary file). */
struct img_map {
    uint64_t unit;          /* bytes per unit */
    uint64_t n;             /* units: the virtual size rounded up to whole units */
    uint64_t count;         /* units holding data */
    uint64_t *bits;
};
#define IMG_MAP_NONE UINT64_MAX
/* Largest map accepted (bytes of bits): 32 MiB = 256 Mi units (16 TiB at 64 KiB). */
#define IMG_MAP_MAX_BYTES (32ull << 20)
static inline bool img_map_test(const struct img_map *m, uint64_t i)
{
    return i < m->n && (m->bits[i / 64] >> (i % 64) & 1);
}
/* The first unit >= from that holds data, or IMG_MAP_NONE. */
uint64_t img_map_next(const struct img_map *m, uint64_t from);
void img_map_free(struct img_map *m);
/* Planned writers call this for each unit they store, in order: FC_OK when unit is the next
 * one the map holds (*next then moves on), else an error saying the input changed between
 * the mapping pass and the copy (what names the unit). With unit = IMG_MAP_NONE: the end,
 * FC_OK when no mapped unit was left out. *next starts at img_map_next(m, 0). */
fc_rc img_map_expect(const struct img_map *m, uint64_t *next, uint64_t unit, const char *what);

struct img_writer {
    const char *name;
    size_t state_size;
    /* true when it writes back into the file (a pipe then gets a spooled file); NULL =
     * always streams. Asked after the -o options are applied. */
    bool (*needs_seek)(void *st);
    /* Planned output for a writer that needs seeks: the map unit in bytes for a virtual
     * size, or 0 when these options cannot be planned (compressed qcow2 clusters have sizes
     * known only once compressed). Asked after open(). NULL = never planned. */
    uint64_t (*plan_unit)(void *st, uint64_t vsize);
    /* Lays the output out from map (kept until close) before begin(): the writer then
     * writes every byte in offset order, metadata first; *size = the output's size. A data
     * pass that disagrees with the map fails (the input changed). */
    fc_rc (*plan)(void *st, const struct img_map *map, uint64_t vsize, uint64_t *size);
    bool needs_size;        /* needs the virtual size at begin() */
    bool can_compress;
    const char *const *keys; /* -o keys accepted, NULL-terminated */
    fc_rc (*option)(void *st, const char *key, const char *value);
    /* Prepares to write to out; returns the sink the core drives. */
    fc_rc (*open)(void *st, struct img_out *out, const struct img_wopts *wo,
                  struct fc_sink **sink);
    void (*close)(void *st);
};

extern const struct img_reader img_raw_reader, img_qcow2_reader, img_vpc_reader,
    img_vmdk_reader;
extern const struct img_writer img_raw_writer, img_qcow2_writer, img_vpc_writer,
    img_vmdk_writer;
/* NULL-terminated tables, in probing order (raw last: it matches anything). */
extern const struct img_reader *const img_readers[];
extern const struct img_writer *const img_writers[];
const struct img_reader *img_find_reader(const char *name);
const struct img_writer *img_find_writer(const char *name);
/* "raw, qcow2, vmdk, vpc" */
const char *img_supported_list(void);
/* The reader for an input by its head (a VHD footer at the end of an otherwise raw file is
 * vpc fixed; anything unknown is raw). */
const struct img_reader *img_probe(const struct img_in *in);
/* Name of a format we know by its magic but do not handle (vhdx, vdi, qed, ...), or NULL. */
const char *img_foreign_probe(const uint8_t *head, size_t len);

/* Appends buf at off to a raw output, leaving 64 KiB zero blocks out (holes or zeros). */
fc_rc img_raw_put(struct img_out *o, uint64_t off, const void *buf, size_t len);
/* needs_seek for writers that always seek back; random_access for random readers. */
bool img_needs_seek_always(void *st);
bool img_random_always(const struct img_in *in);

/* ---- helpers for readers ---- */
/* Coalesces a reader's output into runs and checks the order: one per pump. */
struct img_emit {
    struct fc_sink *sink;
    uint64_t pos;           /* next offset */
    uint64_t zero_pending;  /* zero run not yet passed on */
    const volatile sig_atomic_t *cancel;
};
void img_emit_init(struct img_emit *e, struct fc_sink *sink, const volatile sig_atomic_t *c);
fc_rc img_emit_data(struct img_emit *e, const void *buf, size_t len);
fc_rc img_emit_zero(struct img_emit *e, uint64_t len);
fc_rc img_emit_flush(struct img_emit *e);
/* Size of the buffers readers read data into and of the pipeline's buffers. */
#define IMG_IO_BUF (2u << 20)
/* The buffer to read the next data into (at most IMG_IO_BUF bytes, and at most the size of
 * own): one lent by the pipeline when e's sink is one (data emitted from it then reaches the
 * writer without a copy), else own. Valid until the next call: call it before each read. */
uint8_t *img_emit_buf(struct img_emit *e, uint8_t *own);

/* Runs rd->pump(rst) on a reader thread and makes its sink calls, in order, to next on the
 * calling thread (pipeline.c): reading and writing overlap. */
fc_rc img_pump_threaded(const struct img_reader *rd, void *rst, struct fc_sink *next,
                        const volatile sig_atomic_t *cancel);
/* A free buffer of the pipeline whose reader side is sk, lent to the reader until its next
 * call (the previous one is given back); NULL if sk is not a pipeline's. */
uint8_t *img_pl_lend(struct fc_sink *sk);

/* ---- compression pool ---- */
/* Compresses fixed-size units on worker threads and hands results back in submission
 * order. kind: 0 = raw deflate (qcow2), 1 = zlib (vmdk streamOptimized). */
struct img_pool;
struct img_job {
    uint64_t tag;           /* caller's (offset of the unit) */
    uint8_t *in;            /* unit_size bytes, owned by the pool */
    size_t in_len;
    uint8_t *out;           /* compressed bytes */
    size_t out_len;         /* 0: did not shrink below the limit, store in */
};
fc_rc img_pool_new(struct img_pool **p, int kind, int level, int threads, size_t unit_size,
                   size_t limit);
/* A free job's input buffer to fill (blocks while all are in flight); returns NULL only
 * when a result must be collected first (img_pool_next). */
struct img_job *img_pool_get(struct img_pool *p);
void img_pool_submit(struct img_pool *p, struct img_job *j);
/* The oldest submitted job once compressed, or NULL if none is pending. Valid until the
 * next call; the caller writes it out. */
struct img_job *img_pool_next(struct img_pool *p);
bool img_pool_full(struct img_pool *p);
void img_pool_free(struct img_pool *p);

/* Deflate helpers for readers (one decompressor per reader). */
struct libdeflate_decompressor;
/* Inflates exactly want bytes (raw deflate if !zlib); errors name what and off. */
fc_rc img_inflate(struct libdeflate_decompressor *d, bool zlib, const void *in, size_t in_len,
                  void *out, size_t want, const char *what, uint64_t off);

#endif
