/* Core 0 asks every core for a number and adds up the answers. */
#include <sn.h>
#include <stdio.h>

static struct sn_future *replies[SN_MESH_MAX_CORES];
static struct sn_result answers[SN_MESH_MAX_CORES];

/* Runs on the core it was sent to: answers with that core's id plus one. */
static struct sn_future *answer(void *arg)
{
    (void)arg;
    return sn_ready(sn_core_id() + 1);
}

/* Back on core 0 once all n answered: 1 + 2 + ... + n is n(n+1)/2. */
static struct sn_future *add_up(void *arg, uint64_t n)
{
    uint64_t sum = 0;
    (void)arg;
    for (uint64_t i = 0; i < n; i++)
        sum += answers[i].value;
    printf("%u cores answered, sum %llu\n", (unsigned)n, (unsigned long long)sum);
    return sn_ready(sum == n * (n + 1) / 2 ? 0 : 1); /* the exit code */
}

/* The app's main, on core 0: one sn_submit_to per core, all in flight at once. */
static struct sn_future *app_main(void *arg)
{
    unsigned n = sn_core_count();
    (void)arg;
    for (unsigned i = 0; i < n; i++)
        replies[i] = sn_submit_to(i, answer, NULL);
    return sn_then(sn_when_all(replies, n, answers), add_up, NULL);
}

int main(int argc, char **argv)
{
    struct sn_config cfg; /* --smp N, --cpuset LIST, --unpinned, --help, ... */
    int rc = sn_config_parse(&argc, argv, "usage: example [libsn options]\n", &cfg);
    if (rc == SN_CONFIG_CONTINUE)
        rc = sn_config_reject_extra(argc, argv);
    if (rc != SN_CONFIG_CONTINUE)
        return rc;
    rc = sn_run(&cfg, app_main, NULL);
    if (rc < 0)
        fprintf(stderr, "example: %s\n", sn_strerror(rc));
    return rc < 0 ? 1 : rc;
}
