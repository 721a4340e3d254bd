/*
 * Scheduling groups (include/sn/sched.h): the registry's limits; work inheriting the group of
 * the code that created it (sn_later, continuations settled from another group, timers,
 * fibers, cross-core calls); and the shares: two busy groups with shares 100 and 300 on one
 * core get 25% and 75% of the task time, as the scheduler itself accounts it, and the shares
 * can change at run time; io callbacks run in, and are charged to, the group of the code that
 * started the io.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <sn.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/sched.h"
#include "reactor_util.h"

Test(sched_group, registry_limits)
{
    struct sn_sched_group *g[SN_SCHED_GROUPS_MAX];
    struct sn_sched_group_config gc = {.name = "x", .shares = 0};
    cr_expect_eq(sn_sched_group_create(&gc, &g[0]), -EINVAL);
    gc.shares = SN_SCHED_MAX_SHARES + 1;
    cr_expect_eq(sn_sched_group_create(&gc, &g[0]), -EINVAL);
    gc.shares = 10;
    cr_expect_eq(sn_sched_group_create(NULL, &g[0]), -EINVAL);
    unsigned made = 0;
    while (made < SN_SCHED_GROUPS_MAX && sn_sched_group_create(&gc, &g[made]) == 0)
        made++;
    cr_expect_eq(made, SN_SCHED_GROUPS_MAX - 1, "the main group takes one slot: %u", made);
    cr_expect_eq(sn_sched_group_create(&gc, &g[made]), -ENOSPC);
    cr_expect_str_eq(sn_sched_group_name(g[0]), "x");
    cr_expect_eq(sn_sched_group_set_shares(g[0], 77), 0);
    cr_expect_eq(sn_sched_group_shares(g[0]), 77);
    cr_expect_eq(sn_sched_group_set_shares(g[0], 0), -EINVAL);
    for (unsigned i = 0; i < made; i++)
        sn_sched_group_destroy(g[i]);
    cr_expect_eq(sn_sched_group_create(&gc, &g[0]), 0, "slots are free again");
    sn_sched_group_destroy(g[0]);
    sn_sched_group_destroy(sn_sched_group_main()); /* a no-op */
    cr_expect_str_eq(sn_sched_group_name(sn_sched_group_main()), "main");
    cr_expect_eq(sn_sched_group_shares(sn_sched_group_main()), SN_SCHED_DEFAULT_SHARES);
}

/* ---- inheritance --------------------------------------------------------------------- */

enum {
    SEEN_LATER,
    SEEN_CONT,
    SEEN_TIMER,
    SEEN_FIBER,
    SEEN_FIBER_AWAIT,
    SEEN_FIBER_OPT,
    SEEN_REMOTE,
    SEEN_REMOTE_MAIN,
    SEEN_COPY_INLINE,
    SEEN_COPY_BLOCK,
    SEEN_GATHER,
    SEEN_SEND,
    SEEN_MAIN_TASK,
    SEEN_N
};
static struct sn_sched_group *seen[SEEN_N];
static struct sn_sched_group *ga, *gb;
static struct sn_promise *pending;
static struct sn_timer timer;
static struct sn_promise *all_done;
static unsigned left;

static void one_done(void)
{
    if (--left == 0)
        sn_promise_set(all_done, 0);
}

static void record_later(void *arg)
{
    (void)arg;
    seen[SEEN_LATER] = sn_sched_group_current();
    one_done();
}

static struct sn_future *record_cont(void *arg, uint64_t v)
{
    (void)arg, (void)v;
    seen[SEEN_CONT] = sn_sched_group_current();
    one_done();
    return SN_SUCCESS;
}

static void record_timer(void *arg)
{
    (void)arg;
    seen[SEEN_TIMER] = sn_sched_group_current();
    one_done();
}

static int fiber_body(void *arg, uint64_t *value)
{
    *value = 0;
    int slot = (int)(intptr_t)arg;
    seen[slot] = sn_sched_group_current();
    if (slot == SEEN_FIBER) {
        sn_await(sn_sleep(1000), NULL);
        seen[SEEN_FIBER_AWAIT] = sn_sched_group_current();
    }
    one_done();
    return 0;
}

static int remote_record(void *arg, uint64_t *value)
{
    *value = 0;
    seen[(intptr_t)arg] = sn_sched_group_current();
    return 0;
}

static void remote_done(void *arg, int err, uint64_t v)
{
    (void)arg, (void)err, (void)v;
    one_done();
}

/* Copy calls: the payload is the slot to record (inline: 4 bytes; block: 4 bytes + a result). */
static struct sn_future *copy_record(const void *req, size_t len, void *out, size_t cap)
{
    int slot;
    cr_assert_eq(len, sizeof slot);
    memcpy(&slot, req, sizeof slot);
    seen[slot] = sn_sched_group_current();
    if (cap)
        memset(out, 0, cap);
    return sn_ready(cap);
}

static struct sn_future *gather_record(void *arg)
{
    (void)arg;
    seen[SEEN_GATHER] = sn_sched_group_current();
    return SN_SUCCESS;
}

static void send_back(void *arg)
{
    (void)arg;
    one_done();
}

static void send_record(void *arg)
{
    (void)arg;
    seen[SEEN_SEND] = sn_sched_group_current();
    cr_assert_eq(sn_send(0, send_back, NULL), 0);
}

static char copy_out[32];

/* Runs in group A: everything it starts must run in A (or where told). */
static void in_group_a(void *arg)
{
    (void)arg;
    sn_later(record_later, NULL);
    struct sn_future *f;
    pending = sn_promise_new(&f);
    sn_ignore(sn_then(f, record_cont, NULL));
    sn_timer_init(&timer, record_timer, NULL);
    sn_timer_arm(&timer, 1000);
    sn_ignore(sn_fiber_spawn(fiber_body, (void *)(intptr_t)SEEN_FIBER, NULL));
    struct sn_fiber_opts o = {.group = gb};
    sn_ignore(sn_fiber_spawn(fiber_body, (void *)(intptr_t)SEEN_FIBER_OPT, &o));
    sn_done(sn_call_on(1, remote_record, (void *)(intptr_t)SEEN_REMOTE), remote_done, NULL);
    int slot = SEEN_COPY_INLINE;
    sn_done(sn_submit_copy(1, copy_record, &slot, sizeof slot), remote_done, NULL);
    slot = SEEN_COPY_BLOCK;
    sn_done(sn_submit_copy_into(1, copy_record, &slot, sizeof slot, copy_out, sizeof copy_out),
            remote_done, NULL);
    static const struct sn_gather others = {.flags = SN_GATHER_SKIP_SELF};
    sn_done(sn_invoke_on(&others, gather_record, NULL), remote_done, NULL);
    cr_assert_eq(sn_send(1, send_record, NULL), 0);
}

/* Runs in the main group: settles A's promise (its continuation must still run in A). */
static void in_main(void *arg)
{
    (void)arg;
    seen[SEEN_MAIN_TASK] = sn_sched_group_current();
    sn_promise_set(pending, 0);
    sn_done(sn_call_on(1, remote_record, (void *)(intptr_t)SEEN_REMOTE_MAIN), remote_done, NULL);
}

static struct sn_future *inherit_main(void *arg)
{
    (void)arg;
    struct sn_future *f;
    all_done = sn_promise_new(&f);
    left = 11;
    sn_later_in(ga, in_group_a, NULL);
    sn_later(in_main, NULL);
    return f;
}

Test(sched_group, work_inherits_its_creators_group, .timeout = 60)
{
    struct sn_sched_group_config ca = {.name = "a", .shares = 100},
                                 cb = {.name = "b", .shares = 200};
    cr_assert_eq(sn_sched_group_create(&ca, &ga), 0);
    cr_assert_eq(sn_sched_group_create(&cb, &gb), 0);
    memset(seen, 0, sizeof seen);
    struct sn_config cfg = test_config(2);
    cr_assert_eq(sn_run(&cfg, inherit_main, NULL), 0);
    struct sn_sched_group *main_g = sn_sched_group_main();
    cr_expect_eq(seen[SEEN_MAIN_TASK], main_g);
    cr_expect_eq(seen[SEEN_LATER], ga, "sn_later");
    cr_expect_eq(seen[SEEN_CONT], ga, "continuation settled from the main group");
    cr_expect_eq(seen[SEEN_TIMER], ga, "timer callback");
    cr_expect_eq(seen[SEEN_FIBER], ga, "fiber");
    cr_expect_eq(seen[SEEN_FIBER_AWAIT], ga, "fiber after an await");
    cr_expect_eq(seen[SEEN_FIBER_OPT], gb, "fiber spawned with .group");
    cr_expect_eq(seen[SEEN_REMOTE], ga, "cross-core call from A, on the target");
    cr_expect_eq(seen[SEEN_REMOTE_MAIN], main_g, "cross-core call from main");
    cr_expect_eq(seen[SEEN_COPY_INLINE], ga, "inline copy call from A, on the target");
    cr_expect_eq(seen[SEEN_COPY_BLOCK], ga, "copy call with a block from A, on the target");
    cr_expect_eq(seen[SEEN_GATHER], ga, "gathering call from A, on the target");
    cr_expect_eq(seen[SEEN_SEND], ga, "sn_send from A, on the target");
    struct sn_sched_group_metrics m;
    cr_assert_eq(sn_metrics_group(1, ga, &m), 0);
    cr_expect_eq(m.tasks, 5, "core 1 ran five tasks of A (call, 2 copies, gather, send): %lu",
                 (unsigned long)m.tasks);
    cr_assert_eq(sn_metrics_group(0, ga, &m), 0);
    cr_expect_geq(m.tasks, 4, "core 0 ran A's tasks: %lu", (unsigned long)m.tasks);
    cr_expect_eq(sn_metrics_group(2, ga, &m), -EINVAL);
    sn_sched_group_destroy(ga);
    sn_sched_group_destroy(gb);
}

/* ---- shares -------------------------------------------------------------------------- */

#define WORKERS 4
struct worker {
    struct sn_task task;
    uint64_t *count;
};
static struct worker workers[2][WORKERS];
static uint64_t counts[2];
static volatile bool stop_workers;
static uint64_t spin_for_ns = 20000;

static void work(struct sn_task *t)
{
    struct worker *w = SN_CONTAINER_OF(t, struct worker, task);
    uint64_t end = sn_now_ns() + spin_for_ns;
    while (sn_now_ns() < end) {
    }
    (*w->count)++;
    if (!stop_workers)
        sn_schedule(t); /* stays in its group */
}

static struct sn_sched_group *share_groups[2];
static struct sn_promise *shares_done;
static struct sn_sched_group_metrics half[2];

static void end_shares(void *arg)
{
    (void)arg;
    stop_workers = true;
    sn_promise_set(shares_done, 0);
}

static struct sn_timer stop_timer, switch_timer;

/* Halfway: note the figures, then make the shares equal. */
static void switch_shares(void *arg)
{
    (void)arg;
    for (int i = 0; i < 2; i++)
        sn_metrics_group(0, share_groups[i], &half[i]);
    sn_sched_group_set_shares(share_groups[1], 100);
}

static struct sn_future *shares_main(void *arg)
{
    uint64_t ms = (uint64_t)(uintptr_t)arg;
    struct sn_future *f;
    shares_done = sn_promise_new(&f);
    stop_workers = false;
    for (int g = 0; g < 2; g++)
        for (int i = 0; i < WORKERS; i++) {
            workers[g][i].count = &counts[g];
            sn_task_init(&workers[g][i].task, work);
            sn_schedule_in(share_groups[g], &workers[g][i].task);
        }
    sn_timer_init(&switch_timer, switch_shares, NULL);
    sn_timer_arm(&switch_timer, ms * 1000000 / 2);
    sn_timer_init(&stop_timer, end_shares, NULL);
    sn_timer_arm(&stop_timer, ms * 1000000);
    return f;
}

Test(sched_group, shares_100_300_then_equal, .timeout = 60)
{
    struct sn_sched_group_config c1 = {.name = "low", .shares = 100},
                                 c3 = {.name = "high", .shares = 300};
    cr_assert_eq(sn_sched_group_create(&c1, &share_groups[0]), 0);
    cr_assert_eq(sn_sched_group_create(&c3, &share_groups[1]), 0);
    counts[0] = counts[1] = 0;
    struct sn_config cfg = test_config(1);
    uint64_t ms = SN_TEST_SLOW ? 1600 : 800;
    cr_assert_eq(sn_run(&cfg, shares_main, (void *)(uintptr_t)ms), 0);
    struct sn_sched_group_metrics end[2];
    for (int i = 0; i < 2; i++)
        cr_assert_eq(sn_metrics_group(0, share_groups[i], &end[i]), 0);
    /* First half: 100 vs 300. */
    double low = (double)half[0].run_ns / (double)(half[0].run_ns + half[1].run_ns);
    cr_expect(low > 0.20 && low < 0.30, "share of the 100-share group: %.3f", low);
    cr_expect_gt(half[0].tasks, 0);
    /* Second half: equal shares. */
    uint64_t d0 = end[0].run_ns - half[0].run_ns, d1 = end[1].run_ns - half[1].run_ns;
    double eq = (double)d0 / (double)(d0 + d1);
    cr_expect(eq > 0.43 && eq < 0.57, "share after equalising: %.3f", eq);
    cr_log_info("shares: %.3f of the time at 100:300, %.3f at 100:100; tasks %lu/%lu", low, eq,
                (unsigned long)counts[0], (unsigned long)counts[1]);
    cr_expect_gt(end[0].wait_max_ns, 0, "a contended group waited");
    cr_expect_eq(end[0].tasks + end[1].tasks, counts[0] + counts[1] + 0,
                 "tasks counted: %lu + %lu vs %lu + %lu", (unsigned long)end[0].tasks,
                 (unsigned long)end[1].tasks, (unsigned long)counts[0], (unsigned long)counts[1]);
    sn_sched_group_destroy(share_groups[0]);
    sn_sched_group_destroy(share_groups[1]);
}

/* ---- io callbacks ------------------------------------------------------------------- */

/*
 * A UDP socket opened by a task of group `io`: the receive callbacks (the reactor's CQE
 * handler calling on_datagram) run in that group and their time is charged to it, though no
 * task of the group runs them.
 */
#define IO_DATAGRAMS 20
#define IO_SPIN_NS   1000000ull /* 1 ms of wall time per datagram */

static struct sn_sched_group *io_group;
static struct sn_promise *io_done;
static struct sn_udp *io_udp;
static struct sn_task io_task;
static unsigned io_got, io_outside;

static void io_datagram(struct sn_udp *u, void *arg, const char *data, size_t len,
                        const struct sockaddr *from, socklen_t fromlen)
{
    (void)u, (void)arg, (void)data, (void)len, (void)from, (void)fromlen;
    if (sn_sched_group_current() != io_group)
        io_outside++;
    uint64_t end = sn_now_ns() + IO_SPIN_NS;
    while (sn_now_ns() < end) {
    }
    if (++io_got == IO_DATAGRAMS)
        sn_promise_set(io_done, 0);
}

static struct sn_future *io_opened(void *arg, uint64_t value)
{
    (void)arg;
    io_udp = (struct sn_udp *)(uintptr_t)value;
    struct sockaddr_in to = {.sin_family = AF_INET,
                             .sin_port = htons(sn_udp_port(io_udp)),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    for (int i = 0; i < IO_DATAGRAMS; i++)
        cr_assert_eq(sendto(fd, "x", 1, 0, (const struct sockaddr *)&to, sizeof to), 1);
    close(fd);
    return SN_SUCCESS;
}

static void io_open(struct sn_task *t)
{
    (void)t;
    struct sn_udp_config cfg = {.host = "127.0.0.1", .on_datagram = io_datagram};
    sn_ignore(sn_then(sn_udp_open(&cfg), io_opened, NULL));
}

static struct sn_future *io_close(void *arg, uint64_t v)
{
    (void)arg, (void)v;
    return sn_udp_close(io_udp);
}

static struct sn_future *io_main(void *arg)
{
    (void)arg;
    struct sn_future *f;
    io_done = sn_promise_new(&f);
    sn_task_init(&io_task, io_open);
    sn_schedule_in(io_group, &io_task);
    return sn_then(f, io_close, NULL);
}

Test(sched_group, io_callbacks_are_charged_to_the_group_that_started_the_io, .timeout = 60)
{
    struct sn_sched_group_config c = {.name = "io", .shares = 100};
    cr_assert_eq(sn_sched_group_create(&c, &io_group), 0);
    io_got = io_outside = 0;
    struct sn_config cfg = test_config(1);
    cr_assert_eq(sn_run(&cfg, io_main, NULL), 0);
    cr_assert_eq(io_got, IO_DATAGRAMS);
    cr_expect_eq(io_outside, 0, "%u callbacks ran outside the group", io_outside);
    struct sn_sched_group_metrics m;
    cr_assert_eq(sn_metrics_group(0, io_group, &m), 0);
    cr_expect_geq(m.run_ns, IO_DATAGRAMS * IO_SPIN_NS, "run time %lu ns for %d ms of callbacks",
                  (unsigned long)m.run_ns, IO_DATAGRAMS);
    cr_expect_lt(m.tasks, IO_DATAGRAMS, "callbacks are not tasks: %lu", (unsigned long)m.tasks);
    sn_sched_group_destroy(io_group);
}

/*
 * The same for a connection: a listener opened by a task of group `io`; the connection it
 * accepts reads in that group (on_data runs there) and its time is charged to it.
 */
#define TCP_BYTES 20

static struct sn_listener *tcp_l;
static int tcp_client = -1;
static unsigned tcp_got, tcp_outside;

static size_t tcp_data(struct sn_conn *conn, void *arg, const char *data, size_t len)
{
    (void)conn, (void)arg, (void)data;
    if (sn_sched_group_current() != io_group)
        tcp_outside++;
    uint64_t end = sn_now_ns() + len * IO_SPIN_NS; /* 1 ms per byte, however they come */
    while (sn_now_ns() < end) {
    }
    tcp_got += (unsigned)len;
    if (tcp_got == TCP_BYTES)
        sn_promise_set(io_done, 0);
    return len;
}

static const struct sn_conn_ops tcp_ops = {.on_data = tcp_data};

static struct sn_future *tcp_listening(void *arg, uint64_t value)
{
    (void)arg;
    tcp_l = (struct sn_listener *)(uintptr_t)value;
    struct sockaddr_in to = {.sin_family = AF_INET,
                             .sin_port = htons(sn_listener_port(tcp_l)),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    tcp_client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(tcp_client, 0);
    /* Loopback: the handshake completes in the kernel, before anyone accepts. */
    cr_assert_eq(connect(tcp_client, (const struct sockaddr *)&to, sizeof to), 0);
    char bytes[TCP_BYTES];
    memset(bytes, 'x', sizeof bytes);
    cr_assert_eq(send(tcp_client, bytes, sizeof bytes, MSG_NOSIGNAL), TCP_BYTES);
    return SN_SUCCESS;
}

static void tcp_open(struct sn_task *t)
{
    (void)t;
    struct sn_listen_config cfg = {.host = "127.0.0.1", .ops = &tcp_ops};
    sn_ignore(sn_then(sn_listen(&cfg), tcp_listening, NULL));
}

static struct sn_future *tcp_close(void *arg, uint64_t v)
{
    (void)arg, (void)v;
    return sn_listener_close(tcp_l);
}

static struct sn_future *tcp_main(void *arg)
{
    (void)arg;
    struct sn_future *f;
    io_done = sn_promise_new(&f);
    sn_task_init(&io_task, tcp_open);
    sn_schedule_in(io_group, &io_task);
    return sn_then(f, tcp_close, NULL);
}

Test(sched_group, a_connection_reads_in_the_group_that_listened, .timeout = 60)
{
    struct sn_sched_group_config c = {.name = "tcp", .shares = 100};
    cr_assert_eq(sn_sched_group_create(&c, &io_group), 0);
    tcp_got = tcp_outside = 0;
    struct sn_config cfg = test_config(1);
    cr_assert_eq(sn_run(&cfg, tcp_main, NULL), 0);
    close(tcp_client);
    cr_assert_eq(tcp_got, TCP_BYTES);
    cr_expect_eq(tcp_outside, 0, "%u reads ran outside the group", tcp_outside);
    struct sn_sched_group_metrics m;
    cr_assert_eq(sn_metrics_group(0, io_group, &m), 0);
    cr_expect_geq(m.run_ns, TCP_BYTES * IO_SPIN_NS, "run time %lu ns for %d ms of reads",
                  (unsigned long)m.run_ns, TCP_BYTES);
    sn_sched_group_destroy(io_group);
}

/* ---- the core's own io is not a group's ------------------------------------------------ */

/* The first network call on a core (here sn_listen from a task of group "first") arms the
 * core's own net sentinel, whose callback stops every connection at shutdown: that is the
 * core's work, not the group's. Its run time must not grow after its last work, and a group
 * destroyed at that point (as its contract allows) is never touched again. */
static struct sn_sched_group_metrics first_before;

static struct sn_future *first_closed(void *arg, uint64_t v)
{
    (void)arg, (void)v;
    cr_assert_eq(sn_metrics_group(0, io_group, &first_before), 0);
    return SN_SUCCESS;
}

static struct sn_future *first_listening(void *arg, uint64_t value)
{
    (void)arg;
    return sn_listener_close((struct sn_listener *)(uintptr_t)value);
}

static void first_done(void *arg, int err, uint64_t v)
{
    (void)arg, (void)v;
    cr_assert_eq(err, 0);
    sn_promise_set(io_done, 0);
}

static void first_listen(struct sn_task *t)
{
    (void)t;
    static const struct sn_conn_ops none = {0};
    struct sn_listen_config cfg = {.host = "127.0.0.1", .ops = &none};
    sn_done(sn_then(sn_listen(&cfg), first_listening, NULL), first_done, NULL);
}

static struct sn_future *first_main(void *arg)
{
    (void)arg;
    struct sn_future *f;
    io_done = sn_promise_new(&f);
    sn_task_init(&io_task, first_listen);
    sn_schedule_in(io_group, &io_task);
    return sn_then(f, first_closed, NULL);
}

Test(sched_group, the_cores_own_io_is_not_charged_to_the_first_group, .timeout = 60)
{
    struct sn_sched_group_config c = {.name = "first", .shares = 100};
    cr_assert_eq(sn_sched_group_create(&c, &io_group), 0);
    struct sn_config cfg = test_config(1);
    cr_assert_eq(sn_run(&cfg, first_main, NULL), 0);
    struct sn_sched_group_metrics after;
    cr_assert_eq(sn_metrics_group(0, io_group, &after), 0);
    cr_expect_eq(after.run_ns, first_before.run_ns,
                 "the shutdown's net work was charged to the group: %lu ns after its last work",
                 (unsigned long)(after.run_ns - first_before.run_ns));
    sn_sched_group_destroy(io_group);
}

/* ---- connections do not inherit the serving bit ------------------------------------------- */

/* Code serving a capped request runs with the serving bit (the calls it makes skip the caps),
 * and so does everything it starts, sn_listen's slots on every core included. A connection
 * accepted by them outlives that request: its callbacks must run without the bit, or every
 * call the connection makes would escape the caps. 16 connections, so both cores accept. */
#define SERVE_CONNS 16

static struct sn_listener *serve_l;
static int serve_fds[SERVE_CONNS];
static unsigned serve_got;                     /* core 0 only */
static unsigned serve_serving[2], serve_on[2]; /* each core its own */

static void serve_arrived(void *arg)
{
    (void)arg;
    if (++serve_got == SERVE_CONNS)
        sn_promise_set(io_done, 0);
}

static size_t serve_data(struct sn_conn *conn, void *arg, const char *data, size_t len)
{
    (void)conn, (void)arg, (void)data;
    unsigned core = sn_core_id();
    if (sn__tls_sched->tag & SN__TAG_SERVING)
        serve_serving[core]++;
    for (size_t i = 0; i < len; i++) {
        serve_on[core]++;
        cr_assert_eq(sn_send(0, serve_arrived, NULL), 0);
    }
    return len;
}

static const struct sn_conn_ops serve_ops = {.on_data = serve_data};

static struct sn_future *serve_close(void *arg, uint64_t v)
{
    (void)arg, (void)v;
    return sn_listener_close(serve_l);
}

static struct sn_future *serve_listening(void *arg, uint64_t value)
{
    (void)arg;
    serve_l = (struct sn_listener *)(uintptr_t)value;
    struct sockaddr_in to = {.sin_family = AF_INET,
                             .sin_port = htons(sn_listener_port(serve_l)),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    for (int i = 0; i < SERVE_CONNS; i++) {
        serve_fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        cr_assert_geq(serve_fds[i], 0);
        cr_assert_eq(connect(serve_fds[i], (const struct sockaddr *)&to, sizeof to), 0);
        cr_assert_eq(send(serve_fds[i], "x", 1, MSG_NOSIGNAL), 1);
    }
    return SN_SUCCESS;
}

/* On core 1, serving core 0's capped request: listens on every core. */
static struct sn_future *serve_listen(void *arg)
{
    (void)arg;
    struct sn_listen_config cfg = {.host = "127.0.0.1", .ops = &serve_ops};
    return sn_then(sn_listen(&cfg), serve_listening, NULL);
}

static struct sn_service_group *serve_sg;

static struct sn_future *serve_main(void *arg)
{
    (void)arg;
    struct sn_future *f;
    io_done = sn_promise_new(&f);
    sn_ignore(sn_submit_to_via(serve_sg, 1, serve_listen, NULL));
    return sn_then(f, serve_close, NULL);
}

Test(sched_group, connections_accepted_on_other_cores_are_not_serving, .timeout = 60)
{
    struct sn_service_group_config sc = {.name = "capped", .max_inflight = 1};
    cr_assert_eq(sn_service_group_create(&sc, &serve_sg), 0);
    serve_got = 0;
    memset(serve_serving, 0, sizeof serve_serving);
    memset(serve_on, 0, sizeof serve_on);
    struct sn_config cfg = test_config(2);
    cr_assert_eq(sn_run(&cfg, serve_main, NULL), 0);
    for (int i = 0; i < SERVE_CONNS; i++)
        close(serve_fds[i]);
    cr_assert_eq(serve_on[0] + serve_on[1], SERVE_CONNS);
    cr_expect_gt(serve_on[1], 0, "no connection on core 1: nothing exercised");
    cr_expect_eq(serve_serving[0] + serve_serving[1], 0,
                 "%u reads on core 0 and %u on core 1 ran with the serving bit", serve_serving[0],
                 serve_serving[1]);
    sn_service_group_destroy(serve_sg);
}
