/*
 * sn_file_openat2_cached (include/sn/file.h): the synchronous RESOLVE_CACHED open, called
 * from the test thread (no reactor: it is "any thread"). A file just created and read is in
 * the dentry cache, so it opens at once with O_CLOEXEC; the refusals of openat2 come through
 * as its errors (-EXDEV for an absolute path under RESOLVE_BENEATH, -ELOOP for a symlink under
 * RESOLVE_NO_SYMLINKS); opens that could block (O_CREAT, O_TRUNC) give -EAGAIN. On a kernel
 * without RESOLVE_CACHED every call must give -EAGAIN instead, which is checked there.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static char dir[64];
static int dir_fd = -1;

/* Does this kernel know RESOLVE_CACHED? Asked directly, as the library does. */
static bool kernel_has_resolve_cached(void)
{
    struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_CACHED};
    long fd = syscall(SYS_openat2, AT_FDCWD, "/", &how, sizeof how);
    if (fd >= 0)
        close((int)fd);
    return fd >= 0;
}

static void make_tree(void)
{
    snprintf(dir, sizeof dir, "/tmp/sn-cached-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/hello.txt", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("hello, cache\n", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/link", dir);
    cr_assert_eq(symlink("hello.txt", path), 0);
    dir_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    cr_assert_geq(dir_fd, 0);
    /* Looked up once the ordinary way, so every component is in the dentry cache. */
    struct stat st;
    cr_assert_eq(fstatat(dir_fd, "hello.txt", &st, 0), 0);
    cr_assert_eq(fstatat(dir_fd, "link", &st, AT_SYMLINK_NOFOLLOW), 0);
}

static void remove_tree(void)
{
    char path[128];
    if (dir_fd >= 0)
        close(dir_fd);
    dir_fd = -1;
    snprintf(path, sizeof path, "%s/hello.txt", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/link", dir);
    unlink(path);
    rmdir(dir);
}

TestSuite(file_cached, .init = make_tree, .fini = remove_tree);

Test(file_cached, cached_file_opens_at_once_with_cloexec)
{
    int fd = sn_file_openat2_cached(dir_fd, "hello.txt", O_RDONLY, RESOLVE_BENEATH);
    if (!kernel_has_resolve_cached()) {
        cr_assert_eq(fd, -EAGAIN, "a kernel without RESOLVE_CACHED must give -EAGAIN");
        return;
    }
    cr_assert_geq(fd, 0, "open of a cached file: %s", sn_strerror(fd));
    char buf[32] = {0};
    cr_expect_eq(read(fd, buf, sizeof buf - 1), 13);
    cr_expect_str_eq(buf, "hello, cache\n");
    cr_expect(fcntl(fd, F_GETFD) & FD_CLOEXEC, "O_CLOEXEC was not added");
    close(fd);
}

Test(file_cached, openat2_refusals_are_its_errors)
{
    if (!kernel_has_resolve_cached()) {
        cr_assert_eq(sn_file_openat2_cached(dir_fd, "../etc", O_RDONLY, RESOLVE_BENEATH), -EAGAIN);
        return;
    }
    /* An absolute path leaving dirfd, and a symlink, are refused before any I/O could matter. */
    cr_expect_eq(sn_file_openat2_cached(dir_fd, "/etc", O_RDONLY, RESOLVE_BENEATH), -EXDEV);
    cr_expect_eq(sn_file_openat2_cached(dir_fd, "link", O_RDONLY, RESOLVE_NO_SYMLINKS), -ELOOP);
    /* dirfd is ignored for an absolute path, as with openat2. */
    char path[128];
    snprintf(path, sizeof path, "%s/hello.txt", dir);
    int fd = sn_file_openat2_cached(-1, path, O_RDONLY, 0);
    cr_assert_geq(fd, 0, "%s: %s", path, sn_strerror(fd));
    close(fd);
    /* Never an fd for a missing name; -EAGAIN when the negative lookup is not cached. */
    int rc = sn_file_openat2_cached(dir_fd, "missing", O_RDONLY, RESOLVE_BENEATH);
    cr_expect(rc == -ENOENT || rc == -EAGAIN, "missing file: %d", rc);
    cr_expect_eq(sn_file_openat2_cached(dir_fd, NULL, O_RDONLY, 0), -EINVAL);
}

Test(file_cached, opens_that_may_block_give_eagain)
{
    /* Creating or truncating can need the disk: RESOLVE_CACHED refuses them outright. */
    cr_expect_eq(sn_file_openat2_cached(dir_fd, "hello.txt", O_WRONLY | O_TRUNC, 0), -EAGAIN);
    cr_expect_eq(sn_file_openat2_cached(dir_fd, "new.txt", O_WRONLY | O_CREAT, 0), -EAGAIN);
    char path[128];
    snprintf(path, sizeof path, "%s/new.txt", dir);
    cr_expect_neq(access(path, F_OK), 0, "O_CREAT created the file");
    /* The file is unchanged. */
    struct stat st;
    cr_assert_eq(fstatat(dir_fd, "hello.txt", &st, 0), 0);
    cr_expect_eq(st.st_size, 13);
}
