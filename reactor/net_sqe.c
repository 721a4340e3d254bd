/* What the network and file layers do without an SQE: see reactor/net_sqe.h. */
#include "reactor/net_sqe.h"

#include <sn/future.h>
#include <sn/reactor.h>
#include <sn/timer.h>

#include "core/sched.h"

__thread unsigned sn__sqe_fail_next;
__thread uint64_t sn__sqe_failed;

bool sn__sqe_wait(void (*fn)(void *arg, int err, uint64_t value), void *arg)
{
    /* Once stopping, timers refuse to arm and sn_yield would settle at once, inline. */
    if (sn_stopping())
        return false;
    /* sn_yield settles in the timer phase, which comes after the io phase's submit. */
    struct sn_future *f = sn_yield();
    int err;
    uint64_t value;
    if (!f || sn__future_take(f, &err, &value))
        return false; /* settled already (no memory for the timer): do not call fn inline */
    sn_done(f, fn, arg);
    return true;
}
