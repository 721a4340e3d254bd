/*
 * -EAGAIN completions (reactor/net_send.c, net_recv.c, net_again.c) on connections that are
 * ending: while the reactor stops, and while the connection aborts or closes.
 *
 * stop_with_sends_failing: a connection's sends all end with -EAGAIN (sn__net_inject_eagain)
 * when sn_stop comes, with 1 MiB queued. The stop must end within the connection's stop
 * deadline (limits.stop_flush_ms): the output is made again, after back-offs, until the
 * deadline, then dropped and the connection reset (the peer must not take a cut reply for a
 * whole one); on_close gets -ECANCELED. Asserts also that the retries did not spin (at most
 * one per millisecond of the window, plus the free ones) and, under ASan, that nothing leaks.
 *
 * idle_timeout_ends_sends_failing: the same connection without a stop ends at its idle
 * timeout (-ETIMEDOUT, the output dropped and the connection reset): failed sends are no
 * activity.
 *
 * no_again_counts_on_aborting_connections, closing_connection_sends_again: an -EAGAIN that
 * completes after the connection began to abort (send, receive) or close (receive) is no
 * retry: it is not counted and starts no back-off; a closing connection's send is (its
 * output still leaves).
 */
#include <criterion/criterion.h>

#include <limits.h>

#include "kit_util.h"

#define BLOCK   (1u << 20)
#define STOP_MS 200u

static struct {
    uint16_t port;
    pthread_t thread;
    bool thread_started;
    int client_rc;
    uint64_t stop_ms; /* when on_data called sn_stop (nu_now_ms) */
    /* Set on the connection's core in on_close. */
    _Atomic int closes, close_err;
    _Atomic uint64_t send_again, recv_again, waits;
    _Atomic unsigned injected_left; /* faked -EAGAINs not used */
    _Atomic int write_rc;           /* the server's sn_conn_write */
} S;

/* Clears S (the TSan build's shim runs every test in one process). */
static void reset_s(void)
{
    memset(&S, 0, sizeof S);
}

static void note_close(struct sn_conn *c, void *arg, int err)
{
    (void)arg;
    struct sn__net_counts k = sn__net_counts();
    atomic_store(&S.send_again, k.send_again);
    atomic_store(&S.recv_again, k.recv_again);
    atomic_store(&S.waits, k.again_waits);
    atomic_store(&S.injected_left, c->nc->eagain_sends + c->nc->eagain_recvs);
    atomic_store(&S.close_err, err);
    atomic_fetch_add(&S.closes, 1);
}

/* ---- stop with sends failing ---------------------------------------------------------------- */

/* Every send from now on ends with -EAGAIN, and 1 MiB is queued. */
static void queue_unsendable(struct sn_conn *c)
{
    sn__net_inject_eagain(UINT_MAX, 0);
    char *out = calloc(1, BLOCK);
    atomic_store(&S.write_rc, sn_conn_write(c, out, BLOCK));
    free(out);
    S.stop_ms = nu_now_ms();
}

/* ... and the reactor stops. */
static size_t stop_on_data(struct sn_conn *c, void *arg, const char *data, size_t len)
{
    (void)arg, (void)data;
    queue_unsendable(c);
    sn_stop(0);
    return len;
}

/* Sends a byte and reads until the end: 0 when nothing came and the server reset, 1 when
 * nothing came and it closed (FIN). */
static int reset_client(uint16_t port)
{
    int fd = nu_connect(port);
    if (fd < 0 || send(fd, "g", 1, MSG_NOSIGNAL) != 1)
        return 1;
    char b[4096];
    size_t got = 0;
    ssize_t r;
    while ((r = recv(fd, b, sizeof b, 0)) > 0 || (r < 0 && errno == EINTR))
        got += r > 0 ? (size_t)r : 0;
    int rc = got != 0 ? 2 : r == 0 ? 1 : errno == ECONNRESET ? 0 : 2;
    if (rc == 2)
        fprintf(stderr, "net_again_stop: %zu bytes came, then %s\n", got,
                r == 0 ? "EOF" : strerror(errno));
    close(fd);
    return rc;
}

static void *client_thread(void *arg)
{
    int (*client)(uint16_t) = (int (*)(uint16_t))arg;
    S.client_rc = client(S.port);
    return NULL;
}

static struct sn_future *listened(void *arg, int err, uint64_t value)
{
    if (err)
        return sn_failed(err);
    S.port = sn_listener_port((struct sn_listener *)(uintptr_t)value);
    S.thread_started = pthread_create(&S.thread, NULL, client_thread, arg) == 0;
    return sn_when_stopped();
}

static struct sn_conn_ops stop_ops = {.on_data = stop_on_data, .on_close = note_close};

static struct sn_future *stop_main(void *arg)
{
    (void)arg;
    struct sn_listen_config lc = {.ops = &stop_ops};
    lc.limits.stop_flush_ms = STOP_MS;
    return sn_then_wrapped(sn_listen(&lc), listened, (void *)reset_client);
}

Test(net_again_stop, stop_with_sends_failing, .timeout = 60)
{
    reset_s();
    struct sn_config cfg = test_config(1);
    int rc = sn_run(&cfg, stop_main, NULL);
    uint64_t took = nu_now_ms() - S.stop_ms;
    if (S.thread_started)
        pthread_join(S.thread, NULL);
    cr_assert_eq(rc, 0);
    cr_assert_eq(atomic_load(&S.write_rc), 0);
    cr_assert_eq(S.client_rc, 0, "no byte of the cut output came; the peer got a reset");
    cr_assert_eq(atomic_load(&S.closes), 1);
    cr_assert_eq(atomic_load(&S.close_err), -ECANCELED);
    /* Made again until the deadline (the clocks may differ a little), ended soon after it
     * (a generous bound: the test must not fail on a busy machine). */
    cr_assert_geq(took, STOP_MS / 2, "the output was retried until the deadline (%llu ms)",
                  (unsigned long long)took);
    cr_assert_lt(took, STOP_MS + 5000u, "the stop ended after its deadline (%llu ms)",
                 (unsigned long long)took);
    uint64_t again = atomic_load(&S.send_again);
    cr_assert_geq(again, 3, "the sends ended with -EAGAIN and were made again");
    cr_assert_leq(again, 2 + took + 100, "no spin: %llu retries in %llu ms",
                  (unsigned long long)again, (unsigned long long)took);
    cr_assert_gt(atomic_load(&S.waits), 0, "back-offs came between them");
}

/* ---- counts on ending connections ------------------------------------------------------------ */

static struct sn_conn *ending;
static bool ending_by_close; /* sn_conn_close, else sn_conn_abort */

/* After the flush task made the (faked) send, before it is submitted: abort or close. */
static void end_task(struct sn_task *t)
{
    (void)t;
    sn_ignore(ending_by_close ? sn_conn_close(ending) : sn_conn_abort(ending));
}

static struct sn_task end_t;

/* The connection's first receive arm and its first send are faked -EAGAINs; a task queued
 * behind the flush ends it before either is submitted, so both complete on an aborting (or
 * closing) connection. */
static void *ending_accept(struct sn_conn *c, void *arg)
{
    kit_accept(c, arg);
    sn__net_inject_eagain(1, 1);
    atomic_store(&S.write_rc, sn_conn_write(c, "x", 1)); /* queues the flush task */
    ending = c;
    sn_task_init(&end_t, end_task);
    sn_schedule(&end_t);
    return arg;
}

static void ending_close(struct sn_conn *c, void *arg, int err)
{
    note_close(c, arg, err);
    kit_close(c, arg, err);
}

static struct sn_conn_ops ending_ops = {.on_close = ending_close};

/* Connects and reads until the server ended the connection; returns the bytes that came. */
static int ended_client(uint16_t port)
{
    int fd = nu_connect(port);
    if (fd < 0)
        return -1;
    char b[64];
    int got = 0;
    ssize_t r;
    while ((r = recv(fd, b, sizeof b, 0)) > 0 || (r < 0 && errno == EINTR))
        got += r > 0 ? (int)r : 0;
    close(fd);
    return got;
}

static void run_ending(bool by_close)
{
    reset_s();
    kit_init(&ending_ops, ended_client);
    K.lc.on_accept = ending_accept;
    K.ncores = 1;
    ending_by_close = by_close;
    cr_assert_eq(kit_run(), 0);
    cr_assert(K.settled);
    cr_assert_eq(atomic_load(&S.write_rc), 0);
    cr_assert_eq(atomic_load(&S.closes), 1);
    cr_assert_eq(atomic_load(&S.injected_left), 0, "the faked send and receive were made");
    cr_assert_eq(atomic_load(&S.recv_again), 0, "a receive of an ending connection is no retry");
    cr_assert_eq(atomic_load(&S.waits), 0, "and no back-off started");
}

/* Abort: the output is dropped, so the failed send is no retry either. */
Test(net_again_stop, no_again_counts_on_aborting_connections, .timeout = 60)
{
    run_ending(false);
    cr_assert_eq(atomic_load(&S.close_err), -ECONNABORTED);
    cr_assert_eq(atomic_load(&S.send_again), 0, "a send of an aborting connection is no retry");
    cr_assert_eq(K.client_rc, 0, "nothing was sent");
}

/* Close: the output still leaves, so the failed send is made again and counted. */
Test(net_again_stop, closing_connection_sends_again, .timeout = 60)
{
    run_ending(true);
    cr_assert_eq(atomic_load(&S.close_err), 0);
    cr_assert_eq(atomic_load(&S.send_again), 1, "the send was made again");
    cr_assert_eq(K.client_rc, 1, "and its byte came");
}

/* ---- the idle timeout ----------------------------------------------------------------------- */

#define IDLE_MS 100u

static size_t idle_on_data(struct sn_conn *c, void *arg, const char *data, size_t len)
{
    (void)arg, (void)data;
    queue_unsendable(c);
    return len;
}

static void idle_close(struct sn_conn *c, void *arg, int err)
{
    note_close(c, arg, err);
    kit_close(c, arg, err);
}

static struct sn_conn_ops idle_ops = {.on_data = idle_on_data, .on_close = idle_close};

/* A connection whose sends keep failing is no activity: the idle timeout ends it, in the
 * middle of its back-offs, with the output dropped. */
Test(net_again_stop, idle_timeout_ends_sends_failing, .timeout = 60)
{
    reset_s();
    kit_init(&idle_ops, reset_client);
    K.lc.limits.idle_ms = IDLE_MS;
    K.ncores = 1;
    cr_assert_eq(kit_run(), 0);
    uint64_t took = nu_now_ms() - S.stop_ms;
    cr_assert(K.settled);
    cr_assert_eq(atomic_load(&S.write_rc), 0);
    cr_assert_eq(atomic_load(&S.closes), 1);
    cr_assert_eq(atomic_load(&S.close_err), -ETIMEDOUT);
    /* Output was dropped: a reset, so the peer cannot take it for a whole answer. */
    cr_assert_eq(K.client_rc, 0, "no byte of the dropped output came; the peer got a reset");
    uint64_t again = atomic_load(&S.send_again);
    cr_assert_geq(again, 3, "the sends ended with -EAGAIN and were made again");
    cr_assert_leq(again, 2 + took + 100, "no spin: %llu retries in %llu ms",
                  (unsigned long long)again, (unsigned long long)took);
    cr_assert_gt(atomic_load(&S.waits), 0, "back-offs came between them");
}
