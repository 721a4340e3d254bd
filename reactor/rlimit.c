/*
 * Open-file limit at start-up. A server holds one descriptor per connection, and the soft
 * RLIMIT_NOFILE a process inherits is often 1024 while the hard limit allows far more, so
 * sn_run raises the soft limit to the hard one, as Seastar and nginx (worker_rlimit_nofile)
 * do. It never lowers a limit and never touches the hard limit (that needs privileges).
 */
#include "reactor/core.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

int sn__raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -errno;
    if (rl.rlim_cur >= rl.rlim_max)
        return 0;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
        int err = errno;
        fprintf(stderr, "libsn: cannot raise the open-file limit to %llu: %s\n",
                (unsigned long long)rl.rlim_max, strerror(err));
        return -err;
    }
    return 0;
}
