/*
 * sn-broadcast: the seed's broadcast support as an example. Core 0 sends a control message
 * to every core (itself included) and collects their acknowledgements, round after round:
 * each message carries a configuration epoch and a setting; each core applies it only when
 * it is the next epoch it expects, remembers the setting, and acknowledges with
 * (core id, epoch applied). Core 0 waits for all acknowledgements of a round (sn_when_all)
 * before it sends the next, checks every one of them, and at the end asks every core for
 * its state with sn_map_reduce.
 *
 *   sn-broadcast [--rounds N] [libsn options]
 *
 * Prints a line per round (the first few and the last) and "result: ... ok"; exits 0 when
 * every core acknowledged every round in order.
 */
#include <sn.h>
#include "apps/common/cli.h"
#include "apps/common/finish.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CORES 256

struct control {
    uint32_t epoch;
    uint32_t setting;
};

/* One core's view of the configuration. */
struct node {
    uint32_t epoch;    /* last epoch applied */
    uint64_t settings; /* sum of the settings applied, for the final check */
    uint64_t out_of_order;
};

static struct {
    uint32_t rounds;
    uint32_t round;
    struct control msg;
    struct sn_sharded *nodes;
    struct sn_future *futs[MAX_CORES];
    struct sn_result acks[MAX_CORES];
    uint64_t bad_acks;
    uint64_t want_settings;
} app;

static uint32_t setting_of(uint32_t epoch)
{
    return epoch * 2654435761u >> 16;
}

static void *node_init(void *arg, unsigned core)
{
    (void)arg, (void)core;
    return calloc(1, sizeof(struct node));
}

static void node_fini(void *instance, void *arg)
{
    (void)arg;
    free(instance);
}

/* On every core: applies the control message; the acknowledgement is (core << 32 | epoch). */
static int apply(void *arg, uint64_t *value)
{
    const struct control *m = arg;
    struct node *n = sn_sharded_local(app.nodes);
    if (m->epoch == n->epoch + 1) {
        n->epoch = m->epoch;
        n->settings += m->setting;
    } else {
        n->out_of_order++;
    }
    *value = (uint64_t)sn_core_id() << 32 | n->epoch;
    return 0;
}

static struct sn_future *broadcast_round(void *arg, uint64_t unused);

/* Checks the acknowledgements of the round that just ended, then starts the next one. */
static struct sn_future *round_done(void *arg, uint64_t unused)
{
    unsigned n = sn_core_count();
    (void)arg, (void)unused;
    for (unsigned c = 0; c < n; c++)
        if (app.acks[c].value != ((uint64_t)c << 32 | app.round))
            app.bad_acks++;
    if (app.round <= 3 || app.round == app.rounds)
        printf("round %u: epoch %u setting %u acknowledged by %u cores\n", app.round, app.msg.epoch,
               app.msg.setting, n);
    return broadcast_round(NULL, 0);
}

/* Sends the next epoch's control message to every core. */
static struct sn_future *broadcast_round(void *arg, uint64_t unused)
{
    unsigned n = sn_core_count();
    (void)arg, (void)unused;
    if (app.round == app.rounds)
        return sn_ready(0);
    app.round++;
    app.msg = (struct control){.epoch = app.round, .setting = setting_of(app.round)};
    app.want_settings += app.msg.setting;
    for (unsigned c = 0; c < n; c++)
        app.futs[c] = sn_call_on(c, apply, &app.msg);
    return sn_then(sn_when_all(app.futs, n, app.acks), round_done, NULL);
}

/* Final state: each core answers 1 when it applied every epoch, in order. */
static struct sn_future *state(void *arg)
{
    const struct node *n = sn_sharded_local(app.nodes);
    (void)arg;
    bool ok = n->epoch == app.rounds && n->settings == app.want_settings && !n->out_of_order;
    return sn_ready(ok ? 1 : 0);
}

static struct sn_future *finish(void *arg, uint64_t up_to_date)
{
    (void)arg;
    bool ok = up_to_date == sn_core_count() && app.bad_acks == 0;
    printf("result: %u rounds x %u cores, %" PRIu64 " cores up to date, %" PRIu64
           " bad acknowledgements %s\n",
           app.rounds, sn_core_count(), up_to_date, app.bad_acks, ok ? "ok" : "MISMATCH");
    fflush(stdout);
    return sn_ready(ok ? 0 : 1);
}

static struct sn_future *check(void *arg, uint64_t unused)
{
    (void)arg, (void)unused;
    return sn_then(sn_map_reduce(state, NULL, 0, sn_reduce_sum, NULL), finish, NULL);
}

static struct sn_future *cleanup(void *arg, int err, uint64_t code)
{
    (void)arg;
    return app_stop_sharded("sn-broadcast", app.nodes, err, code);
}

static struct sn_future *app_main(void *arg)
{
    (void)arg;
    if (sn_core_count() > MAX_CORES)
        return sn_failed(-EINVAL);
    struct sn_future *f = sn_sharded_start(node_init, node_fini, NULL, &app.nodes);
    f = sn_then(sn_then(f, broadcast_round, NULL), check, NULL);
    return sn_then_wrapped(f, cleanup, NULL);
}

static const char usage[] = "usage: sn-broadcast [--rounds N] [libsn options]\n"
                            "  --rounds N   control messages to broadcast (default 1000)\n";

int main(int argc, char **argv)
{
    struct sn_config cfg;
    int rc = sn_config_parse(&argc, argv, usage, &cfg);
    if (rc != SN_CONFIG_CONTINUE)
        return rc;
    app.rounds = 1000;
    static const struct option opts[] = {
        {"rounds", required_argument, NULL, 'r'},
        {0, 0, 0, 0},
    };
    uint64_t v;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'r' && app_parse_count("sn-broadcast", "rounds", optarg, 10000000, &v) == 0) {
            app.rounds = (uint32_t)v;
            continue;
        }
        if (c != 'r')
            fputs(usage, stderr);
        return SN_CONFIG_EXIT_USAGE;
    }
    rc = app_check_operands("sn-broadcast", argc, argv, 0, NULL);
    if (rc != SN_CONFIG_CONTINUE)
        return rc;
    return app_job_exit_code("sn-broadcast", sn_run(&cfg, app_main, NULL));
}
