/*
 * Whether this kernel can batch sleeps (--io-batch-us needs IORING_FEAT_MIN_TIMEOUT, Linux
 * 6.12): tests of batched sleeps skip without it. Shared by test_io_batch.c and
 * test_httpd.c.
 */
#ifndef SN_TESTS_IO_BATCH_UTIL_H
#define SN_TESTS_IO_BATCH_UTIL_H

#include <stdbool.h>

#include "reactor/uring.h"

static inline bool kernel_batches(void)
{
    struct sn__uring u;
    if (sn__uring_init(&u, 4, 0) < 0)
        return false;
    bool ok = u.features & SN__URING_MIN_WAIT;
    sn__uring_exit(&u);
    return ok;
}

#endif
