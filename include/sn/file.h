/*
 * Files through io_uring: every call queues the operation on the calling core's ring and
 * returns a future on that core that settles when it completes. Nothing blocks the loop
 * (buffered reads and writes that the page cache cannot serve at once are finished by the
 * kernel's workers).
 *
 * Buffers: the memory passed to sn_file_read / sn_file_write / sn_file_fstat belongs to the
 * caller and must stay valid and untouched until the future settles. Paths are copied.
 * Errors: the future fails with the negative errno of the operation (-ENOENT, -EACCES,
 * -EBADF, -EISDIR, ...), -ENOMEM, or -ECANCELED when the reactor stops first.
 * Full submission queue: an operation (or the next piece of a long read or write) that finds
 * the core's io_uring refusing more requests waits for the loop's next submit and is queued
 * then; it is never dropped (-EBUSY only if it cannot even wait, for lack of memory).
 * All functions but sn_file_openat2_cached (synchronous, any thread): any reactor core (off a
 * core they abort, see include/sn/future.h).
 */
#ifndef SN_FILE_H
#define SN_FILE_H

#include <sn/common.h>

SN_BEGIN_DECLS

struct sn_future;

/* Offset meaning "the file's current position" (and advance it), e.g. for pipes. */
#define SN_FILE_POS UINT64_MAX

/* What sn_file_fstat reports. */
struct sn_file_stat {
    uint64_t size; /* bytes */
    uint64_t ino;
    uint32_t mode; /* type and permission bits, as st_mode */
    uint32_t nlink;
    int64_t mtime_sec; /* last modification */
    uint32_t mtime_nsec;
    uint32_t blksize; /* preferred I/O size */
};

/* openat(AT_FDCWD, path, flags | O_CLOEXEC, mode); the future's value is the fd. */
SN_API SN_MUST_USE struct sn_future *sn_file_open(const char *path, int flags, unsigned mode);

/*
 * openat2(dirfd, path, {flags | O_CLOEXEC, mode, resolve}): as sn_file_open, but relative to
 * dirfd (AT_FDCWD: the current directory) and with openat2's RESOLVE_* flags from
 * <linux/openat2.h> (e.g. RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS to stay under dirfd). The
 * value is the fd. Errors as openat2(2): -EXDEV when the path would leave dirfd under
 * RESOLVE_BENEATH, -ELOOP for a refused symlink, -EINVAL for bad flags (or a kernel without
 * openat2 in io_uring, before 5.6).
 */
SN_API SN_MUST_USE struct sn_future *sn_file_openat2(int dirfd, const char *path, int flags,
                                                     unsigned mode, uint64_t resolve);

/*
 * The inline fast path before sn_file_openat2: openat2(dirfd, path, {flags | O_CLOEXEC, 0,
 * resolve | RESOLVE_CACHED}) done at once on the calling thread, which succeeds only when the
 * lookup needs no I/O (every component in the kernel's dentry cache), so it never waits for
 * the disk. Returns the fd (the caller owns it), or -EAGAIN when the kernel cannot finish
 * the lookup from its caches without blocking: a component not cached or needing
 * revalidation, flags with O_CREAT, O_TRUNC or O_TMPFILE, on some kernels ".." under
 * RESOLVE_BENEATH or a symlink to follow, and every call on a kernel without RESOLVE_CACHED
 * (before 5.12; probed once per process).
 * On -EAGAIN, open with sn_file_openat2 instead. Other errors as openat2(2): -ENOENT, -EXDEV
 * (leaving dirfd under RESOLVE_BENEATH), -ELOOP (a refused symlink), -EACCES, -EINVAL, ...
 * A FIFO opened without O_NONBLOCK still waits for its other end. Any thread (no reactor needed).
 */
SN_API int sn_file_openat2_cached(int dirfd, const char *path, int flags, uint64_t resolve);

/*
 * Reads up to len bytes at `offset` into buf, going on after short reads until len bytes or
 * the end of the file; the value is the byte count (less than len only at the end).
 */
SN_API SN_MUST_USE struct sn_future *sn_file_read(int fd, void *buf, size_t len, uint64_t offset);

/* Writes all of buf[0..len) at `offset` (going on after short writes); the value is len. */
SN_API SN_MUST_USE struct sn_future *sn_file_write(int fd, const void *buf, size_t len,
                                                   uint64_t offset);

/* Fills *st (statx on the fd); the value is 0. */
SN_API SN_MUST_USE struct sn_future *sn_file_fstat(int fd, struct sn_file_stat *st);

/* fsync(fd); the value is 0. */
SN_API SN_MUST_USE struct sn_future *sn_file_fsync(int fd);

/* Closes fd; the value is 0. The fd must have no operation in flight. */
SN_API SN_MUST_USE struct sn_future *sn_file_close(int fd);

/*
 * renameat(AT_FDCWD, from, AT_FDCWD, to): atomically replaces `to` (the last step of writing
 * a file crash-safely: write a temporary, fsync it, rename it, fsync the directory). The
 * value is 0. Errors as rename(2): -ENOENT, -EXDEV across file systems, -EISDIR, ...; -EINVAL
 * on a kernel without IORING_OP_RENAMEAT (before 5.11).
 */
SN_API SN_MUST_USE struct sn_future *sn_file_rename(const char *from, const char *to);

/*
 * unlinkat(AT_FDCWD, path, 0): removes a name that is not a directory; the value is 0.
 * Errors as unlink(2) (-ENOENT, -EISDIR, ...); -EINVAL before Linux 5.11.
 */
SN_API SN_MUST_USE struct sn_future *sn_file_unlink(const char *path);

SN_END_DECLS

#endif
