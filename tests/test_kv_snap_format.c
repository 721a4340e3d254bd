/*
 * sn-kv's snapshot format (apps/kv/kv_snap_format.c), without I/O: the header round trip and
 * each refusal (too short, another format, another version, a flipped byte, a size that
 * disagrees); records written and parsed back through streams cut into chunks of every size
 * (records crossing boundaries, empty chunks, values bigger than a chunk), as the chunks
 * arrive (a record not all there yet waits, nothing consumed), and damaged
 * records refused; the manifest round trip, every one-byte corruption refused, and the data
 * file names.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apps/kv/kv_snap_format.h"

static struct kv_snap_header sample_header(void)
{
    return (struct kv_snap_header){.core = 3,
                                   .ncores = 4,
                                   .generation = 123456789012ull,
                                   .created = 1700000000,
                                   .items = 42,
                                   .body_bytes = 10000,
                                   .body_hash = 0x0123456789abcdefull,
                                   .cas_seq = 987654321,
                                   .flush_at = 1700000500};
}

Test(kv_snap_format, header_round_trip)
{
    uint8_t buf[KV_SNAP_ALIGN];
    struct kv_snap_header h = sample_header(), back;
    char why[KV_SNAP_WHY_MAX];
    kv_snap_header_encode(&h, buf);
    cr_assert_eq(memcmp(buf, "SNKVSNAP\1\0\0\0", 12), 0, "magic, then version 1 little-endian");
    cr_assert_eq(kv_snap_header_decode(buf, sizeof buf, kv_snap_file_size(10000), &back, why), 0,
                 "%s", why);
    cr_assert_eq(back.version, KV_SNAP_VERSION);
    cr_assert_eq(back.core, 3);
    cr_assert_eq(back.ncores, 4);
    cr_assert_eq(back.generation, h.generation);
    cr_assert_eq(back.created, h.created);
    cr_assert_eq(back.items, 42);
    cr_assert_eq(back.body_bytes, 10000);
    cr_assert_eq(back.body_hash, h.body_hash);
    cr_assert_eq(back.cas_seq, h.cas_seq);
    cr_assert_eq(back.flush_at, h.flush_at);
    cr_assert_eq(kv_snap_file_size(10000), 4096 + 12288);
    cr_assert_eq(kv_snap_file_size(0), 4096);
}

static void expect_refused(const uint8_t *buf, size_t len, uint64_t size, const char *reason)
{
    struct kv_snap_header h;
    char why[KV_SNAP_WHY_MAX] = "";
    cr_assert_eq(kv_snap_header_decode(buf, len, size, &h, why), -EBADMSG, "%s", reason);
    cr_assert_not_null(strstr(why, reason), "'%s' says '%s'", why, reason);
}

Test(kv_snap_format, header_refusals)
{
    uint8_t buf[KV_SNAP_ALIGN];
    struct kv_snap_header h = sample_header();
    uint64_t size = kv_snap_file_size(h.body_bytes);
    kv_snap_header_encode(&h, buf);
    expect_refused(buf, 100, 100, "truncated");
    expect_refused(buf, sizeof buf, size - 4096, "truncated");
    expect_refused(buf, sizeof buf, size + 1, "trailing data");
    uint8_t other[KV_SNAP_ALIGN];
    memcpy(other, buf, sizeof other);
    memcpy(other, "SQLite f", 8);
    expect_refused(other, sizeof other, size, "not an sn-kv snapshot");
    /* Version 2, with a header that is otherwise right (checksum included). */
    memcpy(other, buf, sizeof other);
    other[8] = 2;
    expect_refused(other, sizeof other, size, "format version 2, this sn-kv reads version 1");
    /* Any flipped byte past the version: the checksum catches it. */
    for (size_t i = 12; i < sizeof buf; i += 97) {
        memcpy(other, buf, sizeof other);
        other[i] ^= 0x20;
        expect_refused(other, sizeof other, size, "checksum mismatch");
    }
}

/* ---- records ---- */

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(uint64_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng % n;
}

static struct mc_item *make_item(size_t nkey, size_t nbytes)
{
    struct mc_item *it = calloc(1, mc_item_size(nkey, nbytes));
    it->nkey = (uint8_t)nkey;
    it->nbytes = (uint32_t)nbytes;
    for (size_t i = 0; i < nkey; i++)
        it->data[i] = (char)('a' + rnd(26));
    for (size_t i = 0; i < nbytes; i++)
        it->data[nkey + i] = (char)rnd(256);
    it->cas = rnd(UINT64_MAX);
    it->flags = (uint32_t)rnd(UINT32_MAX);
    it->exptime = (uint32_t)rnd(UINT32_MAX);
    it->time = (uint32_t)rnd(UINT32_MAX);
    it->iflags = (uint8_t)(rnd(256) | 0x80); /* the walk bit must not be saved */
    return it;
}

/* Cuts stream[0..len) into chunks of random sizes (some empty): the parser's input. */
static void cut(const char *stream, size_t len, size_t max_piece, struct kv_snap_parser *p)
{
    unsigned cap = 16, n = 0;
    char **chunk = malloc(cap * sizeof *chunk);
    size_t *clen = malloc(cap * sizeof *clen);
    for (size_t at = 0; at < len || n == 0;) {
        size_t piece = rnd(5) == 0 ? 0 : 1 + rnd(max_piece);
        if (piece > len - at)
            piece = len - at;
        if (n == cap) {
            cap *= 2;
            chunk = realloc(chunk, cap * sizeof *chunk);
            clen = realloc(clen, cap * sizeof *clen);
        }
        chunk[n] = malloc(piece ? piece : 1);
        memcpy(chunk[n], stream + at, piece);
        clen[n++] = piece;
        at += piece;
    }
    kv_snap_parser_init(p, chunk, clen, n);
}

static bool same(const struct mc_item *it, const struct mc_item_image *im)
{
    return im->nkey == it->nkey && im->nbytes == it->nbytes && im->cas == it->cas &&
           im->flags == it->flags && im->exptime == it->exptime && im->time == it->time &&
           im->iflags == (it->iflags & MC_ITEM_SAVED_BITS) &&
           memcmp(im->key, mc_item_key(it), it->nkey) == 0 &&
           memcmp(im->value, mc_item_value(it), it->nbytes) == 0;
}

#define NITEMS 300

Test(kv_snap_format, records_through_chunks_of_every_size)
{
    static const size_t pieces[] = {1, 7, 28, 29, 100, 4096, 1 << 20};
    struct mc_item *items[NITEMS];
    size_t total = 0;
    for (int i = 0; i < NITEMS; i++) {
        size_t nbytes = i % 50 == 7 ? (1 << 16) + rnd(1 << 16) : rnd(300);
        items[i] = make_item(1 + rnd(MC_KEY_MAX), i == 3 ? 0 : nbytes);
        total += kv_snap_record_size(items[i]);
    }
    char *stream = malloc(total), *copy = malloc(total);
    for (size_t i = 0, at = 0; i < NITEMS; i++) {
        kv_snap_record_put(stream + at, items[i]);
        at += kv_snap_record_size(items[i]);
    }
    for (size_t k = 0; k < sizeof pieces / sizeof pieces[0]; k++) {
        struct kv_snap_parser p;
        struct mc_item_image im;
        char why[KV_SNAP_WHY_MAX];
        cut(stream, total, pieces[k], &p);
        size_t at = 0;
        for (int i = 0; i < NITEMS; i++) {
            cr_assert_eq(kv_snap_parse_next(&p, &im, why), 1, "piece %zu item %d: %s", pieces[k], i,
                         why);
            cr_assert(same(items[i], &im), "piece %zu item %d comes back", pieces[k], i);
            at += kv_snap_parser_copy(&p, &im, copy + at);
        }
        cr_assert_eq(kv_snap_parse_next(&p, &im, why), 0, "the end");
        cr_assert_eq(kv_snap_parse_next(&p, &im, why), 0, "stays at the end");
        cr_assert_eq(at, total);
        cr_assert_eq(memcmp(copy, stream, total), 0, "forwarded records are the same bytes");
        kv_snap_parser_free(&p);
    }
    for (int i = 0; i < NITEMS; i++)
        free(items[i]);
    free(stream);
    free(copy);
}

Test(kv_snap_format, records_as_the_chunks_arrive)
{
    struct mc_item *items[NITEMS];
    size_t total = 0;
    for (int i = 0; i < NITEMS; i++) {
        items[i] = make_item(1 + rnd(MC_KEY_MAX), i % 40 == 5 ? 70000 : rnd(500));
        total += kv_snap_record_size(items[i]);
    }
    char *stream = malloc(total);
    for (size_t i = 0, at = 0; i < NITEMS; i++) {
        kv_snap_record_put(stream + at, items[i]);
        at += kv_snap_record_size(items[i]);
    }
    struct kv_snap_parser p;
    struct mc_item_image im;
    char why[KV_SNAP_WHY_MAX];
    cut(stream, total, 5000, &p);
    uint64_t avail = 0;
    int got = 0, waits = 0;
    kv_snap_parser_avail(&p, 0);
    while (got < NITEMS) {
        int rc = kv_snap_parse_next(&p, &im, why);
        if (rc == -EAGAIN) { /* more of the stream arrives, in steps of any size */
            cr_assert_gt(p.want, avail, "it waits for bytes not present yet");
            cr_assert_leq(p.want, total, "and only for bytes of the stream");
            waits++;
            avail += 1 + rnd(3000);
            kv_snap_parser_avail(&p, avail < total ? avail : total);
            continue;
        }
        cr_assert_eq(rc, 1, "item %d: %d %s", got, rc, why);
        cr_assert(same(items[got], &im), "item %d comes back", got);
        cr_assert_leq(p.pos, avail, "never reads past what is present");
        got++;
    }
    cr_assert_eq(kv_snap_parse_next(&p, &im, why), 0);
    cr_assert_gt(waits, NITEMS / 2, "it had to wait");
    kv_snap_parser_free(&p);
    for (int i = 0; i < NITEMS; i++)
        free(items[i]);
    free(stream);
}

/* Parses a stream of one record after patching byte `at` to `v`: the parse result. */
static int parse_patched(const struct mc_item *it, size_t at, uint8_t v, size_t cut_len, char *why)
{
    size_t len = kv_snap_record_size(it);
    char *rec = malloc(len);
    kv_snap_record_put(rec, it);
    rec[at] = (char)v;
    struct kv_snap_parser p;
    cut(rec, cut_len ? cut_len : len, 64, &p);
    free(rec);
    struct mc_item_image im;
    int rc = kv_snap_parse_next(&p, &im, why);
    kv_snap_parser_free(&p);
    return rc;
}

Test(kv_snap_format, damaged_records_are_refused)
{
    struct mc_item *it = make_item(10, 100);
    it->iflags = MC_ITEM_STALE;
    char why[KV_SNAP_WHY_MAX];
    cr_assert_eq(parse_patched(it, 0, (uint8_t)it->cas, 0, why), 1, "unpatched: fine");
    cr_assert_eq(parse_patched(it, 24, 0, 0, why), -EBADMSG);
    cr_assert_not_null(strstr(why, "record 1: bad key length"), "%s", why);
    cr_assert_eq(parse_patched(it, 24, 251, 0, why), -EBADMSG, "key longer than 250");
    cr_assert_eq(parse_patched(it, 25, 0x80, 0, why), -EBADMSG);
    cr_assert_not_null(strstr(why, "unknown bits"), "%s", why);
    cr_assert_eq(parse_patched(it, 27, 1, 0, why), -EBADMSG, "reserved must be zero");
    cr_assert_eq(parse_patched(it, 23, 0x10, 0, why), -EBADMSG, "value past the end");
    cr_assert_not_null(strstr(why, "longer than the data left"), "%s", why);
    cr_assert_eq(parse_patched(it, 0, 0, 20, why), -EBADMSG, "a stream cut in a header");
    cr_assert_not_null(strstr(why, "cut short"), "%s", why);
    cr_assert_eq(parse_patched(it, 0, 0, 60, why), -EBADMSG, "a stream cut in a value");
    free(it);
}

/* The release hook of the parser: counts the chunks handed back, then frees them. */
static void count_release(void *arg, char *chunk)
{
    (*(unsigned *)arg)++;
    free(chunk);
}

/* Parses the whole stream: the number of records, or the negative errno that stopped it. */
static long parse_all(struct kv_snap_parser *p, char *why)
{
    struct mc_item_image im;
    int rc;
    while ((rc = kv_snap_parse_next(p, &im, why)) > 0)
        ;
    return rc < 0 ? rc : (long)p->records;
}

Test(kv_snap_format, records_counted_chunks_released_damage_found_midstream)
{
    struct mc_item *items[20];
    size_t total = 0;
    for (int i = 0; i < 20; i++) {
        items[i] = make_item(1 + rnd(40), rnd(3000));
        total += kv_snap_record_size(items[i]);
    }
    char *stream = malloc(total);
    for (size_t i = 0, at = 0; i < 20; i++) {
        kv_snap_record_put(stream + at, items[i]);
        at += kv_snap_record_size(items[i]);
    }
    char why[KV_SNAP_WHY_MAX];
    struct kv_snap_parser p;
    unsigned released = 0;
    cut(stream, total, 1000, &p);
    unsigned n = p.nchunks;
    p.release = count_release;
    p.release_arg = &released;
    cr_assert_eq(parse_all(&p, why), 20, "%s", why);
    cr_assert_eq(released, n, "every chunk read past goes back through the hook");
    kv_snap_parser_free(&p);
    stream[KV_SNAP_REC_HDR + items[0]->nkey + items[0]->nbytes + 24] = 0; /* record 2's key */
    released = 0;
    cut(stream, total, 1000, &p);
    n = p.nchunks;
    p.release = count_release;
    p.release_arg = &released;
    cr_assert_eq(parse_all(&p, why), -EBADMSG);
    cr_assert_str_eq(why, "record 2: bad key length: corrupted");
    cr_assert_eq(p.records, 1);
    kv_snap_parser_free(&p);
    cr_assert_eq(released, n, "and the rest at the end, none twice (ASan checks)");
    for (int i = 0; i < 20; i++)
        free(items[i]);
    free(stream);
}

/* ---- manifest and names ---- */

static const struct kv_snap_manifest sample_manifest = {
    .generation = 77, .ncores = 2, .created = 1700000000, .partitioner = "ketama-xxh3"};

Test(kv_snap_format, manifest_round_trip)
{
    char text[1024], why[KV_SNAP_WHY_MAX];
    int n = kv_snap_manifest_encode(&sample_manifest, text, sizeof text);
    cr_assert_gt(n, 0);
    cr_assert_eq(strncmp(text,
                         "sn-kv snapshot manifest 1\ngeneration 77\ncores 2\n"
                         "partitioner ketama-xxh3\ncreated 1700000000\nchecksum ",
                         (size_t)n - 17),
                 0, "%s", text);
    struct kv_snap_manifest m;
    cr_assert_eq(kv_snap_manifest_decode(text, (size_t)n, &m, why), 0, "%s", why);
    cr_assert_eq(m.version, 1);
    cr_assert_eq(m.generation, 77);
    cr_assert_eq(m.ncores, 2);
    cr_assert_eq(m.created, 1700000000);
    cr_assert_str_eq(m.partitioner, "ketama-xxh3");
    cr_assert_eq(kv_snap_manifest_encode(&sample_manifest, text, 40), -ENOSPC);
}

Test(kv_snap_format, manifest_damage_is_refused)
{
    char text[1024], bad[1024], why[KV_SNAP_WHY_MAX];
    int n = kv_snap_manifest_encode(&sample_manifest, text, sizeof text);
    struct kv_snap_manifest m;
    for (int i = 0; i < n; i++) {
        memcpy(bad, text, (size_t)n);
        bad[i] ^= 0x01;
        cr_assert_eq(kv_snap_manifest_decode(bad, (size_t)n, &m, why), -EBADMSG, "byte %d", i);
        cr_assert_eq(strncmp(why, "manifest: ", 10), 0, "%s", why);
    }
    for (int len = 0; len < n; len++)
        cr_assert_eq(kv_snap_manifest_decode(text, (size_t)len, &m, why), -EBADMSG, "cut at %d",
                     len);
    memcpy(bad, text, (size_t)n);
    bad[n] = 'x';
    cr_assert_eq(kv_snap_manifest_decode(bad, (size_t)n + 1, &m, why), -EBADMSG);
    cr_assert_not_null(strstr(why, "trailing data"), "%s", why);
    memcpy(bad, text, (size_t)n);
    bad[24] = '2';
    cr_assert_eq(kv_snap_manifest_decode(bad, (size_t)n, &m, why), -EBADMSG);
    cr_assert_str_eq(why, "manifest: format version 2, this sn-kv reads version 1");
    cr_assert_eq(kv_snap_manifest_decode("PK\3\4", 4, &m, why), -EBADMSG);
    cr_assert_str_eq(why, "manifest: not an sn-kv snapshot manifest");
}

Test(kv_snap_format, data_file_names)
{
    char path[64];
    uint64_t g;
    cr_assert_eq(kv_snap_data_path(path, sizeof path, "/d", 12, 3), 0);
    cr_assert_str_eq(path, "/d/sn-kv.12.3.snap");
    cr_assert_eq(kv_snap_data_path(path, 10, "/d", 12, 3), -ENAMETOOLONG);
    cr_assert(kv_snap_data_name("sn-kv.12.3.snap", &g));
    cr_assert_eq(g, 12);
    cr_assert_not(kv_snap_data_name("sn-kv.12.3.snap.tmp", &g));
    cr_assert_not(kv_snap_data_name("sn-kv.manifest", &g));
    cr_assert_not(kv_snap_data_name("sn-kv.-1.3.snap", &g));
    cr_assert_not(kv_snap_data_name("sn-kv.1. 3.snap", &g));
    cr_assert_not(kv_snap_data_name("sn-kv..3.snap", &g));
}
