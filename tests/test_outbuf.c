/* Tests of the apps' output-buffer writer (apps/common/outbuf.c) and its overflow rule. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "apps/common/outbuf.h"

/* Every kind of append, the same text each time: "ab 42 x=7\n" (10 bytes). */
static void put_all(struct app_outbuf *b)
{
    app_outbuf_put(b, "ab", 2);
    app_outbuf_str(b, " ");
    app_outbuf_u64(b, 42);
    app_outbuf_printf(b, " x=%d", 7);
    char *p = app_outbuf_reserve(b, 4);
    if (p) {
        p[0] = '\n';
        app_outbuf_commit(b, 1);
    }
}

Test(outbuf, growable_buffers_grow_and_keep_every_byte)
{
    struct app_outbuf b;
    app_outbuf_init(&b);
    cr_assert_null(b.data, "nothing is allocated before the first append");
    cr_assert_eq(app_outbuf_put(&b, NULL, 0), 0);
    cr_assert_eq(b.len, 0);
    for (int i = 0; i < 1000; i++)
        put_all(&b);
    cr_assert_eq(b.err, 0);
    cr_assert_eq(b.len, 10000);
    for (int i = 0; i < 1000; i++)
        cr_assert_arr_eq(b.data + 10 * i, "ab 42 x=7\n", 10, "copy %d", i);
    /* A printf longer than the room left goes through one growth, not a cut. */
    char big[5000];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    cr_assert_eq(app_outbuf_printf(&b, "<%s>", big), 0);
    cr_assert_eq(b.len, 10000 + sizeof big + 1);
    cr_assert_eq(b.data[b.len - 1], '>');
    cr_assert_eq(b.data[b.len - 2], 'z');
    app_outbuf_clear(&b);
    cr_assert_eq(b.len, 0);
    cr_assert_not_null(b.data, "clear keeps the memory");
    app_outbuf_free(&b);
    cr_assert_null(b.data);
    app_outbuf_free(&b); /* twice is fine */
}

Test(outbuf, fixed_buffers_fill_to_the_last_byte_and_never_overrun)
{
    for (size_t cap = 0; cap <= 14; cap++) {
        char *mem = malloc(cap + 1);
        mem[cap] = '#';
        struct app_outbuf b;
        app_outbuf_init_fixed(&b, mem, cap);
        put_all(&b);
        cr_assert_eq(mem[cap], '#', "cap %zu: wrote past the end", cap);
        cr_assert_eq(b.err, cap >= 13 ? 0 : -ENOSPC, "cap %zu", cap); /* reserve(4) at 9 */
        cr_assert_leq(b.len, cap);
        if (cap >= 13)
            cr_assert_arr_eq(mem, "ab 42 x=7\n", 10);
        free(mem);
    }
    /* Exactly enough room, for each kind of append, including printf without its NUL. */
    char mem[8];
    struct app_outbuf b;
    app_outbuf_init_fixed(&b, mem, 3);
    cr_assert_eq(app_outbuf_printf(&b, "%d", 123), 0);
    cr_assert_arr_eq(mem, "123", 3);
    app_outbuf_init_fixed(&b, mem, 2);
    cr_assert_eq(app_outbuf_u64(&b, 99), 0);
    cr_assert_eq(app_outbuf_u64(&b, 1), -ENOSPC);
    cr_assert_arr_eq(mem, "99", 2);
    app_outbuf_init_fixed(&b, NULL, 0);
    cr_assert_eq(app_outbuf_put(&b, "", 0), 0);
    cr_assert_eq(app_outbuf_str(&b, "x"), -ENOSPC);
    cr_assert_null(app_outbuf_reserve(&b, 1));
}

Test(outbuf, a_failed_append_adds_nothing_and_the_first_error_is_kept)
{
    char mem[6];
    struct app_outbuf b;
    app_outbuf_init_fixed(&b, mem, sizeof mem);
    cr_assert_eq(app_outbuf_str(&b, "abcd"), 0);
    cr_assert_eq(app_outbuf_str(&b, "efg"), -ENOSPC);
    cr_assert_eq(b.len, 4, "all of it or none");
    cr_assert_eq(app_outbuf_printf(&b, "%s", "xyz"), -ENOSPC);
    cr_assert_eq(b.len, 4);
    cr_assert_eq(app_outbuf_u64(&b, 123), -ENOSPC);
    cr_assert_eq(b.len, 4);
    /* Later appends are still tried: what fits is added, the error stays recorded. */
    cr_assert_eq(app_outbuf_str(&b, "ef"), 0);
    cr_assert_eq(b.len, 6);
    cr_assert_arr_eq(mem, "abcdef", 6);
    cr_assert_eq(b.err, -ENOSPC);
    app_outbuf_clear(&b);
    cr_assert_eq(b.err, 0);
    cr_assert_eq(b.len, 0);
}

Test(outbuf, a_growable_buffer_that_cannot_grow_is_enomem)
{
    struct app_outbuf b;
    app_outbuf_init(&b);
    cr_assert_eq(app_outbuf_str(&b, "abc"), 0);
    cr_assert_null(app_outbuf_reserve(&b, SIZE_MAX - 1));
    cr_assert_eq(b.err, -ENOMEM);
    cr_assert_eq(app_outbuf_overflow(&b), -ENOMEM);
    cr_assert_eq(b.len, 3);
    cr_assert_arr_eq(b.data, "abc", 3);
    app_outbuf_free(&b);
}

Test(outbuf, decimal_digits)
{
    char d[APP_U64_DIGITS];
    cr_assert_eq(app_u64_dec(0, d), 1);
    cr_assert_eq(d[0], '0');
    cr_assert_eq(app_u64_dec(UINT64_MAX, d), APP_U64_DIGITS);
    cr_assert_arr_eq(d, "18446744073709551615", APP_U64_DIGITS);
}
