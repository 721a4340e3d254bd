/* Gate: counts members inside, closes, and tells when the last one left (include/sn/sync.h). */
#include "core/sync_internal.h"

#include <stdbool.h>
#include <stdlib.h>

struct sn_gate {
    uint64_t count;
    struct sn_promise *close; /* the close future's promise while members are inside */
    unsigned core;
    bool closed;
};

int sn_gate_create(struct sn_gate **out)
{
    if (!out)
        return -EINVAL;
    if (!sn_on_core())
        return -EPERM;
    struct sn_gate *g = malloc(sizeof *g);
    if (!g)
        return -ENOMEM;
    *g = (struct sn_gate){.core = sn_core_id()};
    *out = g;
    return 0;
}

void sn_gate_destroy(struct sn_gate *g)
{
    if (!g)
        return;
    sn__sync_check_destroy(g->core, __func__);
    struct sn_promise *p = g->close;
    free(g);
    if (p)
        sn_promise_fail(p, -ECANCELED);
}

int sn_gate_enter(struct sn_gate *g)
{
    if (!g)
        return -EINVAL;
    int rc = sn__sync_check(g->core);
    if (rc)
        return rc;
    if (g->closed)
        return -ESHUTDOWN;
    g->count++;
    return 0;
}

int sn_gate_leave(struct sn_gate *g)
{
    if (!g)
        return -EINVAL;
    int rc = sn__sync_check(g->core);
    if (rc)
        return rc;
    if (g->count == 0)
        return -EINVAL;
    if (--g->count == 0 && g->close) {
        struct sn_promise *p = g->close;
        g->close = NULL;
        sn_promise_set(p, 0);
    }
    return 0;
}

struct sn_future *sn_gate_close(struct sn_gate *g)
{
    struct sn__sched *s = sn__sched_here(__func__);
    if (!g)
        return sn_failed(-EINVAL);
    if (g->core != s->id)
        return sn_failed(-EXDEV);
    if (g->closed)
        return sn_failed(-EALREADY);
    g->closed = true;
    if (g->count == 0)
        return sn_ready(0);
    struct sn_future *f;
    g->close = sn_promise_new(&f);
    return f;
}

int64_t sn_gate_count(const struct sn_gate *g)
{
    if (!g)
        return -EINVAL;
    int rc = sn__sync_check(g->core);
    return rc ? rc : (int64_t)g->count;
}
