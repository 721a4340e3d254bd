/*
 * The word-count pipeline (apps/pipeline): the Zipf generator, the tokenizer and the range
 * cuts, the streaming range scanner, the reference count and its output order, and the
 * sn-pipeline binary itself, whose output must be byte-identical to the reference's for
 * every core count. The binary is run with fork/exec from the build folder this test binary
 * lives in (BUILD/tests/test_pipeline -> BUILD/bin/sn-pipeline).
 */
#include <criterion/criterion.h>

#include "apps/pipeline/wc_dist.h"
#include "apps/pipeline/wc_ref.h"
#include "apps/pipeline/wc_token.h"
#include "apps/pipeline/wc_zipf.h"
#include "reactor_util.h" /* SN_TEST_SLOW, and the LSan suppression of Criterion's own leak */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SLOW SN_TEST_SLOW

/* ---- word sequences: length-prefixed words back to back, compared with memcmp ---- */

struct words {
    char *buf;
    size_t len, cap, n;
};

static void words_add(void *arg, const char *w, size_t len)
{
    struct words *ws = arg;
    size_t need = ws->len + sizeof len + len;
    if (need > ws->cap) {
        ws->cap = need * 2;
        ws->buf = realloc(ws->buf, ws->cap);
        cr_assert_not_null(ws->buf);
    }
    memcpy(ws->buf + ws->len, &len, sizeof len);
    memcpy(ws->buf + ws->len + sizeof len, w, len);
    ws->len = need;
    ws->n++;
}

static void words_free(struct words *ws)
{
    free(ws->buf);
    memset(ws, 0, sizeof *ws);
}

static void assert_same_words(const struct words *a, const struct words *b, const char *what)
{
    cr_assert_eq(a->n, b->n, "%s: %zu words, want %zu", what, a->n, b->n);
    cr_assert_eq(a->len, b->len, "%s", what);
    cr_assert(a->len == 0 || memcmp(a->buf, b->buf, a->len) == 0, "%s: words differ", what);
}

static char *gen_text(uint64_t seed, uint32_t vocab, uint32_t long_gap, size_t size)
{
    struct wc_zipf_opts o = {.seed = seed, .vocab = vocab, .long_gap = long_gap};
    struct wc_zipf z;
    cr_assert_eq(wc_zipf_init(&z, &o), 0);
    char *buf = malloc(size + 1);
    cr_assert_not_null(buf);
    wc_zipf_read(&z, buf, size);
    wc_zipf_free(&z);
    return buf;
}

static size_t longest_word(const char *buf, size_t len)
{
    size_t best = 0, run = 0;
    for (size_t i = 0; i < len; i++) {
        run = wc_is_word_byte((unsigned char)buf[i]) ? run + 1 : 0;
        if (run > best)
            best = run;
    }
    return best;
}

/* ---- generator ---- */

Test(pipeline_zipf, deterministic_by_seed_and_size)
{
    size_t size = 1 << 20;
    char *a = gen_text(42, 5000, 3000, size);
    char *b = gen_text(42, 5000, 3000, size);
    cr_assert_arr_eq(a, b, size, "same seed, same text");
    /* Reading in odd chunk sizes gives the same stream; a shorter text is a prefix. */
    struct wc_zipf_opts o = {.seed = 42, .vocab = 5000, .long_gap = 3000};
    struct wc_zipf z;
    cr_assert_eq(wc_zipf_init(&z, &o), 0);
    for (size_t at = 0, step = 1; at < size; at += step, step = step * 3 % 1000 + 1) {
        size_t n = at + step > size ? size - at : step;
        wc_zipf_read(&z, b + at, n);
    }
    wc_zipf_free(&z);
    cr_assert_arr_eq(a, b, size, "chunked reads give the same stream");
    char *c = gen_text(43, 5000, 3000, size);
    cr_assert(memcmp(a, c, size) != 0, "another seed, another text");
    free(c);
    c = gen_text(42, 5000, 3000, 1000);
    cr_assert_arr_eq(a, c, 1000, "prefix");
    free(a);
    free(b);
    free(c);
}

Test(pipeline_zipf, non_ascii_long_words_and_zipf_shape)
{
    size_t size = 4 << 20;
    char *t = gen_text(7, 20000, 4000, size);
    size_t high = 0;
    for (size_t i = 0; i < size; i++)
        high += (unsigned char)t[i] >= 0x80;
    cr_assert_gt(high, size / 1000, "some non-ASCII bytes");
    cr_assert_geq(longest_word(t, size), 70000, "very long words appear");
    struct wc_ref r;
    cr_assert_eq(wc_ref_count(t, size, &r), 0);
    cr_assert_gt(r.n, 1000);
    /* Zipf with exponent 1: the top word is far more frequent than the tenth. */
    cr_assert_gt(r.items[0].count, 5 * r.items[9].count);
    wc_ref_free(&r);
    free(t);
    struct wc_zipf_opts bad = {.seed = 1, .vocab = 0};
    struct wc_zipf z;
    cr_assert_eq(wc_zipf_init(&z, &bad), -EINVAL);
}

Test(pipeline_zipf, write_file)
{
    char path[] = "/tmp/sn-test-pipeline-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    struct wc_zipf_opts o;
    wc_zipf_opts_default(&o, 5);
    cr_assert_eq(wc_zipf_write_file(&o, 3 << 20, path), 0);
    char *want = gen_text(5, o.vocab, o.long_gap, 3 << 20);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    char *got = malloc((3 << 20) + 1);
    cr_assert_eq(fread(got, 1, (3 << 20) + 1, f), (size_t)(3 << 20));
    fclose(f);
    cr_assert_arr_eq(got, want, 3 << 20);
    unlink(path);
    free(got);
    free(want);
}

/* ---- tokenizer ---- */

Test(pipeline_token, word_definition)
{
    static const char text[] = "Hello, world! na\xc3\xafve caf\xc3\xa9\t123 a-b\x00x\x7fy"
                               " \xff\xfe don't  WORD word\r\n";
    static const char *const want[] = {
        "Hello", "world", "na\xc3\xafve", "caf\xc3\xa9", "123", "a",    "b",
        "x",     "y",     "\xff\xfe",     "don",         "t",   "WORD", "word"};
    struct words got = {0}, exp = {0};
    size_t n = wc_tokenize(text, sizeof text - 1, words_add, &got);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        words_add(&exp, want[i], strlen(want[i]));
    cr_assert_eq(n, got.n);
    assert_same_words(&got, &exp, "tokens");
    words_free(&got);
    words_free(&exp);
    cr_assert_eq(wc_tokenize("", 0, words_add, &got), 0);
    cr_assert_eq(wc_tokenize(" ,.;\n\t", 6, words_add, &got), 0);
}

/* Words of each range of `cuts` back to back, checked against the whole text's words. */
static void check_cuts(const char *buf, size_t len, unsigned k, const size_t *cuts)
{
    struct words whole = {0}, parts = {0};
    wc_tokenize(buf, len, words_add, &whole);
    cr_assert_eq(cuts[0], 0);
    cr_assert_eq(cuts[k], len);
    for (unsigned i = 0; i < k; i++) {
        cr_assert_leq(cuts[i], cuts[i + 1], "cuts never decrease");
        cr_assert(wc_is_boundary(buf, len, cuts[i]), "cut %u at %zu is a boundary", i, cuts[i]);
        wc_tokenize(buf + cuts[i], cuts[i + 1] - cuts[i], words_add, &parts);
    }
    assert_same_words(&parts, &whole, "no word split, lost or counted twice");
    words_free(&whole);
    words_free(&parts);
}

Test(pipeline_split, edge_cases)
{
    size_t cuts[9];
    for (unsigned k = 1; k <= 8; k++) { /* empty file */
        wc_split("", 0, k, cuts);
        for (unsigned i = 0; i <= k; i++)
            cr_assert_eq(cuts[i], 0);
    }
    wc_split("hello", 5, 3, cuts); /* one word: it all belongs to the first range */
    cr_assert(cuts[1] == 5 && cuts[2] == 5 && cuts[3] == 5);
    check_cuts("hello", 5, 3, cuts);
    wc_split("abc defg", 8, 2, cuts); /* nominal cut 4 is the first byte of "defg" */
    cr_assert_eq(cuts[1], 4);
    check_cuts("abc defg", 8, 2, cuts);
    wc_split("abcd efg", 8, 2, cuts); /* nominal cut 4 is the separator itself */
    cr_assert_eq(cuts[1], 4);
    wc_split("abcde fg", 8, 2, cuts); /* nominal cut inside a word: after it */
    cr_assert_eq(cuts[1], 5);
    check_cuts("abcde fg", 8, 2, cuts);
    wc_split(" ,.;\n\t!!", 8, 4, cuts); /* only separators */
    for (unsigned i = 0; i <= 4; i++)
        cr_assert_eq(cuts[i], 2 * i);
    check_cuts(" ,.;\n\t!!", 8, 4, cuts);
    /* A word longer than a range: the ranges it covers are empty. */
    char lw[1006];
    memset(lw, 'x', sizeof lw);
    memcpy(lw, "a ", 2);
    memcpy(lw + sizeof lw - 2, " b", 2);
    wc_split(lw, sizeof lw, 8, cuts);
    for (unsigned i = 1; i < 8; i++)
        cr_assert_eq(cuts[i], sizeof lw - 2, "cut %u", i);
    check_cuts(lw, sizeof lw, 8, cuts);
    cr_assert_eq(wc_nominal(UINT64_MAX, 3, 4), UINT64_MAX / 4 * 3 + 2); /* no overflow */
}

Test(pipeline_split, random_texts)
{
    unsigned seed = 99;
    for (int round = 0; round < 300; round++) {
        size_t len = (size_t)(rand_r(&seed) % 200);
        char buf[200];
        for (size_t i = 0; i < len; i++) /* short words, many separators, some high bytes */
            buf[i] = "ab \xc3\xa9,\n"[rand_r(&seed) % 7];
        for (unsigned k = 1; k <= 8; k++) {
            size_t cuts[9];
            wc_split(buf, len, k, cuts);
            check_cuts(buf, len, k, cuts);
        }
    }
}

/* ---- streaming scanner ---- */

/* Scans buf as k ranges fed in chunks of `chunk` bytes; appends the words to *out. */
static void scan_ranges(const char *buf, size_t len, unsigned k, size_t chunk, struct words *out)
{
    for (unsigned i = 0; i < k; i++) {
        struct wc_scan s;
        wc_scan_init(&s, wc_nominal(len, i, k), wc_nominal(len, i + 1, k));
        while (!wc_scan_done(&s)) {
            if (s.pos >= len) {
                wc_scan_eof(&s, words_add, out);
                break;
            }
            size_t n = len - s.pos < chunk ? len - s.pos : chunk;
            cr_assert_eq(wc_scan_feed(&s, buf + s.pos, n, words_add, out), 0);
        }
        wc_scan_free(&s);
    }
}

static void check_scan(const char *buf, size_t len, const char *what)
{
    static const size_t chunks[] = {1, 2, 3, 7, 64, 4096, 1 << 20};
    struct words whole = {0};
    wc_tokenize(buf, len, words_add, &whole);
    for (unsigned k = 1; k <= 5; k++) {
        for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
            if (chunks[c] < 64 && len > 100000)
                continue; /* byte-sized chunks over big texts only cost time */
            struct words got = {0};
            scan_ranges(buf, len, k, chunks[c], &got);
            assert_same_words(&got, &whole, what);
            words_free(&got);
        }
    }
    words_free(&whole);
}

Test(pipeline_scan, equals_whole_text_tokens)
{
    check_scan("", 0, "empty");
    check_scan("one", 3, "one word");
    check_scan(",;. \n", 5, "separators only");
    check_scan("abc defg", 8, "word at the cut");
    check_scan("a bb ccc dddd eeeee", 19, "short words");
    char lw[3000];
    memset(lw, 'q', sizeof lw);
    lw[1] = ' ';
    check_scan(lw, sizeof lw, "a word longer than every range");
    size_t size = SLOW ? 200000 : 1 << 20;
    char *t = gen_text(3, 3000, 500, size);
    check_scan(t, size, "generated text with long words");
    free(t);
}

Test(pipeline_scan, stops_at_hi_inside_a_long_word)
{
    /* A range covered by a word of the previous range owns nothing, and its scan must not
     * read to the end of that word (with small pieces that would be quadratic). */
    char w[100000];
    memset(w, 'z', sizeof w);
    struct wc_scan s;
    struct words got = {0};
    wc_scan_init(&s, 1000, 2000);
    cr_assert_eq(s.pos, 999);
    while (!wc_scan_done(&s))
        cr_assert_eq(wc_scan_feed(&s, w + s.pos, 100, words_add, &got), 0);
    cr_assert_leq(s.pos, 2100, "stopped at %llu", (unsigned long long)s.pos);
    cr_assert_eq(got.n, 0);
    wc_scan_free(&s);
    /* The range that holds the word's first byte reads on to its end. */
    wc_scan_init(&s, 0, 1000);
    while (!wc_scan_done(&s) && s.pos < sizeof w)
        cr_assert_eq(wc_scan_feed(&s, w + s.pos, 4096 < sizeof w - s.pos ? 4096 : sizeof w - s.pos,
                                  words_add, &got),
                     0);
    wc_scan_eof(&s, words_add, &got);
    cr_assert_eq(got.n, 1);
    cr_assert_eq(got.len, sizeof(size_t) + sizeof w);
    wc_scan_free(&s);
    words_free(&got);
}

/* ---- reference count and result order ---- */

Test(pipeline_ref, counts_and_order)
{
    static const char text[] = "b a b c ab a b aa A \xc3\xa9 \xc3\xa9";
    struct wc_ref r;
    cr_assert_eq(wc_ref_count(text, sizeof text - 1, &r), 0);
    cr_assert_eq(r.sum.total, 11);
    cr_assert_eq(r.sum.distinct, 7);
    cr_assert_eq(wc_table_get(&r.table, "b", 1), 3);
    cr_assert_eq(wc_table_get(&r.table, "zz", 2), 0);
    /* count descending, then bytes ascending with a prefix first ("a" < "aa" < "ab"). */
    static const char *const order[] = {"b", "a", "\xc3\xa9", "A", "aa", "ab", "c"};
    static const uint64_t counts[] = {3, 2, 2, 1, 1, 1, 1};
    for (size_t i = 0; i < 7; i++) {
        cr_assert_eq(r.items[i].count, counts[i], "item %zu", i);
        cr_assert_eq(r.items[i].len, strlen(order[i]));
        cr_assert(memcmp(r.items[i].word, order[i], r.items[i].len) == 0, "item %zu", i);
    }
    /* The digest does not depend on the order of the text. */
    static const char shuffled[] = "\xc3\xa9 c b aa A ab a \xc3\xa9 b a b";
    struct wc_ref r2;
    cr_assert_eq(wc_ref_count(shuffled, sizeof shuffled - 1, &r2), 0);
    cr_assert_eq(r.sum.digest, r2.sum.digest);
    wc_ref_free(&r2);
    cr_assert_eq(wc_ref_count("b a b c ab a b aa A \xc3\xa9", 20, &r2), 0);
    cr_assert_neq(r.sum.digest, r2.sum.digest, "one count less changes the digest");
    wc_ref_free(&r2);
    /* Merging split lists gives the first K of the whole. */
    struct wc_item *lists[2] = {r.items, r.items + 3};
    size_t ns[2] = {3, 4};
    struct wc_item *m;
    size_t n;
    cr_assert_eq(wc_items_merge(lists, ns, 2, 5, &m, &n), 0);
    cr_assert_eq(n, 5);
    for (size_t i = 0; i < 5; i++)
        cr_assert_eq(m[i].word, r.items[i].word);
    free(m);
    wc_ref_free(&r);
    struct wc_table t;
    cr_assert_eq(wc_table_init(&t), 0);
    for (int i = 0; i < 100000; i++) { /* growth keeps every count */
        char w[16];
        int len = snprintf(w, sizeof w, "w%d", i % 30000);
        cr_assert_eq(wc_table_add(&t, w, (size_t)len, wc_hash(w, (size_t)len), 1), 0);
    }
    cr_assert_eq(t.used, 30000);
    cr_assert_eq(wc_table_get(&t, "w29999", 6), 3);
    cr_assert_eq(wc_table_get(&t, "w0", 2), 4);
    wc_table_free(&t);
}

Test(pipeline_ref, large_table_is_zeroed_aligned_and_grows)
{
    struct wc_table t;
    /* 2^19 slots of 32 bytes: its own huge-page-aligned mapping, faulted in at once. */
    cr_assert_eq(wc_table_init_for(&t, 200000), 0);
    cr_assert_eq(t.mask + 1, (size_t)1 << 19);
    cr_assert_eq((uintptr_t)t.slots % (2u << 20), 0);
    for (size_t i = 0; i <= t.mask; i++)
        cr_assert(t.slots[i].word == NULL && t.slots[i].count == 0);
    for (int i = 0; i < 400000; i++) { /* grows to 2^20 slots: mapping to mapping */
        char w[16];
        int len = snprintf(w, sizeof w, "x%d", i);
        cr_assert_eq(wc_table_add(&t, w, (size_t)len, wc_hash(w, (size_t)len), (uint64_t)i), 0);
    }
    cr_assert_eq(t.mask + 1, (size_t)1 << 20);
    cr_assert_eq(t.used, 400000);
    cr_assert_eq(wc_table_get(&t, "x399999", 7), 399999);
    cr_assert_eq(wc_table_get(&t, "x1", 2), 1);
    wc_table_free(&t);
    cr_assert_null(t.slots);
}

Test(pipeline_ref, dropped_words_leave_the_counts_and_their_slots_at_growth)
{
    struct wc_table t;
    cr_assert_eq(wc_table_init(&t), 0);
    for (int i = 0; i < 100; i++) {
        char w[16];
        int len = snprintf(w, sizeof w, "d%d", i);
        cr_assert_eq(wc_table_add(&t, w, (size_t)len, wc_hash(w, (size_t)len), 2), 0);
    }
    for (size_t i = 0; i <= t.mask; i++) /* drop the even words */
        if (t.slots[i].word && (t.slots[i].word[t.slots[i].len - 1] - '0') % 2 == 0)
            wc_table_drop(&t, &t.slots[i]);
    cr_assert_eq(t.used, 100);
    cr_assert_eq(t.dropped, 50);
    cr_assert_eq(t.total, 100);
    cr_assert_eq(wc_table_get(&t, "d10", 3), 0);
    cr_assert_eq(wc_table_get(&t, "d11", 3), 2);
    struct wc_item *items;
    size_t n;
    struct wc_summary sum;
    cr_assert_eq(wc_table_items(&t, SIZE_MAX, &items, &n, &sum), 0);
    cr_assert(n == 50 && sum.distinct == 50 && sum.total == 100);
    for (size_t i = 0; i < n; i++)
        cr_assert((items[i].word[items[i].len - 1] - '0') % 2 == 1);
    free(items);
    cr_assert_eq(wc_table_add(&t, "d10", 3, wc_hash("d10", 3), 5), 0); /* back, from 0 */
    cr_assert_eq(wc_table_get(&t, "d10", 3), 5);
    cr_assert(t.dropped == 49 && t.total == 105);
    for (int i = 0; i < 2000; i++) { /* growth: dropped words give their slots back */
        char w[16];
        int len = snprintf(w, sizeof w, "g%d", i);
        cr_assert_eq(wc_table_add(&t, w, (size_t)len, wc_hash(w, (size_t)len), 1), 0);
    }
    cr_assert_eq(t.dropped, 0);
    cr_assert_eq(t.used, 51 + 2000);
    cr_assert_eq(wc_table_get(&t, "d12", 3), 0);
    cr_assert_eq(wc_table_get(&t, "d13", 3), 2);
    cr_assert_eq(wc_table_get(&t, "d10", 3), 5);
    wc_table_free(&t);
}

Test(pipeline_ref, first_items_equal_the_head_of_the_full_order)
{
    struct wc_table t;
    cr_assert_eq(wc_table_init(&t), 0);
    uint64_t x = 7;
    for (int i = 0; i < 5000; i++) { /* few distinct counts: many ties, ordered by bytes */
        char w[16];
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        int len = snprintf(w, sizeof w, "%x", (unsigned)(x >> 40));
        cr_assert_eq(wc_table_add(&t, w, (size_t)len, wc_hash(w, (size_t)len), 1 + (x >> 61)), 0);
    }
    struct wc_item *all, *some;
    size_t nall, nsome;
    struct wc_summary sall, ssome;
    cr_assert_eq(wc_table_items(&t, SIZE_MAX, &all, &nall, &sall), 0);
    cr_assert_eq(nall, t.used);
    static const size_t limits[] = {0, 1, 7, 100, 4000, 4999, 5000, 6000};
    for (size_t l = 0; l < sizeof limits / sizeof *limits; l++) {
        cr_assert_eq(wc_table_items(&t, limits[l], &some, &nsome, &ssome), 0);
        cr_assert_eq(nsome, limits[l] < nall ? limits[l] : nall);
        cr_assert(ssome.total == sall.total && ssome.distinct == sall.distinct &&
                  ssome.digest == sall.digest);
        for (size_t i = 0; i < nsome; i++)
            cr_assert(some[i].word == all[i].word && some[i].count == all[i].count,
                      "limit %zu item %zu", limits[l], i);
        free(some);
    }
    free(all);
    wc_table_free(&t);
}

/* Checks a planned job's pieces: in order, without gaps, within the size limits. */
static void check_plan(uint64_t size, uint64_t p, unsigned n)
{
    struct wc_job job;
    wc_job_init(&job, "x");
    job.size = size;
    job.piece_size = p;
    wc_job_plan(&job, n);
    uint64_t at = 0, prev = UINT64_MAX, tail = 2 * (uint64_t)n * p;
    for (uint64_t i = 0; i < job.npieces; i++) {
        uint64_t lo, hi;
        wc_job_piece(&job, i, &lo, &hi);
        cr_assert_eq(lo, at, "size %lu p %lu n %u piece %lu", (unsigned long)size, (unsigned long)p,
                     n, (unsigned long)i);
        cr_assert(hi > lo && hi - lo <= p && hi <= size);
        if (i < job.body_pieces)
            cr_assert_eq(hi - lo, p);
        else /* the tail: never growing, at least p/16 but for the very last piece */
            cr_assert(hi - lo <= prev && (hi - lo >= (p / 16 ? p / 16 : 1) || hi == size));
        if (i >= job.body_pieces)
            prev = hi - lo;
        at = hi;
    }
    cr_assert_eq(at, size);
    cr_assert(size - job.body_pieces * p <= tail + p || job.body_pieces == 0);
    if (size > tail + p && p >= 16) /* more, smaller pieces at the end */
        cr_assert(job.npieces > job.body_pieces + 2 * n, "size %lu p %lu n %u", (unsigned long)size,
                  (unsigned long)p, n);
    wc_job_free(&job);
}

Test(pipeline_dist, pieces_cover_the_file_and_shrink_at_the_end)
{
    static const uint64_t sizes[] = {0, 1, 999, 1000, 4096, 65537, 200u << 20, 1ull << 40};
    static const uint64_t pieces[] = {1, 1000, 65536, 2u << 20};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
        for (size_t q = 0; q < sizeof pieces / sizeof *pieces; q++)
            for (unsigned n = 1; n <= 4; n++)
                if (sizes[s] / pieces[q] < 5000000) /* keep the test fast */
                    check_plan(sizes[s], pieces[q], n);
    struct wc_job job;
    wc_job_init(&job, "x");
    job.size = 200u << 20;
    wc_job_plan(&job, 2); /* the default 2 MiB pieces: 96 full ones, then a shrinking tail */
    cr_assert_eq(job.body_pieces, 96);
    uint64_t lo, hi;
    wc_job_piece(&job, job.npieces - 1, &lo, &hi);
    cr_assert_eq(hi, 200u << 20);
    cr_assert_leq(hi - lo, 128u << 10);
    job.static_ranges = true;
    wc_job_plan(&job, 3);
    cr_assert_eq(job.npieces, 3);
    wc_job_piece(&job, 1, &lo, &hi);
    cr_assert(lo == wc_nominal(job.size, 1, 3) && hi == wc_nominal(job.size, 2, 3));
    wc_job_free(&job);
}

/* ---- the sn-pipeline binary ---- */

/* BUILD/bin/sn-pipeline, found from this binary's path BUILD/tests/test_pipeline. */
static void binary_path(char *out, size_t cap)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    cr_assert_gt(n, 0);
    self[n] = '\0';
    for (int i = 0; i < 2; i++) {
        char *slash = strrchr(self, '/');
        cr_assert_not_null(slash);
        *slash = '\0';
    }
    snprintf(out, cap, "%s/bin/sn-pipeline", self);
    cr_assert_eq(access(out, X_OK), 0, "%s is not built", out);
}

struct run {
    int code;
    char *out; /* stdout, NUL-terminated */
    size_t len;
};

/* Runs sn-pipeline with the NULL-terminated extra arguments; captures its stdout. */
static struct run run_pipeline(const char *const *args)
{
    char bin[PATH_MAX + 32];
    binary_path(bin, sizeof bin);
    const char *argv[32] = {bin};
    size_t argc = 1;
    while (args[argc - 1] && argc < 31) {
        argv[argc] = args[argc - 1];
        argc++;
    }
    int p[2];
    cr_assert_eq(pipe(p), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    struct run r = {0};
    size_t cap = 0;
    for (;;) {
        if (r.len + 65536 + 1 > cap) {
            cap = (r.len + 65536 + 1) * 2;
            r.out = realloc(r.out, cap);
            cr_assert_not_null(r.out);
        }
        ssize_t k = read(p[0], r.out + r.len, cap - r.len - 1);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        r.len += (size_t)k;
    }
    r.out[r.len] = '\0';
    close(p[0]);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return r;
}

/* The app's output equals the reference's for 1, 2 and 4 cores (and other modes). */
static void check_app(const char *path, const char *what)
{
    const char *ref_args[] = {"--reference", "--all", "--top", "25", path, NULL};
    struct run ref = run_pipeline(ref_args);
    cr_assert_eq(ref.code, 0, "%s: reference failed", what);
    cr_assert_not_null(strstr(ref.out, "\nall "), "%s", what);
    static const char *const variants[][4] = {
        {"--smp", "1", NULL},
        {"--smp", "2", NULL},
        {"--smp", "4", NULL},
        {"--smp", "2", "--no-combine", NULL},
        {"--smp", "3", "--partitioner", "jump"},
        {"--smp", "4", "--partitioner", "rendezvous"},
        {"--smp", "2", "--combine-max", "50"},
        {"--smp", "3", "--combine-max", "1000"},
        {"--smp", "2", "--static"},
        {"--smp", "4", "--static"},
        {"--smp", "2", "--piece-size", "1000"},
        {"--smp", "3", "--piece-size", "65536"},
    };
    for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++) {
        const char *args[12];
        size_t n = 0;
        for (size_t i = 0; i < 4 && variants[v][i]; i++)
            args[n++] = variants[v][i];
        const char *common[] = {"--unpinned", "--all", "--top", "25", path, NULL};
        for (size_t i = 0; i < 6; i++)
            args[n++] = common[i];
        struct run got = run_pipeline(args);
        cr_assert_eq(got.code, 0, "%s: %s %s failed", what, variants[v][0], variants[v][1]);
        cr_assert_eq(got.len, ref.len, "%s: variant %zu output length", what, v);
        cr_assert(memcmp(got.out, ref.out, ref.len) == 0, "%s: variant %zu output differs", what,
                  v);
        free(got.out);
    }
    free(ref.out);
}

struct tmpdir {
    char dir[64];
    char path[8][96];
    int n;
};

static const char *tmp_file(struct tmpdir *t, const char *name, const void *data, size_t len)
{
    if (!t->dir[0]) {
        strcpy(t->dir, "/tmp/sn-test-pipeline-XXXXXX");
        cr_assert_not_null(mkdtemp(t->dir));
    }
    char *p = t->path[t->n++], full[sizeof t->path[0]];
    snprintf(full, sizeof full, "%s/%s", t->dir, name);
    memcpy(p, full, sizeof full);
    FILE *f = fopen(p, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
    return p;
}

static void tmp_clean(struct tmpdir *t)
{
    for (int i = 0; i < t->n; i++)
        unlink(t->path[i]);
    if (t->dir[0])
        rmdir(t->dir);
    memset(t, 0, sizeof *t);
}

/* The app tests' files: removed by the tests' .fini, so also when an assertion failed. */
static struct tmpdir T;

static void tmp_fini(void)
{
    tmp_clean(&T);
}

Test(pipeline_app, equals_reference_on_generated_text, .timeout = 240, .fini = tmp_fini)
{
    struct tmpdir *t = &T;
    /* Long words of up to 300 KB cross the app's 256 KiB reads and whole ranges. */
    size_t size = SLOW ? 600000 : 3 << 20;
    char *text = gen_text(11, 20000, SLOW ? 200 : 1500, size);
    cr_assert_geq(longest_word(text, size), SLOW ? 5000 : 300000);
    check_app(tmp_file(t, "zipf.txt", text, size), "generated text");
    free(text);
}

Test(pipeline_app, equals_reference_on_edge_files, .timeout = 240, .fini = tmp_fini)
{
    struct tmpdir *t = &T;
    check_app(tmp_file(t, "empty.txt", "", 0), "empty file");
    check_app(tmp_file(t, "seps.txt", " ,\n\n;. \t", 9), "separators only");
    check_app(tmp_file(t, "one.txt", "w", 1), "one byte");
    static const char utf8[] = "\xc3\xa9t\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80 "
                               "\xc3\xa9t\xc3\xa9, Caf\xc3\xa9 caf\xc3\xa9 \xff \xff\xfe";
    check_app(tmp_file(t, "utf8.txt", utf8, sizeof utf8 - 1), "non-ASCII words");
    size_t big = SLOW ? 100000 : 700000; /* one word, no separator, longer than two reads */
    char *w = malloc(big);
    for (size_t i = 0; i < big; i++)
        w[i] = (char)('a' + i % 26);
    check_app(tmp_file(t, "oneword.txt", w, big), "a single very long word");
    w[big / 3] = ' ';
    check_app(tmp_file(t, "twowords.txt", w, big), "two very long words");
    free(w);
}

Test(pipeline_app, errors_and_generate_mode, .timeout = 60, .fini = tmp_fini)
{
    const char *missing[] = {"--smp", "1", "--unpinned", "/nonexistent/sn-pipeline", NULL};
    struct run r = run_pipeline(missing);
    cr_assert_eq(r.code, 1);
    free(r.out);
    const char *dir[] = {"--smp", "1", "--unpinned", "/tmp", NULL};
    r = run_pipeline(dir);
    cr_assert_eq(r.code, 1, "a directory is not a text file");
    free(r.out);
    const char *rr[] = {"--smp", "2", "--unpinned", "--partitioner", "rr", "/dev/null", NULL};
    r = run_pipeline(rr);
    cr_assert_eq(r.code, 2, "round-robin cannot own words");
    free(r.out);
    const char *noarg[] = {"--top", "x", NULL};
    r = run_pipeline(noarg);
    cr_assert_eq(r.code, 2);
    free(r.out);
    /* --generate writes the generator's stream to stdout. */
    const char *gen[] = {"--generate", "100K", "--seed", "9", "--vocab", "300", NULL};
    r = run_pipeline(gen);
    cr_assert_eq(r.code, 0);
    cr_assert_eq(r.len, 100 << 10);
    char *want = gen_text(9, 300, WC_ZIPF_DEFAULT_LONG_GAP, 100 << 10);
    cr_assert_arr_eq(r.out, want, 100 << 10);
    free(want);
    free(r.out);
    /* --report adds one line with the speed after the result. */
    struct tmpdir *t = &T;
    const char *path = tmp_file(t, "report.txt", "to be or not to be", 18);
    const char *rep[] = {"--smp", "2", "--unpinned", "--report", path, NULL};
    r = run_pipeline(rep);
    cr_assert_eq(r.code, 0);
    cr_assert_not_null(strstr(r.out, "words 6\ndistinct 4\n"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "\nreport: mode=reactor cores=2 bytes=18 words=6 "), "%s",
                       r.out);
    cr_assert_not_null(strstr(r.out, " words_per_s="), "%s", r.out);
    free(r.out);
}
