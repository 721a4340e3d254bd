/*
 * sn-kv's health check: its memcached "stats" answer carries "STAT ready 1" while the server
 * takes work (0 once it is stopping: apps/kv/kv_stats.c reads sn_stopping(), which the
 * reactor tests cover), next to memcached's usual lines, so a memcached health probe that
 * sends "stats" can check one line.
 */
#include <criterion/criterion.h>

#include "apps/kv/kv.h"
#include "kv_server_util.h"

Test(kv_health, stats_has_a_ready_line, .timeout = 60)
{
    (void)db_printf; /* kv_server_util.h's helpers are static; this file needs a few */
    kvs_start(2, "jump", NULL);
    char *st = get_stats();
    cr_expect_eq(stat_of(st, "ready"), 1, "stats:\n%s", st);
    cr_expect_gt(stat_of(st, "pid"), 0);
    free(st);
    kvs_stop();
    kvs_fini();
}

/* In process: the stats text says ready 1 on a running core, ready 0 once the stop began. */
static int ready_before = -1, ready_after = -1;

static int ready_in(const struct app_outbuf *b)
{
    const char *p = memmem(b->data, b->len, "STAT ready ", 11);
    return p ? p[11] - '0' : -1;
}

static struct sn_future *format_around_stop(void *arg)
{
    (void)arg;
    struct kv_core_snap snap;
    memset(&snap, 0, sizeof snap);
    struct app_outbuf b;
    app_outbuf_init(&b);
    if (kv_stats_format(&b, &snap, 1) == 0)
        ready_before = ready_in(&b);
    sn_stop(0);
    app_outbuf_clear(&b);
    if (kv_stats_format(&b, &snap, 1) == 0)
        ready_after = ready_in(&b);
    app_outbuf_free(&b);
    return sn_when_stopped();
}

Test(kv_health, ready_is_0_once_stopping, .timeout = 60)
{
    struct sn_config cfg;
    sn_config_init(&cfg);
    cfg.smp = 1;
    cfg.unpinned = true;
    cr_assert_eq(sn_run(&cfg, format_around_stop, NULL), 0);
    cr_expect_eq(ready_before, 1);
    cr_expect_eq(ready_after, 0);
}
