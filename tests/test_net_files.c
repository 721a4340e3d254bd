/*
 * Registered file slots for connections (reactor/net_files.c): each socket goes into the
 * slot numbered like its fd, and the slot is dropped before the fd is closed. Checked with
 * rounds of short echo connections, so fd numbers are handed out again and again while
 * earlier slots are being dropped: every echo must come back whole and to the right client
 * (a stale slot would send one client's bytes to another socket, or fail with EBADF), on
 * slots (every connection) and, with SN_NET_PLAIN_FILES=1, on plain fds.
 */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "net_echo.h"

#define ROUNDS    SCALE(40, 4)
#define PER_ROUND 6

static int rounds_of_clients(struct harness *h)
{
    struct nu_result sum = {0};
    for (unsigned r = 0; r < ROUNDS; r++) {
        nu_run_clients(h->port, PER_ROUND, 4096, 1000 + r, r % 2 == 0, 0, 20000, &h->res);
        sum.ok += h->res.ok;
        sum.bad += h->res.bad;
        sum.timed_out |= h->res.timed_out;
        wait_server_idle(); /* every slot of this round dropped or on its way */
    }
    h->res = sum;
    return 0;
}

static void run_rounds(void)
{
    n_clients = ROUNDS * PER_ROUND;
    max_len = 4096;
    harness_init(ECHO, rounds_of_clients);
    check_echo(harness_run());
}

Test(net_files, short_connections_reuse_fds_through_slots, .timeout = 120)
{
    run_rounds();
    cr_assert_eq(TOTAL(fixed), TOTAL(opened), "%lu of %lu connections used a slot",
                 (unsigned long)TOTAL(fixed), (unsigned long)TOTAL(opened));
}

Test(net_files, plain_fds_when_turned_off, .timeout = 120)
{
    setenv("SN_NET_PLAIN_FILES", "1", 1);
    run_rounds();
    cr_assert_eq(TOTAL(fixed), 0);
    unsetenv("SN_NET_PLAIN_FILES");
}
