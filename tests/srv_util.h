/*
 * Helpers for the tests that drive the sample servers as separate processes (test_load.c,
 * test_faults.c, test_bad_input.c): start build/bin/sn-<app> on a free loopback port, read its
 * memory from /proc, stop it with SIGTERM and time the drain, talk to it with bounded waits.
 *
 * Every process started here is tracked and killed by su_reap_all(), which the tests run as
 * their .fini (Criterion and the TSan shim both call it after a failed assertion too); each
 * child also gets PR_SET_PDEATHSIG=SIGKILL, so a test process that dies (timeout, crash) takes
 * its servers and forked clients with it. Binaries are found next to the test binary:
 * <build>/tests/test_x -> <build>/bin/sn-<app>, so each build (asan, tsan) drives its own.
 */
#ifndef SN_TEST_SRV_UTIL_H
#define SN_TEST_SRV_UTIL_H

#include <criterion/criterion.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "net_util.h"

#define SU_MAX_CHILDREN 64

static pid_t su_children[SU_MAX_CHILDREN];

static inline void su_track(pid_t pid)
{
    for (unsigned i = 0; i < SU_MAX_CHILDREN; i++)
        if (su_children[i] == 0) {
            su_children[i] = pid;
            return;
        }
}

static inline void su_forget(pid_t pid)
{
    for (unsigned i = 0; i < SU_MAX_CHILDREN; i++)
        if (su_children[i] == pid)
            su_children[i] = 0;
}

/* Kills and reaps every child still tracked: the tests' .fini. */
static inline void su_reap_all(void)
{
    for (unsigned i = 0; i < SU_MAX_CHILDREN; i++) {
        if (su_children[i] > 0) {
            kill(su_children[i], SIGKILL);
            waitpid(su_children[i], NULL, 0);
        }
        su_children[i] = 0;
    }
}

/* Path of <build>/bin/sn-<app> into out; asserts that it is there. */
static inline void su_bin(const char *app, char *out, size_t cap)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    cr_assert_gt(n, 0);
    self[n] = '\0';
    snprintf(out, cap, "%s/../bin/sn-%s", dirname(self), app);
    cr_assert_eq(access(out, X_OK), 0, "%s is built", out);
}

static inline uint16_t su_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0)
        a.sin_port = 0;
    if (fd >= 0)
        close(fd);
    return ntohs(a.sin_port);
}

/*
 * Raises RLIMIT_NOFILE to `want` (the hard limit too, where the process may): children
 * started afterwards inherit it. Returns the soft limit in force afterwards.
 */
static inline rlim_t su_raise_nofile(rlim_t want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 0;
    if (rl.rlim_cur >= want)
        return rl.rlim_cur;
    struct rlimit up = {want, rl.rlim_max > want ? rl.rlim_max : want};
    if (setrlimit(RLIMIT_NOFILE, &up) < 0) {
        up.rlim_cur = up.rlim_max = rl.rlim_max; /* no CAP_SYS_RESOURCE: as far as allowed */
        setrlimit(RLIMIT_NOFILE, &up);
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    return rl.rlim_cur;
}

/*
 * Forks; the child dies with this process (PR_SET_PDEATHSIG) and is tracked for
 * su_reap_all. Returns the pid in the parent and 0 in the child, like fork.
 */
static inline pid_t su_fork(void)
{
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127); /* the parent died before the prctl */
        return 0;
    }
    if (pid > 0)
        su_track(pid);
    return pid;
}

/* When not 0, servers started afterwards get this RLIMIT_NOFILE (soft and hard). */
static rlim_t su_child_nofile;

struct su_server {
    pid_t pid;
    uint16_t port;
    char app[16];
};

/* Starts `path` with argv (stdout to /dev/null, stderr kept for sanitizer reports). */
static inline pid_t su_spawn(const char *path, char *const argv[])
{
    pid_t pid = su_fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, STDOUT_FILENO);
        if (null > STDERR_FILENO)
            close(null);
        if (su_child_nofile) {
            struct rlimit rl = {su_child_nofile, su_child_nofile};
            setrlimit(RLIMIT_NOFILE, &rl);
        }
        execv(path, argv);
        _exit(127);
    }
    return pid;
}

/* True while the process runs (not exited, not a zombie waiting to be reaped). */
static inline bool su_alive(pid_t pid)
{
    int status;
    return waitpid(pid, &status, WNOHANG) == 0;
}

/*
 * Starts sn-<app> --smp 2 --unpinned --port P [extra...] on a free port and waits (up to 20 s)
 * until it accepts connections. extra ends with NULL (or is NULL). Asserts success.
 */
static inline void su_start(struct su_server *s, const char *app, const char *const *extra)
{
    char path[PATH_MAX + 32];
    su_bin(app, path, sizeof path);
    memset(s, 0, sizeof *s);
    snprintf(s->app, sizeof s->app, "%s", app);
    for (int attempt = 0; attempt < 5; attempt++) {
        char port[16], name[32];
        s->port = su_free_port();
        snprintf(port, sizeof port, "%u", s->port);
        snprintf(name, sizeof name, "sn-%s", app);
        char *argv[40] = {name, "--smp", "2", "--unpinned", "--port", port};
        unsigned argc = 6;
        for (unsigned i = 0; extra && extra[i] && argc < 39; i++)
            argv[argc++] = (char *)extra[i];
        argv[argc] = NULL;
        s->pid = su_spawn(path, argv);
        cr_assert_gt(s->pid, 0, "fork");
        uint64_t end = nu_now_ms() + 20000;
        while (nu_now_ms() < end && su_alive(s->pid)) {
            int fd = nu_connect(s->port);
            if (fd >= 0) {
                close(fd);
                return;
            }
            usleep(5000);
        }
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        su_forget(s->pid);
    }
    cr_assert(false, "sn-%s did not start", app);
}

/* Waits up to ms for pid to exit: its wait status, or -1 (it is then killed and reaped). */
static inline int su_wait_exit(pid_t pid, unsigned ms)
{
    int status;
    uint64_t end = nu_now_ms() + ms;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid || (r < 0 && errno == ECHILD)) {
            su_forget(pid);
            return r == pid ? status : -1;
        }
        if (nu_now_ms() >= end)
            break;
        usleep(2000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    su_forget(pid);
    return -1;
}

/* SIGTERM, then waits up to ms; *took_ms (if not NULL) gets the time to exit. */
static inline int su_stop(struct su_server *s, unsigned ms, uint64_t *took_ms)
{
    uint64_t t0 = nu_now_ms();
    kill(s->pid, SIGTERM);
    int status = su_wait_exit(s->pid, ms);
    if (took_ms)
        *took_ms = nu_now_ms() - t0;
    return status;
}

/* Stops the server and asserts a clean exit 0 within 20 s (under ASan: no leak report). */
static inline void su_stop_clean(struct su_server *s)
{
    int status = su_stop(s, 20000, NULL);
    cr_assert_neq(status, -1, "sn-%s stopped within 20 s of SIGTERM", s->app);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "sn-%s exits 0 after SIGTERM (status 0x%x)", s->app, (unsigned)status);
}

/* A /proc/<pid>/status field in kB (VmRSS, VmHWM, ...), or -1. */
static inline long su_status_kb(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long v = -1;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            v = strtol(line + n + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

static inline long su_rss_kb(pid_t pid)
{
    return su_status_kb(pid, "VmRSS");
}

/* Abortive close: the peer sees a reset, nothing lingers in TIME_WAIT. */
static inline void su_close_rst(int fd)
{
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

/*
 * Reads into buf (NUL-terminated, at most cap-1 bytes kept) until `until` occurs in what was
 * read (NULL: only EOF ends it), the peer ends the connection (*eof set), or ms pass.
 * Returns the bytes kept.
 */
static inline size_t su_read_until(int fd, char *buf, size_t cap, const char *until, unsigned ms,
                            bool *eof)
{
    size_t len = 0;
    char scratch[16384];
    uint64_t end = nu_now_ms() + ms;
    bool ended = false;
    buf[0] = '\0';
    while (!(until && memmem(buf, len, until, strlen(until)))) {
        uint64_t now = nu_now_ms();
        if (now >= end)
            break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)(end - now)) <= 0)
            continue;
        ssize_t r = recv(fd, scratch, sizeof scratch, MSG_DONTWAIT);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (r <= 0) {
            ended = true;
            break;
        }
        size_t keep = (size_t)r < cap - 1 - len ? (size_t)r : cap - 1 - len;
        memcpy(buf + len, scratch, keep);
        len += keep;
        buf[len] = '\0';
    }
    if (eof)
        *eof = ended;
    return len;
}

/* Waits up to ms for the peer to end the connection, discarding what arrives: true if it did. */
static inline bool su_wait_eof(int fd, unsigned ms)
{
    char buf[4096];
    bool eof = false;
    uint64_t end = nu_now_ms() + ms;
    while (!eof && nu_now_ms() < end)
        su_read_until(fd, buf, sizeof buf, NULL, (unsigned)(end - nu_now_ms()), &eof);
    return eof;
}

/* Sends without blocking longer than ms in total; returns the bytes the kernel took. */
static inline size_t su_send_some(int fd, const void *p, size_t len, unsigned ms)
{
    const char *c = p;
    size_t done = 0;
    uint64_t end = nu_now_ms() + ms;
    while (done < len && nu_now_ms() < end) {
        ssize_t w = send(fd, c + done, len - done, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            done += (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EINTR)
            break;
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        poll(&pfd, 1, 10);
    }
    return done;
}

/* One request/answer on a new connection: true when `expect` arrives within ms. */
static inline bool su_exchange(uint16_t port, const char *req, size_t len, const char *expect,
                        unsigned ms)
{
    int fd = nu_connect(port);
    if (fd < 0)
        return false;
    char buf[8192];
    size_t n = nu_send_all(fd, req, len) == 0 ? su_read_until(fd, buf, sizeof buf, expect, ms, NULL)
                                               : 0;
    bool ok = n > 0 && memmem(buf, n, expect, strlen(expect)) != NULL;
    close(fd);
    return ok;
}

/* The server still runs and answers a normal request on a fresh connection. */
static inline void su_assert_serving(const struct su_server *s, const char *after)
{
    static const char http[] = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";
    static const char kv[] = "set su_probe 0 0 2\r\nok\r\nget su_probe\r\n";
    cr_assert(su_alive(s->pid), "sn-%s still runs after %s", s->app, after);
    bool ok;
    if (!strcmp(s->app, "httpd"))
        ok = su_exchange(s->port, http, sizeof http - 1, "Hello, world!\n", 10000);
    else if (!strcmp(s->app, "kv"))
        ok = su_exchange(s->port, kv, sizeof kv - 1, "VALUE su_probe 0 2\r\nok\r\nEND\r\n",
                         10000);
    else
        ok = su_exchange(s->port, "ping\n", 5, "ping\n", 10000);
    cr_assert(ok, "sn-%s answers a normal request after %s", s->app, after);
}

#endif
