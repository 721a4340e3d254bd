/*
 * The pool harness of tests/cluster_util.h: a private network namespace, sn-kv and nutcracker
 * processes on loopback addresses, and a blocking memcached client with bounded waits.
 */
#include "tests/cluster_util.h"

#include "server_proc.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CL_IO_TIMEOUT_S 5
#define CL_SET_BATCH    256
#define CL_GET_BATCH    100

/* Sanitized servers start and answer several times slower. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CL_START_MS 60000u
#else
#define CL_START_MS 20000u
#endif

bool cl_private_net(void)
{
    if (getenv("SN_CLUSTER_HOST_NET") || unshare(CLONE_NEWNET) != 0)
        return false;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
    cr_assert_eq(ioctl(fd, SIOCGIFFLAGS, &ifr), 0, "SIOCGIFFLAGS lo: %s", strerror(errno));
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    cr_assert_eq(ioctl(fd, SIOCSIFFLAGS, &ifr), 0, "bringing lo up: %s", strerror(errno));
    close(fd);
    return true;
}

static int cl_sockaddr(const char *host, uint16_t port, struct sockaddr_in *a)
{
    memset(a, 0, sizeof(*a));
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -1;
}

uint16_t cl_free_port(const char *host)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || cl_sockaddr(host, 0, &a) < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    close(fd);
    return ntohs(a.sin_port);
}

struct cl_addr cl_pool_addr(unsigned i, bool private_net, bool port_11211)
{
    struct cl_addr a;
    snprintf(a.host, sizeof(a.host), "127.0.0.%u", i + 1);
    if (private_net)
        a.port = (uint16_t)(port_11211 ? 11211 : 11300 + i);
    else
        a.port = cl_free_port(a.host);
    cr_assert_neq(a.port, 0, "no free port on %s", a.host);
    return a;
}

static int cl_try_connect(const char *host, uint16_t port)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (cl_sockaddr(host, port, &a) < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

bool cl_wait_accept(const char *host, uint16_t port, unsigned ms)
{
    uint64_t end = nu_now_ms() + ms;
    for (;;) {
        int fd = cl_try_connect(host, port);
        if (fd >= 0) {
            close(fd);
            return true;
        }
        if (nu_now_ms() >= end)
            return false;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

pid_t cl_start_kv(const struct cl_addr *a)
{
    char path[4096], port[8];
    su_bin("kv", path, sizeof(path));
    snprintf(port, sizeof(port), "%u", a->port);
    char *argv[] = {path, "--smp",         "1",  "--unpinned", "-q", "-m", "64",
                    "-l", (char *)a->host, "-p", port,         NULL};
    pid_t pid = su_spawn(path, argv, false);
    cr_assert_gt(pid, 0);
    cr_assert(cl_wait_accept(a->host, a->port, CL_START_MS), "sn-kv on %s:%u does not accept",
              a->host, a->port);
    return pid;
}

void cl_kill(pid_t pid)
{
    kill(pid, SIGKILL);
    su_wait_exit(pid, 5000);
}

static void cl_print_log(const char *conf)
{
    char log[4200], line[512];
    snprintf(log, sizeof(log), "%s.log", conf);
    FILE *f = fopen(log, "r");
    while (f && fgets(line, sizeof(line), f))
        cr_log_error("nutcracker: %s", line);
    if (f)
        fclose(f);
}

pid_t cl_start_nutcracker(const char *conf, const struct cl_addr *listen, unsigned n)
{
    static const char *const paths[] = {"/usr/sbin/nutcracker", "/usr/bin/nutcracker",
                                        "/usr/local/sbin/nutcracker", "/usr/local/bin/nutcracker"};
    const char *bin = NULL;
    for (size_t i = 0; !bin && i < sizeof(paths) / sizeof(paths[0]); i++)
        if (access(paths[i], X_OK) == 0)
            bin = paths[i];
    cr_assert_not_null(bin, "nutcracker is not installed (Debian package nutcracker; make deps)");
    char log[4200], stats[8];
    snprintf(log, sizeof(log), "%s.log", conf);
    uint16_t sport = cl_free_port("127.0.0.1");
    cr_assert_neq(sport, 0);
    snprintf(stats, sizeof(stats), "%u", sport);
    char *argv[] = {(char *)bin, "-c", (char *)conf, "-o", log, "-s",
                    stats,       "-a", "127.0.0.1",  "-v", "5", NULL};
    pid_t pid = su_spawn(bin, argv, false);
    cr_assert_gt(pid, 0);
    for (unsigned i = 0; i < n; i++)
        if (!cl_wait_accept(listen[i].host, listen[i].port, 10000)) {
            cl_print_log(conf);
            cr_assert_fail("nutcracker does not accept on %s:%u", listen[i].host, listen[i].port);
        }
    return pid;
}

/* Scratch directories not yet removed, for cl_cleanup after a failed assertion. */
#define CL_MAX_DIRS 8
static char cl_dirs[CL_MAX_DIRS][64];

void cl_tmpdir(char *out, size_t cap)
{
    cr_assert_lt(snprintf(out, cap, "/tmp/sn-cluster-XXXXXX"), (int)cap);
    cr_assert_not_null(mkdtemp(out), "mkdtemp: %s", strerror(errno));
    for (int i = 0; i < CL_MAX_DIRS; i++)
        if (!cl_dirs[i][0]) {
            snprintf(cl_dirs[i], sizeof(cl_dirs[i]), "%s", out);
            break;
        }
}

void cl_cleanup(void)
{
    su_reap_all();
    for (int i = 0; i < CL_MAX_DIRS; i++)
        if (cl_dirs[i][0]) {
            char dir[sizeof(cl_dirs[i])];
            memcpy(dir, cl_dirs[i], sizeof(dir));
            cl_rmdir(dir);
        }
}

void cl_rmdir(const char *dir)
{
    for (int i = 0; i < CL_MAX_DIRS; i++)
        if (strcmp(cl_dirs[i], dir) == 0)
            cl_dirs[i][0] = '\0';
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[4200];
    while (d && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        unlink(path);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

int cl_connect(const struct cl_addr *a)
{
    int fd = cl_try_connect(a->host, a->port);
    if (fd < 0)
        return -1;
    struct timeval tv = {CL_IO_TIMEOUT_S, 0};
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static int cl_send_all(int fd, const char *p, size_t len)
{
    while (len) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* A buffered reader of replies; every read is bounded by the socket's receive timeout. */
struct cl_reader {
    int fd;
    size_t pos, len;
    char buf[1 << 16];
};

static int cl_fill(struct cl_reader *r)
{
    if (r->pos) {
        memmove(r->buf, r->buf + r->pos, r->len - r->pos);
        r->len -= r->pos;
        r->pos = 0;
    }
    if (r->len == sizeof(r->buf))
        return -1;
    ssize_t n = recv(r->fd, r->buf + r->len, sizeof(r->buf) - r->len, 0);
    if (n <= 0)
        return -1;
    r->len += (size_t)n;
    return 0;
}

/* The next line without its "\r\n" (NUL-terminated in place), or NULL. */
static char *cl_line(struct cl_reader *r)
{
    for (;;) {
        char *start = r->buf + r->pos;
        char *end = memmem(start, r->len - r->pos, "\r\n", 2);
        if (end) {
            *end = '\0';
            r->pos = (size_t)(end + 2 - r->buf);
            return start;
        }
        if (cl_fill(r) < 0)
            return NULL;
    }
}

/* The next n bytes and their "\r\n", or NULL. */
static const char *cl_block(struct cl_reader *r, size_t n)
{
    while (r->len - r->pos < n + 2)
        if (n + 2 > sizeof(r->buf) || cl_fill(r) < 0)
            return NULL;
    const char *p = r->buf + r->pos;
    r->pos += n + 2;
    return p;
}

size_t cl_set_many(int fd, char *const *keys, size_t n, const char *value, char *other,
                   size_t other_cap)
{
    static struct cl_reader r;
    r = (struct cl_reader){.fd = fd};
    size_t vlen = strlen(value), stored = 0;
    char *out = malloc(CL_SET_BATCH * (300 + vlen));
    cr_assert_not_null(out);
    if (other && other_cap)
        other[0] = '\0';
    for (size_t i = 0; i < n; i += CL_SET_BATCH) {
        size_t batch = n - i < CL_SET_BATCH ? n - i : CL_SET_BATCH, len = 0;
        for (size_t j = 0; j < batch; j++)
            len += (size_t)sprintf(out + len, "set %s 0 0 %zu\r\n%s\r\n", keys[i + j], vlen, value);
        if (cl_send_all(fd, out, len) < 0)
            goto fail;
        for (size_t j = 0; j < batch; j++) {
            char *line = cl_line(&r);
            if (!line)
                goto fail;
            if (strcmp(line, "STORED") == 0)
                stored++;
            else if (other && other_cap && !other[0])
                snprintf(other, other_cap, "%s", line);
        }
    }
    free(out);
    return stored;
fail:
    free(out);
    return (size_t)-1;
}

/* Marks the keys of one multi-get reply; returns how many were marked, or -1. */
static long cl_read_values(struct cl_reader *r, char *const *keys, size_t n, const char *value,
                           bool *held)
{
    size_t next = 0, vlen = value ? strlen(value) : 0;
    long count = 0;
    for (;;) {
        char *line = cl_line(r);
        if (!line)
            return -1;
        if (strcmp(line, "END") == 0)
            return count;
        char key[256];
        unsigned flags;
        size_t bytes;
        if (sscanf(line, "VALUE %255s %u %zu", key, &flags, &bytes) != 3)
            return -1;
        const char *data = cl_block(r, bytes);
        if (!data)
            return -1;
        /* Hits come back in request order: search forward from the last one. */
        for (size_t k = 0; k < n; k++) {
            size_t j = (next + k) % n;
            if (strcmp(keys[j], key) != 0)
                continue;
            bool same = !value || (bytes == vlen && memcmp(data, value, vlen) == 0);
            if (same && !held[j]) {
                held[j] = true;
                count++;
            }
            next = j + 1;
            break;
        }
    }
}

size_t cl_held(int fd, char *const *keys, size_t n, const char *value, bool *held)
{
    static struct cl_reader r;
    r = (struct cl_reader){.fd = fd};
    char *out = malloc(CL_GET_BATCH * 256 + 16);
    cr_assert_not_null(out);
    size_t total = 0;
    for (size_t i = 0; i < n; i += CL_GET_BATCH) {
        size_t batch = n - i < CL_GET_BATCH ? n - i : CL_GET_BATCH;
        size_t len = (size_t)sprintf(out, "get");
        for (size_t j = 0; j < batch; j++) {
            held[i + j] = false;
            len += (size_t)sprintf(out + len, " %s", keys[i + j]);
        }
        len += (size_t)sprintf(out + len, "\r\n");
        long got = cl_send_all(fd, out, len) < 0
                       ? -1
                       : cl_read_values(&r, keys + i, batch, value, held + i);
        if (got < 0) {
            free(out);
            return (size_t)-1;
        }
        total += (size_t)got;
    }
    free(out);
    return total;
}

int cl_command(int fd, const char *cmd, char *reply, size_t cap)
{
    static struct cl_reader r;
    r = (struct cl_reader){.fd = fd};
    char line[512];
    snprintf(line, sizeof(line), "%s\r\n", cmd);
    if (cl_send_all(fd, line, strlen(line)) < 0)
        return -1;
    char *got = cl_line(&r);
    if (!got)
        return -1;
    snprintf(reply, cap, "%s", got);
    return 0;
}

pid_t cl_spawn_piped(char *const argv[], int *to_child, int *from_child)
{
    int in[2], out[2];
    cr_assert_eq(pipe2(in, O_CLOEXEC), 0);
    cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
    pid_t pid = su_fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(in[0], STDIN_FILENO);
        dup2(out[1], STDOUT_FILENO);
        execv(argv[0], argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    *to_child = in[1];
    *from_child = out[0];
    return pid;
}

int cl_read_line(int fd, char *buf, size_t cap, unsigned ms)
{
    uint64_t end = nu_now_ms() + ms;
    size_t len = 0;
    while (len + 1 < cap) {
        uint64_t now = nu_now_ms();
        struct pollfd p = {fd, POLLIN, 0};
        if (now >= end || poll(&p, 1, (int)(end - now)) <= 0)
            return -1;
        char c;
        if (read(fd, &c, 1) != 1)
            return -1;
        if (c == '\n')
            break;
        buf[len++] = c;
    }
    buf[len] = '\0';
    return (int)len;
}
