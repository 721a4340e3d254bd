/*
 * sn-kv's snapshots end to end (--snapshot DIR): the binary on port 0 with its output in a
 * scratch directory, stopped with SIGTERM (which writes the snapshot before the cores stop)
 * and started again on the same directory.
 *   - 1M items (SN_KV_SNAP_ITEMS overrides the count, e.g. 10000000 for a bigger run; 1/20
 *     under sanitizers) come back, every one of them checked: value, flags, cas unique and
 *     expiry; new cas uniques stay above every loaded one.
 *   - restarts with other core counts (2 -> 1 -> 4) and another partitioner: the items move
 *     to their new owner cores.
 *   - expired items are dropped on load; the meta protocol's item state (stale, win token
 *     sent, fetched, base64 key) survives; a pending delayed flush_all survives.
 *   - values far bigger than the loader's read window (-I 32m, a 20 MiB value) come back
 *     byte for byte, on the owner core and when moved to another.
 *   - kill -9 in the middle of a periodic snapshot (--snapshot-every) leaves the previous one
 *     usable, and the next snapshot removes the partial files.
 * Damaged snapshots: test_kv_snapshot_damage.c. Helpers: kv_snap_util.h.
 */
#include "kv_snap_util.h"

static char tmp[64], snapdir[96];

static void setup(void)
{
    ks_mkdtemp(tmp, sizeof tmp);
    snprintf(snapdir, sizeof snapdir, "%s/snap", tmp);
}

static void teardown(void)
{
    su_reap_all();
    ks_rmtree(tmp);
}

TestSuite(kv_snapshot, .init = setup, .fini = teardown);

static uint32_t item_count(uint32_t normal, unsigned slow_div)
{
    const char *e = getenv("SN_KV_SNAP_ITEMS");
    if (e && atol(e) > 0)
        return (uint32_t)atol(e);
    return SN_TEST_SLOW ? normal / slow_div : normal;
}

/* The count in a line "... <what> N items" of a log, or -1. */
static long long logged_items(const char *path, const char *what)
{
    char *t = ks_slurp(path, NULL);
    const char *p = strstr(t, what);
    long long n = -1;
    if (p) {
        p = strchr(p + strlen(what), ':');
        if (p)
            n = atoll(p + 1);
    }
    free(t);
    return n;
}

static void expect_all_back(const struct ks_server *s, const char *prefix,
                            const struct ks_stored *st)
{
    unsigned absent = 0;
    unsigned bad = ks_check_all(s->port, prefix, st, NULL, NULL, &absent);
    cr_assert_eq(bad, 0, "%u of %u items not back as stored (%u missing)", bad, st->n, absent);
}

/* A new store gets a cas unique above every one stored before the restart. */
static void expect_fresh_cas_above(const struct ks_server *s, uint64_t max_cas)
{
    char *a = ks_ask(s->port, "ms fresh-after-restart 1 c\r\nx\r\n", "\r\n");
    unsigned long long cas = 0;
    cr_assert_eq(sscanf(a, "HD c%llu", &cas), 1, "%s", a);
    cr_assert_gt(cas, max_cas, "new cas %llu above the loaded ones (max %llu)", cas,
                 (unsigned long long)max_cas);
    free(a);
    a = ks_ask(s->port, "md fresh-after-restart\r\n", "\r\n");
    free(a);
}

Test(kv_snapshot, million_items_come_back, .timeout = 900)
{
    uint32_t n = item_count(1000000, 20);
    struct ks_server s;
    struct ks_stored st;
    ks_start_ok(&s, tmp, "first", snapdir, 2, NULL);
    cr_assert(ks_log_has(s.out, "no snapshot in"), "a first start says so");
    uint64_t t0 = nu_now_ms();
    ks_store_all(s.port, "k", n, &st);
    cr_log_info("stored %u items in %llu ms", n, (unsigned long long)(nu_now_ms() - t0));
    ks_stop(&s, 0);
    cr_assert_eq(logged_items(s.out, "snapshot 1 in"), n, "the final snapshot has every item");

    ks_start_ok(&s, tmp, "second", snapdir, 2, NULL);
    cr_assert_eq(logged_items(s.out, "loaded snapshot 1"), n, "%s", ks_slurp(s.out, NULL));
    t0 = nu_now_ms();
    expect_all_back(&s, "k", &st);
    cr_log_info("checked %u items in %llu ms", n, (unsigned long long)(nu_now_ms() - t0));
    expect_fresh_cas_above(&s, st.max_cas);
    cr_assert_eq(ks_messages(s.err), 0, "no complaint: %s", ks_slurp(s.err, NULL));
    ks_stop(&s, 0);
    ks_stored_free(&st);
}

Test(kv_snapshot, other_core_counts_and_partitioners, .timeout = 900)
{
    uint32_t n = item_count(50000, 10);
    struct ks_server s;
    struct ks_stored st;
    ks_start_ok(&s, tmp, "two", snapdir, 2, NULL);
    ks_store_all(s.port, "r", n, &st);
    ks_stop(&s, 0);
    static const struct {
        unsigned ncores;
        const char *part;
    } runs[] = {{1, "jump"}, {4, "jump"}, {3, "rendezvous"}, {2, "jump"}};
    for (unsigned r = 0; r < sizeof runs / sizeof runs[0]; r++) {
        const char *extra[] = {"--partitioner", runs[r].part, NULL};
        char tag[32];
        snprintf(tag, sizeof tag, "run%u", r);
        ks_start_ok(&s, tmp, tag, snapdir, runs[r].ncores, extra);
        cr_assert(ks_log_has(s.out, "items moved to their new owners"), "run %u: %s", r,
                  ks_slurp(s.out, NULL));
        expect_all_back(&s, "r", &st);
        expect_fresh_cas_above(&s, st.max_cas);
        ks_stop(&s, 0);
        cr_assert_eq(logged_items(s.out, "sn-kv: snapshot "), n, "run %u saved them all", r);
    }
    ks_stored_free(&st);
}

/* ---- expiry, the meta protocol's state, a pending flush_all ---- */

static bool is_short_lived(const struct ks_item *it, void *arg)
{
    (void)arg;
    return it->key[0] == 'x';
}

Test(kv_snapshot, expired_dropped_and_meta_state_kept, .timeout = 300)
{
    struct ks_server s;
    struct ks_stored st;
    ks_start_ok(&s, tmp, "first", snapdir, 2, NULL);
    ks_store_all(s.port, "m", 2000, &st);
    /* 500 items that live 2 seconds. */
    time_t born = time(NULL);
    char *a = NULL;
    for (int i = 0; i < 500; i++) {
        char req[96];
        snprintf(req, sizeof req, "ms x%d 2 T2\r\nxx\r\n", i);
        a = ks_ask(s.port, req, "\r\n");
        cr_assert_str_eq(a, "HD\r\n");
        free(a);
    }
    /* stale (md I), its win token sent; fetched; never fetched; a base64 key. */
    free(ks_ask(s.port, "ms stale 2 T1000\r\nst\r\nmd stale I\r\nmg stale v c\r\n", "\r\nst\r\n"));
    char *stale_before = ks_ask(s.port, "mg stale v c\r\n", "\r\nst\r\n");
    cr_assert_not_null(strstr(stale_before, " X"), "%s", stale_before);
    cr_assert_not_null(strstr(stale_before, " Z"), "%s", stale_before);
    free(ks_ask(s.port, "ms warm 1\r\nw\r\nmg warm v\r\n", "\r\nw\r\n"));
    free(ks_ask(s.port, "ms cold 1\r\nc\r\n", "\r\n"));
    free(ks_ask(s.port, "ms YmluYXJ5 3 b F5\r\nabc\r\n", "\r\n"));
    char *b64_before = ks_ask(s.port, "mg YmluYXJ5 b k v f\r\n", "\r\nabc\r\n");
    cr_assert_eq(strncmp(b64_before, "VA 3 ", 5), 0, "%s", b64_before);
    ks_stop(&s, 0);

    /* Restart once the short-lived items have expired (the clock, not a guess, says when). */
    while (time(NULL) <= born + 2)
        usleep(20000);
    ks_start_ok(&s, tmp, "second", snapdir, 2, NULL);
    unsigned gone = 0;
    for (int i = 0; i < 500; i++) {
        char req[32];
        snprintf(req, sizeof req, "mg x%d v\r\n", i);
        a = ks_ask(s.port, req, "\r\n");
        gone += strcmp(a, "EN\r\n") == 0;
        free(a);
    }
    cr_assert_eq(gone, 500, "expired items are not loaded (%u of 500 gone)", gone);
    cr_assert_eq(ks_check_all(s.port, "m", &st, is_short_lived, NULL, NULL), 0);
    a = ks_ask(s.port, "mg stale v c\r\n", "\r\nst\r\n");
    cr_assert_str_eq(a, stale_before, "stale, win token sent, same cas");
    free(a);
    a = ks_ask(s.port, "mg warm h\r\nmg cold h\r\n", "HD h0\r\n");
    cr_assert_str_eq(a, "HD h1\r\nHD h0\r\n", "fetched or not, as before");
    free(a);
    a = ks_ask(s.port, "mg YmluYXJ5 b k v f\r\n", "\r\nabc\r\n");
    cr_assert_str_eq(a, b64_before, "a base64 key stays one");
    free(a);
    free(stale_before);
    free(b64_before);
    ks_stop(&s, 0);
    ks_stored_free(&st);
}

Test(kv_snapshot, pending_flush_all_survives, .timeout = 300)
{
    struct ks_server s;
    ks_start_ok(&s, tmp, "first", snapdir, 2, NULL);
    free(ks_ask(s.port, "set doomed 0 0 1\r\nd\r\n", "\r\n"));
    time_t at = time(NULL) + 6;
    char req[64];
    snprintf(req, sizeof req, "flush_all %lld\r\n", (long long)at);
    char *a = ks_ask(s.port, req, "\r\n");
    cr_assert_str_eq(a, "OK\r\n");
    free(a);
    ks_stop(&s, 0);
    ks_start_ok(&s, tmp, "second", snapdir, 2, NULL);
    if (time(NULL) < at - 1) { /* a slow start may come too late to see it still there */
        a = ks_ask(s.port, "mg doomed v\r\n", "\r\n");
        cr_assert_eq(strncmp(a, "VA 1", 4), 0, "alive until the flush: %s", a);
        free(a);
    }
    while (time(NULL) <= at)
        usleep(20000);
    a = ks_ask(s.port, "mg doomed v\r\n", "\r\n");
    cr_assert_str_eq(a, "EN\r\n", "the delayed flush_all came after the restart");
    free(a);
    ks_stop(&s, 0);
}

/* ---- values bigger than the read window ---- */

/* Stores a value of n bytes (every byte value, CR LF included) under key; asserts STORED. */
static void set_big(uint16_t port, const char *key, const char *v, size_t n)
{
    int fd = nu_connect(port);
    cr_assert_geq(fd, 0);
    char line[96];
    int len = snprintf(line, sizeof line, "set %s 77 0 %zu\r\n", key, n);
    cr_assert_eq(nu_send_all(fd, line, (size_t)len), 0);
    cr_assert_eq(nu_send_all(fd, v, n), 0);
    cr_assert_eq(nu_send_all(fd, "\r\n", 2), 0);
    char a[64];
    su_read_until(fd, a, sizeof a, "\r\n", KS_WAIT_MS, NULL);
    cr_assert_str_eq(a, "STORED\r\n", "%s", key);
    close(fd);
}

/* True when `get key` answers flags 77 and exactly the n bytes of v. */
static bool big_back(uint16_t port, const char *key, const char *v, size_t n)
{
    int fd = nu_connect(port);
    cr_assert_geq(fd, 0);
    char line[96];
    int hl = snprintf(line, sizeof line, "VALUE %s 77 %zu\r\n", key, n);
    size_t want = (size_t)hl + n + 7; /* + "\r\nEND\r\n" */
    char *buf = malloc(want + 1);
    size_t got = 0;
    int len = snprintf(line, sizeof line, "get %s\r\n", key);
    cr_assert_eq(nu_send_all(fd, line, (size_t)len), 0);
    uint64_t end = nu_now_ms() + KS_WAIT_MS;
    while (got < want && nu_now_ms() < end) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t r = recv(fd, buf + got, want - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    snprintf(line, sizeof line, "VALUE %s 77 %zu\r\n", key, n);
    bool ok = got == want && memcmp(buf, line, (size_t)hl) == 0 && memcmp(buf + hl, v, n) == 0 &&
              memcmp(buf + hl + n, "\r\nEND\r\n", 7) == 0;
    if (!ok)
        cr_log_error("%s: %zu of %zu bytes, starting %.40s", key, got, want, buf);
    free(buf);
    return ok;
}

Test(kv_snapshot, values_bigger_than_the_read_window, .timeout = 300)
{
    static const size_t sizes[] = {20u << 20, 3u << 20, (1u << 20) - 10, 5};
    char *v[4];
    uint64_t seed = 18;
    for (int i = 0; i < 4; i++) {
        v[i] = malloc(sizes[i]);
        for (size_t k = 0; k < sizes[i]; k++)
            v[i][k] = (char)nu_rand(&seed);
    }
    const char *big[] = {"-I", "32m", NULL};
    struct ks_server s;
    struct ks_stored st;
    ks_start_ok(&s, tmp, "first", snapdir, 2, big);
    ks_store_all(s.port, "s", 3000, &st); /* small ones around the big ones */
    for (int i = 0; i < 4; i++) {
        char key[16];
        snprintf(key, sizeof key, "big%d", i);
        set_big(s.port, key, v[i], sizes[i]);
    }
    ks_stop(&s, 0);
    static const unsigned cores[] = {2, 1}; /* the same owners, then all moved to core 0 */
    for (int r = 0; r < 2; r++) {
        char tag[16];
        snprintf(tag, sizeof tag, "run%d", r);
        ks_start_ok(&s, tmp, tag, snapdir, cores[r], big);
        for (int i = 0; i < 4; i++) {
            char key[16];
            snprintf(key, sizeof key, "big%d", i);
            cr_assert(big_back(s.port, key, v[i], sizes[i]), "run %d: %s back", r, key);
        }
        expect_all_back(&s, "s", &st);
        cr_assert_eq(ks_messages(s.err), 0, "no complaint: %s", ks_slurp(s.err, NULL));
        ks_stop(&s, 0);
    }
    for (int i = 0; i < 4; i++)
        free(v[i]);
    ks_stored_free(&st);
}

/* ---- kill -9 during a periodic snapshot ---- */

/* The manifest's generation, or 0. */
static uint64_t manifest_generation(void)
{
    char path[160];
    snprintf(path, sizeof path, "%s/sn-kv.manifest", snapdir);
    char *t = ks_slurp(path, NULL);
    unsigned long long g = 0;
    const char *p = strstr(t, "generation ");
    if (p)
        g = strtoull(p + 11, NULL, 10);
    free(t);
    return g;
}

/* The largest size of a data file of a generation above `g`, or -1 when there is none. */
static long long newer_file_size(uint64_t g)
{
    DIR *d = opendir(snapdir);
    long long size = -1;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        unsigned long long gen;
        unsigned core;
        if (sscanf(e->d_name, "sn-kv.%llu.%u.snap", &gen, &core) != 2 || gen <= g)
            continue;
        char p[2 * PATH_MAX];
        struct stat sb;
        snprintf(p, sizeof p, "%s/%s", snapdir, e->d_name);
        if (stat(p, &sb) == 0 && sb.st_size > size)
            size = sb.st_size;
    }
    if (d)
        closedir(d);
    return size;
}

static unsigned data_files(void)
{
    DIR *d = opendir(snapdir);
    unsigned n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += strstr(e->d_name, ".snap") != NULL;
    if (d)
        closedir(d);
    return n;
}

/*
 * Waits for a snapshot after `g` that has written a chunk of a file, then kills the
 * server with SIGKILL. True when the kill came before that snapshot's commit.
 */
static bool kill_during_snapshot(struct ks_server *s, uint64_t g)
{
    uint64_t end = nu_now_ms() + KS_WAIT_MS;
    while (nu_now_ms() < end) {
        uint64_t before = manifest_generation();
        if (newer_file_size(before) > 4096) { /* a chunk is written, not yet the header */
            kill(s->pid, SIGKILL);
            su_wait_exit(s->pid, KS_WAIT_MS);
            s->pid = 0;
            bool during = manifest_generation() == before && before >= g;
            cr_log_info("killed with generation %llu committed and a newer one on its way: %s",
                        (unsigned long long)before, during ? "yes" : "no (it committed first)");
            return during;
        }
        usleep(500);
    }
    cr_assert_fail("no periodic snapshot seen within %u ms", KS_WAIT_MS);
    return false;
}

Test(kv_snapshot, kill9_during_a_snapshot_leaves_the_previous_one, .timeout = 900)
{
    uint32_t n = item_count(300000, 10);
    struct ks_server s;
    struct ks_stored st;
    const char *every[] = {"--snapshot-every", "1", NULL};
    ks_start_ok(&s, tmp, "first", snapdir, 2, every);
    ks_store_all(s.port, "p", n, &st);
    /* The generation after the next one began after every item was stored. */
    uint64_t g = manifest_generation() + 2;
    uint64_t end = nu_now_ms() + KS_WAIT_MS;
    while (manifest_generation() < g) {
        cr_assert_lt(nu_now_ms(), end, "periodic snapshots are written");
        usleep(5000);
    }
    bool during = false;
    for (int attempt = 0; attempt < 3 && !during; attempt++) {
        if (attempt) {
            ks_start_ok(&s, tmp, "again", snapdir, 2, every);
            g = manifest_generation() + 1;
        }
        during = kill_during_snapshot(&s, g);
    }
    cr_assert(during, "a kill landed during a snapshot in one of 3 attempts");
    ks_start_ok(&s, tmp, "after", snapdir, 2, NULL);
    expect_all_back(&s, "p", &st);
    cr_assert_eq(ks_messages(s.err), 0, "the partial files are not read: %s",
                 ks_slurp(s.err, NULL));
    ks_stop(&s, 0);
    cr_assert_eq(data_files(), 2, "the final snapshot removed the partial files");
    ks_stored_free(&st);
}
