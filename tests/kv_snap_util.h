/*
 * Helpers of the sn-kv snapshot tests (test_kv_snapshot*.c): a server process on port 0
 * whose stdout and stderr go to files in the test's scratch directory (the port is read
 * from its "listening on" line, its messages are checked), and a fast pipelined client that
 * stores and checks many items with the meta commands (ms ... c answers the cas unique; mg
 * ... v f c t answers value, flags, cas and remaining TTL), a batch of commands at a time.
 *
 * Items are a pure function of their index: key "<prefix><i>", a value of 8..63 bytes,
 * client flags, and for every fourth a TTL of about a day (the others never expire), so a
 * check needs only the cas uniques and the absolute expiry times recorded at store time.
 */
#ifndef SN_TESTS_KV_SNAP_UTIL_H
#define SN_TESTS_KV_SNAP_UTIL_H

#include <dirent.h>
#include <sys/stat.h>

#include "reactor_util.h"
#include "support/server_proc.h"

#define KS_WAIT_MS (SN_TEST_SLOW ? 180000u : 60000u)
#define KS_BATCH   8192 /* commands per round trip */

/* ---- scratch directory ---- */

/* A fresh directory under /tmp into dir (cap >= 64). */
static inline void ks_mkdtemp(char *dir, size_t cap)
{
    snprintf(dir, cap, "/tmp/sn-test-snap-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

/* Removes dir and the files in it (one level of subdirectories). */
static inline void ks_rmtree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char p[PATH_MAX];
        if (snprintf(p, sizeof p, "%s/%s", dir, e->d_name) >= (int)sizeof p)
            continue;
        if (unlink(p) < 0 && errno == EISDIR)
            ks_rmtree(p);
        else if (errno == EISDIR)
            rmdir(p);
    }
    closedir(d);
    rmdir(dir);
}

/* The whole content of a file (malloc'd, NUL terminated; "" when missing). */
static inline char *ks_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    size_t n = 0, cap = 4096;
    char *b = malloc(cap);
    if (f) {
        size_t r;
        while ((r = fread(b + n, 1, cap - n - 1, f)) > 0) {
            n += r;
            if (cap - n < 2)
                b = realloc(b, cap *= 2);
        }
        fclose(f);
    }
    b[n] = '\0';
    if (len)
        *len = n;
    return b;
}

/* ---- the server process ---- */

struct ks_server {
    pid_t pid;
    uint16_t port;
    char out[PATH_MAX], err[PATH_MAX];
};

/*
 * Starts sn-kv --smp ncores --unpinned --port 0 -m 1024 --snapshot snapdir [extra...] with
 * stdout and stderr into logdir/<tag>.out and .err. Returns 1 once it listens (s->port
 * set), 0 when it exited first (s->pid reaped; its status in *status).
 */
static inline int ks_start(struct ks_server *s, const char *logdir, const char *tag,
                           const char *snapdir, unsigned ncores, const char *const *extra,
                           int *status)
{
    char path[PATH_MAX + 32], smp[16];
    su_bin("kv", path, sizeof path);
    snprintf(smp, sizeof smp, "%u", ncores);
    snprintf(s->out, sizeof s->out, "%s/%s.out", logdir, tag);
    snprintf(s->err, sizeof s->err, "%s/%s.err", logdir, tag);
    const char *argv[32] = {"sn-kv", "--smp", smp,    "--unpinned", "--port",
                            "0",     "-m",    "1024", "--snapshot", snapdir};
    int n = 10;
    for (int i = 0; extra && extra[i] && n < 31; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    s->port = 0;
    s->pid = su_fork();
    cr_assert_geq(s->pid, 0);
    if (s->pid == 0) {
        int o = open(s->out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(s->err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(o, STDOUT_FILENO);
        dup2(e, STDERR_FILENO);
        execv(path, (char *const *)argv);
        _exit(127);
    }
    uint64_t end = nu_now_ms() + KS_WAIT_MS;
    while (nu_now_ms() < end) {
        char *text = ks_slurp(s->out, NULL);
        const char *l = strstr(text, "listening on 127.0.0.1:");
        unsigned port = 0;
        if (l && sscanf(l, "listening on 127.0.0.1:%u,", &port) == 1 && port) {
            free(text);
            s->port = (uint16_t)port;
            return 1;
        }
        free(text);
        siginfo_t si = {0};
        /* WNOWAIT: look without reaping, so su_wait_exit gets the status. */
        if (waitid(P_PID, (id_t)s->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid) {
            int st = su_wait_exit(s->pid, 1000);
            if (status)
                *status = st;
            s->pid = 0;
            return 0;
        }
        usleep(2000);
    }
    cr_assert_fail("sn-kv did not listen within %u ms", KS_WAIT_MS);
    return 0;
}

/* As ks_start, asserting that it listens. */
static inline void ks_start_ok(struct ks_server *s, const char *logdir, const char *tag,
                               const char *snapdir, unsigned ncores, const char *const *extra)
{
    int st = 0;
    cr_assert_eq(ks_start(s, logdir, tag, snapdir, ncores, extra, &st), 1,
                 "%s: sn-kv started (status 0x%x): %s", tag, (unsigned)st, ks_slurp(s->err, NULL));
}

/* SIGTERM; asserts exit code `want` within the bound. */
static inline void ks_stop(struct ks_server *s, int want)
{
    kill(s->pid, SIGTERM);
    int st = su_wait_exit(s->pid, KS_WAIT_MS);
    s->pid = 0;
    cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == want,
              "sn-kv exits %d after SIGTERM (status 0x%x): %s", want, (unsigned)st,
              ks_slurp(s->err, NULL));
}

/* Lines of a log file (stdout or stderr of the server). */
static inline unsigned ks_lines(const char *path)
{
    char *t = ks_slurp(path, NULL);
    unsigned n = 0;
    for (const char *p = t; *p; p++)
        n += *p == '\n';
    free(t);
    return n;
}

/*
 * Lines of the server's own messages in a log ("sn-kv: ..."): libsn's stall reports, which a
 * loaded machine makes at any time, are not counted.
 */
static inline unsigned ks_messages(const char *path)
{
    char *t = ks_slurp(path, NULL);
    unsigned n = 0;
    for (const char *p = t; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        n += strncmp(p, "sn-kv:", 6) == 0;
    free(t);
    return n;
}

static inline bool ks_log_has(const char *path, const char *what)
{
    char *t = ks_slurp(path, NULL);
    bool has = strstr(t, what) != NULL;
    free(t);
    return has;
}

/* ---- items ---- */

struct ks_item {
    char key[32];
    char value[64];
    size_t nkey, nvalue;
    uint32_t flags;
    unsigned ttl; /* 0: never expires */
};

/* An item's TTL alone (what ks_item gives it), without making its value. */
static inline unsigned ks_item_ttl(uint32_t i)
{
    uint64_t h = (uint64_t)i * 0x9E3779B97F4A7C15ull ^ 0x5bd1e995u;
    uint64_t r = nu_rand(&h);
    return i % 4 == 0 ? 86400 + (unsigned)(r % 3600) : 0;
}

static inline void ks_item(const char *prefix, uint32_t i, struct ks_item *it)
{
    uint64_t h = (uint64_t)i * 0x9E3779B97F4A7C15ull ^ 0x5bd1e995u;
    uint64_t r = nu_rand(&h);
    it->nkey = (size_t)snprintf(it->key, sizeof it->key, "%s%u", prefix, i);
    it->nvalue = 8 + (size_t)(r % 56);
    for (size_t k = 0; k < it->nvalue; k++)
        it->value[k] = (char)('!' + (nu_rand(&h) % 94));
    it->flags = (uint32_t)(r >> 20);
    it->ttl = i % 4 == 0 ? 86400 + (unsigned)(r % 3600) : 0;
}

/*
 * What was stored: the cas unique and the absolute expiry (0: never) of every item. The server
 * set the expiry at some second between sending the batch (exp) and reading its answer
 * (exp + exp_late[i]): a loaded machine or a sanitizer build can take seconds in between.
 */
struct ks_stored {
    uint32_t n;
    uint64_t *cas;
    int64_t *exp;
    uint8_t *exp_late;
    uint64_t max_cas;
};

static inline void ks_stored_free(struct ks_stored *st)
{
    free(st->cas);
    free(st->exp);
    free(st->exp_late);
    *st = (struct ks_stored){0};
}

/* A connection that is sent a batch while its answers are read (neither side blocks). */
struct ks_conn {
    int fd;
    char *buf;
    size_t len, cap, pos; /* pos: how far the answers are parsed */
};

static inline void ks_conn_open(struct ks_conn *c, uint16_t port)
{
    *c = (struct ks_conn){.fd = nu_connect(port), .cap = 1 << 20};
    cr_assert_geq(c->fd, 0, "connect to %u", port);
    c->buf = malloc(c->cap);
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
}

static inline void ks_conn_close(struct ks_conn *c)
{
    close(c->fd);
    free(c->buf);
}

/* Reads what has come; false when the peer closed or failed. */
static inline bool ks_recv(struct ks_conn *c)
{
    if (c->cap - c->len < 65536) {
        memmove(c->buf, c->buf + c->pos, c->len - c->pos);
        c->len -= c->pos;
        c->pos = 0;
        if (c->cap - c->len < 65536)
            c->buf = realloc(c->buf, c->cap *= 2);
    }
    ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
    if (n > 0)
        c->len += (size_t)n;
    return n > 0 || (n < 0 && errno == EAGAIN);
}

/* One complete answer at c->pos: its length (0 when it has not all come yet). */
typedef size_t (*ks_answer_fn)(const char *p, size_t avail);

/* "HD c<cas>\r\n", "EN\r\n", ...: one line. */
static inline size_t ks_line_answer(const char *p, size_t avail)
{
    const char *nl = memchr(p, '\n', avail);
    return nl ? (size_t)(nl - p) + 1 : 0;
}

/* "VA <n> ...\r\n<n bytes>\r\n" or one line. */
static inline size_t ks_mg_answer(const char *p, size_t avail)
{
    size_t line = ks_line_answer(p, avail);
    if (!line || strncmp(p, "VA ", 3) != 0)
        return line;
    size_t n = strtoul(p + 3, NULL, 10);
    return avail >= line + n + 2 ? line + n + 2 : 0;
}

/* Sends req while reading, until `want` answers arrived; calls on(answer) for each. */
static inline void ks_exchange(struct ks_conn *c, const char *req, size_t len, size_t want,
                               ks_answer_fn answer, void (*on)(void *arg, const char *a, size_t n),
                               void *arg)
{
    size_t sent = 0, got = 0;
    uint64_t end = nu_now_ms() + KS_WAIT_MS;
    while (got < want) {
        cr_assert_lt(nu_now_ms(), end, "answers within %u ms (%zu of %zu)", KS_WAIT_MS, got, want);
        struct pollfd p = {c->fd, (short)(POLLIN | (sent < len ? POLLOUT : 0)), 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        if ((p.revents & POLLOUT) && sent < len) {
            ssize_t w = send(c->fd, req + sent, len - sent, MSG_NOSIGNAL);
            cr_assert(w > 0 || errno == EAGAIN, "send: %s", strerror(errno));
            if (w > 0)
                sent += (size_t)w;
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            cr_assert(ks_recv(c), "the server closed the connection");
            size_t n;
            while (got < want && (n = answer(c->buf + c->pos, c->len - c->pos)) > 0) {
                on(arg, c->buf + c->pos, n);
                c->pos += n;
                got++;
            }
        }
    }
}

struct ks_batch {
    const char *prefix;
    uint32_t first;
    struct ks_stored *st;
    uint32_t next; /* index of the next answer */
    time_t t0;     /* wall clock when the batch was sent */
    unsigned bad, absent;
    bool (*expect_absent)(const struct ks_item *it, void *arg);
    void *arg;
};

static inline void ks_on_stored(void *arg, const char *a, size_t n)
{
    struct ks_batch *b = arg;
    uint32_t i = b->next++;
    char *end = NULL;
    uint64_t cas = n > 5 && memcmp(a, "HD c", 4) == 0 ? strtoull(a + 4, &end, 10) : 0;
    cr_assert(end && *end == '\r', "ms answers HD c<cas>: %.*s", (int)n, a);
    unsigned ttl = ks_item_ttl(i);
    b->st->cas[i] = cas;
    b->st->exp[i] = ttl ? (int64_t)b->t0 + ttl : 0;
    time_t late = time(NULL) - b->t0;
    b->st->exp_late[i] = late > 255 ? 255 : (uint8_t)late;
    if (cas > b->st->max_cas)
        b->st->max_cas = cas;
}

/* Stores items 0..n-1 (ms with F, T and c): fills st. */
static inline void ks_store_all(uint16_t port, const char *prefix, uint32_t n, struct ks_stored *st)
{
    *st = (struct ks_stored){
        .n = n, .cas = calloc(n, 8), .exp = calloc(n, 8), .exp_late = calloc(n, 1)};
    struct ks_conn c;
    ks_conn_open(&c, port);
    char *req = malloc((size_t)KS_BATCH * 160);
    struct ks_batch b = {.prefix = prefix, .st = st};
    for (uint32_t first = 0; first < n; first += KS_BATCH) {
        uint32_t k = n - first < KS_BATCH ? n - first : KS_BATCH;
        size_t len = 0;
        for (uint32_t i = first; i < first + k; i++) {
            struct ks_item it;
            ks_item(prefix, i, &it);
            len += (size_t)sprintf(req + len, "ms %s %zu F%u T%u c\r\n", it.key, it.nvalue,
                                   it.flags, it.ttl);
            memcpy(req + len, it.value, it.nvalue);
            memcpy(req + len + it.nvalue, "\r\n", 2);
            len += it.nvalue + 2;
        }
        b.next = first;
        b.t0 = time(NULL);
        ks_exchange(&c, req, len, k, ks_line_answer, ks_on_stored, &b);
    }
    free(req);
    ks_conn_close(&c);
}

static inline void ks_on_checked(void *arg, const char *a, size_t n)
{
    struct ks_batch *b = arg;
    uint32_t i = b->next++;
    struct ks_item it;
    ks_item(b->prefix, i, &it);
    bool absent = b->expect_absent && b->expect_absent(&it, b->arg);
    if (strncmp(a, "EN\r\n", 4) == 0) {
        b->absent++;
        if (!absent && b->bad++ < 5)
            cr_log_error("%s: missing", it.key);
        return;
    }
    unsigned long long len, flags, cas;
    long long ttl;
    int hdr = 0;
    bool ok = sscanf(a, "VA %llu f%llu c%llu t%lld%n", &len, &flags, &cas, &ttl, &hdr) == 4 &&
              !absent && len == it.nvalue && flags == it.flags && cas == b->st->cas[i];
    const char *v = memchr(a, '\n', n);
    ok = ok && v && memcmp(v + 1, it.value, it.nvalue) == 0;
    /* The TTL left: the stored absolute expiry minus the wall clock when the server answered,
     * some second from sending this batch to now (the store's window widens it; memcached's
     * whole seconds add one either side). */
    if (ok && it.ttl) {
        long long at = b->st->exp[i] - ttl, late = b->st->exp_late[i];
        ok = ttl > 0 && at >= (long long)b->t0 - 1 - late && at <= (long long)time(NULL) + 1;
    } else if (ok)
        ok = ttl == -1;
    if (!ok && b->bad++ < 5)
        cr_log_error("%s: %s%.*s", it.key, absent ? "present, should be gone: " : "",
                     (int)(v ? v - a : (long)n), a);
}

/*
 * Checks items 0..n-1 (mg v f c t, which neither bumps nor changes them): each is back with
 * its value, flags, cas and expiry, unless expect_absent says it should be gone. Returns the
 * number of items that were not as expected (the first few are logged); *absent (may be
 * NULL) gets how many were missing.
 */
static inline unsigned ks_check_all(uint16_t port, const char *prefix, const struct ks_stored *st,
                                    bool (*expect_absent)(const struct ks_item *, void *),
                                    void *arg, unsigned *absent)
{
    struct ks_conn c;
    ks_conn_open(&c, port);
    char *req = malloc((size_t)KS_BATCH * 64);
    struct ks_batch b = {
        .prefix = prefix, .st = (struct ks_stored *)st, .expect_absent = expect_absent, .arg = arg};
    for (uint32_t first = 0; first < st->n; first += KS_BATCH) {
        uint32_t k = st->n - first < KS_BATCH ? st->n - first : KS_BATCH;
        size_t len = 0;
        for (uint32_t i = first; i < first + k; i++) {
            struct ks_item it;
            ks_item(prefix, i, &it);
            len += (size_t)sprintf(req + len, "mg %s v f c t\r\n", it.key);
        }
        b.next = first;
        b.t0 = time(NULL);
        ks_exchange(&c, req, len, k, ks_mg_answer, ks_on_checked, &b);
    }
    free(req);
    ks_conn_close(&c);
    if (absent)
        *absent = b.absent;
    return b.bad;
}

/* One request on a new connection: the answer up to `until` (malloc'd). */
static inline char *ks_ask(uint16_t port, const char *req, const char *until)
{
    int fd = nu_connect(port);
    cr_assert_geq(fd, 0);
    nu_send_all(fd, req, strlen(req));
    char *buf = malloc(65536);
    bool eof;
    su_read_until(fd, buf, 65536, until, KS_WAIT_MS, &eof);
    close(fd);
    return buf;
}

#endif
