/* The common tail of the batch sample apps: see finish.h. */
#include "apps/common/finish.h"

#include <stdio.h>

/* Reports a failed stop; settles with 1 if it failed, else 0 (one pointer arg: the name). */
static struct sn_future *stop_reported(void *arg, int err, uint64_t unused)
{
    (void)unused;
    if (err)
        fprintf(stderr, "%s: %s\n", (const char *)arg, sn_strerror(err));
    return sn_ready(err ? 1 : 0);
}

/* The exit code: 1 after a failed stop, else the code the work chain ended with. */
static struct sn_future *exit_code(void *arg, uint64_t stop_failed)
{
    return sn_ready(stop_failed ? 1 : (uintptr_t)arg);
}

struct sn_future *app_stop_sharded(const char *prog, struct sn_sharded *s, int err, uint64_t code)
{
    if (err)
        fprintf(stderr, "%s: %s\n", prog, sn_strerror(err));
    struct sn_future *f = sn_then_wrapped(sn_sharded_stop(s), stop_reported, (void *)prog);
    return sn_then(f, exit_code, (void *)(uintptr_t)(err ? 1 : code));
}
