/*
 * The rules every public function follows (docs/ARCHITECTURE.md, "API conventions"), checked
 * through the reactor: close futures that settle once the object is released, the -EXDEV of
 * calls made on a core that does not own the object, sn_when_stopped and a main that returns
 * SN_SUCCESS, and the abort of every future-returning call made off a core. Loopback only,
 * unpinned cores; results are recorded on the cores and asserted after sn_run returns.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdatomic.h>
#include <sn.h>
#include <string.h>

#include "abort_util.h"
#include "reactor_util.h"

struct outcome {
    int calls;
    int err;
    uint64_t value;
    unsigned seq; /* the event counter when it settled */
};

static _Atomic unsigned seq; /* events, in order (the stop test records on two cores) */

static void record(void *arg, int err, uint64_t value)
{
    struct outcome *o = arg;
    o->calls++;
    o->err = err;
    o->value = value;
    o->seq = atomic_fetch_add(&seq, 1) + 1;
}

/* ---- main and sn_when_stopped ------------------------------------------------------------- */

static int main_ran;

static struct sn_future *success_main(void *arg)
{
    (void)arg;
    main_ran++;
    return SN_SUCCESS;
}

Test(api_shape, main_returning_success_ends_the_run_with_zero, .timeout = 30)
{
    main_ran = 0;
    struct sn_config cfg = test_config(2);
    cr_assert_eq(sn_run(&cfg, success_main, NULL), 0);
    cr_assert_eq(main_ran, 1);
}

static struct outcome stopped_on[2], stopped_after;
static int stopped_after_ready;

static void stopped_here(void *arg, int err, uint64_t value)
{
    record(arg, err, value);
    if (sn_core_id() != 0)
        return;
    /* Once shutdown has begun, a new sn_when_stopped is already settled. */
    struct sn_future *f = sn_when_stopped();
    stopped_after_ready = sn_future_available(f);
    sn_done(f, record, &stopped_after);
}

static struct sn_future *watch_stop(void *arg)
{
    (void)arg;
    sn_done(sn_when_stopped(), stopped_here, &stopped_on[sn_core_id()]);
    return SN_SUCCESS;
}

static void stop_seven(void *arg)
{
    (void)arg;
    sn_stop(7);
}

static struct sn_future *watching(void *arg, uint64_t value)
{
    (void)arg, (void)value;
    sn_send(1, stop_seven, NULL);
    return sn_when_stopped();
}

static struct sn_future *stop_main(void *arg)
{
    (void)arg;
    return sn_then(sn_invoke_on_all(watch_stop, NULL), watching, NULL);
}

Test(api_shape, when_stopped_settles_with_the_exit_code_on_every_core, .timeout = 30)
{
    memset(stopped_on, 0, sizeof stopped_on);
    memset(&stopped_after, 0, sizeof stopped_after);
    stopped_after_ready = 0;
    struct sn_config cfg = test_config(2);
    cr_assert_eq(sn_run(&cfg, stop_main, NULL), 7);
    for (int i = 0; i < 2; i++) {
        cr_expect_eq(stopped_on[i].calls, 1, "core %d", i);
        cr_expect_eq(stopped_on[i].err, 0, "core %d", i);
        cr_expect_eq(stopped_on[i].value, 7, "core %d", i);
    }
    cr_expect(stopped_after_ready);
    cr_expect_eq(stopped_after.calls, 1);
    cr_expect_eq(stopped_after.value, 7);
}

/* ---- close futures ------------------------------------------------------------------------ */

/* One client connection of the close test: what its on_close saw and when. */
struct cli {
    struct outcome on_close;
    struct outcome inner; /* a close called from inside on_close */
    bool close_inside;
    struct sn_promise *inner_done;
};

static struct cli clis[3];
static struct outcome close1, close2, abort1;
static struct sn_listener *close_l;

/* Records the outcome and passes success on (so sn_when_all waits for settling, not for 0). */
static struct sn_future *record_pass(void *arg, int err, uint64_t value)
{
    record(arg, err, value);
    return SN_SUCCESS;
}

static void inner_settled(void *arg, int err, uint64_t value)
{
    struct cli *k = arg;
    record(&k->inner, err, value);
    sn_promise_set(k->inner_done, 0);
}

static void cli_on_close(struct sn_conn *c, void *arg, int err)
{
    struct cli *k = arg;
    record(&k->on_close, err, 0);
    /* The connection is valid until on_close returns: a close now gets a future too. */
    if (k->close_inside)
        sn_done(sn_conn_close(c), inner_settled, k);
}

static const struct sn_conn_ops cli_ops = {.on_close = cli_on_close};
static const struct sn_conn_ops srv_ops = {0}; /* on EOF the server closes */

static struct sn_future *connect_cli(int i)
{
    struct sn_connect_config cc = {
        .port = sn_listener_port(close_l), .ops = &cli_ops, .arg = &clis[i]};
    return sn_connect(&cc);
}

static struct sn_future *all_closed(void *arg, uint64_t value)
{
    (void)arg, (void)value;
    return sn_listener_close(close_l);
}

static struct sn_future *third_connected(void *arg, uint64_t value)
{
    (void)arg;
    struct sn_conn *c = (struct sn_conn *)(uintptr_t)value;
    struct sn_future *inner;
    clis[2].close_inside = true;
    clis[2].inner_done = sn_promise_new(&inner); /* set once the close inside on_close settled */
    sn_ignore(sn_conn_abort(c));
    return sn_then(inner, all_closed, NULL);
}

static struct sn_future *aborted(void *arg, int err, uint64_t value)
{
    record(arg, err, value);
    return sn_then(connect_cli(2), third_connected, NULL);
}

static struct sn_future *second_connected(void *arg, uint64_t value)
{
    (void)arg;
    struct sn_conn *c = (struct sn_conn *)(uintptr_t)value;
    return sn_then_wrapped(sn_conn_abort(c), aborted, &abort1);
}

static struct sn_future *closed_twice(void *arg, uint64_t value)
{
    (void)arg, (void)value;
    return sn_then(connect_cli(1), second_connected, NULL);
}

static struct sn_future *first_connected(void *arg, uint64_t value)
{
    (void)arg;
    struct sn_conn *c = (struct sn_conn *)(uintptr_t)value;
    struct sn_future *f[2] = {sn_then_wrapped(sn_conn_close(c), record_pass, &close1),
                              sn_then_wrapped(sn_conn_close(c), record_pass, &close2)};
    return sn_then(sn_when_all(f, 2, NULL), closed_twice, NULL);
}

static struct sn_future *close_listening(void *arg, uint64_t value)
{
    (void)arg;
    close_l = (struct sn_listener *)(uintptr_t)value;
    return sn_then(connect_cli(0), first_connected, NULL);
}

static struct sn_future *close_main(void *arg)
{
    (void)arg;
    struct sn_listen_config lc = {.mode = SN_ACCEPT_ONE_CORE, .ops = &srv_ops};
    return sn_then(sn_listen(&lc), close_listening, NULL);
}

Test(api_shape, close_futures_settle_after_on_close, .timeout = 30)
{
    memset(clis, 0, sizeof clis);
    memset(&close1, 0, sizeof close1);
    memset(&close2, 0, sizeof close2);
    memset(&abort1, 0, sizeof abort1);
    atomic_store(&seq, 0);
    struct sn_config cfg = test_config(1);
    cr_assert_eq(sn_run(&cfg, close_main, NULL), 0);

    /* Two closes of one connection: each gets a future, both settle with 0 after on_close. */
    cr_assert_eq(clis[0].on_close.calls, 1);
    cr_assert_eq(clis[0].on_close.err, 0);
    cr_assert_eq(close1.calls, 1);
    cr_assert_eq(close2.calls, 1);
    cr_expect_eq(close1.err, 0);
    cr_expect_eq(close2.err, 0);
    cr_expect_gt(close1.seq, clis[0].on_close.seq, "the close future settled before on_close");
    cr_expect_gt(close2.seq, close1.seq, "first close, first settled");

    /* An abort: its future fails with on_close's error. */
    cr_assert_eq(clis[1].on_close.calls, 1);
    cr_expect_eq(clis[1].on_close.err, -ECONNABORTED);
    cr_assert_eq(abort1.calls, 1);
    cr_expect_eq(abort1.err, -ECONNABORTED);
    cr_expect_gt(abort1.seq, clis[1].on_close.seq);

    /* A close called from inside on_close settles too, with the same outcome. */
    cr_assert_eq(clis[2].inner.calls, 1);
    cr_expect_eq(clis[2].inner.err, -ECONNABORTED);
    cr_expect_gt(clis[2].inner.seq, clis[2].on_close.seq);
}

/* ---- -EXDEV on a core that does not own the object ---------------------------------------- */

/* What core 1 got when it used core 0's objects. */
static struct {
    int write, write_ref, write_input, shutdown, set_reading, set_arg, fd, peer, udp_port_ok;
    int may_read;
    long backlog;
    struct outcome close, abort, udp_close, udp_send;
    int timer_arm, timer_cancel, timer_armed;
    int released;
} xd;

static struct {
    struct sn_listener *l;
    struct sn_conn *conn;
    struct sn_udp *udp;
    struct sn_timer timer;
    uint16_t udp_port;
    int arg_at_close; /* 1: on_close got the arg the connection was made with */
    int timer_armed_after;
} x0;

static int xd_tag;

static void xd_release(void *arg)
{
    (void)arg;
    xd.released++;
}

static void xd_timer_fire(void *arg)
{
    (void)arg;
}

/* On core 1: every call on core 0's connection, UDP socket and armed timer. */
static struct sn_future *foreign_calls(void *arg)
{
    (void)arg;
    struct sn_conn *c = x0.conn;
    xd.write = sn_conn_write(c, "x", 1);
    xd.write_ref = sn_conn_write_ref(c, "x", 1, xd_release, NULL);
    xd.write_input = sn_conn_write_input(c, "x", 1);
    xd.backlog = (long)sn_conn_backlog(c);
    xd.may_read = sn_conn_may_read(c);
    xd.shutdown = sn_conn_shutdown(c);
    xd.set_reading = sn_conn_set_reading(c, false);
    xd.set_arg = sn_conn_set_arg(c, NULL);
    xd.fd = sn_conn_fd(c);
    struct sockaddr_storage a;
    socklen_t alen;
    xd.peer = sn_conn_peer(c, &a, &alen);
    sn_done(sn_conn_close(c), record, &xd.close);
    sn_done(sn_conn_abort(c), record, &xd.abort);

    sn_done(sn_udp_close(x0.udp), record, &xd.udp_close);
    struct sockaddr_storage to;
    socklen_t tolen;
    sn_addr_parse(NULL, x0.udp_port, &to, &tolen);
    sn_done(sn_udp_send(x0.udp, "x", 1, (struct sockaddr *)&to, tolen), record, &xd.udp_send);
    xd.udp_port_ok = sn_udp_port(x0.udp) == x0.udp_port; /* any thread: fixed at open */

    xd.timer_arm = sn_timer_arm(&x0.timer, 1000000);
    xd.timer_cancel = sn_timer_cancel(&x0.timer);
    xd.timer_armed = sn_timer_armed(&x0.timer);
    return SN_SUCCESS;
}

static void xd_on_close(struct sn_conn *c, void *arg, int err)
{
    (void)c, (void)err;
    x0.arg_at_close = arg == &xd_tag;
}

static const struct sn_conn_ops xd_ops = {.on_close = xd_on_close};

static struct sn_future *exit_zero(void *arg, uint64_t value)
{
    (void)arg, (void)value;
    return SN_SUCCESS;
}

static struct sn_future *back_on_core0(void *arg, uint64_t value)
{
    (void)arg, (void)value;
    /* Nothing core 1 did took effect: the timer is still armed (the arg is checked at close). */
    x0.timer_armed_after = sn_timer_armed(&x0.timer);
    sn_timer_cancel(&x0.timer);
    struct sn_future *f[3] = {sn_conn_close(x0.conn), sn_udp_close(x0.udp),
                              sn_listener_close(x0.l)};
    return sn_then(sn_when_all(f, 3, NULL), exit_zero, NULL); /* when_all's value is 3 */
}

static struct sn_future *xd_udp_opened(void *arg, uint64_t value)
{
    (void)arg;
    x0.udp = (struct sn_udp *)(uintptr_t)value;
    x0.udp_port = sn_udp_port(x0.udp);
    sn_timer_init(&x0.timer, xd_timer_fire, NULL);
    if (sn_timer_arm(&x0.timer, 60000000000ull) != 0)
        return sn_failed(-EIO);
    return sn_then(sn_submit_to(1, foreign_calls, NULL), back_on_core0, NULL);
}

static struct sn_future *xd_connected(void *arg, uint64_t value)
{
    (void)arg;
    x0.conn = (struct sn_conn *)(uintptr_t)value;
    struct sn_udp_config uc = {0};
    return sn_then(sn_udp_open(&uc), xd_udp_opened, NULL);
}

static struct sn_future *xd_listening(void *arg, uint64_t value)
{
    (void)arg;
    x0.l = (struct sn_listener *)(uintptr_t)value;
    struct sn_connect_config cc = {.port = sn_listener_port(x0.l), .ops = &xd_ops, .arg = &xd_tag};
    return sn_then(sn_connect(&cc), xd_connected, NULL);
}

static struct sn_future *xd_main(void *arg)
{
    (void)arg;
    struct sn_listen_config lc = {.mode = SN_ACCEPT_ONE_CORE, .ops = &srv_ops};
    return sn_then(sn_listen(&lc), xd_listening, NULL);
}

Test(api_shape, owner_core_calls_fail_with_exdev_elsewhere, .timeout = 30)
{
    memset(&xd, 0, sizeof xd);
    memset(&x0, 0, sizeof x0);
    struct sn_config cfg = test_config(2);
    cr_assert_eq(sn_run(&cfg, xd_main, NULL), 0);

    cr_expect_eq(xd.write, -EXDEV);
    cr_expect_eq(xd.write_ref, -EXDEV);
    cr_expect_eq(xd.released, 0, "a failed write_ref never calls release");
    cr_expect_eq(xd.write_input, -EXDEV);
    cr_expect_eq(xd.backlog, -EXDEV);
    cr_expect_eq(xd.may_read, -EXDEV);
    cr_expect_eq(xd.shutdown, -EXDEV);
    cr_expect_eq(xd.set_reading, -EXDEV);
    cr_expect_eq(xd.set_arg, -EXDEV);
    cr_expect_eq(xd.fd, -EXDEV);
    cr_expect_eq(xd.peer, -EXDEV);
    cr_expect_eq(xd.close.calls, 1);
    cr_expect_eq(xd.close.err, -EXDEV);
    cr_expect_eq(xd.abort.calls, 1);
    cr_expect_eq(xd.abort.err, -EXDEV);
    cr_expect_eq(xd.udp_close.err, -EXDEV);
    cr_expect_eq(xd.udp_send.err, -EXDEV);
    cr_expect(xd.udp_port_ok);
    cr_expect_eq(xd.timer_arm, -EXDEV);
    cr_expect_eq(xd.timer_cancel, -EXDEV);
    cr_expect_eq(xd.timer_armed, -EXDEV);

    cr_expect_eq(x0.timer_armed_after, 1, "core 1's cancel left the timer armed");
    cr_expect(x0.arg_at_close, "core 1's sn_conn_set_arg changed nothing");
}

/* ---- off a core, every future-returning call aborts ---------------------------------------- */

static struct sn_future *nothing(void *arg)
{
    (void)arg;
    return SN_SUCCESS;
}

static void *nothing_init(void *arg, unsigned core)
{
    (void)arg, (void)core;
    return NULL;
}

#define OFF_CORE(name, call)                                                                       \
    static void name(void *arg)                                                                    \
    {                                                                                              \
        (void)arg;                                                                                 \
        sn_ignore(call);                                                                           \
    }

static struct sn_sharded *off_sharded;
static struct sn_listen_config off_lc;
static struct sn_connect_config off_cc;
static struct sn_udp_config off_uc;

OFF_CORE(off_submit_to, sn_submit_to(0, nothing, NULL))
OFF_CORE(off_invoke_on_all, sn_invoke_on_all(nothing, NULL))
OFF_CORE(off_map_reduce, sn_map_reduce(nothing, NULL, 0, sn_reduce_sum, NULL))
OFF_CORE(off_sharded_start, sn_sharded_start(nothing_init, NULL, NULL, &off_sharded))
OFF_CORE(off_sharded_stop, sn_sharded_stop(NULL))
OFF_CORE(off_listen, sn_listen(&off_lc))
OFF_CORE(off_listener_close, sn_listener_close(NULL))
OFF_CORE(off_connect, sn_connect(&off_cc))
OFF_CORE(off_conn_close, sn_conn_close(NULL))
OFF_CORE(off_conn_abort, sn_conn_abort(NULL))
OFF_CORE(off_udp_open, sn_udp_open(&off_uc))
OFF_CORE(off_udp_close, sn_udp_close(NULL))
OFF_CORE(off_udp_send, sn_udp_send(NULL, "x", 1, NULL, 0))
OFF_CORE(off_when_stopped, sn_when_stopped())

Test(api_shape, future_calls_abort_off_a_core)
{
    static const struct {
        void (*fn)(void *);
        const char *name;
    } calls[] = {
        {off_submit_to, "sn_submit_to"},
        {off_invoke_on_all, "sn_invoke_on_all"},
        {off_map_reduce, "sn_map_reduce"},
        {off_sharded_start, "sn_sharded_start"},
        {off_sharded_stop, "sn_sharded_stop"},
        {off_listen, "sn_listen"},
        {off_listener_close, "sn_listener_close"},
        {off_connect, "sn_connect"},
        {off_conn_close, "sn_conn_close"},
        {off_conn_abort, "sn_conn_abort"},
        {off_udp_open, "sn_udp_open"},
        {off_udp_close, "sn_udp_close"},
        {off_udp_send, "sn_udp_send"},
        {off_when_stopped, "sn_when_stopped"},
    };
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        char want[128];
        snprintf(want, sizeof want, "libsn: %s called off a reactor core", calls[i].name);
        cr_expect(au_aborts_with(calls[i].fn, NULL, want), "%s", want);
    }
}
