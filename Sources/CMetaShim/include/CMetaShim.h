/* Small C shim for what Swift's Glibc import cannot reach on Linux:
 * O_DIRECT (needs _GNU_SOURCE), the block-device ioctls (_IOR macros),
 * fallocate hole punching, and aligned allocation. Every function returns
 * 0 (or a non-negative value) on success and -errno on failure. */
#ifndef CMETASHIM_H
#define CMETASHIM_H
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

/* The value of O_DIRECT on this platform. */
int metashim_o_direct(void);
/* The value of O_CLOEXEC on this platform. */
int metashim_o_cloexec(void);
/* open(2) that retries EINTR; returns the fd or -errno. */
int metashim_open(const char *path, int flags, unsigned mode);
/* BLKGETSIZE64: size of a block device in bytes. */
int metashim_blkgetsize64(int fd, uint64_t *out);
/* BLKSSZGET: logical sector size. */
int metashim_blksszget(int fd, int *out);
/* BLKPBSZGET: physical sector size. */
int metashim_blkpbszget(int fd, unsigned int *out);
/* BLKROGET: read-only flag. */
int metashim_blkroget(int fd, int *out);
/* BLKDISCARD over [offset, offset+length). */
int metashim_blkdiscard(int fd, uint64_t offset, uint64_t length);
/* BLKZEROOUT over [offset, offset+length). */
int metashim_blkzeroout(int fd, uint64_t offset, uint64_t length);
/* BLKFLSBUF: flush the buffer cache of a block device. */
int metashim_blkflsbuf(int fd);
/* fallocate(PUNCH_HOLE|KEEP_SIZE) on a regular file. */
int metashim_punch_hole(int fd, uint64_t offset, uint64_t length);
/* fallocate(ZERO_RANGE|KEEP_SIZE) on a regular file. */
int metashim_zero_range(int fd, uint64_t offset, uint64_t length);
/* posix_memalign; returns NULL on failure. Free with free(). */
void *metashim_aligned_alloc(size_t alignment, size_t size);
void metashim_free(void *p);
/* Major/minor of a dev_t. */
unsigned metashim_major(uint64_t dev);
unsigned metashim_minor(uint64_t dev);
/* mallopt(M_MMAP_THRESHOLD) and mallopt(M_TRIM_THRESHOLD) where glibc has them; 0 on success. */
int metashim_malloc_thresholds(size_t mmap_threshold, size_t trim_threshold);
/* Names the calling thread (at most 15 bytes are kept); 0 on success. */
int metashim_set_thread_name(const char *name);
#endif
