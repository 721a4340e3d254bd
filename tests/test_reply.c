/*
 * Reply slots (include/sn/reply.h) on a running reactor, loopback only: pipelined requests
 * answered in request order although their answers are made out of order (at once, on other
 * cores through sn_submit_to, after timers, and direct writes with no slot), a peer that
 * resets while slots are still being filled on other cores, and a graceful close that waits
 * for the open slots. Server: tests/kit_util.h.
 *
 * Protocol (line mode): "<id> <kind> <delay_us> <size>" where kind is n (answered at once),
 * r (on another core, after delay_us there), t (after a timer of delay_us), w (a direct
 * sn_conn_write, no slot). The answer is "<id>:" then `size` bytes of a pattern, then "\n".
 */
#include <criterion/criterion.h>

#include "kit_util.h"

struct req {
    struct sn_reply *r;
    unsigned id, size;
    uint64_t delay_ns;
};

static char pattern_byte(unsigned id, unsigned i)
{
    return (char)('a' + (id * 7 + i) % 26);
}

static void answer(struct req *q)
{
    char head[32];
    int n = snprintf(head, sizeof head, "%u:", q->id);
    int rc = sn_reply_write(q->r, head, (size_t)n);
    for (unsigned i = 0; i < q->size && rc == 0; i += 512) {
        char buf[512];
        unsigned m = q->size - i < 512 ? q->size - i : 512;
        for (unsigned j = 0; j < m; j++)
            buf[j] = pattern_byte(q->id, i + j);
        rc = sn_reply_write(q->r, buf, m);
    }
    if (rc == 0)
        rc = sn_reply_write(q->r, "\n", 1);
    kit_count_err(rc);
    kit_end(q->r);
    free(q);
}

static void answered(void *arg, int err, uint64_t value)
{
    (void)value;
    struct req *q = arg;
    if (err) /* the reactor stopped under it: the test fails on the counts */
        atomic_fetch_add(&kc()->bad, 1);
    answer(q);
}

static struct sn_future *remote_work(void *arg)
{
    struct req *q = arg;
    return sn_sleep(q->delay_ns);
}

static void on_line(struct sn_conn *c, void *arg, const char *line, size_t len, int err)
{
    (void)arg;
    atomic_fetch_add(&kc()->lines, 1);
    char buf[96], kind;
    unsigned id, delay_us, size;
    if (err || len >= sizeof buf) {
        atomic_fetch_add(&kc()->bad, 1);
        return;
    }
    memcpy(buf, line, len);
    buf[len] = 0;
    if (sscanf(buf, "%u %c %u %u", &id, &kind, &delay_us, &size) != 4) {
        atomic_fetch_add(&kc()->bad, 1);
        return;
    }
    if (kind == 'w') {
        char out[32];
        int n = snprintf(out, sizeof out, "%u:\n", id);
        kit_count_err(sn_conn_write(c, out, (size_t)n));
        return;
    }
    struct req *q = malloc(sizeof *q);
    *q = (struct req){.id = id, .size = size, .delay_ns = (uint64_t)delay_us * 1000u};
    if (kit_begin(c, &q->r) < 0) {
        kit_count_err(-EPIPE);
        free(q);
        return;
    }
    if (kind == 'n') {
        answer(q);
    } else if (kind == 'r') {
        unsigned other = (sn_core_id() + 1 + id % (sn_core_count() - 1)) % sn_core_count();
        sn_done(sn_submit_to(other, remote_work, q), answered, q);
    } else {
        sn_done(sn_sleep(q->delay_ns), answered, q);
    }
}

static const struct sn_conn_ops line_ops = {.on_line = on_line, .on_close = kit_close};

/* ---- the client ------------------------------------------------------------------------------ */

struct plan {
    unsigned n;
    char *kinds; /* per request */
    unsigned *size;
    size_t expect; /* bytes of all answers */
};

static void plan_make(struct plan *p, unsigned n, uint64_t seed, char *req, size_t *reqlen)
{
    p->n = n;
    p->kinds = malloc(n);
    p->size = malloc(n * sizeof *p->size);
    p->expect = 0;
    size_t len = 0;
    for (unsigned i = 0; i < n; i++) {
        uint64_t x = nu_rand(&seed);
        char k = "nrtw"[x % 4];
        unsigned delay = (unsigned)(x >> 8) % 3000; /* up to 3 ms: answers overtake */
        unsigned size =
            (x >> 20) % 16 == 0 ? (unsigned)(x >> 24) % 40000 : (unsigned)(x >> 24) % 64;
        if (k == 'w')
            size = 0;
        p->kinds[i] = k;
        p->size[i] = size;
        len += (size_t)sprintf(req + len, "%u %c %u %u\r\n", i, k, delay, size);
        char head[32];
        p->expect += (size_t)sprintf(head, "%u:", i) + size + 1;
    }
    *reqlen = len;
}

/* Checks the answers: every id in request order with its pattern. */
static int plan_check(const struct plan *p, const char *got, size_t len)
{
    size_t at = 0;
    for (unsigned i = 0; i < p->n; i++) {
        char head[32];
        int n = sprintf(head, "%u:", i);
        if (at + (size_t)n > len || memcmp(got + at, head, (size_t)n) != 0)
            return (int)i + 1;
        at += (size_t)n;
        for (unsigned j = 0; j < p->size[i]; j++)
            if (at + j >= len || got[at + j] != pattern_byte(i, j))
                return (int)i + 1;
        at += p->size[i];
        if (at >= len || got[at] != '\n')
            return (int)i + 1;
        at++;
    }
    return at == len ? 0 : -1;
}

static unsigned n_conns, n_reqs;

static void *one_conn(void *arg)
{
    uint16_t port = (uint16_t)(uintptr_t)arg;
    unsigned seed = (unsigned)(uintptr_t)arg >> 16;
    struct plan p;
    char *req = malloc((size_t)n_reqs * 40);
    size_t reqlen;
    plan_make(&p, n_reqs, seed * 7919u + 1, req, &reqlen);
    int fd = nu_connect(port);
    intptr_t rc = 1;
    if (fd >= 0) {
        /* All at once: the server sees them pipelined. */
        char *got;
        size_t got_len = kit_exchange(fd, req, reqlen, p.expect, false, 60000, &got);
        rc = plan_check(&p, got, got_len);
        free(got);
        close(fd);
    }
    free(req);
    free(p.kinds);
    free(p.size);
    return (void *)rc;
}

static int ordered_client(uint16_t port)
{
    pthread_t t[16];
    int bad = 0;
    for (unsigned i = 0; i < n_conns; i++)
        pthread_create(&t[i], NULL, one_conn, (void *)(uintptr_t)(port | (i + 1) << 16));
    for (unsigned i = 0; i < n_conns; i++) {
        void *rc;
        pthread_join(t[i], &rc);
        if (rc)
            bad = (int)(intptr_t)rc;
    }
    return bad;
}

static void run_ordered(unsigned ncores)
{
    n_conns = 4;
    n_reqs = SCALE(3000, 3);
    kit_init(&line_ops, ordered_client);
    K.ncores = ncores;
    cr_assert_eq(kit_run(), 0);
    cr_assert_eq(K.client_rc, 0, "answer %d out of order or wrong", K.client_rc);
    cr_assert(K.settled, "every connection closed, every slot ended");
    cr_assert_eq(KTOTAL(bad), 0);
    cr_assert_eq(KTOTAL(epipe), 0);
    cr_assert_gt(KTOTAL(out_of_order), 0, "answers were made out of order");
    cr_assert_eq(KTOTAL(lines), (uint64_t)n_conns * n_reqs);
    cr_assert(kit_pools_at_baseline(), "pools back at their baseline");
}

Test(reply, pipelined_answers_leave_in_request_order, .timeout = 120)
{
    run_ordered(2);
}

Test(reply, pipelined_answers_in_order_on_three_cores, .timeout = 120)
{
    run_ordered(3);
}

/* ---- the peer resets while slots are being filled on other cores -------------------------------
 */

static int reset_client(uint16_t port)
{
    int bad = 0;
    for (unsigned c = 0; c < 8; c++) {
        int fd = nu_connect(port);
        if (fd < 0)
            return 1;
        nu_timeout(fd, 20000);
        /* The first answer at once, the rest from the other core after 2 to 20 ms. */
        char req[64 * 400];
        size_t len = (size_t)sprintf(req, "0 n 0 10\r\n");
        for (unsigned i = 1; i < 400; i++)
            len +=
                (size_t)sprintf(req + len, "%u r %u %u\r\n", i, 2000 + i * 45, i % 3 ? 50 : 3000);
        char first[16];
        if (nu_send_all(fd, req, len) || nu_recv_all(fd, first, 12) || memcmp(first, "0:", 2))
            bad = 1;
        struct linger lg = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        close(fd); /* a reset, with up to 399 answers still on the other core */
    }
    return bad;
}

Test(reply, peer_reset_while_slots_fill_on_other_cores, .timeout = 120)
{
    kit_init(&line_ops, reset_client);
    cr_assert_eq(kit_run(), 0);
    cr_assert_eq(K.client_rc, 0);
    cr_assert(K.settled, "every connection closed, every slot ended");
    cr_assert_eq(KTOTAL(closed), 8);
    cr_assert_gt(KTOTAL(epipe), 0, "slots of the dead connections refused their bytes");
    cr_assert_eq(KTOTAL(bad), 0);
    cr_assert(kit_pools_at_baseline(), "pools back at their baseline");
}

/* ---- a graceful close waits for the open slots
 * --------------------------------------------------- */

static void close_on_eof(struct sn_conn *c, void *arg)
{
    (void)arg;
    sn_ignore(sn_conn_close(c)); /* with answers still on timers and other cores */
}

static const struct sn_conn_ops eof_ops = {
    .on_line = on_line, .on_eof = close_on_eof, .on_close = kit_close};

static int half_close_client(uint16_t port)
{
    struct plan p;
    n_reqs = 200;
    char *req = malloc((size_t)n_reqs * 40);
    size_t reqlen;
    plan_make(&p, n_reqs, 99, req, &reqlen);
    int fd = nu_connect(port);
    int rc = 1;
    if (fd >= 0) {
        char *got; /* until the server's close */
        size_t len = kit_exchange(fd, req, reqlen, p.expect, true, 60000, &got);
        rc = plan_check(&p, got, len);
        free(got);
        close(fd);
    }
    free(req);
    free(p.kinds);
    free(p.size);
    return rc;
}

Test(reply, close_waits_for_open_slots, .timeout = 60)
{
    kit_init(&eof_ops, half_close_client);
    cr_assert_eq(kit_run(), 0);
    cr_assert_eq(K.client_rc, 0, "every answer, in order, then EOF (%d)", K.client_rc);
    cr_assert(K.settled);
    cr_assert_eq(KTOTAL(close_err), 0, "a clean close");
    cr_assert_eq(KTOTAL(bad), 0);
    cr_assert(kit_pools_at_baseline());
}
