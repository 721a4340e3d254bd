/*
 * The "stats" answer: memcached's general stats, in memcached's order, with the store
 * counters summed over the cores (mc_store_stats_add) and the server's own lines (pid, uptime,
 * connections, bytes, and "ready", the health check's line: 0 once the server is stopping)
 * between them, then a few lines per core ("core:<i>:<name>", the style
 * of memcached's "items:<slab>:<name>") so the spread of keys and work over cores can be seen.
 */
#include "kv.h"

#include <errno.h>
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

static void sum_counters(struct kv_core_counters *d, const struct kv_core_counters *s)
{
    d->curr_conns += s->curr_conns;
    d->total_conns += s->total_conns;
    d->rejected_conns += s->rejected_conns;
    d->bytes_read += s->bytes_read;
    d->bytes_written += s->bytes_written;
    d->remote_ops += s->remote_ops;
    d->remote_batches += s->remote_batches;
    d->served_ops += s->served_ops;
}

static int server_lines(struct app_outbuf *b, const struct kv_core_counters *t)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    time_t now = time(NULL);
    int rc = 0;
    rc |= mc_reply_stat(b, "pid", "%ld", (long)getpid());
    rc |= mc_reply_stat(b, "uptime", "%ld", (long)(now - kv_srv.started));
    rc |= mc_reply_stat(b, "time", "%ld", (long)now);
    rc |= mc_reply_stat(b, "version", "%s", MC_VERSION);
    /* The health check's line: 1 while the server takes work, 0 once it is stopping. */
    rc |= mc_reply_stat_u64(b, "ready", sn_stopping() ? 0 : 1);
    rc |= mc_reply_stat(b, "pointer_size", "%zu", 8 * sizeof(void *));
    rc |= mc_reply_stat(b, "rusage_user", "%ld.%06ld", (long)ru.ru_utime.tv_sec,
                        (long)ru.ru_utime.tv_usec);
    rc |= mc_reply_stat(b, "rusage_system", "%ld.%06ld", (long)ru.ru_stime.tv_sec,
                        (long)ru.ru_stime.tv_usec);
    rc |= mc_reply_stat_u64(b, "max_connections", kv_srv.opt.max_conns);
    rc |= mc_reply_stat_u64(b, "curr_connections", t->curr_conns);
    rc |= mc_reply_stat_u64(b, "total_connections", t->total_conns);
    rc |= mc_reply_stat_u64(b, "rejected_connections", t->rejected_conns);
    rc |= mc_reply_stat_u64(b, "connection_structures", t->curr_conns);
    return rc ? -ENOMEM : 0;
}

static int core_lines(struct app_outbuf *b, unsigned i, const struct kv_core_snap *s)
{
    static const char *const names[] = {
        "curr_connections", "total_connections", "bytes_read",  "bytes_written",
        "cmd_get",          "cmd_set",           "get_hits",    "get_misses",
        "curr_items",       "bytes",             "evictions",   "limit_maxbytes",
        "remote_ops",       "remote_batches",    "served_ops",
    };
    const uint64_t v[] = {
        s->c.curr_conns, s->c.total_conns, s->c.bytes_read,    s->c.bytes_written,
        s->st.cmd_get,   s->st.cmd_set,    s->st.get_hits,     s->st.get_misses,
        s->st.curr_items, s->st.bytes,     s->st.evictions,    s->st.limit_maxbytes,
        s->c.remote_ops, s->c.remote_batches, s->c.served_ops,
    };
    _Static_assert(sizeof names / sizeof names[0] == sizeof v / sizeof v[0], "one value each");
    for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) {
        char name[64];
        snprintf(name, sizeof name, "core:%u:%s", i, names[k]);
        if (mc_reply_stat_u64(b, name, v[k]) < 0)
            return -ENOMEM;
    }
    return 0;
}

int kv_stats_format(struct app_outbuf *b, const struct kv_core_snap *snap, unsigned ncores)
{
    struct mc_store_stats st = {0};
    struct kv_core_counters t = {0};
    for (unsigned i = 0; i < ncores; i++) {
        mc_store_stats_add(&st, &snap[i].st);
        sum_counters(&t, &snap[i].c);
    }
    int rc = server_lines(b, &t);
    if (!rc)
        rc = mc_reply_store_stats(b, &st, MC_STATS_CMDS);
    if (!rc) {
        rc |= mc_reply_stat_u64(b, "bytes_read", t.bytes_read);
        rc |= mc_reply_stat_u64(b, "bytes_written", t.bytes_written);
        rc |= mc_reply_stat_u64(b, "limit_maxbytes", st.limit_maxbytes);
        rc |= mc_reply_stat_u64(b, "accepting_conns", 1);
        rc |= mc_reply_stat_u64(b, "threads", ncores);
    }
    if (!rc)
        rc = mc_reply_store_stats(b, &st, MC_STATS_HASH);
    if (!rc)
        rc = mc_reply_store_stats(b, &st, MC_STATS_ITEMS);
    for (unsigned i = 0; !rc && i < ncores; i++)
        rc = core_lines(b, i, &snap[i]);
    return rc ? -ENOMEM : mc_reply_end(b);
}
