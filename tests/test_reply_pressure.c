/*
 * Backpressure of reply slots and the connection hold, on a running reactor, loopback only
 * (server: tests/kit_util.h).
 *
 * A client that pipelines requests and does not read: the server must stop reading at
 * limits.max_open_replies open slots or at output_high buffered bytes, so its memory stays
 * bounded however much the client sends, and every answer still comes, in order, once the
 * client reads. Answers come from the other core after a short delay, or from timers.
 */
#include <criterion/criterion.h>

#include "kit_util.h"

#define MAX_SLOTS   32u
#define OUT_HIGH    (64u << 10)
#define ANSWER_SIZE 200u

struct preq {
    struct sn_reply *r;
    unsigned id;
};

static void fill(struct preq *q)
{
    char buf[ANSWER_SIZE];
    int n = snprintf(buf, sizeof buf, "%u:", q->id);
    memset(buf + n, 'a' + q->id % 26, ANSWER_SIZE - 1 - (size_t)n);
    buf[ANSWER_SIZE - 1] = '\n';
    struct sn_conn *c = sn_reply_conn(q->r);
    kit_count_err(sn_reply_write(q->r, buf, ANSWER_SIZE));
    kit_note(c);
    kit_end(q->r);
    free(q);
}

static void filled(void *arg, int err, uint64_t value)
{
    (void)value;
    if (err)
        atomic_fetch_add(&kc()->bad, 1);
    fill(arg);
}

static struct sn_future *remote_pause(void *arg)
{
    (void)arg;
    return sn_sleep(20000); /* 20 us on the other core */
}

static void pressure_line(struct sn_conn *c, void *arg, const char *line, size_t len, int err)
{
    (void)arg, (void)len;
    atomic_fetch_add(&kc()->lines, 1);
    kit_max(&kc()->user[0], c->ilen);
    if (err) {
        atomic_fetch_add(&kc()->bad, 1);
        return;
    }
    struct preq *q = malloc(sizeof *q);
    q->id = (unsigned)strtoul(line, NULL, 10);
    if (kit_begin(c, &q->r) < 0) {
        free(q);
        return;
    }
    if (q->id % 2)
        sn_done(sn_submit_to((sn_core_id() + 1) % sn_core_count(), remote_pause, q), filled, q);
    else
        sn_done(sn_sleep(10000), filled, q);
}

static const struct sn_conn_ops pressure_ops = {.on_line = pressure_line, .on_close = kit_close};

static unsigned n_req;

/* Sends requests without reading until the server stops taking them (a send that cannot go
 * on for 300 ms: the server paused and every buffer between is full) or all are sent; then
 * reads every answer while sending the rest. */
static int pressure_client(uint16_t port)
{
    /* Lines of 64 bytes: megabytes of requests, more than every buffer on the way holds. */
    char *req = malloc((size_t)n_req * 64 + 1);
    size_t len = 0;
    for (unsigned i = 0; i < n_req; i++)
        len += (size_t)sprintf(req + len, "%-63u\n", i);
    int fd = nu_connect(port);
    if (fd < 0)
        return 1;
    int small = 64 << 10; /* small socket buffers: the server's limits show sooner */
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    size_t sent = 0;
    for (;;) {
        ssize_t w = send(fd, req + sent, len - sent, MSG_NOSIGNAL);
        if (w > 0 && (sent += (size_t)w) == len)
            break;
        if (w < 0 && errno != EAGAIN)
            break;
        struct pollfd pf = {.fd = fd, .events = POLLOUT};
        if (w < 0 && poll(&pf, 1, 300) == 0)
            break; /* stuck: the server stopped reading */
    }
    atomic_store(&K.core[0].user[2], sent);
    fcntl(fd, F_SETFL, 0);
    char *got;
    size_t want = (size_t)n_req * ANSWER_SIZE;
    size_t n = kit_exchange(fd, req + sent, len - sent, want, false, 120000, &got);
    int rc = n == want ? 0 : 2;
    for (unsigned i = 0; i < n_req && !rc; i++) {
        const char *a = got + (size_t)i * ANSWER_SIZE;
        if ((unsigned)strtoul(a, NULL, 10) != i || a[ANSWER_SIZE - 2] != (char)('a' + i % 26))
            rc = 3;
    }
    free(got);
    free(req);
    close(fd);
    return rc;
}

Test(reply_pressure, pipelining_without_reading_keeps_memory_bounded, .timeout = 180)
{
    n_req = SCALE(200000, 4);
    kit_init(&pressure_ops, pressure_client);
    K.lc.limits.max_open_replies = MAX_SLOTS;
    K.lc.limits.output_high = OUT_HIGH;
    cr_assert_eq(kit_run(), 0);
    cr_assert_eq(K.client_rc, 0, "every answer, in order (%d)", K.client_rc);
    cr_assert(K.settled);
    cr_assert_eq(KTOTAL(bad), 0);
    cr_assert_eq(KTOTAL(lines), n_req);
    uint64_t slots = KTOTAL(max_slots), bytes = KTOTAL(max_bytes);
    cr_log_info("client sent %llu bytes before reading; most slots %llu, bytes %llu, input %llu",
                (unsigned long long)atomic_load(&K.core[0].user[2]), (unsigned long long)slots,
                (unsigned long long)bytes, (unsigned long long)KTOTAL(user[0]));
    cr_assert_eq(slots, MAX_SLOTS, "reading stopped at exactly max_open_replies slots");
    /* Over output_high by at most what the open slots add once reading has stopped. */
    cr_assert_leq(bytes, OUT_HIGH + MAX_SLOTS * (SN__REPLY_BLOCK + ANSWER_SIZE));
    /* Input: what on_line has not taken yet, plus what the kernel had posted to the core's
     * buffer ring when reading paused (net.h, sn_conn_limits.input_max). */
    cr_assert_leq(KTOTAL(user[0]), SN_CONN_DEFAULT_INPUT_MAX + SN__NET_HELD_SLACK,
                  "input kept stays bounded");
    cr_assert(kit_pools_at_baseline());
}

/* ---- on_data that checks sn_conn_may_read -----------------------------------------------------
 */

/* The same server with its own splitter: it takes lines while sn_conn_may_read says so. */
static size_t pressure_data(struct sn_conn *c, void *arg, const char *data, size_t len)
{
    size_t used = 0;
    const char *nl;
    while (sn_conn_may_read(c) == 1 && (nl = memchr(data + used, '\n', len - used))) {
        size_t n = (size_t)(nl - (data + used)) + 1;
        pressure_line(c, arg, data + used, n - 1, 0);
        used += n;
    }
    return used;
}

static const struct sn_conn_ops data_ops = {.on_data = pressure_data, .on_close = kit_close};

Test(reply_pressure, on_data_stops_at_the_limits_with_may_read, .timeout = 180)
{
    n_req = SCALE(50000, 4);
    kit_init(&data_ops, pressure_client);
    K.lc.limits.max_open_replies = MAX_SLOTS;
    K.lc.limits.output_high = OUT_HIGH;
    cr_assert_eq(kit_run(), 0);
    cr_assert_eq(K.client_rc, 0, "every answer, in order (%d)", K.client_rc);
    cr_assert_eq(KTOTAL(bad), 0);
    cr_assert_eq(KTOTAL(lines), n_req);
    cr_assert_eq(KTOTAL(max_slots), MAX_SLOTS, "on_data stopped at exactly max_open_replies");
    cr_assert_leq(KTOTAL(max_bytes), OUT_HIGH + MAX_SLOTS * (SN__REPLY_BLOCK + ANSWER_SIZE));
    cr_assert(kit_pools_at_baseline());
}

/* ---- sn_conn_hold ---------------------------------------------------------------------------- */

static struct sn_conn *held;
static int after[6];

static void held_check(void *arg)
{
    (void)arg;
    /* on_close has run: the memory is still there, every call is harmless. */
    after[0] = sn_conn_write(held, "x", 1);
    struct sn_future *f = sn_conn_close(held);
    after[1] = sn_future_available(f);
    sn_ignore(f);
    after[2] = sn_conn_set_reading(held, true);
    struct sn_reply *r;
    after[3] = sn_reply_begin(held, &r);
    after[4] = sn_conn_release(held);
    after[5] = 1;
    atomic_fetch_add(&kc()->ended, 1); /* the harness waits for this */
}

static void hold_close(struct sn_conn *c, void *arg, int err)
{
    kit_close(c, arg, err);
    sn_later(held_check, NULL); /* after the final step returned */
}

static void hold_line(struct sn_conn *c, void *arg, const char *line, size_t len, int err)
{
    (void)arg, (void)line, (void)len, (void)err;
    held = c;
    if (sn_conn_hold(c) == 0)
        atomic_fetch_add(&kc()->begun, 1);
    sn_ignore(sn_conn_close(c));
}

static const struct sn_conn_ops hold_ops = {.on_line = hold_line, .on_close = hold_close};

static int hold_client(uint16_t port)
{
    int fd = nu_connect(port);
    if (fd < 0)
        return 1;
    nu_timeout(fd, 10000);
    int rc = nu_send_all(fd, "hi\n", 3) || nu_expect_end(fd);
    close(fd);
    return rc;
}

Test(reply_pressure, held_connection_outlives_on_close, .timeout = 60)
{
    memset(after, 0, sizeof after);
    kit_init(&hold_ops, hold_client);
    cr_assert_eq(kit_run(), 0);
    cr_assert_eq(K.client_rc, 0);
    cr_assert(K.settled);
    cr_assert_eq(after[5], 1);
    cr_assert_eq(after[0], -EPIPE);
    cr_assert_eq(after[1], 1, "a close of a closed connection is settled at once");
    cr_assert_eq(after[2], 0);
    cr_assert_eq(after[3], -EPIPE, "no new slot on a closed connection");
    cr_assert_eq(after[4], 0, "the release freed it (ASan: no leak, no use after free)");
}
