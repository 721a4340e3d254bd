/* Event: a condition without memory (include/sn/sync.h). */
#include "core/sync_internal.h"

#include <limits.h>
#include <stdlib.h>

struct sn_event {
    struct sn__wait_list waiters;
    unsigned core;
};

int sn_event_create(struct sn_event **out)
{
    if (!out)
        return -EINVAL;
    if (!sn_on_core())
        return -EPERM;
    struct sn_event *ev = malloc(sizeof *ev);
    if (!ev)
        return -ENOMEM;
    sn__wait_list_init(&ev->waiters, NULL);
    ev->core = sn_core_id();
    *out = ev;
    return 0;
}

void sn_event_destroy(struct sn_event *ev)
{
    if (!ev)
        return;
    sn__sync_check_destroy(ev->core, __func__);
    struct sn__sched *s = sn__tls_sched;
    struct sn__wake b;
    sn__wake_init(&b);
    sn__wait_take_all(s, &ev->waiters, -ECANCELED, &b);
    free(ev);
    sn__wake_settle(s, &b);
}

static struct sn_future *wait_event(struct sn__sched *s, struct sn_event *ev, uint64_t timeout_ns)
{
    if (!ev)
        return sn_failed(-EINVAL);
    if (ev->core != s->id)
        return sn_failed(-EXDEV);
    return sn__wait_add(s, &ev->waiters, 0, timeout_ns);
}

struct sn_future *sn_event_wait(struct sn_event *ev)
{
    return wait_event(sn__sched_here(__func__), ev, SN__NO_TIMEOUT);
}

struct sn_future *sn_event_wait_for(struct sn_event *ev, uint64_t timeout_ns)
{
    if (timeout_ns == SN__NO_TIMEOUT)
        timeout_ns--;
    return wait_event(sn__sched_here(__func__), ev, timeout_ns);
}

/* Wakes up to `max` waits from the head; the batch is settled after the list is left. */
static int notify(struct sn_event *ev, uint64_t max)
{
    if (!ev)
        return -EINVAL;
    int rc = sn__sync_check(ev->core);
    if (rc)
        return rc;
    struct sn__sched *s = sn__tls_sched;
    struct sn__wake b;
    sn__wake_init(&b);
    uint64_t n = 0;
    struct sn__sync_wait *w;
    for (; n < max && (w = sn__wait_first(&ev->waiters)); n++)
        sn__wait_take(s, w, 0, 0, &b);
    sn__wake_settle(s, &b);
    return n > INT_MAX ? INT_MAX : (int)n;
}

int sn_event_notify_one(struct sn_event *ev)
{
    return notify(ev, 1);
}

int sn_event_notify_all(struct sn_event *ev)
{
    return notify(ev, UINT64_MAX);
}

int64_t sn_event_waiters(const struct sn_event *ev)
{
    if (!ev)
        return -EINVAL;
    int rc = sn__sync_check(ev->core);
    return rc ? rc : (int64_t)ev->waiters.len;
}
