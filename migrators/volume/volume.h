/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-volume internals: the copy job, its chunk pipeline (reader -> [compressors] ->
 * senders), the destinations (local file/device, stream, SFTP, helper) and the helper
 * protocol spoken with `fluid-volume serve` (docs/volume.md has the reference). */
#ifndef FLUID_VOLUME_H
#define FLUID_VOLUME_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "fluid/migrator.h"
#include "fluid/rc.h"
#include "fluid/sha256.h"
#include "fluid/ssh.h"
#include "fluid/stream.h"

#define VOL_CHUNK (1u << 20)      /* unit of delta, resume and the pipeline */
#define VOL_BLOCK (64u << 10)     /* zero detection inside a chunk: 16 blocks */
#define VOL_BLOCKS (VOL_CHUNK / VOL_BLOCK)
#define VOL_MAX_STREAMS 16
#define VOL_PART_SUFFIX ".fluid-part"
#define VOL_RECORD_SUFFIX ".fluid-hashes"
#define VOL_HELPER_DEFAULT "/usr/libexec/fluidcloud/fluid-volume"

/* ---- helper protocol: 24-byte headers as in fluid/stream.h {u32 type, aux; u64 off, len} */
#define VOL_PROTO_MAGIC "FCVOL003" /* 002: FINISH/DONE carry the chunk-tree digest;
                                      003: OPEN "rehash", OK "record" (the hash record) */
enum vol_msg {
    VM_OPEN = 0x10,   /* len = JSON bytes that follow */
    VM_DATA = 0x11,   /* off, len raw bytes follow */
    VM_ZDATA = 0x12,  /* off, aux = raw length, len = zstd bytes that follow */
    VM_ZERO = 0x13,   /* off, len: make the range zeros (punch a hole) */
    VM_FINISH = 0x14, /* off = final size, aux = VF_* flags, len = 32: expected SHA-256 */
    VM_SYNC = 0x15,   /* extra stream done: fsync, answer VM_OK */
    VM_OK = 0x20,     /* len = JSON bytes that follow */
    VM_HASHES = 0x21, /* len = 32 * chunks: SHA-256 of each chunk of the existing base */
    VM_DONE = 0x22,   /* off = size, len = 32: SHA-256 of the destination as written */
    VM_PROGRESS = 0x23, /* off = bytes hashed so far: the helper is busy, not gone */
    VM_ERR = 0x2f,    /* aux = fc_rc, len = message bytes */
};
enum { VF_VERIFY = 1, VF_COMMIT = 2 };

/* Chunk hashes of a volume whose size may be unknown: slots never move once reserved, so a
 * worker may fill slot i while the chunker reserves later ones. */
struct vhashes {
    uint8_t **blk;
};

/* ---- a chunk in flight ---- */
struct chunk {
    uint64_t off;
    uint32_t len;        /* <= VOL_CHUNK (the last chunk may be shorter) */
    uint16_t zmask;      /* bit i: block i is all zeros */
    bool zero;           /* the whole chunk is zeros */
    bool rewrite;        /* a base exists: write every byte (zeros too) */
    bool need_hash;      /* compare with the base in a worker (keeps the reader going) */
    uint8_t *data;       /* VOL_CHUNK bytes, NULL for a zero chunk */
    uint8_t *z;          /* compressed (helper mode with --compress) */
    size_t zlen;
    struct chunk *next;
};

struct queue {
    pthread_mutex_t mu;
    pthread_cond_t cv_put, cv_get;
    struct chunk *head, *tail;
    unsigned n, cap;
    bool closed;
};
void queue_init(struct queue *q, unsigned cap);
void queue_destroy(struct queue *q);
/* false when the queue was closed (the job failed) or, while full, on cancel. */
bool queue_put(struct queue *q, struct chunk *c);
/* NULL when closed and empty. */
struct chunk *queue_get(struct queue *q);
void queue_close(struct queue *q);
void chunk_free(struct chunk *c);

enum vol_kind { VK_LOCAL, VK_STREAM, VK_SSH };
enum vol_mode { MODE_LOCAL, MODE_STREAM, MODE_SFTP, MODE_HELPER };

struct vol_end {          /* SRC or DEST as given */
    enum vol_kind kind;
    const char *arg;
    struct fc_ssh_url url;
};

struct job;

/* --delta / --resume from a local regular file: the source's chunk hashes, computed by a
 * thread started before the destination is even connected. */
struct prehash {
    pthread_t t;
    bool started;
    int fd;
    uint64_t size, n;
    uint8_t *h;          /* 32 * n */
    fc_rc rc;
    char msg[1024];
    volatile sig_atomic_t stop;
};

/* A destination: open() once (on stream 0: creates the partial file, returns base hashes),
 * attach() per extra stream, put() per chunk (from that stream's thread), finish() once. */
struct dest_ops {
    const char *mode;
    fc_rc (*open)(struct job *j);
    fc_rc (*attach)(struct job *j, int stream);
    fc_rc (*put)(struct job *j, int stream, struct chunk *c);
    fc_rc (*stream_done)(struct job *j, int stream);
    /* size and source digest; with j->verify, checks the destination (-> *dest_sha) */
    fc_rc (*finish)(struct job *j, uint64_t size, const uint8_t *sha, uint8_t dest_sha[32]);
    void (*close)(struct job *j, bool ok);
    /* From the main thread while senders may be blocked in SSH I/O: cut the connections
     * so that they return (cancel, or the job failed elsewhere). May be NULL. */
    void (*abort)(struct job *j);
    /* When open() left j->base_pending: receives the base chunk hashes (the far side
     * computes them while the source is hashed here). May be NULL. */
    fc_rc (*base_wait)(struct job *j);
};

struct job {
    struct fc_migrator *m;
    struct vol_end src, dst;
    /* options */
    const char *identity, *known_hosts, *remote_helper;
    int zlevel;          /* 0 = no compression */
    bool sparse, verify, resume, delta, progress, framed;
    bool rehash;         /* --rehash: read the destination even when its hash record holds */
    bool no_record;      /* --no-hash-record: write no hash record (and remove an old one) */
    char hash_record[160]; /* the base's hash record: "used", why it was not, or "" */
    unsigned streams;
    unsigned timeout_s;  /* SSH: connect and any blocking call (0 = library default) */
    enum vol_mode mode;
    const struct dest_ops *ops;
    void *dstate;        /* the destination's state */
    /* base (existing partial or destination) chunk hashes for --resume / --delta */
    uint8_t *base_hash;  /* 32 * base_chunks */
    uint64_t base_chunks;
    bool base_pending;   /* the base hashes are still coming (ops->base_wait) */
    struct prehash pre;
    bool src_prehashed;  /* src_hash was filled from pre: the workers need not hash */
    struct vhashes src_hash; /* chunk hashes of the source, for the tree digest */
    bool fresh;          /* destination starts empty: zero chunks need no write */
    /* pipeline */
    struct queue q_in, q_out;  /* chunker -> compressors -> senders */
    struct queue *q_send;      /* what senders read: q_out with compression, else q_in */
    atomic_bool failed;
    pthread_mutex_t err_mu;
    fc_rc err_rc;
    char err_msg[1024];
    /* source facts */
    uint64_t size;       /* virtual size, FC_SIZE_UNKNOWN until the end */
    /* counters */
    _Atomic uint64_t done, data_bytes, zero_bytes, unchanged_bytes, wire_bytes, chunks_sent;
    _Atomic uint64_t written_to;  /* highest end offset written (one stream: contiguous) */
    struct fc_ssh *ssh0;  /* the first session (opened by dest_helper_probe) */
    struct fc_ssh_chan *chan0; /* the helper it started, when there is one */
    char helper_path[256];
};

/* Records the calling thread's error as the job's (first one wins), closes the queues. */
void job_fail(struct job *j, fc_rc rc);
/* SSH options for an ssh:// end. */
void job_ssh_opts(struct job *j, const struct fc_ssh_url *u, struct fc_ssh_opts *o);
/* Compares a source chunk against the base: true when the base already holds it. */
bool job_chunk_unchanged(struct job *j, const struct chunk *c, const uint8_t hash[32]);

/* Opens a local or stdin source, checking that it reads (copy.c). */
fc_rc vol_open_source(struct job *j, int *fd);
/* Starts hashing the source when it is a local regular file and --delta or --resume is
 * given; prehash_end() stops (if still running) and releases it (copy.c). */
void prehash_start(struct job *j);
void prehash_end(struct job *j);
/* Runs the copy (copy.c). */
fc_rc vol_copy(struct job *j);
/* `fluid-volume serve` on stdin/stdout (serve.c). */
fc_rc vol_serve(void);
/* The helper's write-behind queue (wq.c): fn(arg, kind, buf, off, len) runs on its own
 * thread, in queue order. wq_next waits for a free slot and gives its 4 KiB-aligned
 * VOL_CHUNK buffer to fill; wq_push queues that slot. wq_next and wq_drain (which waits
 * for all queued writes) return the first error of fn, with its message. */
struct wq;
typedef fc_rc (*wq_fn)(void *arg, int kind, const uint8_t *buf, uint64_t off, uint64_t len);
fc_rc wq_start(struct wq **out, unsigned nbuf, wq_fn fn, void *arg);
fc_rc wq_next(struct wq *q, uint8_t **buf);
void wq_push(struct wq *q, int kind, uint64_t off, uint64_t len);
fc_rc wq_drain(struct wq *q);
void wq_free(struct wq *q); /* waits for what is queued; accepts NULL */

/* Destinations. */
extern const struct dest_ops dest_local_ops, dest_stream_ops, dest_sftp_ops, dest_helper_ops;
/* Tries the helper on the destination host (NULL: not there, caller falls back to SFTP). */
fc_rc dest_helper_probe(struct job *j, bool *usable);

/* Source reading from SFTP (ssh:// SRC) into the pipeline sink (src_sftp.c). */
fc_rc src_sftp_run(struct job *j, struct fc_sink *sink);

/* Local helpers (util.c). */
/* The volume digest that --verify compares (docs/volume.md "What is verified"): SHA-256 of
 * the concatenated SHA-256 of each 1 MiB chunk in order (the last chunk may be shorter;
 * an empty volume: SHA-256 of nothing). Chunk hashes are what --delta and --resume compare,
 * so each side reads its volume once. */
void tree_digest(const uint8_t *hashes, uint64_t n, uint8_t out[32]);
/* [off, off+len) of fd is a hole (SEEK_DATA finds no data in it); false when unsure. */
bool range_is_hole(int fd, uint64_t off, uint64_t len);
/* SHA-256 of len zero bytes (the 1 MiB one is computed once). */
void chunk_hash_zero(size_t len, uint8_t out[32]);
/* SHA-256 of a chunk in memory; an all-zero chunk is recognised before hashing. */
void chunk_hash_buf(const uint8_t *buf, size_t len, uint8_t out[32]);
/* SHA-256 of [off, off+len) of fd: a hole (SEEK_DATA) is not read; bytes past EOF are
 * zeros. buf holds len bytes. */
fc_rc hash_chunk_fd(int fd, uint64_t off, size_t len, uint8_t *buf, uint8_t out[32]);
/* tick (may be NULL) is called from the calling thread, before each chunk it hashes, with the
 * offset reached; it must keep its own pace. */
typedef void (*vol_tick)(uint64_t done);
/* Chunk hashes of the first size bytes of fd into hashes (32 per chunk), except the chunks
 * whose known[i] is set (known may be NULL). With 32 chunks or more to hash, up to 4 threads
 * (one per core) hash them together (pread and SEEK_DATA only: fd's offset is not used). */
fc_rc hash_chunks_known(int fd, uint64_t size, uint8_t *hashes, const uint8_t *known,
                        const volatile sig_atomic_t *cancel, vol_tick tick);
/* The same into a new array (*out, malloc'd). */
fc_rc hash_chunks_fd(int fd, uint64_t size, uint8_t **out, uint64_t *nchunks,
                     const volatile sig_atomic_t *cancel, vol_tick tick);
fc_rc vhashes_reserve(struct vhashes *v, uint64_t i);
uint8_t *vhashes_slot(struct vhashes *v, uint64_t i);
void vhashes_digest(struct vhashes *v, uint64_t n, uint8_t out[32]);
void vhashes_free(struct vhashes *v);
const uint8_t *zero_chunk_hash(void);
void sha256_buf(const void *buf, size_t len, uint8_t out[32]);
void put_hdr(uint8_t h[24], uint32_t type, uint32_t aux, uint64_t off, uint64_t len);
char *part_name(const char *path);  /* malloc'd path + VOL_PART_SUFFIX */

/* The hash record, <path>.fluid-hashes (record.c; docs/volume.md "The hash record"). */
/* After a verified copy committed under path (fd open on it): records its n chunk hashes
 * with the file's device, inode, size, mtime and ctime (mode 0600, temporary name, rename). */
fc_rc record_save(const char *path, int fd, const uint8_t *hashes, uint64_t n);
/* Removes path's record (after the file it describes was moved or replaced). */
void record_drop(const char *path);
/* The chunk hashes recorded for the open regular file fd (known as path), when the record
 * is ours (owner, mode), well-formed and describes fd as it is now: *hashes (malloc'd,
 * 32 * *n) and *why = "used". Otherwise *hashes = NULL and *why says why the record was
 * not used, or is NULL when there is none. */
void record_load(const char *path, int fd, uint8_t **hashes, uint64_t *n, const char **why);

#endif
