/*
 * Files through io_uring (include/sn/file.h) on a running reactor: a large file written and
 * read back byte-identical on each core, fstat, reads at and past the end, fsync, close, and
 * the errors of bad paths and fds, openat2 beneath a directory fd and its refusals, rename and
 * unlink. Each core runs a small script of steps: every step starts
 * one operation and its sn_done records the outcome and starts the next step; the test
 * thread checks the records after sn_run returned. Also: more operations at once than the
 * submission queue holds, and operations started while no SQE can be had.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "reactor/net_sqe.h"
#include "abort_util.h"
#include "reactor_util.h"

#define MAXSTEPS 32

struct script {
    char path[256], moved[264], gone[264];
    uint8_t *data, *back;
    size_t len;
    int fd, fd2;
    unsigned step;
    struct sn_result res[MAXSTEPS];
    struct sn_file_stat st;
    char small[128];
    struct sn_promise *done;
} SN_CACHE_ALIGNED;

static struct script S[2];
static char dir[64], link_path[96];
static int dir_fd = -1; /* O_PATH fd of dir, for the openat2 steps */

static void fill(uint8_t *p, size_t len, uint64_t seed)
{
    for (size_t i = 0; i < len; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = (uint8_t)(seed >> 56);
    }
}

enum {
    ST_OPEN,
    ST_WRITE,
    ST_FSYNC,
    ST_FSTAT,
    ST_READ,
    ST_READ_TAIL,
    ST_READ_EOF,
    ST_CLOSE,
    ST_OPEN_MISSING,
    ST_READ_BADFD,
    ST_OPEN_DIR_W,
    ST_CLOSE_BADFD,
    ST_FSTAT_BADFD,
    ST_OPENAT2,          /* "f<core>" beneath the directory's fd */
    ST_READ_AT2,         /* its first bytes */
    ST_CLOSE_AT2,
    ST_OPENAT2_ESCAPE,   /* "../" under RESOLVE_BENEATH: -EXDEV */
    ST_OPENAT2_SYMLINK,  /* a symlink under RESOLVE_NO_SYMLINKS: -ELOOP */
    ST_OPENAT2_BADFLAGS, /* an unknown RESOLVE_ bit: -EINVAL */
    ST_RENAME,           /* f<core> -> f<core>.moved */
    ST_OPEN_OLD_NAME,    /* f<core> is gone: -ENOENT */
    ST_RENAME_BACK,      /* f<core>.moved -> f<core> */
    ST_RENAME_MISSING,   /* -ENOENT */
    ST_CREATE_GONE,      /* f<core>.gone, made to be removed */
    ST_CLOSE_GONE,
    ST_UNLINK,
    ST_UNLINK_AGAIN,     /* -ENOENT */
    ST_END
};
_Static_assert(ST_END <= MAXSTEPS, "raise MAXSTEPS");

static void run_step(struct script *s);

static void step_done(void *arg, int err, uint64_t value)
{
    struct script *s = arg;
    s->res[s->step] = (struct sn_result){err, value};
    if (s->step == ST_OPEN && !err)
        s->fd = (int)value;
    if (s->step == ST_OPENAT2 && !err)
        s->fd2 = (int)value;
    s->step++;
    run_step(s);
}

static struct sn_future *op_for(struct script *s)
{
    switch (s->step) {
    case ST_OPEN: return sn_file_open(s->path, O_CREAT | O_RDWR | O_TRUNC, 0600);
    case ST_WRITE: return sn_file_write(s->fd, s->data, s->len, 0);
    case ST_FSYNC: return sn_file_fsync(s->fd);
    case ST_FSTAT: return sn_file_fstat(s->fd, &s->st);
    case ST_READ: return sn_file_read(s->fd, s->back, s->len, 0);
    case ST_READ_TAIL: return sn_file_read(s->fd, s->small, sizeof s->small, s->len - 10);
    case ST_READ_EOF: return sn_file_read(s->fd, s->small, sizeof s->small, s->len + 5);
    case ST_CLOSE: return sn_file_close(s->fd);
    case ST_OPEN_MISSING: return sn_file_open("/nonexistent-dir-sn/x", O_RDONLY, 0);
    case ST_READ_BADFD: return sn_file_read(987654, s->small, 10, 0);
    case ST_OPEN_DIR_W: return sn_file_open(dir, O_WRONLY, 0);
    case ST_CLOSE_BADFD: return sn_file_close(987654);
    case ST_FSTAT_BADFD: return sn_file_fstat(987654, &s->st);
    case ST_OPENAT2:
        return sn_file_openat2(dir_fd, strrchr(s->path, '/') + 1, O_RDONLY, 0,
                               RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS);
    case ST_READ_AT2: return sn_file_read(s->fd2, s->small, sizeof s->small, 0);
    case ST_CLOSE_AT2: return sn_file_close(s->fd2);
    case ST_OPENAT2_ESCAPE:
        return sn_file_openat2(dir_fd, "../tmp", O_RDONLY | O_DIRECTORY, 0, RESOLVE_BENEATH);
    case ST_OPENAT2_SYMLINK:
        return sn_file_openat2(dir_fd, "link", O_RDONLY, 0, RESOLVE_NO_SYMLINKS);
    case ST_OPENAT2_BADFLAGS: return sn_file_openat2(dir_fd, "f0", O_RDONLY, 0, 1ull << 62);
    case ST_RENAME: return sn_file_rename(s->path, s->moved);
    case ST_OPEN_OLD_NAME: return sn_file_open(s->path, O_RDONLY, 0);
    case ST_RENAME_BACK: return sn_file_rename(s->moved, s->path);
    case ST_RENAME_MISSING: return sn_file_rename(s->moved, s->gone);
    case ST_CREATE_GONE: return sn_file_open(s->gone, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    case ST_CLOSE_GONE: return sn_file_close((int)s->res[ST_CREATE_GONE].value);
    case ST_UNLINK: return sn_file_unlink(s->gone);
    case ST_UNLINK_AGAIN: return sn_file_unlink(s->gone);
    default: return sn_failed(-EINVAL); /* not reached: run_step ends at ST_END */
    }
}

static void run_step(struct script *s)
{
    if (s->step == ST_END) {
        sn_promise_set(s->done, 0);
        return;
    }
    sn_done(op_for(s), step_done, s);
}

static struct sn_future *script_main(void *arg)
{
    struct script *s = &S[sn_core_id()];
    (void)arg;
    struct sn_future *f;
    s->done = sn_promise_new(&f);
    run_step(s);
    return f;
}

static struct sn_future *all_ran(void *arg, uint64_t ncores)
{
    (void)arg, (void)ncores;
    return sn_ready(0); /* exit code 0 (the value was the core count) */
}

static struct sn_future *file_main(void *arg)
{
    (void)arg;
    return sn_then(sn_invoke_on_all(script_main, NULL), all_ran, NULL);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/sn-test-file-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    size_t len = SN_TEST_SLOW ? (1u << 20) + 123 : (8u << 20) + 123;
    for (int i = 0; i < 2; i++) {
        memset(&S[i], 0, sizeof S[i]);
        snprintf(S[i].path, sizeof S[i].path, "%s/f%d", dir, i);
        snprintf(S[i].moved, sizeof S[i].moved, "%s/f%d.moved", dir, i);
        snprintf(S[i].gone, sizeof S[i].gone, "%s/f%d.gone", dir, i);
        S[i].len = len;
        S[i].data = malloc(len);
        S[i].back = malloc(len);
        fill(S[i].data, len, (uint64_t)i + 1);
    }
    dir_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    cr_assert_geq(dir_fd, 0);
    snprintf(link_path, sizeof link_path, "%s/link", dir);
    cr_assert_eq(symlink("f0", link_path), 0);
}

static void teardown(void)
{
    close(dir_fd);
    unlink(link_path);
    for (int i = 0; i < 2; i++) {
        unlink(S[i].path);
        unlink(S[i].moved);
        unlink(S[i].gone);
        free(S[i].data);
        free(S[i].back);
    }
    rmdir(dir);
}

Test(file, write_read_stat_errors_on_each_core, .init = setup, .fini = teardown, .timeout = 60)
{
    struct sn_config cfg = test_config(2);
    cr_assert_eq(sn_run(&cfg, file_main, NULL), 0);
    for (int i = 0; i < 2; i++) {
        struct script *s = &S[i];
        cr_assert_eq(s->step, ST_END, "core %d ran every step", i);
        cr_assert_eq(s->res[ST_OPEN].err, 0);
        cr_assert_geq(s->fd, 0);
        cr_assert_eq(s->res[ST_WRITE].err, 0);
        cr_assert_eq(s->res[ST_WRITE].value, s->len);
        cr_assert_eq(s->res[ST_FSYNC].err, 0);
        cr_assert_eq(s->res[ST_FSTAT].err, 0);
        cr_assert_eq(s->st.size, s->len);
        cr_assert(S_ISREG(s->st.mode));
        cr_assert_eq(s->st.mode & 0777, 0600);
        cr_assert_eq(s->res[ST_READ].err, 0);
        cr_assert_eq(s->res[ST_READ].value, s->len);
        cr_assert(memcmp(s->data, s->back, s->len) == 0, "read back identical");
        cr_assert_eq(s->res[ST_READ_TAIL].value, 10, "a read past the end is short");
        cr_assert_eq(s->res[ST_READ_EOF].err, 0);
        cr_assert_eq(s->res[ST_READ_EOF].value, 0);
        cr_assert_eq(s->res[ST_CLOSE].err, 0);
        cr_assert_eq(s->res[ST_OPEN_MISSING].err, -ENOENT);
        cr_assert_eq(s->res[ST_READ_BADFD].err, -EBADF);
        cr_assert_eq(s->res[ST_OPEN_DIR_W].err, -EISDIR);
        cr_assert_eq(s->res[ST_CLOSE_BADFD].err, -EBADF);
        cr_assert_eq(s->res[ST_FSTAT_BADFD].err, -EBADF);
        cr_assert_eq(s->res[ST_OPENAT2].err, 0);
        cr_assert_eq(s->res[ST_READ_AT2].value, sizeof s->small);
        cr_assert(memcmp(s->small, s->data, sizeof s->small) == 0, "openat2 opened f%d", i);
        cr_assert_eq(s->res[ST_CLOSE_AT2].err, 0);
        cr_assert_eq(s->res[ST_OPENAT2_ESCAPE].err, -EXDEV);
        cr_assert_eq(s->res[ST_OPENAT2_SYMLINK].err, -ELOOP);
        cr_assert_eq(s->res[ST_OPENAT2_BADFLAGS].err, -EINVAL);
        cr_assert_eq(s->res[ST_RENAME].err, 0);
        cr_assert_eq(s->res[ST_OPEN_OLD_NAME].err, -ENOENT, "the old name is gone");
        cr_assert_eq(s->res[ST_RENAME_BACK].err, 0);
        cr_assert_eq(s->res[ST_RENAME_MISSING].err, -ENOENT);
        cr_assert_eq(s->res[ST_CREATE_GONE].err, 0);
        cr_assert_eq(s->res[ST_CLOSE_GONE].err, 0);
        cr_assert_eq(s->res[ST_UNLINK].err, 0);
        cr_assert_eq(s->res[ST_UNLINK_AGAIN].err, -ENOENT, "unlinked");
        cr_assert_eq(access(s->gone, F_OK), -1);
        cr_assert_eq(access(s->moved, F_OK), -1);
    }
    /* What the reactor wrote is on disk. */
    FILE *f = fopen(S[1].path, "rb");
    cr_assert_not_null(f);
    uint8_t *disk = malloc(S[1].len);
    cr_assert_eq(fread(disk, 1, S[1].len, f), S[1].len);
    fclose(f);
    cr_assert(memcmp(disk, S[1].data, S[1].len) == 0);
    free(disk);
}

static void open_off_core(void *arg)
{
    (void)arg;
    sn_ignore(sn_file_open("/tmp", O_RDONLY, 0));
}

static void openat2_off_core(void *arg)
{
    (void)arg;
    sn_ignore(sn_file_openat2(AT_FDCWD, "/tmp", O_RDONLY, 0, 0));
}

static void read_off_core(void *arg)
{
    (void)arg;
    sn_ignore(sn_file_read(0, NULL, 0, 0)); /* even the call that needs no I/O */
}

static void close_off_core(void *arg)
{
    (void)arg;
    sn_ignore(sn_file_close(0));
}

static void rename_off_core(void *arg)
{
    (void)arg;
    sn_ignore(sn_file_rename("/nonexistent-a", "/nonexistent-b"));
}

static void unlink_off_core(void *arg)
{
    (void)arg;
    sn_ignore(sn_file_unlink("/nonexistent-a"));
}

Test(file, off_core_aborts)
{
    cr_expect(au_aborts_with(open_off_core, NULL, "libsn: sn_file_open called off a reactor core"));
    cr_expect(au_aborts_with(openat2_off_core, NULL,
                             "libsn: sn_file_openat2 called off a reactor core"));
    cr_expect(au_aborts_with(read_off_core, NULL, "libsn: sn_file_read called off a reactor core"));
    cr_expect(au_aborts_with(close_off_core, NULL, "libsn: sn_file_close called off a reactor core"));
    cr_expect(au_aborts_with(rename_off_core, NULL,
                             "libsn: sn_file_rename called off a reactor core"));
    cr_expect(au_aborts_with(unlink_off_core, NULL,
                             "libsn: sn_file_unlink called off a reactor core"));
}

/* ---- more at once than the SQ holds, and no SQE at all for a while ------------------------ */

#define MANY  1000 /* the SQ has 256 entries */
#define PIECE 4096

static struct {
    int fd;
    uint8_t *data, *back;
    unsigned done, ok, bad;
    uint64_t failed;
    struct sn_promise *all;
} M;

static void many_done(void *arg, int err, uint64_t value)
{
    size_t i = (size_t)(uintptr_t)arg;
    if (!err && value == PIECE && memcmp(M.back + i * PIECE, M.data + i * PIECE, PIECE) == 0)
        M.ok++;
    else
        M.bad++;
    if (++M.done == MANY) {
        M.failed = sn__sqe_failed;
        sn_promise_set(M.all, 0);
    }
}

static struct sn_future *many_main(void *arg)
{
    (void)arg;
    struct sn_future *f;
    M.all = sn_promise_new(&f);
    for (size_t i = 0; i < MANY; i++) {
        /* Every so often the next few SQE gets fail: those reads wait for the next submit. */
        if (i % 100 == 0)
            sn__sqe_fail_next = 3;
        sn_done(sn_file_read(M.fd, M.back + i * PIECE, PIECE, i * PIECE), many_done,
                (void *)(uintptr_t)i);
    }
    return f;
}

Test(file, many_at_once_and_no_sqe, .timeout = 60)
{
    char path[] = "/tmp/sn-test-file-many-XXXXXX";
    M.fd = mkstemp(path);
    cr_assert_geq(M.fd, 0);
    unlink(path);
    M.data = malloc((size_t)MANY * PIECE);
    M.back = calloc(MANY, PIECE);
    fill(M.data, (size_t)MANY * PIECE, 99);
    cr_assert_eq(pwrite(M.fd, M.data, (size_t)MANY * PIECE, 0), (ssize_t)MANY * PIECE);
    M.done = M.ok = M.bad = 0;
    M.failed = 0;
    struct sn_config cfg = test_config(1);
    int rc = sn_run(&cfg, many_main, NULL);
    close(M.fd);
    free(M.data);
    free(M.back);
    cr_assert_eq(rc, 0);
    cr_assert_eq(M.done, MANY, "every read settled");
    cr_assert_eq(M.ok, MANY, "and read the right bytes (bad %u)", M.bad);
    cr_assert_eq(M.failed, 30, "the injected SQE failures happened");
}
