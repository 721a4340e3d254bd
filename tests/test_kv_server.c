/*
 * The sn-kv binary end to end: started with fork/exec (--smp 2 or 4, --unpinned, a free port),
 * driven over loopback with raw sockets, stopped with SIGTERM (exit code 0 required, so a
 * sanitizer report or leak at exit fails the test too).
 *
 * Which core owns a key is computed here with the same partitioner the server uses
 * (sn_partition_from_string with the --partitioner spec), so every test can pick keys owned
 * by every core and check the per-core lines of "stats".
 *
 * Covered here: many clients on many connections with a model of their own keys plus shared
 * keys (values always as the model says) and read-after-write across connections; long
 * pipelines of mixed commands across cores answered byte for byte in order; multi-gets across
 * cores; large values. In test_kv_server_cmds.c: memcached's exact errors; flush_all; stats;
 * quit; -c; the metrics page; and `memccapable -a` (libmemcached-tools) passing all its ASCII
 * tests. The server process and client I/O: kv_server_util.h.
 */
#include "kv_server_util.h"

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
