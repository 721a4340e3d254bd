/*
 * The meta protocol of apps/kv (mc_meta_parse.c, mc_meta_exec.c, mc_store_meta.c, mc_base64.c)
 * against one store with a clock moved by hand: every command and flag, memcached 1.6.18's
 * error texts and check order, quiet mode, the order-dependent flags (t before or after T),
 * the stale/win flags, base64 keys, the E extension, the binary protocol's refusal, and the
 * same answers however the input is split. The expected bytes were taken from Debian's
 * memcached 1.6.18 (tests/test_kv_meta.c checks a table of them against both servers); cas
 * values are this store's: the n-th item linked on core 0 gets n << 10.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apps/kv/mc_base64.h"
#include "apps/kv/mc_exec.h"
#include "apps/kv/mc_meta.h"

#define T0 1700000000

static int64_t now_s = T0;

static int64_t test_now(void *arg)
{
    (void)arg;
    return now_s;
}

/* A connection stand-in: parser, store, answers. */
struct sess {
    struct mc_parser p;
    struct mc_store *s;
    struct app_outbuf out;
    char *in;
    size_t len;
    bool closed;
};

static void sess_init(struct sess *x, size_t item_max)
{
    memset(x, 0, sizeof *x);
    struct mc_parser_config pc = {.item_max = item_max};
    mc_parser_init(&x->p, &pc);
    struct mc_store_config sc = {.mem_limit = 4 << 20, .item_max = item_max, .now = test_now};
    x->s = mc_store_create(&sc);
    cr_assert_not_null(x->s);
    app_outbuf_init(&x->out);
}

static void sess_fini(struct sess *x)
{
    free(x->in);
    mc_store_destroy(x->s);
    app_outbuf_free(&x->out);
}

/* Appends n bytes of input and runs every command they complete. */
static void sess_feed(struct sess *x, const char *data, size_t n)
{
    x->in = realloc(x->in, x->len + n + 1);
    cr_assert_not_null(x->in);
    memcpy(x->in + x->len, data, n);
    x->len += n;
    size_t off = 0;
    while (!x->closed) {
        struct mc_cmd m;
        ssize_t r = mc_parse(&x->p, x->in + off, x->len - off, &m);
        if (r <= 0) {
            x->closed = r < 0;
            break;
        }
        off += (size_t)r;
        int rc = mc_exec(x->s, &m, &x->out);
        cr_assert_geq(rc, 0);
        x->closed = rc == 1;
    }
    memmove(x->in, x->in + off, x->len - off);
    x->len -= off;
}

/* The answers to `in` so far, NUL-terminated; the buffer is emptied. */
static char *sess_take(struct sess *x)
{
    char *s = malloc(x->out.len + 1);
    memcpy(s, x->out.data, x->out.len);
    s[x->out.len] = '\0';
    app_outbuf_clear(&x->out);
    return s;
}

/* Sends `in` on the session and expects exactly `want` back. */
static void step(struct sess *x, const char *in, const char *want)
{
    sess_feed(x, in, strlen(in));
    char *got = sess_take(x);
    cr_expect_str_eq(got, want, "input: %s\ngot:  %s\nwant: %s", in, got, want);
    free(got);
}

static struct sess *fresh(void)
{
    now_s = T0;
    struct sess *x = malloc(sizeof *x);
    sess_init(x, 0);
    return x;
}

static void done(struct sess *x)
{
    sess_fini(x);
    free(x);
}

/* A cas unique of this store: the n-th item linked (core 0). */
static unsigned long long cas_n(unsigned n)
{
    return (unsigned long long)n << MC_CAS_CORE_BITS;
}

/* The key's cas unique now, asked with mg c (the answer is not checked otherwise). */
static unsigned long long cas_of(struct sess *x, const char *key)
{
    char line[300];
    int n = snprintf(line, sizeof line, "mg %s c\r\n", key);
    sess_feed(x, line, (size_t)n);
    char *got = sess_take(x);
    unsigned long long cas = 0;
    cr_assert_eq(sscanf(got, "HD c%llu", &cas), 1, "%s: %s", key, got);
    free(got);
    return cas;
}

/* ---- mg ---- */

Test(mc_meta, mg_hit_miss_and_flags)
{
    struct sess *x = fresh();
    step(x, "ms a 2 T100 F5\r\nhi\r\n", "HD\r\n");
    step(x, "mg a\r\n", "HD\r\n");
    step(x, "mg a v\r\n", "VA 2\r\nhi\r\n");
    step(x, "mg a s v f t k O9\r\n", "VA 2 s2 f5 t100 ka O9\r\nhi\r\n");
    now_s += 10;
    step(x, "mg a t s\r\n", "HD t90 s2\r\n");
    step(x, "mg nope\r\n", "EN\r\n");
    step(x, "mg nope v k O123\r\n", "EN knope O123\r\n");
    /* Quiet: misses say nothing, hits still answer. */
    step(x, "mg nope q\r\nmg nope v q k\r\nmn\r\n", "MN\r\n");
    step(x, "mg a q\r\nmg a v q\r\nmn\r\n", "HD\r\nVA 2\r\nhi\r\nMN\r\n");
    /* P and L are ignored; a flag's letters after the first mean nothing. */
    step(x, "mg a Pfoo Lbar sxyz\r\n", "HD s2\r\n");
    char want[64];
    snprintf(want, sizeof want, "HD c%llu\r\n", cas_n(1));
    step(x, "mg a c\r\n", want);
    done(x);
}

Test(mc_meta, mg_hit_and_last_access_before_the_fetch)
{
    struct sess *x = fresh();
    step(x, "ms a 1\r\nx\r\n", "HD\r\n");
    now_s += 7;
    /* u: no bump, the item stays unfetched and its access time stays. */
    step(x, "mg a h l u\r\n", "HD h0 l7\r\n");
    step(x, "mg a h l\r\n", "HD h0 l7\r\n");
    now_s += 2;
    step(x, "mg a h l\r\n", "HD h1 l2\r\n");
    /* get, gat and touch fetch too; incr, add and append do not. */
    step(x, "set n 0 0 2\r\n10\r\nincr n 1\r\nadd n 0 0 1\r\n1\r\nmg n h\r\n",
         "STORED\r\n11\r\nNOT_STORED\r\nHD h0\r\n");
    step(x, "set n 0 0 2\r\n10\r\ntouch n 100\r\nmg n h\r\n", "STORED\r\nTOUCHED\r\nHD h1\r\n");
    step(x, "set n 0 0 2\r\n10\r\ngat 100 n\r\nmg n h\r\n",
         "STORED\r\nVALUE n 0 2\r\n10\r\nEND\r\nHD h1\r\n");
    done(x);
}

Test(mc_meta, mg_flags_act_in_request_order)
{
    struct sess *x = fresh();
    step(x, "ms k 1\r\nx\r\n", "HD\r\n");
    step(x, "mg k t T30\r\n", "HD t-1\r\n");
    step(x, "mg k t\r\n", "HD t30\r\n");
    step(x, "mg k T50 t\r\n", "HD t50\r\n");
    step(x, "mg k T0 t\r\n", "HD t-1\r\n");
    /* N after t: the new item's TTL is set after t was printed. */
    step(x, "mg v t N100 T200 v\r\n", "VA 0 t-1 W\r\n\r\n");
    step(x, "mg v t\r\n", "HD t200 Z\r\n");
    step(x, "mg w T200 N100 t\r\n", "HD t100 W\r\n");
    /* An mg that fails on a long opaque still fetched the item, unless h, l, N, R or T made
     * memcached lock it and bump it only at the end. */
    step(x, "ms f 1\r\nx\r\nmg f T0 O123456789012345678901234567890123\r\nmg f h\r\n",
         "HD\r\nCLIENT_ERROR opaque token too long\r\nHD h0\r\n");
    step(x, "mg f O123456789012345678901234567890123\r\nmg f h\r\n",
         "CLIENT_ERROR opaque token too long\r\nHD h1\r\n");
    /* A negative TTL expires the item at once. */
    step(x, "mg k T-1\r\nmg k\r\n", "HD\r\nEN\r\n");
    done(x);
}

Test(mc_meta, mg_vivify_recache_and_stale)
{
    struct sess *x = fresh();
    /* N: the first client wins (W) a 0-byte item, the next ones see Z. */
    step(x, "mg v1 N30 v t s\r\n", "VA 0 t30 s0 W\r\n\r\n");
    step(x, "mg v1 N30 v t s\r\n", "VA 0 t30 s0 Z\r\n\r\n");
    step(x, "mg v1 q\r\nmn\r\n", "HD Z\r\nMN\r\n");
    step(x, "ms v1 3 T60\r\nabc\r\nmg v1 v t\r\n", "HD\r\nVA 3 t60\r\nabc\r\n");
    /* R: win when the TTL left is below the token. */
    step(x, "mg v1 R30 t\r\n", "HD t60\r\n");
    step(x, "mg v1 R100 t\r\n", "HD t60 W\r\n");
    step(x, "mg v1 R100 t\r\n", "HD t60 Z\r\n");
    step(x, "mg v1 R0\r\n", "HD Z\r\n");
    /* md I: stale (X), a new cas, and the next client wins again. */
    step(x, "ms s 2\r\nhi\r\nmd s I\r\nmg s v\r\n", "HD\r\nHD\r\nVA 2 X W\r\nhi\r\n");
    step(x, "mg s v\r\n", "VA 2 Z X\r\nhi\r\n");
    step(x, "md s I T30\r\nmg s t\r\n", "HD\r\nHD t30 X W\r\n");
    /* A plain set clears it all; incr in place keeps it, append does not. */
    step(x, "set s 0 0 1\r\n5\r\nmg s\r\n", "STORED\r\nHD\r\n");
    step(x, "md s I\r\nincr s 1\r\nmg s v\r\n", "HD\r\n6\r\nVA 1 X W\r\n6\r\n");
    step(x, "md s I\r\nappend s 0 0 1\r\n1\r\nmg s v\r\n", "HD\r\nSTORED\r\nVA 2\r\n61\r\n");
    done(x);
}

Test(mc_meta, ms_invalidate_with_an_older_cas_stores_stale)
{
    struct sess *x = fresh();
    char line[128], want[128];
    step(x, "ms k 2 T100\r\nhi\r\n", "HD\r\n"); /* cas 1 */
    step(x, "md k I\r\n", "HD\r\n");            /* cas 2, stale, no token */
    snprintf(line, sizeof line, "ms k 2 C%llu I c T5\r\nzz\r\n", cas_n(1));
    snprintf(want, sizeof want, "HD c%llu\r\n", cas_n(3));
    step(x, line, want);
    /* Stored stale, keeping the old TTL (T5 ignored), nobody has won yet. */
    step(x, "mg k v t\r\n", "VA 2 t100 X W\r\nzz\r\n");
    /* Older cas again, the win token is kept. */
    snprintf(line, sizeof line, "ms k 2 C%llu I\r\nyy\r\nmg k v\r\n", cas_n(1));
    step(x, line, "HD\r\nVA 2 Z X\r\nyy\r\n");
    /* Without I an old cas is just a mismatch; with a newer one too. */
    snprintf(line, sizeof line, "ms k 2 C%llu c\r\nxx\r\n", cas_n(1));
    step(x, line, "EX c0\r\n");
    step(x, "ms k 2 C99999999 I c\r\nxx\r\n", "EX c0\r\n");
    /* The matching cas stores normally: not stale any more. */
    snprintf(line, sizeof line, "ms k 2 C%llu I\r\nww\r\nmg k v\r\n", cas_n(4));
    step(x, line, "HD\r\nVA 2\r\nww\r\n");
    done(x);
}

/* ---- ms ---- */

Test(mc_meta, ms_modes_and_results)
{
    struct sess *x = fresh();
    step(x, "ms a 2 MA\r\nzz\r\n", "NS\r\n");
    step(x, "ms a 2 MP\r\nzz\r\n", "NS\r\n");
    step(x, "ms a 2 MR\r\nzz\r\n", "NS\r\n");
    step(x, "ms a 2 ME\r\nhi\r\n", "HD\r\n");
    step(x, "ms a 2 ME\r\nxx\r\n", "NS\r\n");
    step(x, "ms a 2 MA\r\nzz\r\nms a 2 MP\r\nyy\r\nmg a v\r\n", "HD\r\nHD\r\nVA 6\r\nyyhizz\r\n");
    step(x, "ms a 2 MR F7\r\nrr\r\nmg a v f\r\n", "HD\r\nVA 2 f7\r\nrr\r\n");
    step(x, "ms a 2 MS\r\nss\r\nmg a v\r\n", "HD\r\nVA 2\r\nss\r\n");
    step(x, "ms a 0\r\n\r\nmg a v s\r\n", "HD\r\nVA 0 s0\r\n\r\n");
    /* Quiet hides HD only. */
    step(x, "ms a 2 q\r\nhi\r\nms b 2 q MR\r\nhi\r\nmn\r\n", "NS\r\nMN\r\n");
    /* k and O come back in request order; c is 0 when nothing was stored. */
    step(x, "ms a 2 k O1\r\nhi\r\n", "HD ka O1\r\n");
    step(x, "ms zz 2 O1 MR c k\r\nhi\r\n", "NS O1 c0 kzz\r\n");
    char want[64];
    snprintf(want, sizeof want, "HD c%llu\r\n", cas_n(9));
    step(x, "ms a 2 c\r\nhi\r\n", want);
    /* C: cas mode for set and replace; append checks it unless 0; add ignores it. */
    step(x, "ms nokey 2 C1\r\nhi\r\n", "NF\r\n");
    step(x, "ms nokey 2 C1 MR\r\nhi\r\n", "NF\r\n");
    step(x, "ms nokey 2 C1 MA\r\nhi\r\n", "NS\r\n");
    step(x, "ms a 2 C1 q\r\nhi\r\nmn\r\n", "EX\r\nMN\r\n");
    step(x, "ms a 2 C1 MA\r\nhi\r\n", "EX\r\n");
    step(x, "ms a 2 C0 MA\r\nzz\r\nmg a v\r\n", "HD\r\nVA 4\r\nhizz\r\n");
    step(x, "ms new 2 C1 ME\r\nhi\r\n", "HD\r\n");
    char line[64];
    snprintf(line, sizeof line, "ms a 2 C%llu\r\nok\r\nmg a v\r\n", cas_of(x, "a"));
    step(x, line, "HD\r\nVA 2\r\nok\r\n");
    /* T: negative means expired at once. */
    step(x, "ms a 2 T-1\r\nhi\r\nmg a v\r\n", "HD\r\nEN\r\n");
    done(x);
}

Test(mc_meta, ms_errors_swallow_the_data_when_memcached_does)
{
    struct sess *x = fresh();
    /* Errors found after <datalen>: the data block is discarded with them. */
    step(x, "ms k 2 c c\r\nhi\r\nmn\r\n", "CLIENT_ERROR duplicate flag\r\nMN\r\n");
    step(x, "ms k 2 Zfoo\r\nhi\r\nmn\r\n", "CLIENT_ERROR invalid flag\r\nMN\r\n");
    step(x, "ms k 2 MX\r\nhi\r\nmn\r\n", "CLIENT_ERROR invalid mode for ms M token\r\nMN\r\n");
    step(x, "ms k 2 MEE\r\nhi\r\nmn\r\n", "CLIENT_ERROR incorrect length for M token\r\nMN\r\n");
    step(x, "ms k 2 Tabc\r\nhi\r\nmn\r\n",
         "CLIENT_ERROR bad token in command line format\r\nMN\r\n");
    step(x, "ms k 2 F-1\r\nhi\r\nmn\r\n", "CLIENT_ERROR bad command line format\r\nMN\r\n");
    step(x, "ms k 2 b q\r\nhi\r\nmn\r\n", "CLIENT_ERROR error decoding key\r\nMN\r\n");
    step(x, "ms k 2 O123456789012345678901234567890123\r\nhi\r\nmn\r\n",
         "CLIENT_ERROR opaque token too long\r\nMN\r\n");
    step(x, "ms k 2 MX O123456789012345678901234567890123\r\nhi\r\nmn\r\n",
         "CLIENT_ERROR invalid mode for ms M token\r\nMN\r\n");
    /* Errors before <datalen> is known: the data line is read as a command. */
    step(x, "ms k abc\r\nhi\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n");
    step(x, "ms k -1\r\nhi\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n");
    step(x, "ms k 2 a b c d e f g h i j k l m n o p q\r\nhi\r\n",
         "CLIENT_ERROR options flags too long\r\nERROR\r\n");
    step(x, "ms k\r\n", "CLIENT_ERROR bad command line format\r\n");
    step(x, "ms\r\n", "ERROR\r\n");
    /* A bad chunk: always answered, even quiet. */
    step(x, "ms k 2 q\r\nhix\r\n", "CLIENT_ERROR bad data chunk\r\nERROR\r\n");
    step(x, "mg k\r\n", "EN\r\n");
    done(x);
}

Test(mc_meta, ms_too_large_is_swallowed_and_drops_the_old_value)
{
    struct sess *x = malloc(sizeof *x);
    now_s = T0;
    sess_init(x, 2048);
    step(x, "ms k 2\r\nhi\r\n", "HD\r\n");
    char *big = malloc(8192);
    int n = snprintf(big, 100, "ms k 4000 MA q\r\n");
    memset(big + n, 'v', 4000);
    memcpy(big + n + 4000, "\r\nmg k v\r\n", 10);
    /* In pieces, so part of the data comes after the answer. */
    sess_feed(x, big, (size_t)n + 1000);
    sess_feed(x, big + n + 1000, 3010);
    char *got = sess_take(x);
    cr_expect_str_eq(got, "SERVER_ERROR object too large for cache\r\nEN\r\n");
    free(got);
    free(big);
    sess_fini(x);
    free(x);
}

/* ---- md ---- */

Test(mc_meta, md_delete_invalidate_and_cas)
{
    struct sess *x = fresh();
    step(x, "md a\r\n", "NF\r\n");
    step(x, "md a q k O5\r\n", "NF ka O5\r\n");
    step(x, "ms a 2\r\nhi\r\nmd a\r\nmg a\r\n", "HD\r\nHD\r\nEN\r\n");
    step(x, "ms a 2\r\nhi\r\nmd a q\r\nmn\r\n", "HD\r\nMN\r\n");
    step(x, "ms a 2\r\nhi\r\nmd a C1\r\n", "HD\r\nEX\r\n");
    step(x, "md a C0 q\r\nmn\r\n", "EX\r\nMN\r\n");
    char line[64];
    snprintf(line, sizeof line, "md a C%llu O7 k\r\n", cas_of(x, "a"));
    step(x, line, "HD O7 ka\r\n");
    /* T without I changes nothing but the item is deleted. */
    step(x, "ms a 2\r\nhi\r\nmd a T30\r\nmg a\r\n", "HD\r\nHD\r\nEN\r\n");
    /* Any flag memcached knows is taken; others are an error, worded for md. */
    step(x, "ms a 2\r\nhi\r\nmd a M5 F5 D5 J5 N5 R5 v s t c f h l u P L O5\r\n", "HD\r\nHD O5\r\n");
    step(x, "md a X\r\n", "CLIENT_ERROR invalid or duplicate flag\r\n");
    step(x, "md a q q\r\n", "CLIENT_ERROR invalid or duplicate flag\r\n");
    step(x, "md a Cabc\r\n", "CLIENT_ERROR invalid or duplicate flag\r\n");
    step(x, "md a O123456789012345678901234567890123\r\n",
         "CLIENT_ERROR opaque token too long\r\n");
    step(x, "md\r\n", "ERROR\r\n");
    done(x);
}

/* ---- ma ---- */

Test(mc_meta, ma_counts_creates_and_orders)
{
    struct sess *x = fresh();
    step(x, "ma n\r\n", "NF\r\n");
    step(x, "ma n q\r\nmn\r\n", "NF\r\nMN\r\n");
    step(x, "ma n N0\r\n", "HD\r\n");
    step(x, "ma n v\r\n", "VA 1\r\n1\r\n");
    step(x, "ma n v D10\r\n", "VA 2\r\n11\r\n");
    step(x, "ma n v MD D3\r\n", "VA 1\r\n8\r\n");
    step(x, "ma n v M- D300\r\n", "VA 1\r\n0\r\n");
    step(x, "ma n v M+ D5\r\n", "VA 1\r\n5\r\n");
    step(x, "ma n v MI\r\n", "VA 1\r\n6\r\n");
    step(x, "ma n v J5\r\n", "VA 1\r\n7\r\n");
    step(x, "ma n2 v N0 J5\r\n", "VA 1\r\n5\r\n");
    /* Quiet hides a success, not a creation. */
    step(x, "ma n3 N0 J5 q\r\nma n3 q\r\nma n3 v q\r\nmn\r\n", "HD\r\nMN\r\n");
    /* ...but still applies T. */
    step(x, "ma n3 q T50\r\nmg n3 t\r\nmg n3 T0\r\n", "HD t50\r\nHD\r\n");
    step(x, "ma n3 D-2\r\n", "CLIENT_ERROR invalid or duplicate flag\r\n");
    step(x, "ma n3 MD D1\r\n", "HD\r\n");
    step(x, "ma n3 v t k O1 T100\r\n", "VA 1 t-1 kn3 O1\r\n8\r\n");
    step(x, "ma n3 v t\r\n", "VA 1 t100\r\n9\r\n");
    step(x, "ma n4 t N100 v\r\nma n4 t\r\n", "VA 1 t-1\r\n0\r\nHD t100\r\n");
    step(x, "ma zzz k O7 q\r\nmn\r\n", "NF kzzz O7\r\nMN\r\n");
    step(x, "ma n3 C1\r\nma n3 C1 q\r\nmn\r\n", "EX\r\nEX\r\nMN\r\n");
    char line[64];
    snprintf(line, sizeof line, "ma n3 C%llu v\r\n", cas_of(x, "n3"));
    step(x, line, "VA 2\r\n10\r\n");
    step(x, "ma nn N0 J18446744073709551615 v\r\nma nn v\r\n",
         "VA 20\r\n18446744073709551615\r\nVA 1\r\n0\r\n");
    done(x);
}

Test(mc_meta, ma_errors)
{
    struct sess *x = fresh();
    step(x, "set e 0 0 0\r\n\r\nma e C1\r\n",
         "STORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
    step(x, "set x 0 0 1\r\nx\r\nma x C1\r\nma x\r\n",
         "STORED\r\nEX\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
    step(x, "ma n v Mx\r\n", "CLIENT_ERROR invalid mode for ma M token\r\n");
    step(x, "ma n Dabc\r\n", "CLIENT_ERROR invalid or duplicate flag\r\n");
    step(x, "ma n D-1\r\n", "CLIENT_ERROR invalid or duplicate flag\r\n");
    step(x, "ma n Jabc\r\n", "CLIENT_ERROR invalid or duplicate flag\r\n");
    step(x, "ma n t T1 t\r\n", "CLIENT_ERROR invalid or duplicate flag\r\n");
    step(x, "ma n S5\r\n", "CLIENT_ERROR invalid or duplicate flag\r\n");
    step(x, "ma\r\n", "ERROR\r\n");
    /* A long opaque is reported at its turn, after the change. */
    step(x, "ma c N0 J5 T9 O123456789012345678901234567890123 T\r\n",
         "CLIENT_ERROR invalid or duplicate flag\r\n");
    step(x, "ma c N0 J5 T9 O123456789012345678901234567890123\r\nmg c v t\r\n",
         "CLIENT_ERROR opaque token too long\r\nVA 1 t9\r\n5\r\n");
    done(x);
}

/* ---- errors shared by mg and the keyed commands ---- */

static const struct {
    const char *in, *want;
} parse_errors[] = {
    {"mg\r\n", "ERROR\r\n"},
    {"mx a\r\n", "ERROR\r\n"},
    {"mgg a\r\n", "ERROR\r\n"},
    {"m\r\n", "ERROR\r\n"},
    {"mg a b\r\n", "CLIENT_ERROR error decoding key\r\n"},
    {"mg a t t\r\n", "CLIENT_ERROR duplicate flag\r\n"},
    {"mg a \x80\r\n", "CLIENT_ERROR duplicate flag\r\n"},
    {"mg a 1\r\n", "CLIENT_ERROR invalid flag\r\n"},
    {"mg a Zfoo\r\n", "CLIENT_ERROR invalid flag\r\n"},
    {"mg a S5\r\n", "CLIENT_ERROR invalid flag\r\n"},
    {"mg a Tabc\r\n", "CLIENT_ERROR bad token in command line format\r\n"},
    {"mg a T\r\n", "CLIENT_ERROR bad token in command line format\r\n"},
    {"mg a N5x\r\n", "CLIENT_ERROR bad token in command line format\r\n"},
    {"mg a C-1\r\n", "CLIENT_ERROR bad token in command line format\r\n"},
    {"mg a M\r\n", "CLIENT_ERROR incorrect length for M token\r\n"},
    {"mg a Jx\r\n", "CLIENT_ERROR invalid numeric initial value\r\n"},
    {"mg a Dx\r\n", "CLIENT_ERROR invalid numeric delta value\r\n"},
    {"mg a F-1\r\n", "CLIENT_ERROR bad command line format\r\n"},
    /* Bad values do not stop the parse: the last text wins, F keeps the one before. */
    {"mg a Tabc Dx\r\n", "CLIENT_ERROR invalid numeric delta value\r\n"},
    {"mg a Dx F-1\r\n", "CLIENT_ERROR invalid numeric delta value\r\n"},
    {"mg a Tabc Zz\r\n", "CLIENT_ERROR invalid flag\r\n"},
    {"mg a Zz Tabc\r\n", "CLIENT_ERROR invalid flag\r\n"},
    {"mg a Tabc T5\r\n", "CLIENT_ERROR duplicate flag\r\n"},
    {"mg a O123456789012345678901234567890123\r\n", "CLIENT_ERROR opaque token too long\r\n"},
    {"mg a q O12345678901234567890123456789012\r\nmn\r\n",
     "CLIENT_ERROR opaque token too long\r\nMN\r\n"},
    {"mg a O1234567890123456789012345678901\r\n", "EN O1234567890123456789012345678901\r\n"},
    {"mg k a b c d e f g h i j k l m n o p q r s\r\n",
     "CLIENT_ERROR options flags are too long\r\n"},
    {"mg k c d e f g h i j k l m n o p q r s\r\n", "CLIENT_ERROR invalid flag\r\n"},
    {"md k a b c d e f g h i j k l m n o p q r s\r\n", "CLIENT_ERROR options flags too long\r\n"},
    {"ma k a b c d e f g h i j k l m n o p q r s\r\n", "CLIENT_ERROR options flags too long\r\n"},
    {"me\r\n", "CLIENT_ERROR bad command line format\r\n"},
    {"me k b\r\n", "CLIENT_ERROR bad command line format\r\n"},
    {"me k\r\n", "EN\r\n"},
    {"me k x y\r\n", "EN\r\n"},
    {"mn\r\n", "MN\r\n"},
    {"mn foo bar\r\n", "MN\r\n"},
    /* Ours: control bytes in a key are refused (see mc_proto.h). */
    {"mg a\x01 v\r\n", "CLIENT_ERROR bad command line format\r\n"},
};

Test(mc_meta, parse_errors_in_memcached_words)
{
    struct sess *x = fresh();
    for (size_t i = 0; i < sizeof parse_errors / sizeof parse_errors[0]; i++)
        step(x, parse_errors[i].in, parse_errors[i].want);
    /* Keys of 250 bytes are fine, 251 are not. */
    char line[600];
    memcpy(line, "mg ", 3);
    memset(line + 3, 'k', 251);
    memcpy(line + 254, " v\r\n", 5);
    step(x, line, "CLIENT_ERROR bad command line format\r\n");
    memmove(line + 253, line + 254, 5);
    step(x, line, "EN\r\n");
    done(x);
}

/* ---- base64 keys ---- */

Test(mc_meta, base64_codec_as_memcached)
{
    static const struct {
        const char *in;
        const char *out; /* NULL: refused */
        size_t n;
    } dec[] = {
        {"YQ==", "a", 1},   {"YWI=", "ab", 2},    {"YWJj", "abc", 3}, {"Y!Q==", "a", 1},
        {"Y.Q=.=", "a", 1}, {"YQ==YWJj", "a", 1}, {"YQ=x", "a\0", 2}, {"YW=j", "a`", 2},
        {"AA==", "\0", 1},  {"Y===", NULL, 0},    {"====", NULL, 0},  {"YQ=", NULL, 0},
        {"YQ===", NULL, 0}, {"YWJjZA", NULL, 0},  {"YW_j", NULL, 0},  {"!!!!", NULL, 0},
        {"", NULL, 0},
    };
    for (size_t i = 0; i < sizeof dec / sizeof dec[0]; i++) {
        unsigned char out[16];
        size_t n = mc_base64_decode(dec[i].in, strlen(dec[i].in), out);
        cr_expect_eq(n, dec[i].n, "%s: %zu bytes", dec[i].in, n);
        if (dec[i].out && n == dec[i].n)
            cr_expect_arr_eq(out, dec[i].out, n, "%s", dec[i].in);
    }
    char enc[16];
    cr_expect_eq(mc_base64_encode((const unsigned char *)"a", 1, enc), 4);
    cr_expect_arr_eq(enc, "YQ==", 4);
    cr_expect_eq(mc_base64_encode((const unsigned char *)"ab", 2, enc), 4);
    cr_expect_arr_eq(enc, "YWI=", 4);
    cr_expect_eq(mc_base64_encode((const unsigned char *)"a`\xff", 3, enc), 4);
    cr_expect_arr_eq(enc, "YWD/", 4);
    cr_expect_eq(mc_base64_encoded_len(187), 252);
}

Test(mc_meta, base64_keys)
{
    struct sess *x = fresh();
    step(x, "ms YWJj 2 b\r\nxy\r\nmg abc v\r\n", "HD\r\nVA 2\r\nxy\r\n");
    /* The item remembers its key was binary: k answers base64 even when asked in text. */
    step(x, "mg YWJj b k v\r\n", "VA 2 kYWJj b\r\nxy\r\n");
    step(x, "mg abc k\r\n", "HD kYWJj b\r\n");
    step(x, "me abc\r\n", "ME YWJj exp=-1 la=0 cas=1024 fetch=yes cls=1 size=63\r\n");
    step(x, "me YWJj b\r\n", "ME YWJj exp=-1 la=0 cas=1024 fetch=yes cls=1 size=63\r\n");
    /* A text set makes it a text key again. */
    step(x, "set abc 0 0 1\r\nz\r\nmg YWJj b k\r\n", "STORED\r\nHD kabc\r\n");
    /* Misses and md/ma answer with the key as sent. */
    step(x, "mg Y!Q== b k\r\n", "EN kYQ== b\r\n");
    step(x, "md YQ== b k\r\nma YQ== b k\r\n", "NF kYQ== b\r\nNF kYQ== b\r\n");
    /* Created by mg N or ma N: not marked binary. */
    step(x, "mg djI= N0 b k\r\nmg v2 k\r\n", "HD kv2 W\r\nHD kv2 Z\r\n");
    step(x, "ma djM= N0 b k\r\nmg v3 k\r\n", "HD kdjM= b\r\nHD kv3\r\n");
    /* Binary bytes a text key cannot hold. */
    step(x, "ms IAoNAA== 1 b k\r\nA\r\nmg IAoNAA== b v k\r\n",
         "HD kIAoNAA== b\r\nVA 1 kIAoNAA== b\r\nA\r\n");
    done(x);
}

/* ---- me, E ---- */

Test(mc_meta, me_reports_the_item)
{
    struct sess *x = fresh();
    step(x, "ms k 2 T100\r\nhi\r\n", "HD\r\n");
    now_s += 4;
    step(x, "me k\r\n", "ME k exp=-96 la=4 cas=1024 fetch=no cls=1 size=61\r\n");
    step(x, "mg k\r\nme k\r\n", "HD\r\nME k exp=-96 la=0 cas=1024 fetch=yes cls=1 size=61\r\n");
    step(x, "me nokey\r\n", "EN\r\n");
    done(x);
}

Test(mc_meta, explicit_cas_E)
{
    struct sess *x = fresh();
    step(x, "ms k 2 E77 c\r\nhi\r\n", "HD c77\r\n");
    step(x, "mg k c\r\n", "HD c77\r\n");
    step(x, "md k I E88\r\nmg k c\r\n", "HD\r\nHD c88 X W\r\n");
    step(x, "set n 0 0 1\r\n5\r\nma n E99 c v\r\n", "STORED\r\nVA 1 c99\r\n6\r\n");
    step(x, "ma m N0 E11 c\r\nmg v N0 E12 c\r\n", "HD c11\r\nHD c12 W\r\n");
    step(x, "ms k 2 C88 E5 c\r\nok\r\n", "HD c5\r\n");
    /* An explicit cas does not confuse flush_all: items stored after it live. */
    step(x, "flush_all\r\nms k 2 E1\r\nhi\r\nmg k v c\r\n", "OK\r\nHD\r\nVA 2 c1\r\nhi\r\n");
    step(x, "mg k E\r\n", "CLIENT_ERROR bad token in command line format\r\n");
    done(x);
}

/* ---- the binary protocol ---- */

Test(mc_meta, binary_protocol_is_refused_with_its_own_error)
{
    struct sess *x = fresh();
    unsigned char req[24] = {0x80, 0x0b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef};
    sess_feed(x, (const char *)req, 10);
    cr_assert_eq(x->out.len, 0, "waits for the whole header");
    sess_feed(x, (const char *)req + 10, 14);
    cr_assert(x->closed, "the connection is closed after the answer");
    const unsigned char *r = (const unsigned char *)x->out.data;
    cr_assert_gt(x->out.len, 24);
    cr_expect_eq(r[0], 0x81);
    cr_expect_eq(r[1], 0x0b, "the request's opcode");
    cr_expect_eq(r[6] << 8 | r[7], 0x0081, "status: unknown command");
    uint32_t body = (uint32_t)r[8] << 24 | r[9] << 16 | r[10] << 8 | r[11];
    cr_expect_eq(body, x->out.len - 24);
    cr_expect_arr_eq(r + 12, req + 12, 4, "the request's opaque");
    cr_expect_not_null(memmem(r + 24, body, "text and meta", 13));
    done(x);
    /* Only as the connection's first byte. */
    x = fresh();
    step(x, "mn\r\n\x80\r\n", "MN\r\nERROR\r\n");
    cr_assert(!x->closed);
    done(x);
}

/* ---- input split anywhere ---- */

static const char split_input[] =
    "ms a 5 T100 F3 k O1\r\nhe\r\nl\r\nmg a v t f s k\r\nmg b q v\r\nms YWJj 1 b\r\nZ\r\n"
    "mg YWJj b k v\r\nma n N0 J10 v\r\nma n D5 MD v t\r\nmd a I\r\nmg a v c\r\nmg a v\r\n"
    "ms k 3 Zfoo\r\nabc\r\nms k 3 q\r\nabxy\r\nmg k\r\nme abc\r\nmn\r\n";

static char *split_run(const size_t *cuts, size_t ncuts)
{
    struct sess *x = fresh();
    size_t at = 0, n = sizeof split_input - 1;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : n;
        sess_feed(x, split_input + at, end - at);
        at = end;
    }
    char *s = sess_take(x);
    done(x);
    return s;
}

Test(mc_meta, same_answers_however_the_input_is_split)
{
    char *whole = split_run(NULL, 0);
    cr_assert_not_null(strstr(whole, "VA 5 t100 f3 s5 ka\r\nhe\r\nl\r\n"));
    cr_assert_not_null(
        strstr(whole, "CLIENT_ERROR invalid flag\r\nCLIENT_ERROR bad data chunk\r\nERROR\r\n"));
    for (size_t cut = 1; cut < sizeof split_input - 1; cut++) {
        char *got = split_run(&cut, 1);
        cr_assert_str_eq(got, whole, "cut at %zu", cut);
        free(got);
    }
    size_t cuts[sizeof split_input];
    for (size_t i = 0; i + 2 < sizeof split_input; i++)
        cuts[i] = i + 1;
    char *got = split_run(cuts, sizeof split_input - 2);
    cr_assert_str_eq(got, whole, "byte by byte");
    free(got);
    free(whole);
}
