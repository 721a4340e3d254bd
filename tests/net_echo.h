/* The echo workload shared by the tests/test_net*.c binaries: see net_harness.h. */
#ifndef SN_TESTS_NET_ECHO_H
#define SN_TESTS_NET_ECHO_H

#include <criterion/criterion.h>

#include "net_harness.h"


static unsigned n_clients;
static size_t max_len;

static inline int echo_clients(struct harness *h)
{
    nu_run_clients(h->port, n_clients, max_len, 42, true, 0, 60000, &h->res);
    wait_server_idle();
    return 0;
}

static inline void check_echo(int rc)
{
    cr_assert_eq(rc, 0, "sn_run: %d (listen: %s)", rc, sn_strerror(H.listen_err));
    cr_assert_eq(H.client_rc, 0);
    cr_assert(!H.res.timed_out, "clients timed out");
    cr_assert_eq(H.res.ok, n_clients, "%u of %u echoes whole (bad %u)", H.res.ok, n_clients,
                 H.res.bad);
    cr_assert_eq(H.res.bad, 0);
    cr_assert_eq(TOTAL(opened), n_clients);
    cr_assert_eq(TOTAL(clean), n_clients, "clean closes %lu, other %lu cancelled %lu resets %lu",
                 (unsigned long)TOTAL(clean), (unsigned long)TOTAL(other),
                 (unsigned long)TOTAL(cancelled), (unsigned long)TOTAL(resets));
    cr_assert_eq(H.stats.accepted, n_clients);
    cr_assert_eq(H.stats.refused, 0);
}

static inline void echo_setup(void)
{
    n_clients = SCALE(16, 2);
    max_len = SN_TEST_SLOW ? 256 * 1024 : 1024 * 1024;
}

#endif
