/* Server processes for the end-to-end tests: see server_proc.h. */
#include "server_proc.h"

#include <dirent.h>
#include <libgen.h>
#include <limits.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SU_SLOW_MS 60000u
#else
#define SU_SLOW_MS 20000u
#endif

#define SU_MAX_CHILDREN 64

rlim_t su_child_nofile;

static pid_t su_children[SU_MAX_CHILDREN];
static bool su_atexit_done;

static void su_track(pid_t pid)
{
    if (!su_atexit_done) {
        atexit(su_reap_all); /* a worker that ends without running .fini still reaps */
        su_atexit_done = true;
    }
    for (unsigned i = 0; i < SU_MAX_CHILDREN; i++)
        if (su_children[i] == 0) {
            su_children[i] = pid;
            return;
        }
}

static void su_forget(pid_t pid)
{
    for (unsigned i = 0; i < SU_MAX_CHILDREN; i++)
        if (su_children[i] == pid)
            su_children[i] = 0;
}

void su_reap_all(void)
{
    for (unsigned i = 0; i < SU_MAX_CHILDREN; i++) {
        if (su_children[i] > 0) {
            kill(su_children[i], SIGKILL);
            waitpid(su_children[i], NULL, 0);
        }
        su_children[i] = 0;
    }
}

void su_bin(const char *app, char *out, size_t cap)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    cr_assert_gt(n, 0);
    self[n] = '\0';
    cr_assert_lt(snprintf(out, cap, "%s/../bin/sn-%s", dirname(self), app), (int)cap);
    cr_assert_eq(access(out, X_OK), 0, "%s is built (make apps)", out);
}

uint16_t su_free_port(void)
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

rlim_t su_raise_nofile(rlim_t want)
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

pid_t su_fork(void)
{
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        /* The parent's children are not ours to kill (our atexit copy must not reach them). */
        memset(su_children, 0, sizeof su_children);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127); /* the parent died before the prctl */
        return 0;
    }
    if (pid > 0)
        su_track(pid);
    return pid;
}

pid_t su_spawn(const char *path, char *const argv[], bool quiet)
{
    pid_t pid = su_fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, STDOUT_FILENO);
        if (quiet)
            dup2(null, STDERR_FILENO);
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

bool su_alive(pid_t pid)
{
    int status;
    return waitpid(pid, &status, WNOHANG) == 0;
}

int su_wait_exit(pid_t pid, unsigned ms)
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

int su_run_to_exit(const char *app, char *const argv[], bool quiet)
{
    char path[PATH_MAX + 32];
    su_bin(app, path, sizeof path);
    pid_t pid = su_spawn(path, argv, quiet);
    cr_assert_gt(pid, 0, "fork");
    int status = su_wait_exit(pid, 20000);
    if (status == -1)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int su_run_output(const char *app, const char *args, char *out, size_t cap)
{
    char path[PATH_MAX + 32], cmd[PATH_MAX + 1024];
    su_bin(app, path, sizeof path);
    cr_assert_lt(snprintf(cmd, sizeof cmd, "%s %s 2>&1", path, args), (int)sizeof cmd);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p, "cannot run %s", cmd);
    size_t got = fread(out, 1, cap - 1, p);
    out[got] = '\0';
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/*
 * The inodes of the TCP sockets listening on `port` (IPv4 and IPv6, this process's network
 * namespace, which its children share) into ino[0..cap): their count.
 */
static int su_listener_inodes(uint16_t port, unsigned long *ino, int cap)
{
    static const char *const tables[] = {"/proc/self/net/tcp", "/proc/self/net/tcp6"};
    int n = 0;
    for (unsigned t = 0; t < 2; t++) {
        FILE *f = fopen(tables[t], "r");
        char line[512];
        if (!f)
            continue;
        while (n < cap && fgets(line, sizeof line, f)) {
            unsigned lport, state;
            unsigned long inode;
            if (sscanf(line, " %*d: %*x:%x %*x:%*x %x %*x:%*x %*x:%*x %*x %*u %*u %lu", &lport,
                       &state, &inode) == 3 &&
                lport == port && state == 0x0A /* TCP_LISTEN */)
                ino[n++] = inode;
        }
        fclose(f);
    }
    return n;
}

/*
 * Whether process pid itself listens on port. Connecting cannot tell: another test's server
 * may hold the port (taken between su_free_port and the bind), or pid may listen on its first
 * port and then exit because its second one was taken. True only when one of pid's sockets is
 * that listener.
 */
static bool su_owns_listener(pid_t pid, uint16_t port)
{
    unsigned long ino[64];
    int n = su_listener_inodes(port, ino, 64);
    char dir[64], link[PATH_MAX], target[64];
    snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(dir);
    if (!d)
        return false;
    bool found = false;
    for (struct dirent *e; !found && (e = readdir(d));) {
        snprintf(link, sizeof link, "%s/%s", dir, e->d_name);
        ssize_t k = readlink(link, target, sizeof target - 1);
        unsigned long inode;
        if (k <= 0)
            continue;
        target[k] = '\0';
        if (sscanf(target, "socket:[%lu]", &inode) == 1)
            for (int i = 0; i < n; i++)
                found |= ino[i] == inode;
    }
    closedir(d);
    return found;
}

/*
 * Waits until s->pid accepts on s->port and itself listens there and, when with_port2, on
 * s->port2: 1; 0 when time ran out (it still runs); -1 when it exited (reaped here; a port
 * was taken in between, most likely).
 */
static int su_wait_accepting(struct su_server *s, bool with_port2)
{
    uint64_t end = nu_now_ms() + SU_SLOW_MS;
    while (nu_now_ms() < end) {
        if (!su_alive(s->pid))
            return -1;
        int fd = nu_connect(s->port);
        if (fd >= 0) {
            close(fd);
            if (su_owns_listener(s->pid, s->port) &&
                (!with_port2 || su_owns_listener(s->pid, s->port2)))
                return 1;
        }
        usleep(5000);
    }
    return 0;
}

void su_start_args(struct su_server *s, const char *app, const char *const *args)
{
    char path[PATH_MAX + 32];
    su_bin(app, path, sizeof path);
    memset(s, 0, sizeof *s);
    snprintf(s->app, sizeof s->app, "%s", app);
    for (int attempt = 0; attempt < 5; attempt++) {
        char port[16], port2[16], name[32];
        s->port = su_free_port();
        do /* bind(0) right after a close may hand out the same port again */
            s->port2 = su_free_port();
        while (s->port2 == s->port);
        snprintf(port, sizeof port, "%u", s->port);
        snprintf(port2, sizeof port2, "%u", s->port2);
        snprintf(name, sizeof name, "sn-%s", app);
        char *argv[40] = {name};
        unsigned argc = 1;
        bool with_port2 = false;
        for (unsigned i = 0; args && args[i] && argc < 39; i++) {
            with_port2 |= !strcmp(args[i], SU_PORT2);
            argv[argc++] = !strcmp(args[i], SU_PORT)    ? port
                           : !strcmp(args[i], SU_PORT2) ? port2
                                                        : (char *)args[i];
        }
        argv[argc] = NULL;
        s->pid = su_spawn(path, argv, false);
        cr_assert_gt(s->pid, 0, "fork");
        int up = su_wait_accepting(s, with_port2);
        if (up > 0)
            return;
        if (up == 0) { /* never accepted: give up on this one */
            kill(s->pid, SIGKILL);
            waitpid(s->pid, NULL, 0);
        }
        su_forget(s->pid);
    }
    s->pid = 0;
    cr_assert(false, "sn-%s did not start", app);
}

void su_start(struct su_server *s, const char *app, const char *const *extra)
{
    const char *args[40] = {"--smp", "2", "--unpinned", "--port", SU_PORT};
    unsigned n = 5;
    for (unsigned i = 0; extra && extra[i] && n < 39; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    su_start_args(s, app, args);
}

int su_stop(struct su_server *s, unsigned ms, uint64_t *took_ms)
{
    if (s->pid <= 0)
        return -1; /* kill(0, ...) would signal the whole process group */
    uint64_t t0 = nu_now_ms();
    kill(s->pid, SIGTERM);
    int status = su_wait_exit(s->pid, ms);
    if (took_ms)
        *took_ms = nu_now_ms() - t0;
    return status;
}

void su_stop_clean(struct su_server *s)
{
    cr_assert_gt(s->pid, 0, "sn-%s runs", s->app);
    int status = su_stop(s, SU_SLOW_MS, NULL);
    s->pid = 0;
    cr_assert_neq(status, -1, "sn-%s stopped within %u ms of SIGTERM", s->app, SU_SLOW_MS);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "sn-%s exits 0 after SIGTERM (status 0x%x)", s->app, (unsigned)status);
}

long su_status_kb(pid_t pid, const char *field)
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

long su_rss_kb(pid_t pid)
{
    return su_status_kb(pid, "VmRSS");
}

void su_close_rst(int fd)
{
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

size_t su_read_until(int fd, char *buf, size_t cap, const char *until, unsigned ms, bool *eof)
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

bool su_wait_eof(int fd, unsigned ms)
{
    char buf[4096];
    bool eof = false;
    uint64_t end = nu_now_ms() + ms;
    while (!eof && nu_now_ms() < end)
        su_read_until(fd, buf, sizeof buf, NULL, (unsigned)(end - nu_now_ms()), &eof);
    return eof;
}

size_t su_send_some(int fd, const void *p, size_t len, unsigned ms)
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

bool su_exchange(uint16_t port, const char *req, size_t len, const char *expect, unsigned ms)
{
    int fd = nu_connect(port);
    if (fd < 0)
        return false;
    char buf[8192];
    size_t n =
        nu_send_all(fd, req, len) == 0 ? su_read_until(fd, buf, sizeof buf, expect, ms, NULL) : 0;
    bool ok = n > 0 && memmem(buf, n, expect, strlen(expect)) != NULL;
    close(fd);
    return ok;
}

/* Counts the `term`s in in[0..len) and keeps its last tl-1 bytes (a term cut by the read). */
static size_t su_count_terms(char *in, size_t len, const char *term, size_t tl, size_t *keep)
{
    size_t found = 0;
    for (char *q = in; (q = memmem(q, len - (size_t)(q - in), term, tl)); q += tl)
        found++;
    *keep = len < tl - 1 ? len : tl - 1;
    memmove(in, in + len - *keep, *keep);
    return found;
}

size_t su_pipeline_ahead(int fd, const char *unit, size_t unit_len, size_t n, const char *term,
                         size_t want, unsigned idle_ms)
{
    size_t total = unit_len * n, sent = 0, found = 0, tl = strlen(term), keep = 0;
    char *out = malloc(total), *in = malloc((1 << 16) + tl);
    cr_assert(out && in);
    for (size_t i = 0; i < n; i++)
        memcpy(out + i * unit_len, unit, unit_len);
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    uint64_t start = nu_now_ms(), last = start;
    while (found < want && nu_now_ms() - last < idle_ms) {
        bool reading = nu_now_ms() - start >= 500;
        struct pollfd p = {fd, (short)((sent < total ? POLLOUT : 0) | (reading ? POLLIN : 0)), 0};
        if (poll(&p, 1, 50) <= 0)
            continue;
        if ((p.revents & POLLOUT) && sent < total) {
            ssize_t w = send(fd, out + sent, total - sent, MSG_NOSIGNAL);
            if (w > 0) {
                sent += (size_t)w;
                last = nu_now_ms();
            }
        }
        if (reading && (p.revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t r = recv(fd, in + keep, 1 << 16, 0);
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
                break;
            if (r < 0)
                continue;
            last = nu_now_ms();
            found += su_count_terms(in, keep + (size_t)r, term, tl, &keep);
        }
    }
    fcntl(fd, F_SETFL, fl);
    free(out);
    free(in);
    return found;
}

void su_assert_serving(const struct su_server *s, const char *after)
{
    static const char http[] = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";
    static const char kv[] = "set su_probe 0 0 2\r\nok\r\nget su_probe\r\n";
    cr_assert(su_alive(s->pid), "sn-%s still runs after %s", s->app, after);
    bool ok;
    if (!strcmp(s->app, "httpd"))
        ok = su_exchange(s->port, http, sizeof http - 1, "Hello, world!\n", 10000);
    else if (!strcmp(s->app, "kv"))
        ok = su_exchange(s->port, kv, sizeof kv - 1, "VALUE su_probe 0 2\r\nok\r\nEND\r\n", 10000);
    else
        ok = su_exchange(s->port, "ping\n", 5, "ping\n", 10000);
    cr_assert(ok, "sn-%s answers a normal request after %s", s->app, after);
}
