// SPDX-License-Identifier: Apache-2.0
// What --delta cannot avoid on each side: reading and SHA-256-hashing every data chunk of
// a volume (holes are found with SEEK_DATA and skipped, as fluid-volume does). One thread,
// 1 MiB chunks, libcrypto's SHA256 (SHA-NI where the CPU has it). Prints bench.sh lines
// "NAME wall cpu 0" for: pread + SHA-256 (what fluid-volume does per chunk), pread alone,
// SHA-256 alone of a buffer already in cache.
//   hashcost IMAGE LABEL
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* SEEK_DATA */
#endif
#include <fcntl.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (1u << 20)

static double
wall(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double
cpu(void)
{
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return (double)(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
           (double)(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

int
main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: hashcost IMAGE LABEL\n");
        return 2;
    }
    int fd = open(argv[1], O_RDONLY);
    struct stat st;
    uint8_t *buf = malloc(CHUNK);
    if (fd < 0 || fstat(fd, &st) != 0 || !buf) {
        perror(argv[1]);
        return 1;
    }
    static const char *const names[] = {"read+sha", "read", "sha"};
    unsigned long chunks = 0;
    for (int mode = 0; mode < 3; mode++) {
        uint8_t h[32], x = 0;
        double w0 = wall(), c0 = cpu();
        chunks = 0;
        for (off_t off = 0; off < st.st_size; off += CHUNK) {
            off_t d = lseek(fd, off, SEEK_DATA);
            if (d < 0 || d >= off + CHUNK)
                continue; /* a hole: never read */
            size_t len = (size_t)(st.st_size - off < CHUNK ? st.st_size - off : CHUNK);
            if (mode < 2 && pread(fd, buf, len, off) != (ssize_t)len) {
                perror("pread");
                return 1;
            }
            if (mode != 1)
                SHA256(buf, len, h);
            x ^= h[0] ^ buf[len / 2];
            chunks++;
        }
        printf("hashcost-%s/%s %.2f %.2f 0\n", names[mode], argv[2], wall() - w0, cpu() - c0);
        if (x == 0x5a && chunks == 1) /* keeps the work from being optimised away */
            fputc('\n', stderr);
    }
    printf("# hashcost %s: %lu data chunks of %lld\n", argv[2], chunks,
           (long long)((st.st_size + CHUNK - 1) / CHUNK));
    return 0;
}
