/*
 * sn-kv as a pool behind the memcached ecosystem, end to end: three sn-kv instances, and in
 * front of them either nutcracker with apps/kv/cluster/nutcracker.yml (ketama,
 * auto_eject_hosts) or a pylibmc client with apps/kv/cluster/pylibmc_client.py (libmemcached's
 * ketama, remove_failed). Both files are used as they are.
 *
 *  1. Keys set through the proxy or client land where libsn's ketama puts them.
 *  2. One instance is killed: once the proxy or client ejects it, setting the keys again puts
 *     the dead member's keys (about a third) where libsn's ketama without that member puts
 *     them, and every other key stays on its server.
 *  3. The instance comes back (empty, as a restarted memcached would): once the proxy or
 *     client takes it back, the keys map to it again.
 *
 * The servers run in a private network namespace on 127.0.0.1-3:11211 when the test may make
 * one (root), else on free ports of the host loopback (the files' addresses then rewritten).
 * Every process is stopped at the end (su_reap_all), every wait is bounded.
 */
#include <criterion/criterion.h>
#include <sn.h>

#include "tests/cluster_util.h"
#include "tests/support/server_proc.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NBACK  3
#define VICTIM 1
#define NKEYS  1500

static void fini(void)
{
    cl_cleanup();
}

TestSuite(cluster, .fini = fini);

/* A client of the pool: nutcracker reached over TCP, or the pylibmc driver over pipes. */
struct pool_client {
    const char *what;
    /* Sets every key to value; returns how many were stored. */
    size_t (*set)(struct pool_client *c, char *const *keys, size_t n, const char *value);
    /* Sets one key; true when it was stored. */
    bool (*probe)(struct pool_client *c, const char *key, const char *value);
    struct cl_addr proxy;
    int to, from;
};

struct pool {
    bool private_net;
    struct cl_addr back[NBACK];
    pid_t pid[NBACK];
    char *keys[NKEYS];
};

static void pool_start(struct pool *p)
{
    p->private_net = cl_private_net();
    for (unsigned b = 0; b < NBACK; b++) {
        p->back[b] = cl_pool_addr(b, p->private_net, true);
        p->pid[b] = cl_start_kv(&p->back[b]);
    }
    for (unsigned k = 0; k < NKEYS; k++) {
        char key[32];
        snprintf(key, sizeof(key), "key:%u", k);
        p->keys[k] = strdup(key);
    }
}

static void pool_free(struct pool *p)
{
    for (unsigned k = 0; k < NKEYS; k++)
        free(p->keys[k]);
}

/* "PREFIX" + the servers host:port[:1] joined by commas, leaving out server `skip` (-1: none). */
static void make_spec(const struct pool *p, const char *prefix, bool weights, int skip, char *out,
                      size_t cap)
{
    size_t len = (size_t)snprintf(out, cap, "%s", prefix);
    const char *sep = "";
    for (int b = 0; b < NBACK; b++) {
        if (b == skip)
            continue;
        len += (size_t)snprintf(out + len, cap - len, "%s%s:%u%s", sep, p->back[b].host,
                                p->back[b].port, weights ? ":1" : "");
        sep = ",";
    }
}

/* Asserts that each key sits (with `value`) on exactly the server `owner` names, among the
 * servers alive[b]; returns how many keys each server holds. */
static void expect_placement(const struct pool *p, const bool *alive, const int *owner,
                             const char *value, const char *when)
{
    bool *held = malloc(NKEYS * sizeof(*held));
    cr_assert_not_null(held);
    for (int b = 0; b < NBACK; b++) {
        if (!alive[b])
            continue;
        int fd = cl_connect(&p->back[b]);
        cr_assert_geq(fd, 0, "%s: cannot reach %s:%u", when, p->back[b].host, p->back[b].port);
        cr_assert_neq(cl_held(fd, p->keys, NKEYS, value, held), (size_t)-1);
        close(fd);
        unsigned bad = 0, count = 0;
        for (unsigned k = 0; k < NKEYS; k++) {
            count += held[k];
            if (held[k] != (owner[k] == b) && bad++ < 3)
                cr_log_error("%s: %s is %s server %d, libsn puts it on %d", when, p->keys[k],
                             held[k] ? "on" : "not on", b, owner[k]);
        }
        cr_expect_eq(bad, 0, "%s: server %d: %u keys misplaced", when, b, bad);
        cr_log_info("%s: server %d holds %u keys with %s", when, b, count, value);
    }
    free(held);
}

/* owner[k] = backend index of each key under spec; `map` turns the spec's node index into a
 * backend index (NULL: the same). */
static void predict(const struct pool *p, const char *spec, const int *map, int *owner)
{
    struct sn_partition *part = NULL;
    char err[256];
    cr_assert_eq(sn_partition_from_string(spec, 0, err, sizeof(err), &part), 0, "%s: %s", spec,
                 err);
    for (unsigned k = 0; k < NKEYS; k++) {
        uint32_t i = sn_partition(part, p->keys[k], strlen(p->keys[k]));
        owner[k] = map ? map[i] : (int)i;
    }
    sn_partition_destroy(part);
}

static void pause_ms(unsigned ms)
{
    struct timespec ts = {0, (long)ms * 1000000L};
    nanosleep(&ts, NULL);
}

/* Probes the victim's keys (in turn) until one is stored: the client has ejected it. Probes
 * store the value "probe", which the placement checks do not count. */
static uint64_t wait_ejected(struct pool_client *c, const struct pool *p, const int *full)
{
    uint64_t start = nu_now_ms();
    for (unsigned k = 0;; k = (k + 1) % NKEYS) {
        if (full[k] != VICTIM)
            continue;
        if (c->probe(c, p->keys[k], "probe"))
            return nu_now_ms() - start;
        cr_assert_lt(nu_now_ms() - start, 15000, "%s: the dead server was not ejected in 15 s",
                     c->what);
        pause_ms(20);
    }
}

/* Probes a key of the victim until the restarted victim holds it: the client took it back. */
static uint64_t wait_returned(struct pool_client *c, struct pool *p, const int *full)
{
    unsigned k = 0;
    while (full[k] != VICTIM)
        k++;
    bool held = false;
    uint64_t start = nu_now_ms();
    for (;;) {
        if (c->probe(c, p->keys[k], "probe")) {
            int fd = cl_connect(&p->back[VICTIM]);
            cr_assert_geq(fd, 0);
            cr_assert_neq(cl_held(fd, &p->keys[k], 1, "probe", &held), (size_t)-1);
            close(fd);
            if (held)
                return nu_now_ms() - start;
        }
        cr_assert_lt(nu_now_ms() - start, 20000,
                     "%s: the restarted server was not taken back in 20 s", c->what);
        pause_ms(50);
    }
}

/* The whole story for one client: placement, a member lost, the member back. */
static void run_scenario(struct pool_client *c, struct pool *p, const char *prefix, bool weights)
{
    static int full[NKEYS], reduced[NKEYS];
    bool alive[NBACK] = {true, true, true};
    char spec[512], when[64];
    make_spec(p, prefix, weights, -1, spec, sizeof(spec));
    predict(p, spec, NULL, full);

    uint64_t t0 = nu_now_ms();
    cr_assert_eq(c->set(c, p->keys, NKEYS, "v1"), NKEYS, "%s: first set", c->what);
    snprintf(when, sizeof(when), "%s, all up", c->what);
    expect_placement(p, alive, full, "v1", when);

    cl_kill(p->pid[VICTIM]);
    alive[VICTIM] = false;
    uint64_t eject_ms = wait_ejected(c, p, full);
    cr_assert_eq(c->set(c, p->keys, NKEYS, "v2"), NKEYS, "%s: set with a server ejected", c->what);
    static const int map[NBACK - 1] = {0, 2};
    make_spec(p, prefix, weights, VICTIM, spec, sizeof(spec));
    predict(p, spec, map, reduced);
    unsigned moved = 0;
    for (unsigned k = 0; k < NKEYS; k++) {
        moved += reduced[k] != full[k];
        /* Only the dead member's keys move. */
        cr_assert(full[k] == VICTIM || reduced[k] == full[k], "%s moved from %d to %d", p->keys[k],
                  full[k], reduced[k]);
    }
    cr_expect(moved > NKEYS / 5 && moved < NKEYS / 2, "%u of %u keys moved, not about a third",
              moved, NKEYS);
    snprintf(when, sizeof(when), "%s, server %d lost", c->what, VICTIM);
    expect_placement(p, alive, reduced, "v2", when);

    p->pid[VICTIM] = cl_start_kv(&p->back[VICTIM]);
    alive[VICTIM] = true;
    uint64_t return_ms = wait_returned(c, p, full);
    cr_assert_eq(c->set(c, p->keys, NKEYS, "v3"), NKEYS, "%s: set after the return", c->what);
    snprintf(when, sizeof(when), "%s, server %d back", c->what, VICTIM);
    expect_placement(p, alive, full, "v3", when);
    cr_log_info("cluster: client=%s keys=%u moved=%u eject_ms=%llu return_ms=%llu total_ms=%llu "
                "(%s)",
                c->what, NKEYS, moved, (unsigned long long)eject_ms, (unsigned long long)return_ms,
                (unsigned long long)(nu_now_ms() - t0),
                p->private_net ? "private namespace, port 11211" : "host loopback, free ports");
}

/* ---- nutcracker ------------------------------------------------------------------------ */

static size_t nc_set(struct pool_client *c, char *const *keys, size_t n, const char *value)
{
    int fd = cl_connect(&c->proxy);
    if (fd < 0)
        return 0;
    char other[128];
    size_t stored = cl_set_many(fd, keys, n, value, other, sizeof(other));
    close(fd);
    if (stored != n)
        cr_log_info("nutcracker: %zu of %zu stored (%s)", stored == (size_t)-1 ? 0 : stored, n,
                    other);
    return stored == (size_t)-1 ? 0 : stored;
}

static bool nc_probe(struct pool_client *c, const char *key, const char *value)
{
    char *keys[1] = {(char *)key};
    int fd = cl_connect(&c->proxy);
    if (fd < 0)
        return false;
    size_t stored = cl_set_many(fd, keys, 1, value, NULL, 0);
    close(fd);
    return stored == 1;
}

/* Replaces every `from` in s (in place, cap bytes) with `to`. */
static void replace_all(char *s, size_t cap, const char *from, const char *to)
{
    size_t fl = strlen(from), tl = strlen(to);
    for (char *at = strstr(s, from); at; at = strstr(at + tl, from)) {
        cr_assert_lt(strlen(s) - fl + tl, cap);
        memmove(at + tl, at + fl, strlen(at + fl) + 1);
        memcpy(at, to, tl);
    }
}

/* apps/kv/cluster/nutcracker.yml, with the pool's addresses when they are not the file's. */
static void write_nutcracker_conf(const struct pool *p, const char *path, struct cl_addr *listen)
{
    static char yaml[8192];
    FILE *f = fopen(SN_SRC_DIR "/apps/kv/cluster/nutcracker.yml", "r");
    cr_assert_not_null(f);
    size_t len = fread(yaml, 1, sizeof(yaml) - 1, f);
    fclose(f);
    yaml[len] = '\0';
    *listen = (struct cl_addr){"127.0.0.1", 22121};
    if (!p->private_net) {
        listen->port = cl_free_port("127.0.0.1");
        char to[32];
        snprintf(to, sizeof(to), "127.0.0.1:%u", listen->port);
        replace_all(yaml, sizeof(yaml), "listen: 127.0.0.1:22121", "listen: PROXY");
        replace_all(yaml, sizeof(yaml), "PROXY", to);
        for (int b = 0; b < NBACK; b++) {
            char from[32];
            snprintf(from, sizeof(from), "- 127.0.0.%d:11211:", b + 1);
            snprintf(to, sizeof(to), "- %s:%u:", p->back[b].host, p->back[b].port);
            replace_all(yaml, sizeof(yaml), from, to);
        }
    }
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(yaml, f);
    fclose(f);
}

Test(cluster, nutcracker_ejects_and_takes_back, .timeout = 120)
{
    struct pool p;
    pool_start(&p);
    char dir[64], conf[128];
    cl_tmpdir(dir, sizeof(dir));
    snprintf(conf, sizeof(conf), "%s/nutcracker.yml", dir);
    struct pool_client c = {.what = "nutcracker", .set = nc_set, .probe = nc_probe};
    write_nutcracker_conf(&p, conf, &c.proxy);
    cl_start_nutcracker(conf, &c.proxy, 1);
    run_scenario(&c, &p, "nutcracker-fnv1a_64:", true);
    su_reap_all();
    cl_rmdir(dir);
    pool_free(&p);
}

/* ---- pylibmc ---------------------------------------------------------------------------- */

static size_t py_set(struct pool_client *c, char *const *keys, size_t n, const char *value)
{
    (void)keys; /* the driver makes the same names: "key:" + index */
    char cmd[128], line[256];
    snprintf(cmd, sizeof(cmd), "set key: %zu %s\n", n, value);
    cr_assert_eq(write(c->to, cmd, strlen(cmd)), (ssize_t)strlen(cmd));
    cr_assert_geq(cl_read_line(c->from, line, sizeof(line), 60000), 0, "pylibmc driver: no reply");
    unsigned long stored, failed;
    cr_assert_eq(sscanf(line, "done %lu %lu", &stored, &failed), 2, "pylibmc driver: %s", line);
    if (failed)
        cr_log_info("pylibmc: %lu of %zu not stored", failed, n);
    return stored;
}

static bool py_probe(struct pool_client *c, const char *key, const char *value)
{
    char cmd[128], line[256];
    snprintf(cmd, sizeof(cmd), "probe %s %s\n", key, value);
    cr_assert_eq(write(c->to, cmd, strlen(cmd)), (ssize_t)strlen(cmd));
    cr_assert_geq(cl_read_line(c->from, line, sizeof(line), 30000), 0, "pylibmc driver: no reply");
    return strcmp(line, "ok") == 0;
}

Test(cluster, pylibmc_ejects_and_takes_back, .timeout = 120)
{
    /* Debian's pylibmc is for the system python3, not one that PATH may put first. */
    cr_assert_eq(access("/usr/bin/python3", X_OK), 0, "/usr/bin/python3 is needed");
    struct pool p;
    pool_start(&p);
    char servers[256];
    make_spec(&p, "", false, -1, servers, sizeof(servers));
    char *argv[] = {"/usr/bin/python3", SN_SRC_DIR "/tests/cluster/pylibmc_driver.py",
                    SN_SRC_DIR "/apps/kv/cluster", servers, NULL};
    struct pool_client c = {.what = "pylibmc", .set = py_set, .probe = py_probe};
    pid_t py = cl_spawn_piped(argv, &c.to, &c.from);
    run_scenario(&c, &p, "ketama-unweighted:", false);
    cr_assert_eq(write(c.to, "quit\n", 5), 5);
    int status = su_wait_exit(py, 10000);
    cr_expect(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "pylibmc driver exit status %d", status);
    close(c.to);
    close(c.from);
    su_reap_all();
    pool_free(&p);
}
