/*
 * Damaged sn-kv snapshots never crash it. A snapshot of two cores is made once; then each
 * kind of damage is applied to a fresh copy: a data file truncated (in its body, inside its
 * header) or with trailing data, a flipped byte in a body or a header, another format version,
 * another format altogether, a file missing, a file of another snapshot, a record that cannot
 * be read although every checksum holds, and a manifest that is corrupted, of another version
 * or not a manifest. Each time sn-kv must say why in exactly one line and start without the
 * items it cannot trust (a bad data file loses its own items only, every other item is back
 * exactly; a bad manifest loses all), and with --snapshot-strict refuse to start (exit 1)
 * with that one line.
 */
#include "kv_snap_util.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

static char tmp[64], snapdir[96], pristine[96];
static struct sn_partition *part;

static void setup(void)
{
    ks_mkdtemp(tmp, sizeof tmp);
    snprintf(snapdir, sizeof snapdir, "%s/snap", tmp);
    snprintf(pristine, sizeof pristine, "%s/pristine", tmp);
    char err[64];
    cr_assert_eq(sn_partition_from_string("jump", 2, err, sizeof err, &part), 0);
}

static void teardown(void)
{
    su_reap_all();
    ks_rmtree(tmp);
    sn_partition_destroy(part);
}

TestSuite(kv_snapshot_damage, .init = setup, .fini = teardown);

/* ---- files ---- */

static void copy_file(const char *from, const char *to)
{
    size_t len;
    char *data = ks_slurp(from, &len);
    FILE *f = fopen(to, "wb");
    cr_assert_not_null(f, "%s", to);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    fclose(f);
    free(data);
}

/* Empties `to` and copies every file of `from` into it. */
static void copy_dir(const char *from, const char *to)
{
    ks_rmtree(to);
    cr_assert_eq(mkdir(to, 0755), 0);
    DIR *d = opendir(from);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char a[2 * PATH_MAX], b[2 * PATH_MAX];
        snprintf(a, sizeof a, "%s/%s", from, e->d_name);
        snprintf(b, sizeof b, "%s/%s", to, e->d_name);
        copy_file(a, b);
    }
    closedir(d);
}

static void data_path(char *out, size_t cap, unsigned core)
{
    snprintf(out, cap, "%s/sn-kv.1.%u.snap", snapdir, core);
}

static void patch(const char *path, long at, const void *bytes, size_t n)
{
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    fseek(f, at, SEEK_SET);
    cr_assert_eq(fwrite(bytes, 1, n, f), n);
    fclose(f);
}

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Rewrites the checksums of a data file after a change, so that only the change is wrong. */
static void reseal(const char *path)
{
    size_t len;
    uint8_t *f = (uint8_t *)ks_slurp(path, &len);
    uint64_t body = le64(f + 48);
    put_le64(f + 56, XXH3_64bits(f + 4096, body));
    put_le64(f + 4088, XXH3_64bits(f, 4088));
    patch(path, 0, f, 4096);
    free(f);
}

/* ---- damage ---- */

enum lost { LOST_CORE0, LOST_CORE1, LOST_ALL };

struct damage {
    const char *name;
    void (*apply)(void);
    enum lost lost;
    const char *why; /* part of the one-line message */
};

static void truncate_body(void)
{
    char p[PATH_MAX];
    struct stat sb;
    data_path(p, sizeof p, 1);
    cr_assert_eq(stat(p, &sb), 0);
    cr_assert_eq(truncate(p, sb.st_size / 2), 0);
}

static void truncate_header(void)
{
    char p[PATH_MAX];
    data_path(p, sizeof p, 1);
    cr_assert_eq(truncate(p, 100), 0);
}

static void trailing_data(void)
{
    char p[PATH_MAX];
    struct stat sb;
    data_path(p, sizeof p, 1);
    cr_assert_eq(stat(p, &sb), 0);
    cr_assert_eq(truncate(p, sb.st_size + 4096), 0);
}

static void flip_body(void)
{
    char p[PATH_MAX];
    struct stat sb;
    data_path(p, sizeof p, 1);
    cr_assert_eq(stat(p, &sb), 0);
    size_t len;
    char *f = ks_slurp(p, &len);
    uint8_t b = (uint8_t)(f[4096 + (len - 4096) / 3] ^ 0x10);
    free(f);
    patch(p, 4096 + (long)(len - 4096) / 3, &b, 1);
}

static void flip_header(void)
{
    char p[PATH_MAX];
    data_path(p, sizeof p, 0);
    uint8_t b = 0x7f;
    patch(p, 40, &b, 1); /* the item count */
}

static void other_version(void)
{
    char p[PATH_MAX];
    data_path(p, sizeof p, 1);
    uint8_t v = 2;
    patch(p, 8, &v, 1);
    reseal(p);
}

static void other_format(void)
{
    char p[PATH_MAX];
    data_path(p, sizeof p, 1);
    FILE *f = fopen(p, "wb");
    for (int i = 0; i < 2000; i++)
        fprintf(f, "line %d of some other file\n", i);
    fclose(f);
}

static void missing_file(void)
{
    char p[PATH_MAX];
    data_path(p, sizeof p, 1);
    cr_assert_eq(unlink(p), 0);
}

static void file_of_another_snapshot(void)
{
    char a[PATH_MAX], b[PATH_MAX];
    data_path(a, sizeof a, 0);
    data_path(b, sizeof b, 1);
    copy_file(a, b);
}

static void bad_record_good_checksums(void)
{
    char p[PATH_MAX];
    data_path(p, sizeof p, 1);
    uint8_t zero = 0;
    patch(p, 4096 + 24, &zero, 1); /* the first record's key length */
    reseal(p);
}

static void manifest_path(char *out, size_t cap)
{
    snprintf(out, cap, "%s/sn-kv.manifest", snapdir);
}

static void manifest_flip(void)
{
    char p[PATH_MAX];
    manifest_path(p, sizeof p);
    size_t len;
    char *m = ks_slurp(p, &len);
    char *g = strstr(m, "generation 1");
    cr_assert_not_null(g);
    g[11] = '7';
    patch(p, 0, m, len);
    free(m);
}

static void manifest_other_version(void)
{
    char p[PATH_MAX];
    manifest_path(p, sizeof p);
    size_t len;
    char *m = ks_slurp(p, &len);
    char *sum = strstr(m, "checksum ");
    m[24] = '2'; /* "sn-kv snapshot manifest 2" */
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)XXH3_64bits(m, (size_t)(sum - m)));
    memcpy(sum + 9, hex, 16);
    patch(p, 0, m, len);
    free(m);
}

static void manifest_other_format(void)
{
    char p[PATH_MAX];
    manifest_path(p, sizeof p);
    FILE *f = fopen(p, "wb");
    fputs("[core]\n\trepositoryformatversion = 0\n", f);
    fclose(f);
}

static const struct damage kinds[] = {
    {"truncated body", truncate_body, LOST_CORE1, "truncated"},
    {"truncated header", truncate_header, LOST_CORE1, "shorter than a header: truncated"},
    {"trailing data", trailing_data, LOST_CORE1, "trailing data"},
    {"flipped body byte", flip_body, LOST_CORE1, "body checksum mismatch: corrupted"},
    {"flipped header byte", flip_header, LOST_CORE0, "header checksum mismatch: corrupted"},
    {"other version", other_version, LOST_CORE1,
     "snapshot format version 2, this sn-kv reads version 1"},
    {"other format", other_format, LOST_CORE1, "not an sn-kv snapshot"},
    {"missing file", missing_file, LOST_CORE1, "missing"},
    {"file of another snapshot", file_of_another_snapshot, LOST_CORE1,
     "belongs to another snapshot"},
    {"bad record, good checksums", bad_record_good_checksums, LOST_CORE1,
     "record 1: bad key length: corrupted"},
    {"manifest corrupted", manifest_flip, LOST_ALL, "manifest: checksum mismatch: corrupted"},
    {"manifest of another version", manifest_other_version, LOST_ALL,
     "manifest: format version 2, this sn-kv reads version 1"},
    {"not a manifest", manifest_other_format, LOST_ALL, "not an sn-kv snapshot manifest"},
};

#define NKINDS (sizeof kinds / sizeof kinds[0])

/* ---- the test ---- */

struct lost_arg {
    enum lost lost;
};

static bool expect_lost(const struct ks_item *it, void *arg)
{
    const struct lost_arg *l = arg;
    if (l->lost == LOST_ALL)
        return true;
    unsigned owner = sn_partition(part, it->key, it->nkey);
    return owner == (l->lost == LOST_CORE0 ? 0u : 1u);
}

static uint32_t n_items(void)
{
    return SN_TEST_SLOW ? 4000 : 20000;
}

static void make_pristine(struct ks_stored *st)
{
    struct ks_server s;
    ks_start_ok(&s, tmp, "make", snapdir, 2, NULL);
    ks_store_all(s.port, "d", n_items(), st);
    ks_stop(&s, 0);
    copy_dir(snapdir, pristine);
}

/*
 * One line names the damage. A strict refusal fails sn-kv's start hook, so the app lifecycle
 * (include/sn/app.h) adds its own "sn-kv: start failed: <error>" after it.
 */
static void expect_one_line(const struct ks_server *s, const struct damage *k, bool strict)
{
    char *err = ks_slurp(s->err, NULL);
    bool lifecycle = strstr(err, "sn-kv: start failed: ") != NULL;
    cr_assert_eq(lifecycle, strict, "%s: the start fails only when strict: %s", k->name, err);
    cr_assert_eq(ks_messages(s->err), 1u + strict, "%s: one line: %s", k->name, err);
    cr_assert_not_null(strstr(err, k->why), "%s: says '%s': %s", k->name, k->why, err);
    const char *then = strict                ? "refusing to start (--snapshot-strict)"
                       : k->lost == LOST_ALL ? "starting empty"
                                             : "its items are not loaded";
    cr_assert_not_null(strstr(err, then), "%s: says '%s': %s", k->name, then, err);
    free(err);
}

Test(kv_snapshot_damage, each_kind_starts_without_what_it_cannot_trust, .timeout = 900)
{
    struct ks_stored st;
    make_pristine(&st);
    for (size_t i = 0; i < NKINDS; i++) {
        const struct damage *k = &kinds[i];
        copy_dir(pristine, snapdir);
        k->apply();
        struct ks_server s;
        char tag[16];
        snprintf(tag, sizeof tag, "kind%zu", i);
        ks_start_ok(&s, tmp, tag, snapdir, 2, NULL);
        expect_one_line(&s, k, false);
        struct lost_arg la = {k->lost};
        unsigned absent = 0;
        unsigned bad = ks_check_all(s.port, "d", &st, expect_lost, &la, &absent);
        cr_assert_eq(bad, 0, "%s: %u items not as expected", k->name, bad);
        cr_assert_gt(absent, 0, "%s: items were lost", k->name);
        cr_log_info("%s: %u of %u items lost, the rest back", k->name, absent, st.n);
        ks_stop(&s, 0);
    }
    ks_stored_free(&st);
}

Test(kv_snapshot_damage, strict_refuses_to_start, .timeout = 900)
{
    struct ks_stored st;
    make_pristine(&st);
    const char *strict[] = {"--snapshot-strict", NULL};
    for (size_t i = 0; i < NKINDS; i++) {
        const struct damage *k = &kinds[i];
        copy_dir(pristine, snapdir);
        k->apply();
        struct ks_server s;
        char tag[16];
        snprintf(tag, sizeof tag, "strict%zu", i);
        int status = 0;
        cr_assert_eq(ks_start(&s, tmp, tag, snapdir, 2, strict, &status), 0, "%s: refuses to start",
                     k->name);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1, "%s: exit 1 (status 0x%x)",
                  k->name, (unsigned)status);
        expect_one_line(&s, k, true);
    }
    /* Undamaged, strict starts as usual. */
    copy_dir(pristine, snapdir);
    struct ks_server s;
    ks_start_ok(&s, tmp, "strict-ok", snapdir, 2, strict);
    cr_assert_eq(ks_check_all(s.port, "d", &st, NULL, NULL, NULL), 0);
    ks_stop(&s, 0);
    ks_stored_free(&st);
}
