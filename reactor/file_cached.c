/*
 * sn_file_openat2_cached (include/sn/file.h): openat2 with RESOLVE_CACHED, synchronously.
 *
 * A kernel without RESOLVE_CACHED (before 5.12) answers EINVAL, which a caller could not tell
 * from bad flags, so support is probed once, on "/" (always in the dentry cache): EINVAL, or
 * ENOSYS/EPERM (no openat2, or a seccomp filter refusing it) mean "not available", and every
 * call then returns -EAGAIN at once, sending the caller to io_uring.
 */
#include <sn/file.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <sys/syscall.h>
#include <unistd.h>

enum { PROBE_UNKNOWN, PROBE_YES, PROBE_NO };

/* Written by whichever thread probes first; every prober finds the same answer. */
static int cached_support = PROBE_UNKNOWN;

static int openat2_now(int dirfd, const char *path, struct open_how *how)
{
    long fd;
    do
        fd = syscall(SYS_openat2, dirfd, path, how, sizeof *how);
    while (fd < 0 && errno == EINTR);
    return fd < 0 ? -errno : (int)fd;
}

static bool kernel_has_resolve_cached(void)
{
    int s = __atomic_load_n(&cached_support, __ATOMIC_RELAXED);
    if (s == PROBE_UNKNOWN) {
        struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_CACHED};
        int fd = openat2_now(AT_FDCWD, "/", &how);
        if (fd >= 0)
            close(fd);
        s = fd == -EINVAL || fd == -ENOSYS || fd == -EPERM ? PROBE_NO : PROBE_YES;
        __atomic_store_n(&cached_support, s, __ATOMIC_RELAXED);
    }
    return s == PROBE_YES;
}

int sn_file_openat2_cached(int dirfd, const char *path, int flags, uint64_t resolve)
{
    if (!path)
        return -EINVAL;
    if (!kernel_has_resolve_cached())
        return -EAGAIN;
    struct open_how how = {
        .flags = (uint64_t)(unsigned)(flags | O_CLOEXEC),
        .resolve = resolve | RESOLVE_CACHED,
    };
    return openat2_now(dirfd, path, &how);
}
