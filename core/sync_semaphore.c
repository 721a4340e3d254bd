/* Semaphore with units, served in order (see include/sn/sync.h). */
#include "core/sync_internal.h"

#include <stdlib.h>

struct sn_semaphore {
    struct sn__wait_list waiters;
    uint64_t units;
    unsigned core;
    int err; /* 0, or the error it was broken with */
};

/* Serves waiters from the head while the units suffice; a large head holds back the rest. */
static void serve(struct sn__sched *s, struct sn_semaphore *sem, struct sn__wake *b)
{
    struct sn__sync_wait *w;
    while ((w = sn__wait_first(&sem->waiters)) && w->data <= sem->units) {
        sem->units -= w->data;
        sn__wait_take(s, w, 0, 0, b);
    }
}

static void after_timeout(struct sn__wait_list *l, struct sn__wake *b)
{
    serve(sn__tls_sched, SN_CONTAINER_OF(l, struct sn_semaphore, waiters), b);
}

int sn_semaphore_create(uint64_t units, struct sn_semaphore **out)
{
    if (!out || units > SN__SYNC_MAX)
        return -EINVAL;
    if (!sn_on_core())
        return -EPERM;
    struct sn_semaphore *sem = malloc(sizeof *sem);
    if (!sem)
        return -ENOMEM;
    sn__wait_list_init(&sem->waiters, after_timeout);
    sem->units = units;
    sem->core = sn_core_id();
    sem->err = 0;
    *out = sem;
    return 0;
}

void sn_semaphore_destroy(struct sn_semaphore *sem)
{
    if (!sem)
        return;
    sn__sync_check_destroy(sem->core, __func__);
    struct sn__sched *s = sn__tls_sched;
    struct sn__wake b;
    sn__wake_init(&b);
    sn__wait_take_all(s, &sem->waiters, -ECANCELED, &b);
    free(sem);
    sn__wake_settle(s, &b);
}

/* 0 when `n` units may be taken now, else why not (-EAGAIN: they must be waited for). */
static int can_take(const struct sn_semaphore *sem, uint64_t n)
{
    if (sem->err)
        return sem->err;
    if (n > SN__SYNC_MAX)
        return -EINVAL;
    if (sem->waiters.len || sem->units < n)
        return -EAGAIN;
    return 0;
}

static struct sn_future *wait_units(struct sn__sched *s, struct sn_semaphore *sem, uint64_t n,
                                    uint64_t timeout_ns)
{
    if (!sem)
        return sn_failed(-EINVAL);
    if (sem->core != s->id)
        return sn_failed(-EXDEV);
    int rc = can_take(sem, n);
    if (rc == 0) {
        sem->units -= n;
        return sn_ready(0);
    }
    if (rc != -EAGAIN)
        return sn_failed(rc);
    return sn__wait_add(s, &sem->waiters, n, timeout_ns);
}

struct sn_future *sn_semaphore_wait(struct sn_semaphore *sem, uint64_t n)
{
    return wait_units(sn__sched_here(__func__), sem, n, SN__NO_TIMEOUT);
}

struct sn_future *sn_semaphore_wait_for(struct sn_semaphore *sem, uint64_t n, uint64_t timeout_ns)
{
    if (timeout_ns == SN__NO_TIMEOUT)
        timeout_ns--; /* a deadline 584 years away, still a deadline */
    return wait_units(sn__sched_here(__func__), sem, n, timeout_ns);
}

int sn_semaphore_try_wait(struct sn_semaphore *sem, uint64_t n)
{
    if (!sem)
        return -EINVAL;
    int rc = sn__sync_check(sem->core);
    if (rc == 0)
        rc = can_take(sem, n);
    if (rc == 0)
        sem->units -= n;
    return rc;
}

int sn_semaphore_signal(struct sn_semaphore *sem, uint64_t n)
{
    if (!sem)
        return -EINVAL;
    int rc = sn__sync_check(sem->core);
    if (rc)
        return rc;
    if (n > SN__SYNC_MAX - sem->units)
        return -EOVERFLOW;
    sem->units += n;
    struct sn__sched *s = sn__tls_sched;
    struct sn__wake b;
    sn__wake_init(&b);
    serve(s, sem, &b);
    sn__wake_settle(s, &b);
    return 0;
}

int sn_semaphore_break(struct sn_semaphore *sem, int err)
{
    if (!sem)
        return -EINVAL;
    int rc = sn__sync_check(sem->core);
    if (rc || sem->err)
        return rc;
    sem->err = sn__sync_err(err);
    struct sn__sched *s = sn__tls_sched;
    struct sn__wake b;
    sn__wake_init(&b);
    sn__wait_take_all(s, &sem->waiters, sem->err, &b);
    sn__wake_settle(s, &b);
    return 0;
}

int64_t sn_semaphore_available(const struct sn_semaphore *sem)
{
    if (!sem)
        return -EINVAL;
    int rc = sn__sync_check(sem->core);
    return rc ? rc : (int64_t)sem->units;
}

int64_t sn_semaphore_waiters(const struct sn_semaphore *sem)
{
    if (!sem)
        return -EINVAL;
    int rc = sn__sync_check(sem->core);
    return rc ? rc : (int64_t)sem->waiters.len;
}
