/* Tests for reactor/uring.[ch]: setup ladder, forced fallback, ownership, probes. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "reactor/uring.h"

/* Submits a NOP with user_data `ud` and reaps it (owner thread). */
static int nop_round_trip(struct sn__uring *u, uint64_t ud)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    struct io_uring_cqe *cqe;
    if (!sqe)
        return -EBUSY;
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data64(sqe, ud);
    int r = sn__uring_submit_and_poll(u);
    if (r < 0)
        return r;
    r = io_uring_wait_cqe(&u->ring, &cqe);
    if (r < 0)
        return r;
    r = cqe->user_data == ud ? cqe->res : -EPROTO;
    io_uring_cqe_seen(&u->ring, cqe);
    return r;
}

Test(uring, best_setup)
{
    struct sn__uring u;
    char desc[160];
    cr_assert_eq(sn__uring_init(&u, 64, 0), 0);
    cr_log_info("uring features: %s", sn__uring_describe(&u, desc, sizeof desc));
    cr_assert_geq(u.fd, 0);
    cr_assert_not(u.disabled);
    cr_assert_not(u.features & SN__URING_FALLBACK);
    /* This project targets kernels >= 6.1, which have both. */
    cr_expect(u.features & SN__URING_SINGLE_ISSUER);
    cr_expect(u.features & SN__URING_DEFER_TASKRUN);
    cr_expect(u.features & SN__URING_MSG_RING);
    cr_expect(u.features & SN__URING_CQE_SKIP);
    cr_expect(u.features & SN__URING_BUF_RING);
    cr_assert_eq(!!(u.setup_flags & IORING_SETUP_DEFER_TASKRUN),
                 !!(u.features & SN__URING_DEFER_TASKRUN));
    cr_assert_eq(nop_round_trip(&u, 42), 0);
    /* Nothing queued: a poll is a no-op. */
    cr_assert_eq(sn__uring_submit_and_poll(&u), 0);
    sn__uring_exit(&u);
    cr_assert_eq(u.fd, -1);
    sn__uring_exit(&u); /* idempotent */
}

Test(uring, forced_fallback_flag)
{
    struct sn__uring u;
    cr_assert_eq(sn__uring_init(&u, 8, SN__URING_FORCE_FALLBACK), 0);
    cr_assert(u.features & SN__URING_FALLBACK);
    cr_assert_eq(u.setup_flags & ~IORING_SETUP_CQSIZE, 0u, "plain setup");
    cr_assert_not(u.features & (SN__URING_SINGLE_ISSUER | SN__URING_DEFER_TASKRUN));
    cr_assert_eq(nop_round_trip(&u, 7), 0);
    sn__uring_exit(&u);
}

Test(uring, forced_fallback_env)
{
    struct sn__uring u;
    setenv("SN_URING_FALLBACK", "1", 1);
    int r = sn__uring_init(&u, 8, 0);
    unsetenv("SN_URING_FALLBACK");
    cr_assert_eq(r, 0);
    cr_assert(u.features & SN__URING_FALLBACK);
    cr_assert_eq(nop_round_trip(&u, 9), 0);
    sn__uring_exit(&u);
}

struct owner_job {
    struct sn__uring *u;
    int enable_rc, nop_rc;
};

static void *owner_thread(void *arg)
{
    struct owner_job *j = arg;
    j->enable_rc = sn__uring_enable(j->u);
    j->nop_rc = j->enable_rc < 0 ? j->enable_rc : nop_round_trip(j->u, 5);
    return NULL;
}

/* Created disabled on this thread, owned by another: the documented set-up for sn_run. */
Test(uring, disabled_then_enabled_by_owner)
{
    struct sn__uring u;
    cr_assert_eq(sn__uring_init(&u, 8, SN__URING_DISABLED), 0);
    if (!(u.features & SN__URING_SINGLE_ISSUER)) {
        sn__uring_exit(&u);
        cr_skip_test("no SINGLE_ISSUER");
    }
    cr_assert(u.disabled);
    cr_assert(u.setup_flags & IORING_SETUP_R_DISABLED);
    struct owner_job j = {.u = &u};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, owner_thread, &j), 0);
    pthread_join(th, NULL);
    cr_assert_eq(j.enable_rc, 0);
    cr_assert_eq(j.nop_rc, 0);
    cr_assert_not(u.disabled);
    /* The creator is not the owner: the kernel refuses its submissions. */
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u.ring);
    io_uring_prep_nop(sqe);
    cr_assert_eq(io_uring_submit(&u.ring), -EEXIST);
    sn__uring_exit(&u);
}

Test(uring, enable_is_noop_when_not_disabled)
{
    struct sn__uring u;
    cr_assert_eq(sn__uring_init(&u, 8, 0), 0);
    cr_assert_eq(sn__uring_enable(&u), 0);
    sn__uring_exit(&u);
    cr_assert_eq(sn__uring_init(&u, 8, SN__URING_DISABLED | SN__URING_FORCE_FALLBACK), 0);
    cr_assert_not(u.disabled, "plain rings have no owner, so are never created disabled");
    cr_assert_eq(sn__uring_enable(&u), 0);
    cr_assert_eq(nop_round_trip(&u, 3), 0);
    sn__uring_exit(&u);
}

Test(uring, reserved_user_data)
{
    cr_assert(sn__ud_is_reserved(SN__UD_WAKE_MSG));
    cr_assert(sn__ud_is_reserved(SN__UD_WAKE_EVENTFD));
    cr_assert(sn__ud_is_reserved(SN__UD_SIGNAL));
    cr_assert(sn__ud_is_reserved(SN__UD_WAKE_SENT_TAG | 0x7fffffffffffull));
    int x;
    cr_assert_not(sn__ud_is_reserved((uint64_t)(uintptr_t)&x));
    cr_assert_not(sn__ud_is_reserved(0));
    cr_assert_not(sn__ud_is_reserved(1ull << 56));
}
