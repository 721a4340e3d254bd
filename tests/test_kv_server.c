/*
 * The sn-kv binary end to end: started with fork/exec (--smp 2 or 4, --unpinned, a free port),
 * driven over loopback with raw sockets, stopped with SIGTERM (exit code 0 required, so a
 * sanitizer report or leak at exit fails the test too).
 *
 * Which core owns a key is computed here with the same partitioner the server uses
 * (sn_partition_from_string with the --partitioner spec), so every test can pick keys owned
 * by every core and check the per-core lines of "stats".
 *
 * Covered: many clients on many connections with a model of their own keys plus shared keys
 * (values always as the model says) and read-after-write across connections; long pipelines
 * of mixed commands across cores answered byte for byte in order; multi-gets across cores;
 * large values; memcached's exact errors; flush_all; stats; quit; -c; the metrics page; and
 * `memccapable -a` (libmemcached-tools) passing all its ASCII tests.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>

#include "reactor_util.h"
#include "support/server_proc.h"

#define IO_MS (SN_TEST_SLOW ? 60000 : 20000)

/* ---- the server process ------------------------------------------------------------------ */

struct kvs {
    struct su_server s;
    uint16_t port;  /* s.port */
    uint16_t mport; /* s.port2: --metrics-port */
    unsigned ncores;
    struct sn_partition *part;
};

static struct kvs srv;

/* Runs sn-kv with these extra arguments (NULL-terminated list) to completion: exit status. */
static int run_to_exit(const char *first, ...)
{
    char *argv[16] = {"sn-kv", "--smp", "1", "--unpinned", "--port", "0"};
    int n = 6;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && n < 15; a = va_arg(ap, const char *))
        argv[n++] = (char *)a;
    va_end(ap);
    argv[n] = NULL;
    return su_run_to_exit("kv", argv, true);
}

/*
 * Starts sn-kv on `ncores` cores with partitioner `spec` and up to 7 extra arguments (NULL
 * terminated) on a free port; waits until it accepts. Fills srv.
 */
static void kvs_start(unsigned ncores, const char *spec, ...)
{
    char smp[8];
    snprintf(smp, sizeof smp, "%u", ncores);
    const char *args[24] = {"--smp",         smp,  "--unpinned",     "--port",
                            SU_PORT,         "--partitioner", spec, "--metrics-port",
                            SU_PORT2};
    int n = 9;
    va_list ap;
    va_start(ap, spec);
    for (int i = 0; i < 7; i++)
        if (!(args[n++] = va_arg(ap, const char *)))
            break;
    va_end(ap);
    char err[128];
    srv.ncores = ncores;
    cr_assert_eq(sn_partition_from_string(&srv.part, spec, ncores, err, sizeof err), 0, "%s",
                 err);
    su_start_args(&srv.s, "kv", args);
    srv.port = srv.s.port;
    srv.mport = srv.s.port2;
}

/* SIGTERM must end the server with exit code 0 (and, under ASan, no leak report). */
static void kvs_stop(void)
{
    su_stop_clean(&srv.s);
}

/* Whatever happened in the test: nothing it started survives it. */
static void kvs_fini(void)
{
    su_reap_all();
    srv.s.pid = 0;
    sn_partition_destroy(srv.part);
    srv.part = NULL;
}

TestSuite(kv, .fini = kvs_fini);

static unsigned owner(const char *key)
{
    return sn_partition(srv.part, key, strlen(key));
}

/* Names prefix0, prefix1, ... until each core owns `per_core` of them: keys[ncores*per_core]. */
static void keys_on_every_core(const char *prefix, unsigned per_core, char (*keys)[48])
{
    unsigned have[MAXC] = {0}, n = 0, want = per_core * srv.ncores;
    for (unsigned i = 0; n < want; i++) {
        char k[48];
        snprintf(k, sizeof k, "%s%u", prefix, i);
        unsigned o = owner(k);
        if (have[o] < per_core) {
            have[o]++;
            memcpy(keys[n++], k, sizeof k);
        }
    }
}

/* ---- a growable byte buffer ---------------------------------------------------------------- */

struct dbuf {
    char *p;
    size_t len, cap;
};

static void db_put(struct dbuf *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->p = realloc(b->p, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
}

__attribute__((format(printf, 2, 3))) static void db_printf(struct dbuf *b, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    db_put(b, tmp, (size_t)n);
}

static void db_free(struct dbuf *b)
{
    free(b->p);
    *b = (struct dbuf){0};
}

/* ---- client I/O ------------------------------------------------------------------------------ */

static int kc_connect(void)
{
    int fd = nu_connect(srv.port);
    cr_assert_geq(fd, 0, "connect: %s", strerror(-fd));
    nu_timeout(fd, IO_MS);
    return fd;
}

/*
 * Sends req while reading the answer (so neither side can block the other), until `want`
 * bytes came back or the peer closed. Returns the bytes read into *resp (malloc'ed, NUL
 * terminated).
 */
static size_t exchange(int fd, const char *req, size_t reqlen, size_t want, char **resp)
{
    char *r = malloc(want + 1);
    size_t sent = 0, got = 0;
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    uint64_t end = nu_now_ms() + IO_MS;
    while ((got < want || sent < reqlen) && nu_now_ms() < end) {
        struct pollfd p = {fd, (short)(POLLIN | (sent < reqlen ? POLLOUT : 0)), 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        if ((p.revents & POLLOUT) && sent < reqlen) {
            size_t n = reqlen - sent < 65536 ? reqlen - sent : 65536;
            ssize_t w = send(fd, req + sent, n, MSG_NOSIGNAL);
            if (w > 0)
                sent += (size_t)w;
            else if (w < 0 && errno != EAGAIN)
                break;
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = got < want ? recv(fd, r + got, want - got, 0) : 0;
            if (n > 0)
                got += (size_t)n;
            else if (n == 0 || errno != EAGAIN)
                break;
        }
    }
    fcntl(fd, F_SETFL, fl);
    r[got] = '\0';
    *resp = r;
    return got;
}

/* Sends req and asserts the answer is exactly want. */
static void expect_exact(int fd, const char *req, size_t reqlen, const char *want, size_t wantlen,
                         const char *what)
{
    char *got;
    size_t n = exchange(fd, req, reqlen, wantlen, &got);
    size_t i = 0;
    while (i < n && got[i] == want[i])
        i++;
    if (n != wantlen || i != wantlen) {
        size_t from = i > 40 ? i - 40 : 0;
        cr_log_info("%s: answer differs at byte %zu of %zu (got %zu)", what, i, wantlen, n);
        cr_log_info("want: %.*s", (int)(wantlen - from < 120 ? wantlen - from : 120), want + from);
        cr_log_info("got:  %.*s", (int)(n - from < 120 ? n - from : 120), got + from);
    }
    free(got);
    cr_assert(n == wantlen && i == wantlen, "%s: the answer is exactly memcached's", what);
}

static void expect_str(int fd, const char *req, const char *want)
{
    expect_exact(fd, req, strlen(req), want, strlen(want), req);
}

/* Reads until the buffer ends with `term` (or the peer closes): malloc'ed, NUL terminated. */
static char *read_until(int fd, const char *term)
{
    struct dbuf b = {0};
    size_t tl = strlen(term);
    char tmp[16384];
    while (b.len < tl || memcmp(b.p + b.len - tl, term, tl) != 0) {
        ssize_t n = recv(fd, tmp, sizeof tmp, 0);
        if (n <= 0)
            break;
        db_put(&b, tmp, (size_t)n);
    }
    if (!b.p)
        db_put(&b, "", 0);
    return b.p;
}

/* True when the peer closes the connection (EOF) within the I/O timeout. */
static bool sees_eof(int fd)
{
    char c;
    return recv(fd, &c, 1, 0) == 0;
}

/* "stats" on a fresh connection: the value of STAT name, or -1. */
static long long stat_of(const char *stats, const char *name)
{
    char pat[96];
    snprintf(pat, sizeof pat, "STAT %s ", name);
    const char *p = strstr(stats, pat);
    return p ? atoll(p + strlen(pat)) : -1;
}

static char *get_stats(void)
{
    int fd = kc_connect();
    nu_send_all(fd, "stats\r\n", 7);
    char *s = read_until(fd, "END\r\n");
    close(fd);
    return s;
}

/* ---- a model of one client's keys ---------------------------------------------------------- */

#define MKEYS 24

struct model {
    char keys[MKEYS][48];
    char val[MKEYS][64];
    uint32_t flags[MKEYS];
    bool live[MKEYS];
    uint64_t rng;
    unsigned seq;
};

static void answer_value(struct dbuf *want, const struct model *m, unsigned k)
{
    if (m->live[k])
        db_printf(want, "VALUE %s %u %zu\r\n%s\r\n", m->keys[k], m->flags[k], strlen(m->val[k]),
                  m->val[k]);
}

/* memcached's reading of a counter: digits, then the end or a space (what follows the space
 * is not looked at: "5  x" counts as 5). False: not a number. */
static bool model_number(const char *v, uint64_t *out)
{
    char *end;
    if (!*v || *v < '0' || *v > '9')
        return false;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno)
        return false;
    *out = n;
    return *end == '\0' || *end == ' ';
}

/* incr/decr as memcached does it: a shorter result is padded with spaces in place. */
static void model_delta(struct model *m, unsigned k, bool incr, uint64_t d, struct dbuf *want)
{
    uint64_t n;
    if (!m->live[k]) {
        db_printf(want, "NOT_FOUND\r\n");
        return;
    }
    if (!model_number(m->val[k], &n)) {
        db_printf(want, "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
        return;
    }
    n = incr ? n + d : (d > n ? 0 : n - d);
    char digits[24];
    int len = snprintf(digits, sizeof digits, "%llu", (unsigned long long)n);
    size_t old = strlen(m->val[k]);
    if ((size_t)len < old) {
        memset(m->val[k], ' ', old);
        memcpy(m->val[k], digits, (size_t)len);
    } else {
        memcpy(m->val[k], digits, (size_t)len + 1);
    }
    db_printf(want, "%s\r\n", digits);
}

/* One random command on the model's keys: appends it to req and its answer to want. */
static void model_step(struct model *m, unsigned tid, struct dbuf *req, struct dbuf *want)
{
    unsigned k = (unsigned)(nu_rand(&m->rng) % MKEYS);
    const char *key = m->keys[k];
    unsigned r = (unsigned)(nu_rand(&m->rng) % 100);
    if (r < 25) {
        bool num = nu_rand(&m->rng) % 2;
        bool noreply = nu_rand(&m->rng) % 8 == 0;
        if (num)
            snprintf(m->val[k], sizeof m->val[k], "%u", (unsigned)(nu_rand(&m->rng) % 100000));
        else
            snprintf(m->val[k], sizeof m->val[k], "v%u-%u", tid, m->seq++);
        m->flags[k] = (uint32_t)(nu_rand(&m->rng) % 70000);
        m->live[k] = true;
        db_printf(req, "set %s %u 0 %zu%s\r\n%s\r\n", key, m->flags[k], strlen(m->val[k]),
                  noreply ? " noreply" : "", m->val[k]);
        if (!noreply)
            db_printf(want, "STORED\r\n");
    } else if (r < 50) {
        db_printf(req, "get %s\r\n", key);
        answer_value(want, m, k);
        db_printf(want, "END\r\n");
    } else if (r < 65) {
        /* A multi-get over keys of several cores, one key possibly twice. */
        unsigned n = 2 + (unsigned)(nu_rand(&m->rng) % 6), ks[8];
        db_printf(req, "get");
        for (unsigned i = 0; i < n; i++) {
            ks[i] = (unsigned)(nu_rand(&m->rng) % MKEYS);
            db_printf(req, " %s", m->keys[ks[i]]);
        }
        db_printf(req, "\r\n");
        for (unsigned i = 0; i < n; i++)
            answer_value(want, m, ks[i]);
        db_printf(want, "END\r\n");
    } else if (r < 75) {
        db_printf(req, "delete %s\r\n", key);
        db_printf(want, m->live[k] ? "DELETED\r\n" : "NOT_FOUND\r\n");
        m->live[k] = false;
    } else if (r < 85) {
        uint64_t d = nu_rand(&m->rng) % 1000;
        db_printf(req, "incr %s %llu\r\n", key, (unsigned long long)d);
        model_delta(m, k, true, d, want);
    } else if (r < 92) {
        uint64_t d = nu_rand(&m->rng) % 100000;
        db_printf(req, "decr %s %llu\r\n", key, (unsigned long long)d);
        model_delta(m, k, false, d, want);
    } else {
        db_printf(req, "append %s 0 0 1\r\nx\r\n", key);
        if (m->live[k] && strlen(m->val[k]) < sizeof m->val[k] - 1) {
            strcat(m->val[k], "x");
            db_printf(want, "STORED\r\n");
        } else if (m->live[k]) {
            /* Keep the model's buffer bounded: start the value over. */
            db_printf(req, "delete %s\r\n", key);
            strcat(m->val[k], "x");
            db_printf(want, "STORED\r\nDELETED\r\n");
            m->live[k] = false;
        } else {
            db_printf(want, "NOT_STORED\r\n");
        }
    }
}

static void model_init(struct model *m, unsigned tid)
{
    memset(m, 0, sizeof *m);
    char prefix[32];
    snprintf(prefix, sizeof prefix, "t%u:k", tid);
    keys_on_every_core(prefix, MKEYS / srv.ncores, m->keys);
    m->rng = 0x5eed0000u + tid;
}

/* ---- many clients ------------------------------------------------------------------------- */

#define SHARED 32

struct client {
    unsigned tid, rounds, depth;
    char (*shared)[48];
    char (*shared_val)[32];
    bool ok;
    char why[160];
};

/* One client: rounds of pipelined commands on its own keys, plus a get of a shared key. */
static void *client_run(void *arg)
{
    struct client *c = arg;
    int fd = nu_connect(srv.port);
    if (fd < 0) {
        snprintf(c->why, sizeof c->why, "connect: %s", strerror(-fd));
        return NULL;
    }
    nu_timeout(fd, IO_MS);
    struct model *m = malloc(sizeof *m);
    model_init(m, c->tid);
    c->ok = true;
    for (unsigned r = 0; r < c->rounds && c->ok; r++) {
        struct dbuf req = {0}, want = {0};
        for (unsigned i = 0; i < c->depth; i++)
            model_step(m, c->tid, &req, &want);
        unsigned s = (unsigned)(nu_rand(&m->rng) % SHARED);
        db_printf(&req, "get %s\r\n", c->shared[s]);
        db_printf(&want, "VALUE %s 7 %zu\r\n%s\r\nEND\r\n", c->shared[s],
                  strlen(c->shared_val[s]), c->shared_val[s]);
        char *got;
        size_t n = exchange(fd, req.p, req.len, want.len, &got);
        if (n != want.len || memcmp(got, want.p, n) != 0) {
            size_t i = 0;
            while (i < n && got[i] == want.p[i])
                i++;
            snprintf(c->why, sizeof c->why, "client %u round %u: differs at byte %zu: got '%.40s'",
                     c->tid, r, i, got + i);
            c->ok = false;
        }
        free(got);
        db_free(&req);
        db_free(&want);
    }
    free(m);
    close(fd);
    return NULL;
}

/* Read-after-write across connections: a STORED seen by the writer is seen by every reader. */
struct raw {
    char key[48];
    _Atomic unsigned published;
    _Atomic bool stop;
    unsigned n;
    bool ok;
    char why[160];
};

struct raw_rd {
    struct raw *w;
    bool ok;
    char why[160];
};

static void *raw_writer(void *arg)
{
    struct raw *w = arg;
    int fd = nu_connect(srv.port);
    nu_timeout(fd, IO_MS);
    char req[128], ans[16];
    w->ok = true;
    for (unsigned v = 1; v <= w->n && w->ok; v++) {
        int len = snprintf(req, sizeof req, "set %s 0 0 10\r\n%010u\r\n", w->key, v);
        nu_send_all(fd, req, (size_t)len);
        if (recv(fd, ans, 8, MSG_WAITALL) != 8 || memcmp(ans, "STORED\r\n", 8) != 0) {
            snprintf(w->why, sizeof w->why, "writer: no STORED for version %u", v);
            w->ok = false;
        }
        atomic_store(&w->published, v);
    }
    atomic_store(&w->stop, true);
    close(fd);
    return NULL;
}

static void *raw_reader(void *arg)
{
    struct raw_rd *r = arg;
    struct raw *w = r->w;
    int fd = nu_connect(srv.port);
    nu_timeout(fd, IO_MS);
    char req[96];
    int len = snprintf(req, sizeof req, "get %s\r\n", w->key);
    r->ok = true;
    while (!atomic_load(&w->stop) && r->ok) {
        unsigned before = atomic_load(&w->published);
        nu_send_all(fd, req, (size_t)len);
        char *a = read_until(fd, "END\r\n");
        unsigned seen = 0;
        const char *nl = strstr(a, "\r\n");
        if (strncmp(a, "VALUE ", 6) == 0 && nl)
            seen = (unsigned)strtoul(nl + 2, NULL, 10);
        free(a);
        if (seen < before) {
            snprintf(r->why, sizeof r->why, "reader saw version %u after %u was STORED", seen,
                     before);
            r->ok = false;
        }
    }
    close(fd);
    return NULL;
}

static void many_clients(unsigned ncores, const char *spec)
{
    kvs_start(ncores, spec, NULL);
    /* Shared keys on every core, written once, read by every client. */
    char(*shared)[48] = calloc(SHARED, sizeof *shared);
    char(*shared_val)[32] = calloc(SHARED, sizeof *shared_val);
    keys_on_every_core("shared:", SHARED / ncores, shared);
    int fd = kc_connect();
    struct dbuf req = {0}, want = {0};
    for (unsigned i = 0; i < SHARED; i++) {
        snprintf(shared_val[i], sizeof shared_val[i], "shared-value-%u", i * 7919);
        db_printf(&req, "set %s 7 0 %zu\r\n%s\r\n", shared[i], strlen(shared_val[i]),
                  shared_val[i]);
        db_printf(&want, "STORED\r\n");
    }
    expect_exact(fd, req.p, req.len, want.p, want.len, "preload");
    db_free(&req);
    db_free(&want);
    close(fd);

    enum { NCLIENTS = 16 };
    struct client cl[NCLIENTS];
    pthread_t th[NCLIENTS + 3];
    for (unsigned i = 0; i < NCLIENTS; i++) {
        cl[i] = (struct client){.tid = i, .rounds = SCALE(40, 4), .depth = 1 + i % 24,
                                .shared = shared, .shared_val = shared_val};
        pthread_create(&th[i], NULL, client_run, &cl[i]);
    }
    struct raw w = {.n = SCALE(400, 4)};
    /* A key owned by the last core, so most connections reach it across cores. */
    for (unsigned i = 0;; i++) {
        snprintf(w.key, sizeof w.key, "raw%u", i);
        if (owner(w.key) == ncores - 1)
            break;
    }
    pthread_create(&th[NCLIENTS], NULL, raw_writer, &w);
    struct raw_rd rd[2] = {{.w = &w}, {.w = &w}};
    pthread_create(&th[NCLIENTS + 1], NULL, raw_reader, &rd[0]);
    pthread_create(&th[NCLIENTS + 2], NULL, raw_reader, &rd[1]);
    for (unsigned i = 0; i < NCLIENTS + 3; i++)
        pthread_join(th[i], NULL);
    for (unsigned i = 0; i < NCLIENTS; i++)
        cr_expect(cl[i].ok, "client %u: %s", i, cl[i].why);
    cr_expect(w.ok, "read after write: %s", w.why);
    for (int i = 0; i < 2; i++)
        cr_expect(rd[i].ok, "read after write: %s", rd[i].why);
    free(shared);
    free(shared_val);
    kvs_stop();
}

Test(kv, many_clients_smp2, .timeout = 240)
{
    many_clients(2, "jump");
}

Test(kv, many_clients_smp4, .timeout = 240)
{
    many_clients(4, "hash");
}

/* ---- long pipelines answered in order ------------------------------------------------------ */

static void pipelined(unsigned ncores, const char *spec)
{
    kvs_start(ncores, spec, NULL);
    int fd = kc_connect();
    struct model *m = malloc(sizeof *m);
    model_init(m, 99);
    for (unsigned round = 0; round < SCALE(6, 3); round++) {
        struct dbuf req = {0}, want = {0};
        for (unsigned i = 0; i < SCALE(4000, 4); i++)
            model_step(m, 99, &req, &want);
        expect_exact(fd, req.p, req.len, want.p, want.len, "pipeline");
        db_free(&req);
        db_free(&want);
    }
    free(m);
    close(fd);
    kvs_stop();
}

Test(kv, pipelined_mixed_in_order_smp2, .timeout = 240)
{
    pipelined(2, "jump");
}

Test(kv, pipelined_mixed_in_order_smp4, .timeout = 240)
{
    pipelined(4, "rendezvous");
}

/* ---- multi-get across cores --------------------------------------------------------------- */

Test(kv, multiget_across_cores, .timeout = 120)
{
    kvs_start(4, "jump", NULL);
    enum { PER = 25 };
    char(*keys)[48] = calloc(4 * PER, sizeof *keys);
    keys_on_every_core("mg:", PER, keys);
    int fd = kc_connect();
    struct dbuf req = {0}, want = {0}, get = {0}, gets_ans = {0};
    /* Every other key is stored; the get asks for all of them in a shuffled order. */
    for (unsigned i = 0; i < 4 * PER; i += 2) {
        db_printf(&req, "set %s %u 0 %zu\r\n%s\r\n", keys[i], i, strlen(keys[i]), keys[i]);
        db_printf(&want, "STORED\r\n");
    }
    expect_exact(fd, req.p, req.len, want.p, want.len, "sets");
    uint64_t rng = 42;
    unsigned order[4 * PER];
    for (unsigned i = 0; i < 4 * PER; i++)
        order[i] = i;
    for (unsigned i = 4 * PER - 1; i > 0; i--) {
        unsigned j = (unsigned)(nu_rand(&rng) % (i + 1)), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    db_printf(&get, "get");
    for (unsigned i = 0; i < 4 * PER; i++) {
        unsigned k = order[i];
        db_printf(&get, " %s", keys[k]);
        if (k % 2 == 0)
            db_printf(&gets_ans, "VALUE %s %u %zu\r\n%s\r\n", keys[k], k, strlen(keys[k]), keys[k]);
    }
    db_printf(&get, "\r\n");
    db_printf(&gets_ans, "END\r\n");
    /* The same multi-get three times in one write: three whole answers, in order. */
    struct dbuf req3 = {0}, want3 = {0};
    for (int i = 0; i < 3; i++) {
        db_put(&req3, get.p, get.len);
        db_put(&want3, gets_ans.p, gets_ans.len);
    }
    expect_exact(fd, req3.p, req3.len, want3.p, want3.len, "multi-get across cores");
    /* A get where every key is missing, and one with a key repeated. */
    expect_str(fd, "get nope1 nope2 nope3 nope4\r\n", "END\r\n");
    char r[1024], w[1024];
    snprintf(r, sizeof r, "get %s %s %s\r\n", keys[0], keys[1], keys[0]);
    snprintf(w, sizeof w, "VALUE %.47s 0 %zu\r\n%.47s\r\nVALUE %.47s 0 %zu\r\n%.47s\r\nEND\r\n",
             keys[0], strlen(keys[0]), keys[0], keys[0], strlen(keys[0]), keys[0]);
    expect_str(fd, r, w);
    db_free(&req);
    db_free(&want);
    db_free(&get);
    db_free(&gets_ans);
    db_free(&req3);
    db_free(&want3);
    free(keys);
    close(fd);
    kvs_stop();
}

/* ---- large values ------------------------------------------------------------------------- */

Test(kv, large_values, .timeout = 120)
{
    kvs_start(2, "jump", NULL);
    char keys[4][48];
    keys_on_every_core("big:", 2, keys);
    /* The largest value a 1 MiB item can hold, a 700 KB one, and two small ones between. */
    size_t sizes[4] = {(1u << 20) - 100 - 64, 700000, 3, 65536};
    char *vals[4];
    struct dbuf req = {0}, want = {0};
    for (int i = 0; i < 4; i++) {
        vals[i] = malloc(sizes[i]);
        nu_fill((uint8_t *)vals[i], sizes[i], 1000 + (uint64_t)i);
        /* Binary data with "\r\n" inside must survive. */
        if (sizes[i] > 10)
            memcpy(vals[i] + sizes[i] / 2, "\r\nEND\r\n", 7);
        db_printf(&req, "set %s %d 0 %zu\r\n", keys[i], i, sizes[i]);
        db_put(&req, vals[i], sizes[i]);
        db_printf(&req, "\r\n");
        db_printf(&want, "STORED\r\n");
    }
    db_printf(&req, "get %s %s %s %s\r\n", keys[0], keys[1], keys[2], keys[3]);
    for (int i = 0; i < 4; i++) {
        db_printf(&want, "VALUE %s %d %zu\r\n", keys[i], i, sizes[i]);
        db_put(&want, vals[i], sizes[i]);
        db_printf(&want, "\r\n");
    }
    db_printf(&want, "END\r\n");
    int fd = kc_connect();
    expect_exact(fd, req.p, req.len, want.p, want.len, "large values across cores");
    /* Too large: refused, its data swallowed, the old value gone, the connection usable. */
    struct dbuf big = {0};
    size_t n = 2u << 20;
    char *junk = calloc(1, n);
    db_printf(&big, "set %s 0 0 %zu\r\n", keys[1], n);
    db_put(&big, junk, n);
    db_printf(&big, "\r\nget %s\r\nversion\r\n", keys[1]);
    const char *tl = "SERVER_ERROR object too large for cache\r\nEND\r\nVERSION 1.6.0-libsn\r\n";
    expect_exact(fd, big.p, big.len, tl, strlen(tl), "too large");
    free(junk);
    db_free(&big);
    for (int i = 0; i < 4; i++)
        free(vals[i]);
    db_free(&req);
    db_free(&want);
    close(fd);
    kvs_stop();
}

/* ---- errors, exactly as memcached 1.6 answers them ------------------------------------------ */

static const struct {
    const char *req, *want;
} errors[] = {
    {"bogus\r\n", "ERROR\r\n"},
    {"get\r\n", "ERROR\r\n"},
    {"GET k\r\n", "ERROR\r\n"},
    {"\r\n", "ERROR\r\n"},
    {"set k 0 0 abc\r\n", "CLIENT_ERROR bad command line format\r\n"},
    {"set k 0 0 -1\r\n", "CLIENT_ERROR bad command line format\r\n"},
    {"set k abc 0 1\r\nx\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n"},
    {"set k 0 0 3\r\nabcd\r\n", "CLIENT_ERROR bad data chunk\r\nERROR\r\n"},
    {"set k 0 0 1\r\n\r\n\r\n", "CLIENT_ERROR bad data chunk\r\nERROR\r\n"},
    {"set k 0 0 3\r\nabc\r\n", "STORED\r\n"},
    {"incr k abc\r\n", "CLIENT_ERROR invalid numeric delta argument\r\n"},
    {"incr k -1\r\n", "CLIENT_ERROR invalid numeric delta argument\r\n"},
    {"incr k 1\r\n", "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"},
    {"decr k 1\r\n", "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"},
    {"incr nokey 1\r\n", "NOT_FOUND\r\n"},
    {"delete k 5\r\n",
     "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"},
    {"delete k 0\r\n", "DELETED\r\n"},
    {"delete k\r\n", "NOT_FOUND\r\n"},
    {"touch k abc\r\n", "CLIENT_ERROR invalid exptime argument\r\n"},
    {"gat abc k\r\n", "CLIENT_ERROR invalid exptime argument\r\n"},
    {"flush_all abc\r\n", "CLIENT_ERROR invalid exptime argument\r\n"},
    {"verbosity\r\n", "ERROR\r\n"},
    {"verbosity 1\r\n", "OK\r\n"},
    {"cas k 0 0 1\r\n", "ERROR\r\n"},
    {"gets\r\n", "ERROR\r\n"},
    {"gat\r\n", "ERROR\r\n"},
    {"gat 10\r\n", "END\r\n"},
    {"stats foo\r\n", "ERROR\r\n"},
    {"set n 0 0 2\r\n10\r\n", "STORED\r\n"},
    {"incr n 18446744073709551615\r\n", "9\r\n"},
    {"decr n 100\r\n", "0\r\n"},
    {"get n\r\n", "VALUE n 0 2\r\n0 \r\nEND\r\n"},
    {"set k 0 0 1 noreply\r\nx\r\n", ""},
    {"prepend k 0 0 1\r\ny\r\n", "STORED\r\n"},
    {"get k\r\n", "VALUE k 0 2\r\nyx\r\nEND\r\n"},
    {"append nokey 0 0 1\r\nx\r\n", "NOT_STORED\r\n"},
    {"add k 0 0 1\r\nz\r\n", "NOT_STORED\r\n"},
    {"replace zz 0 0 1\r\nz\r\n", "NOT_STORED\r\n"},
    {"cas k 0 0 1 999\r\nq\r\n", "EXISTS\r\n"},
    {"cas zz 0 0 1 1\r\nq\r\n", "NOT_FOUND\r\n"},
    {"touch k 10\r\n", "TOUCHED\r\n"},
    {"set neg 0 -1 1\r\nx\r\n", "STORED\r\n"},
    {"get neg\r\n", "END\r\n"},
    /* A deliberate difference (issue 6): control bytes in a key are refused. */
    {"get a\001b\r\n", "CLIENT_ERROR bad command line format\r\n"},
};

Test(kv, errors_exactly_as_memcached, .timeout = 120)
{
    kvs_start(2, "jump", NULL);
    int fd = kc_connect();
    /* One at a time... */
    for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++)
        expect_str(fd, errors[i].req, errors[i].want);
    /* ...and all in one pipeline, with keys owned by other cores now and then. */
    struct dbuf req = {0}, want = {0};
    db_printf(&req, "flush_all\r\n");
    db_printf(&want, "OK\r\n");
    for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++) {
        db_printf(&req, "%s", errors[i].req);
        db_printf(&want, "%s", errors[i].want);
    }
    expect_exact(fd, req.p, req.len, want.p, want.len, "errors pipelined");
    /* Keys of 250 bytes are fine, 251 are not. */
    char k250[251], line[400];
    memset(k250, 'x', 250);
    k250[250] = '\0';
    snprintf(line, sizeof line, "get %s\r\n", k250);
    expect_str(fd, line, "END\r\n");
    snprintf(line, sizeof line, "get %sy\r\n", k250);
    expect_str(fd, line, "CLIENT_ERROR bad command line format\r\n");
    snprintf(line, sizeof line, "set %sy 0 0 1\r\nx\r\n", k250);
    expect_str(fd, line, "CLIENT_ERROR bad command line format\r\nERROR\r\n");
    db_free(&req);
    db_free(&want);
    close(fd);
    kvs_stop();
}

/* ---- flush_all, stats, quit, -c, metrics ----------------------------------------------------- */

Test(kv, flush_all_every_core, .timeout = 120)
{
    kvs_start(4, "jump", NULL);
    enum { PER = 8 };
    char(*keys)[48] = calloc(4 * PER, sizeof *keys);
    keys_on_every_core("fl:", PER, keys);
    int a = kc_connect(), b = kc_connect();
    struct dbuf req = {0}, want = {0}, get = {0};
    db_printf(&get, "get");
    for (unsigned i = 0; i < 4 * PER; i++) {
        db_printf(&req, "set %s 0 0 1\r\nx\r\n", keys[i]);
        db_printf(&want, "STORED\r\n");
        db_printf(&get, " %s", keys[i]);
    }
    db_printf(&get, "\r\n");
    /* Sets, flush_all and a get in one pipeline: the get comes after the flush everywhere. */
    db_printf(&req, "flush_all\r\n");
    db_printf(&want, "OK\r\n");
    db_put(&req, get.p, get.len);
    db_printf(&want, "END\r\n");
    expect_exact(a, req.p, req.len, want.p, want.len, "sets, flush_all, get");
    /* Again, then the get from another connection once OK was seen. */
    req.len = want.len = 0;
    for (unsigned i = 0; i < 4 * PER; i++) {
        db_printf(&req, "set %s 0 0 1\r\nx\r\n", keys[i]);
        db_printf(&want, "STORED\r\n");
    }
    db_printf(&req, "flush_all noreply\r\nflush_all 0\r\n");
    db_printf(&want, "OK\r\n");
    expect_exact(a, req.p, req.len, want.p, want.len, "sets, flush_all");
    expect_exact(b, get.p, get.len, "END\r\n", 5, "get on another connection");
    char *st = get_stats();
    cr_expect_eq(stat_of(st, "curr_items"), 0);
    cr_expect_eq(stat_of(st, "cmd_flush"), 4 * 3, "every core counted 3 flushes");
    free(st);
    db_free(&req);
    db_free(&want);
    db_free(&get);
    free(keys);
    close(a);
    close(b);
    kvs_stop();
}

static void stats_case(unsigned ncores, const char *spec)
{
    kvs_start(ncores, spec, "-m", "32", NULL);
    enum { N = 200 };
    int fd = kc_connect();
    struct dbuf req = {0}, want = {0};
    unsigned per[MAXC] = {0};
    for (unsigned i = 0; i < N; i++) {
        char k[32];
        snprintf(k, sizeof k, "st:%u", i);
        per[owner(k)]++;
        db_printf(&req, "set %s 0 0 2\r\nab\r\nget %s nokey\r\n", k, k);
        db_printf(&want, "STORED\r\nVALUE %s 0 2\r\nab\r\nEND\r\n", k);
    }
    expect_exact(fd, req.p, req.len, want.p, want.len, "sets and gets");
    char *st = get_stats();
    cr_expect_eq(stat_of(st, "pid"), srv.s.pid);
    cr_expect_eq(stat_of(st, "threads"), ncores);
    cr_expect_eq(stat_of(st, "curr_items"), N);
    cr_expect_eq(stat_of(st, "total_items"), N);
    cr_expect_eq(stat_of(st, "cmd_set"), N);
    cr_expect_eq(stat_of(st, "cmd_get"), 2 * N);
    cr_expect_eq(stat_of(st, "get_hits"), N);
    cr_expect_eq(stat_of(st, "get_misses"), N);
    cr_expect_eq(stat_of(st, "limit_maxbytes"), 32ll << 20);
    cr_expect_geq(stat_of(st, "curr_connections"), 2);
    cr_expect_geq(stat_of(st, "total_connections"), 2);
    cr_expect_gt(stat_of(st, "bytes_read"), (long long)req.len - 1);
    cr_expect_geq(stat_of(st, "uptime"), 0);
    cr_expect_gt(stat_of(st, "time"), 1600000000);
    cr_expect(strstr(st, "STAT version 1.6.0-libsn\r\n") != NULL);
    cr_expect(strncmp(st, "STAT pid ", 9) == 0, "stats starts with pid, as memcached's");
    for (unsigned c = 0; c < ncores; c++) {
        char name[48];
        snprintf(name, sizeof name, "core:%u:curr_items", c);
        cr_expect_eq(stat_of(st, name), per[c], "core %u owns %u keys", c, per[c]);
        snprintf(name, sizeof name, "core:%u:limit_maxbytes", c);
        cr_expect_eq(stat_of(st, name), (32ll << 20) / ncores);
    }
    free(st);
    expect_str(fd, "stats reset\r\n", "RESET\r\n");
    st = get_stats();
    cr_expect_eq(stat_of(st, "cmd_get"), 0);
    cr_expect_eq(stat_of(st, "curr_items"), N, "reset keeps the gauges");
    free(st);
    db_free(&req);
    db_free(&want);
    close(fd);
    kvs_stop();
}

Test(kv, stats_smp2, .timeout = 120)
{
    stats_case(2, "jump");
}

Test(kv, stats_smp4_ketama, .timeout = 120)
{
    stats_case(4, "ketama-xxh3");
}

Test(kv, quit_and_eof_close_after_answers, .timeout = 60)
{
    kvs_start(2, "jump", NULL);
    char keys[2][48];
    keys_on_every_core("q:", 1, keys);
    int fd = kc_connect();
    char req[1024], want[1024];
    snprintf(req, sizeof req, "set %s 0 0 1\r\na\r\nset %s 0 0 1\r\nb\r\nget %s %s\r\nquit\r\nget %s\r\n",
             keys[0], keys[1], keys[0], keys[1], keys[0]);
    snprintf(want, sizeof want, "STORED\r\nSTORED\r\nVALUE %s 0 1\r\na\r\nVALUE %s 0 1\r\nb\r\nEND\r\n",
             keys[0], keys[1]);
    expect_str(fd, req, want);
    cr_expect(sees_eof(fd), "quit closes the connection (nothing after it is answered)");
    close(fd);
    /* A client that half-closes still gets every answer, then EOF. */
    fd = kc_connect();
    snprintf(req, sizeof req, "get %s %s\r\n", keys[1], keys[0]);
    nu_send_all(fd, req, strlen(req));
    shutdown(fd, SHUT_WR);
    char *a = read_until(fd, "END\r\n");
    snprintf(want, sizeof want, "VALUE %s 0 1\r\nb\r\nVALUE %s 0 1\r\na\r\nEND\r\n", keys[1],
             keys[0]);
    cr_expect_str_eq(a, want);
    free(a);
    cr_expect(sees_eof(fd));
    close(fd);
    kvs_stop();
}

Test(kv, connection_limit, .timeout = 60)
{
    kvs_start(2, "jump", "-c", "4", NULL);
    int fds[4];
    for (int i = 0; i < 4; i++) {
        fds[i] = kc_connect();
        expect_str(fds[i], "version\r\n", "VERSION 1.6.0-libsn\r\n");
    }
    int extra = kc_connect();
    char *a = read_until(extra, "\r\n");
    cr_expect_str_eq(a, "ERROR Too many open connections\r\n");
    free(a);
    cr_expect(sees_eof(extra));
    close(extra);
    char *st = NULL;
    close(fds[3]);
    /* The closed slot frees up (the close is noticed asynchronously: retry a while). */
    bool ok = false;
    for (int i = 0; i < 200 && !ok; i++) {
        int fd = kc_connect();
        nu_send_all(fd, "stats\r\n", 7);
        st = read_until(fd, "\r\n");
        ok = strncmp(st, "STAT pid", 8) == 0;
        free(st);
        close(fd);
        if (!ok)
            usleep(10000);
    }
    cr_expect(ok, "a connection is accepted again once one closed");
    for (int i = 0; i < 3; i++)
        close(fds[i]);
    kvs_stop();
}

/*
 * The metrics listener starts after the main port answers, so a first connect can be
 * refused for a moment: retry for up to 5 s.
 */
static int connect_metrics(void)
{
    for (int i = 0; i < 500; i++) {
        int h = nu_connect(srv.mport);
        if (h >= 0)
            return h;
        usleep(10000);
    }
    return -1;
}

Test(kv, metrics_page, .timeout = 60)
{
    kvs_start(2, "jump", NULL);
    int fd = kc_connect();
    expect_str(fd, "set m 0 0 1\r\nx\r\nget m\r\n", "STORED\r\nVALUE m 0 1\r\nx\r\nEND\r\n");
    close(fd);
    int h = connect_metrics();
    cr_assert_geq(h, 0);
    nu_timeout(h, IO_MS);
    const char *get = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    nu_send_all(h, get, strlen(get));
    struct dbuf page = {0};
    char tmp[4096];
    ssize_t n;
    while ((n = recv(h, tmp, sizeof tmp, 0)) > 0)
        db_put(&page, tmp, (size_t)n);
    close(h);
    cr_assert_not_null(page.p);
    cr_expect(strncmp(page.p, "HTTP/1.1 200 OK\r\n", 17) == 0);
    cr_expect(strstr(page.p, "text/plain; version=0.0.4") != NULL);
    cr_expect(strstr(page.p, "# TYPE kv_cmd_get_total counter\n") != NULL);
    cr_expect(strstr(page.p, "kv_cmd_set_total{core=\"1\"}") != NULL);
    cr_expect(strstr(page.p, "kv_curr_connections{core=\"0\"}") != NULL);
    cr_expect(strstr(page.p, "sn_loops_total{core=\"1\"}") != NULL);
    long long items = 0;
    for (const char *p = page.p; (p = strstr(p, "\nkv_curr_items{")); p++)
        items += atoll(strchr(p, '}') + 1);
    cr_expect_eq(items, 1);
    db_free(&page);
    h = connect_metrics();
    nu_timeout(h, IO_MS);
    nu_send_all(h, "GET / HTTP/1.1\r\n\r\n", 18);
    char *a = read_until(h, "\r\n");
    cr_expect(strncmp(a, "HTTP/1.1 404 Not Found\r\n", 24) == 0, "%s", a);
    free(a);
    close(h);
    kvs_stop();
}

Test(kv, bad_command_lines, .timeout = 60)
{
    cr_expect_eq(run_to_exit("-m", "0", NULL), 2);
    cr_expect_eq(run_to_exit("-I", "12", NULL), 2);
    cr_expect_eq(run_to_exit("--port", "70000", NULL), 2);
    cr_expect_eq(run_to_exit("--bogus", NULL), 2);
    cr_expect_eq(run_to_exit("--idle-ms", "-1", NULL), 2);
    cr_expect_eq(run_to_exit("--idle-ms", "x", NULL), 2);
    cr_expect_eq(run_to_exit("--help", NULL), 0);
    /* Errors found once the cores are known: a start-up failure, exit 1. */
    cr_expect_eq(run_to_exit("--partitioner", "nonsense", NULL), 1);
    cr_expect_eq(run_to_exit("--partitioner", "round-robin", NULL), 1);
    cr_expect_eq(run_to_exit("-m", "1", "-I", "2m", NULL), 1);
}

/* ---- conformance: memccapable from libmemcached-tools ---------------------------------------- */

Test(kv, memccapable_ascii, .timeout = 180)
{
    cr_assert_eq(system("command -v memccapable >/dev/null 2>&1"), 0,
                 "memccapable is installed (Debian libmemcached-tools; make deps)");
    kvs_start(2, "jump", NULL);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "memccapable -a -h 127.0.0.1 -p %u -t %d 2>&1", srv.port,
             SN_TEST_SLOW ? 30 : 10);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    char line[256];
    unsigned pass = 0, fail = 0;
    bool all = false;
    while (fgets(line, sizeof line, p)) {
        if (strstr(line, "[pass]"))
            pass++;
        else if (strstr(line, "[") && strstr(line, "]"))
            fail++, cr_log_info("memccapable: %s", line);
        if (strstr(line, "All tests passed"))
            all = true;
    }
    int rc = pclose(p);
    cr_expect_eq(fail, 0, "no memccapable test fails");
    cr_expect_geq(pass, 27, "every ASCII test ran (%u passed)", pass);
    cr_expect(all, "memccapable says all tests passed");
    cr_expect_eq(rc, 0, "memccapable exit status");
    kvs_stop();
}

/* ---- back-pressure: big answers to a client that reads late ------------------------------- */

/*
 * Gets of two 64 KiB values (one on each core, so both the local path and the answers coming
 * back from the other core are covered), pipelined far beyond the server's output limit
 * (1 MiB), and one multi-get line asking for many of them, sent before the client reads
 * anything. The server stops parsing while too much waits (between two keys of the
 * multi-get, too) and goes on as the client reads, so the answers arrive byte for byte, in
 * order, none lost or doubled.
 */
Test(kv, big_answers_to_a_client_that_reads_late, .timeout = 120)
{
    kvs_start(2, "jump", NULL);
    char keys[2][48];
    keys_on_every_core("late:", 1, keys);
    size_t vlen = 65536;
    char *vals[2];
    struct dbuf req = {0}, want = {0};
    for (int i = 0; i < 2; i++) {
        vals[i] = malloc(vlen);
        nu_fill((uint8_t *)vals[i], vlen, 77 + (uint64_t)i);
        db_printf(&req, "set %s %d 0 %zu\r\n", keys[i], i, vlen);
        db_put(&req, vals[i], vlen);
        db_printf(&req, "\r\n");
        db_printf(&want, "STORED\r\n");
    }
    int fd = kc_connect();
    expect_exact(fd, req.p, req.len, want.p, want.len, "two 64 KiB values stored");
    req.len = want.len = 0;
    unsigned pairs = SCALE(150, 3), multi = SCALE(120, 3);
    for (unsigned i = 0; i < 2 * pairs + multi; i++) {
        unsigned k = i % 2;
        if (i < 2 * pairs)
            db_printf(&req, "get %s\r\n", keys[k]);
        else if (i == 2 * pairs)
            db_printf(&req, "get %s", keys[k]);
        else
            db_printf(&req, " %s", keys[k]);
        db_printf(&want, "VALUE %s %u %zu\r\n", keys[k], k, vlen);
        db_put(&want, vals[k], vlen);
        db_printf(&want, "\r\n");
        if (i < 2 * pairs)
            db_printf(&want, "END\r\n");
    }
    db_printf(&req, "\r\nversion\r\n");
    db_printf(&want, "END\r\nVERSION 1.6.0-libsn\r\n");
    cr_assert_eq(nu_send_all(fd, req.p, req.len), 0);
    usleep(300 * 1000); /* the server fills its output and stops parsing */
    expect_exact(fd, "", 0, want.p, want.len, "every answer, in order, after a pause");
    cr_log_info("%u gets and a %u-key get of 64 KiB values: %zu bytes of answers", 2 * pairs,
                multi, want.len);
    close(fd);
    for (int i = 0; i < 2; i++)
        free(vals[i]);
    db_free(&req);
    db_free(&want);
    kvs_stop();
}

/*
 * 2 MiB of pipelined gets (one key on each core) sent before the client reads anything: the
 * server stops parsing while its output is full and libsn may hold up to its whole receive
 * ring for the connection meanwhile; that must never cut the client off (-EMSGSIZE), see
 * KV_INPUT_SLACK in kv.h. Every get is answered.
 */
Test(kv, two_mib_pipelined_ahead_of_reading, .timeout = 120)
{
    kvs_start(2, "jump", NULL);
    char keys[2][48], unit[128], req[256];
    keys_on_every_core("ahead:", 1, keys);
    int fd = kc_connect();
    snprintf(req, sizeof req, "set %s 0 0 10\r\n0123456789\r\nset %s 0 0 10\r\n0123456789\r\n",
             keys[0], keys[1]);
    expect_str(fd, req, "STORED\r\nSTORED\r\n");
    int ul = snprintf(unit, sizeof unit, "get %s\r\nget %s\r\n", keys[0], keys[1]);
    size_t n = ((size_t)2 << 20) / (size_t)ul;
    size_t got = su_pipeline_ahead(fd, unit, (size_t)ul, n, "END\r\n", 2 * n, IO_MS);
    cr_assert_eq(got, 2 * n, "every pipelined get answered (%zu of %zu)", got, 2 * n);
    close(fd);
    kvs_stop();
}

/* ---- --idle-ms ---------------------------------------------------------------------------- */

/*
 * --idle-ms 300: a connection that says nothing is closed; one that sends a command every
 * 100 ms is kept. Without the option (the default, as memcached's idle_timeout 0) an idle
 * connection stays open.
 */
Test(kv, idle_timeout, .timeout = 60)
{
    kvs_start(2, "jump", "--idle-ms", "300", NULL);
    int silent = kc_connect(), active = kc_connect();
    for (int tick = 0; tick < 8; tick++) {
        expect_str(active, "version\r\n", "VERSION 1.6.0-libsn\r\n");
        usleep(100 * 1000);
    }
    cr_assert(sees_eof(silent), "a silent connection is closed after --idle-ms");
    expect_str(active, "version\r\n", "VERSION 1.6.0-libsn\r\n");
    close(silent);
    close(active);
    kvs_stop();
    sn_partition_destroy(srv.part);
    srv.part = NULL;

    kvs_start(2, "jump", NULL);
    int fd = kc_connect();
    usleep(600 * 1000);
    char b;
    cr_assert_eq(recv(fd, &b, 1, MSG_DONTWAIT), -1, "no idle timeout by default");
    cr_assert_eq(errno, EAGAIN);
    expect_str(fd, "version\r\n", "VERSION 1.6.0-libsn\r\n");
    close(fd);
    kvs_stop();
}
