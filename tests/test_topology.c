/* Tests for reactor/topology.[ch] and reactor/cpulist.c: CPU choice, pinning, allocators. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

#include "reactor/topology.h"

static void set_in(void *arg, unsigned cpu)
{
    unsigned long long *mask = arg;
    if (cpu < 64)
        *mask |= 1ull << cpu;
}

static int parse_mask(const char *s, unsigned long long *mask)
{
    char err[160];
    *mask = 0;
    return sn__cpulist_parse(s, set_in, mask, err, sizeof err);
}

Test(cpulist, good_lists)
{
    unsigned long long m;
    cr_assert_eq(parse_mask("0-1,3", &m), 3);
    cr_assert_eq(m, 0xbull);
    cr_assert_eq(parse_mask("5", &m), 1);
    cr_assert_eq(m, 1ull << 5);
    cr_assert_eq(parse_mask("0-7:2", &m), 4);
    cr_assert_eq(m, 0x55ull);
    cr_assert_eq(parse_mask("2-2,0", &m), 2);
    cr_assert_eq(m, 0x5ull);
}

Test(cpulist, bad_lists)
{
    static const char *const bad[] = {"",    ",",    "1,", ",1",    "1-",   "-1",   "a",  "1a",
                                      "3-1", "1 ,2", " 1", "0-4:0", "0-4:", "1--2", "+1", "0x1"};
    unsigned long long m;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_eq(parse_mask(bad[i], &m), -EINVAL, "'%s' should be rejected", bad[i]);
    cr_expect_eq(parse_mask("99999", &m), -ERANGE);
    cr_expect_eq(parse_mask("0-100000", &m), -ERANGE);
}

Test(cpulist, message)
{
    char err[160] = "";
    unsigned long long m = 0;
    cr_assert_eq(sn__cpulist_parse("1-", set_in, &m, err, sizeof err), -EINVAL);
    cr_assert(strstr(err, "'1-'") != NULL, "message names the list: %s", err);
}

static struct sn__topology *open_topo(unsigned flags)
{
    struct sn__topology *t = NULL;
    cr_assert_eq(sn__topology_open(&t, flags), 0);
    cr_assert_not_null(t);
    return t;
}

Test(topology, counts)
{
    struct sn__topology *t = open_topo(0);
    cr_assert_geq(sn__topology_core_count(t), 1);
    cr_assert_geq(sn__topology_cpu_count(t), sn__topology_core_count(t));
    cr_assert_geq(sn__topology_node_count(t), 1);
    cr_log_info("cores=%u cpus=%u nodes=%u", sn__topology_core_count(t), sn__topology_cpu_count(t),
                sn__topology_node_count(t));
    sn__topology_close(t);
}

Test(topology, default_one_per_core)
{
    struct sn__topology *t = open_topo(0);
    struct sn_config cfg;
    struct sn__placement p[64];
    sn_config_init(&cfg);
    int n = sn__topology_select(t, &cfg, p, 64);
    cr_assert_eq(n, (int)sn__topology_core_count(t));
    cr_assert_eq(sn__topology_select(t, &cfg, NULL, 0), n, "cap 0 sizes the array");
    for (int i = 0; i < n; i++) {
        cr_expect(p[i].pinned);
        cr_expect_geq(p[i].cpu, 0);
        cr_expect_eq(p[i].node, sn__topology_cpu_node(t, p[i].cpu));
        for (int j = 0; j < i; j++)
            cr_expect_neq(p[i].cpu, p[j].cpu, "one PU per core");
    }
    sn__topology_close(t);
}

Test(topology, smp_and_cpuset)
{
    struct sn__topology *t = open_topo(0);
    struct sn_config cfg;
    struct sn__placement p[8];
    char list[32];

    sn_config_init(&cfg);
    cfg.smp = 1;
    cr_assert_eq(sn__topology_select(t, &cfg, p, 8), 1);
    cr_assert(p[0].pinned);

    /* The last placement of the default choice, named explicitly. */
    sn_config_init(&cfg);
    int n = sn__topology_select(t, &cfg, p, 8);
    int last = p[n - 1].cpu;
    snprintf(list, sizeof list, "%d", last);
    cfg.cpuset = list;
    cr_assert_eq(sn__topology_select(t, &cfg, p, 8), 1);
    cr_assert_eq(p[0].cpu, last);
    cfg.smp = 2;
    cr_assert_eq(sn__topology_select(t, &cfg, p, 8), -EINVAL, "smp beyond the cpuset");
    cfg.unpinned = true;
    cr_assert_eq(sn__topology_select(t, &cfg, p, 8), 2);
    cr_assert_eq(p[1].cpu, last);
    cr_assert_not(p[1].pinned);
    sn__topology_close(t);
}

Test(topology, rejects_missing_cpus)
{
    struct sn__topology *t = open_topo(0);
    struct sn_config cfg;
    struct sn__placement p[8];
    sn_config_init(&cfg);
    cfg.cpuset = "4000";
    cr_assert_eq(sn__topology_select(t, &cfg, p, 8), -EINVAL);
    cfg.cpuset = "0-";
    cr_assert_eq(sn__topology_select(t, &cfg, p, 8), -EINVAL);
    sn_config_init(&cfg);
    cfg.smp = sn__topology_core_count(t) + 1;
    cr_assert_eq(sn__topology_select(t, &cfg, p, 8), -EINVAL, "more reactors than cores");
    sn__topology_close(t);
}

Test(topology, unpinned_oversubscribes)
{
    struct sn__topology *t = open_topo(0);
    struct sn_config cfg;
    struct sn__placement p[8];
    sn_config_init(&cfg);
    cfg.smp = 8;
    cfg.unpinned = true;
    cr_assert_eq(sn__topology_select(t, &cfg, p, 8), 8);
    for (int i = 0; i < 8; i++) {
        cr_expect_not(p[i].pinned);
        cr_expect_geq(p[i].node, 0);
        cr_expect_eq(sn__topology_bind_thread(t, &p[i]), 0, "unpinned bind is a no-op");
    }
    /* Only `cap` entries are written, but the full count is returned. */
    cr_assert_eq(sn__topology_select(t, &cfg, p, 3), 8);
    sn__topology_close(t);
}

struct pin_job {
    struct sn__topology *t;
    int cpu;
    int rc;
    cpu_set_t after;
};

static void *pin_thread(void *arg)
{
    struct pin_job *j = arg;
    j->rc = sn__topology_pin_thread(j->t, j->cpu);
    CPU_ZERO(&j->after);
    pthread_getaffinity_np(pthread_self(), sizeof j->after, &j->after);
    return NULL;
}

/* Pins a throwaway thread (never the test's own) and checks its affinity. */
Test(topology, pin_throwaway_thread)
{
    struct sn__topology *t = open_topo(0);
    struct sn_config cfg;
    struct sn__placement p[64];
    sn_config_init(&cfg);
    int n = sn__topology_select(t, &cfg, p, 64);
    for (int i = 0; i < n; i++) {
        struct pin_job j = {.t = t, .cpu = p[i].cpu};
        pthread_t th;
        cr_assert_eq(pthread_create(&th, NULL, pin_thread, &j), 0);
        pthread_join(th, NULL);
        cr_assert_eq(j.rc, 0);
        cr_assert_eq(CPU_COUNT(&j.after), 1);
        cr_assert(CPU_ISSET(p[i].cpu, &j.after));
    }
    cr_assert_eq(sn__topology_pin_thread(t, 4000), -EINVAL);
    cr_assert_eq(sn__topology_pin_thread(t, -1), -EINVAL);
    sn__topology_close(t);
}

static void check_allocator(struct sn__topology *t)
{
    for (unsigned node = 0; node < sn__topology_node_count(t); node++) {
        const struct sn_allocator *a = sn__topology_allocator(t, (int)node);
        cr_assert_not_null(a);
        size_t sizes[] = {1, 64, 100, 4096, 1 << 20};
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            unsigned char *b = a->alloc(a->ctx, sizes[i]);
            cr_assert_not_null(b);
            cr_assert_eq((uintptr_t)b % SN_CACHELINE, 0);
            memset(b, 0xab, sizes[i]);
            a->free(a->ctx, b, sizes[i]);
        }
    }
    cr_assert_null(sn__topology_allocator(t, -1));
    cr_assert_null(sn__topology_allocator(t, (int)sn__topology_node_count(t)));
}

Test(topology, allocator_default)
{
    struct sn__topology *t = open_topo(0);
    if (sn__topology_node_count(t) == 1)
        cr_expect_not(sn__topology_allocator_binds(t, 0), "one node: plain aligned_alloc");
    check_allocator(t);
    sn__topology_close(t);
}

Test(topology, allocator_plain)
{
    struct sn__topology *t = open_topo(SN__TOPO_NO_MEMBIND);
    cr_assert_not(sn__topology_allocator_binds(t, 0));
    check_allocator(t);
    sn__topology_close(t);
}

Test(topology, allocator_bound)
{
    struct sn__topology *t = open_topo(SN__TOPO_FORCE_MEMBIND);
    cr_log_info("membind %s", sn__topology_allocator_binds(t, 0) ? "supported" : "unsupported");
    check_allocator(t);
    sn__topology_close(t);
}
