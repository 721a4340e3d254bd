/*
 * File operations through io_uring, each a malloc'd record holding the op, the promise and
 * whatever the kernel reads after submission (the path copy, the statx buffer). Reads and
 * writes larger than one operation may move (or cut short by the kernel) go on from where
 * they stopped until done.
 *
 * Without an SQE (the SQ still full after submitting, see reactor/net_sqe.h) an operation,
 * or its next piece, waits for the loop's next submit and is submitted then; it fails with
 * -ECANCELED if the reactor starts stopping first, or -EBUSY when it cannot even wait.
 */
#include <sn/file.h>
#include <sn/future.h>
#include <sn/reactor.h>
#include <sn/sched.h>

#include "core/sched.h"
#include "reactor/io.h"
#include "reactor/net_sqe.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define RW_MAX (1u << 30) /* bytes per read/write op (the kernel caps one at ~2 GiB) */

enum { OP_OPEN, OP_OPENAT2, OP_READ, OP_WRITE, OP_STAT, OP_FSYNC, OP_CLOSE, OP_RENAME, OP_UNLINK };

struct file_op {
    struct sn__io_op op;
    struct sn_promise *promise;
    int kind;
    int fd;
    char *buf;
    size_t len, done;
    uint64_t offset;
    struct sn_file_stat *st;
    struct statx stx;
    struct open_how how; /* OP_OPENAT2; read by the kernel when the SQE is submitted */
    char *path2;         /* OP_RENAME: the new name, stored after `path` */
    char path[];
};

static bool submit(struct file_op *k);
static void submit_or_wait(struct file_op *k);

static void finish(struct file_op *k, int err, uint64_t value)
{
    if (err)
        sn_promise_fail(k->promise, err);
    else
        sn_promise_set(k->promise, value);
    free(k);
}

static void fill_stat(struct file_op *k)
{
    const struct statx *x = &k->stx;
    *k->st = (struct sn_file_stat){
        .size = x->stx_size,
        .ino = x->stx_ino,
        .mode = x->stx_mode,
        .nlink = x->stx_nlink,
        .mtime_sec = x->stx_mtime.tv_sec,
        .mtime_nsec = x->stx_mtime.tv_nsec,
        .blksize = x->stx_blksize,
    };
}

static void file_cb(struct sn__io_op *op, int res, uint32_t flags)
{
    (void)flags;
    struct file_op *k = (struct file_op *)op;
    if (res < 0) {
        finish(k, res, 0);
        return;
    }
    if (k->kind == OP_READ || k->kind == OP_WRITE) {
        k->done += (size_t)res;
        bool more = k->done < k->len && (res > 0 || k->kind == OP_WRITE);
        if (more && res == 0) {
            finish(k, -EIO, 0); /* a write that moves nothing would loop forever */
            return;
        }
        if (more) {
            if (sn_stopping())
                finish(k, -ECANCELED, 0);
            else
                submit_or_wait(k);
            return;
        }
        finish(k, 0, k->done);
        return;
    }
    if (k->kind == OP_STAT)
        fill_stat(k);
    finish(k, 0, k->kind == OP_OPEN || k->kind == OP_OPENAT2 ? (uint64_t)res : 0);
}

static bool submit(struct file_op *k)
{
    struct io_uring_sqe *sqe = sn__io_sqe();
    if (!sqe)
        return false;
    size_t left = k->len - k->done;
    unsigned n = left > RW_MAX ? RW_MAX : (unsigned)left;
    uint64_t off = k->offset == SN_FILE_POS ? (uint64_t)-1 : k->offset + k->done;
    switch (k->kind) {
    case OP_OPEN:
        io_uring_prep_openat(sqe, AT_FDCWD, k->path, (int)k->len | O_CLOEXEC, (mode_t)k->offset);
        break;
    case OP_OPENAT2: io_uring_prep_openat2(sqe, k->fd, k->path, &k->how); break;
    case OP_READ: io_uring_prep_read(sqe, k->fd, k->buf + k->done, n, off); break;
    case OP_WRITE: io_uring_prep_write(sqe, k->fd, k->buf + k->done, n, off); break;
    case OP_STAT:
        io_uring_prep_statx(sqe, k->fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &k->stx);
        break;
    case OP_FSYNC: io_uring_prep_fsync(sqe, k->fd, 0); break;
    case OP_RENAME: io_uring_prep_renameat(sqe, AT_FDCWD, k->path, AT_FDCWD, k->path2, 0); break;
    case OP_UNLINK: io_uring_prep_unlinkat(sqe, AT_FDCWD, k->path, 0); break;
    default: io_uring_prep_close(sqe, k->fd); break;
    }
    sn__io_op_init(&k->op, file_cb);
    sn__sqe_bind(sqe, &k->op);
    return true;
}

static void sqe_ready(void *arg, int err, uint64_t value)
{
    (void)value;
    struct file_op *k = arg;
    if (err)
        finish(k, err, 0); /* -ECANCELED: the reactor stops */
    else
        submit_or_wait(k);
}

/* Submits `k`, or (no SQE) tries again after the loop's next submit. */
static void submit_or_wait(struct file_op *k)
{
    if (submit(k))
        return;
    if (!sn__sqe_wait(sqe_ready, k))
        finish(k, sn_stopping() ? -ECANCELED : -EBUSY, 0);
}

/* Makes a record with a promise and stores its future in *f. NULL when no record was made:
 * *f is then a failed future (-ECANCELED, -ENOMEM). On a core only. */
static struct file_op *make_op(int kind, int fd, void *buf, size_t len, uint64_t offset,
                               const char *path, const char *path2, struct sn_future **f)
{
    *f = NULL;
    if (sn_stopping()) {
        *f = sn_failed(-ECANCELED);
        return NULL;
    }
    size_t plen = path ? strlen(path) + 1 : 0;
    size_t plen2 = path2 ? strlen(path2) + 1 : 0;
    struct file_op *k = calloc(1, sizeof *k + plen + plen2);
    if (!k) {
        *f = sn_failed(-ENOMEM);
        return NULL;
    }
    if (path2) {
        k->path2 = k->path + plen;
        memcpy(k->path2, path2, plen2);
    }
    k->kind = kind;
    k->fd = fd;
    k->buf = buf;
    k->len = len;
    k->offset = offset;
    if (path)
        memcpy(k->path, path, plen);
    if (kind == OP_STAT)
        k->st = buf;
    k->promise = sn_promise_new(f);
    return k;
}

/* Makes a record with a promise and submits it; returns its future. */
static struct sn_future *start(int kind, int fd, void *buf, size_t len, uint64_t offset,
                               const char *path)
{
    struct sn_future *f;
    struct file_op *k = make_op(kind, fd, buf, len, offset, path, NULL, &f);
    if (k)
        submit_or_wait(k);
    return f;
}

struct sn_future *sn_file_open(const char *path, int flags, unsigned mode)
{
    sn__sched_here(__func__);
    if (!path)
        return sn_failed(-EINVAL);
    return start(OP_OPEN, -1, NULL, (size_t)(unsigned)flags, mode, path);
}

struct sn_future *sn_file_openat2(int dirfd, const char *path, int flags, unsigned mode,
                                  uint64_t resolve)
{
    sn__sched_here(__func__);
    if (!path)
        return sn_failed(-EINVAL);
    struct sn_future *f = NULL;
    struct file_op *k = make_op(OP_OPENAT2, dirfd, NULL, 0, 0, path, NULL, &f);
    if (!k)
        return f;
    k->how = (struct open_how){
        .flags = (uint64_t)(unsigned)(flags | O_CLOEXEC), .mode = mode, .resolve = resolve};
    submit_or_wait(k);
    return f;
}

struct sn_future *sn_file_read(int fd, void *buf, size_t len, uint64_t offset)
{
    sn__sched_here(__func__);
    if (len == 0)
        return sn_ready(0);
    return start(OP_READ, fd, buf, len, offset, NULL);
}

struct sn_future *sn_file_write(int fd, const void *buf, size_t len, uint64_t offset)
{
    sn__sched_here(__func__);
    if (len == 0)
        return sn_ready(0);
    return start(OP_WRITE, fd, (void *)buf, len, offset, NULL);
}

struct sn_future *sn_file_fstat(int fd, struct sn_file_stat *st)
{
    sn__sched_here(__func__);
    if (!st)
        return sn_failed(-EINVAL);
    return start(OP_STAT, fd, st, 0, 0, NULL);
}

struct sn_future *sn_file_fsync(int fd)
{
    sn__sched_here(__func__);
    return start(OP_FSYNC, fd, NULL, 0, 0, NULL);
}

struct sn_future *sn_file_close(int fd)
{
    sn__sched_here(__func__);
    return start(OP_CLOSE, fd, NULL, 0, 0, NULL);
}

struct sn_future *sn_file_rename(const char *from, const char *to)
{
    sn__sched_here(__func__);
    if (!from || !to)
        return sn_failed(-EINVAL);
    struct sn_future *f;
    struct file_op *k = make_op(OP_RENAME, -1, NULL, 0, 0, from, to, &f);
    if (k)
        submit_or_wait(k);
    return f;
}

struct sn_future *sn_file_unlink(const char *path)
{
    sn__sched_here(__func__);
    if (!path)
        return sn_failed(-EINVAL);
    return start(OP_UNLINK, -1, NULL, 0, 0, path);
}
