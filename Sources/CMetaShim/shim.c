#define _GNU_SOURCE
#include "CMetaShim.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <linux/fs.h>
#include <linux/falloc.h>
#include <unistd.h>

int metashim_o_direct(void) { return O_DIRECT; }
int metashim_o_cloexec(void) { return O_CLOEXEC; }

int metashim_open(const char *path, int flags, unsigned mode) {
    int fd;
    do { fd = open(path, flags, (mode_t)mode); } while (fd < 0 && errno == EINTR);
    return fd < 0 ? -errno : fd;
}

#define IOCTL_OR_ERRNO(call) do { if ((call) < 0) return -errno; return 0; } while (0)

int metashim_blkgetsize64(int fd, uint64_t *out) { IOCTL_OR_ERRNO(ioctl(fd, BLKGETSIZE64, out)); }
int metashim_blksszget(int fd, int *out) { IOCTL_OR_ERRNO(ioctl(fd, BLKSSZGET, out)); }
int metashim_blkpbszget(int fd, unsigned int *out) { IOCTL_OR_ERRNO(ioctl(fd, BLKPBSZGET, out)); }
int metashim_blkroget(int fd, int *out) { IOCTL_OR_ERRNO(ioctl(fd, BLKROGET, out)); }
int metashim_blkdiscard(int fd, uint64_t offset, uint64_t length) {
    uint64_t range[2] = { offset, length };
    IOCTL_OR_ERRNO(ioctl(fd, BLKDISCARD, range));
}
int metashim_blkzeroout(int fd, uint64_t offset, uint64_t length) {
    uint64_t range[2] = { offset, length };
    IOCTL_OR_ERRNO(ioctl(fd, BLKZEROOUT, range));
}
int metashim_blkflsbuf(int fd) { IOCTL_OR_ERRNO(ioctl(fd, BLKFLSBUF, 0)); }
int metashim_punch_hole(int fd, uint64_t offset, uint64_t length) {
    IOCTL_OR_ERRNO(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset, (off_t)length));
}
int metashim_zero_range(int fd, uint64_t offset, uint64_t length) {
    IOCTL_OR_ERRNO(fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, (off_t)offset, (off_t)length));
}
void *metashim_aligned_alloc(size_t alignment, size_t size) {
    void *p = NULL;
    if (posix_memalign(&p, alignment, size) != 0) return NULL;
    return p;
}
void metashim_free(void *p) { free(p); }
unsigned metashim_major(uint64_t dev) { return major((dev_t)dev); }
unsigned metashim_minor(uint64_t dev) { return minor((dev_t)dev); }
int metashim_malloc_thresholds(size_t mmap_threshold, size_t trim_threshold) {
#if defined(__GLIBC__)
    int ok = mallopt(M_MMAP_THRESHOLD, (int)mmap_threshold);
    ok &= mallopt(M_TRIM_THRESHOLD, (int)trim_threshold);
    return ok ? 0 : -EINVAL;
#else
    (void)mmap_threshold; (void)trim_threshold;
    return -ENOSYS;
#endif
}
int metashim_set_thread_name(const char *name) {
    return -pthread_setname_np(pthread_self(), name);
}
