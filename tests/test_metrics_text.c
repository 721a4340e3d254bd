/* Tests of the Prometheus text formatter (apps/common/metrics_text.c). */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "apps/common/metrics_text.h"

static const uint64_t tasks[] = {1027, 0};
static const uint64_t depth[] = {3, 18446744073709551615u};

static const struct metrics_family fams[] = {
    {"sn_tasks_run_total", "Tasks run by the reactor.", METRICS_COUNTER, tasks},
    {"sn:queue_depth", "Depth \\ of the\nqueue", METRICS_GAUGE, depth},
};

static const char want[] = "# HELP sn_tasks_run_total Tasks run by the reactor.\n"
                           "# TYPE sn_tasks_run_total counter\n"
                           "sn_tasks_run_total{core=\"0\"} 1027\n"
                           "sn_tasks_run_total{core=\"1\"} 0\n"
                           "# HELP sn:queue_depth Depth \\\\ of the\\nqueue\n"
                           "# TYPE sn:queue_depth gauge\n"
                           "sn:queue_depth{core=\"0\"} 3\n"
                           "sn:queue_depth{core=\"1\"} 18446744073709551615\n";

/* Formats into a fresh growable buffer; returns the result, the text NUL-terminated in out. */
static int format(char *out, size_t cap, const struct metrics_family *f, size_t n, unsigned nc)
{
    struct app_outbuf b;
    app_outbuf_init(&b);
    int rc = metrics_text_format(&b, f, n, nc);
    cr_assert_lt(b.len, cap);
    if (b.len)
        memcpy(out, b.data, b.len);
    out[b.len] = '\0';
    app_outbuf_free(&b);
    return rc;
}

Test(metrics_text, formats_families_per_core)
{
    char buf[1024];
    cr_assert_eq(format(buf, sizeof buf, fams, 2, 2), 0);
    cr_assert_str_eq(buf, want);
}

Test(metrics_text, appends_after_what_is_there)
{
    struct app_outbuf b;
    app_outbuf_init(&b);
    cr_assert_eq(app_outbuf_str(&b, "before\n"), 0);
    cr_assert_eq(metrics_text_format(&b, fams, 2, 2), 0);
    cr_assert_eq(b.len, 7 + sizeof(want) - 1);
    cr_assert_arr_eq(b.data, "before\n", 7);
    cr_assert_arr_eq(b.data + 7, want, sizeof(want) - 1);
    app_outbuf_free(&b);
}

Test(metrics_text, fixed_buffers_too_small_are_enospc_and_never_overrun)
{
    size_t need = sizeof(want) - 1;
    for (size_t cap = 0; cap <= need; cap++) {
        char *mem = malloc(cap + 1); /* exact size, plus a guard byte */
        mem[cap] = '#';
        struct app_outbuf b;
        app_outbuf_init_fixed(&b, mem, cap);
        int rc = metrics_text_format(&b, fams, 2, 2);
        cr_assert_eq(rc, cap == need ? 0 : -ENOSPC, "cap %zu", cap);
        cr_assert_eq(mem[cap], '#', "cap %zu: wrote past the end", cap);
        if (rc == 0)
            cr_assert_arr_eq(mem, want, need);
        free(mem);
    }
}

Test(metrics_text, no_help_and_no_cores)
{
    struct metrics_family f = {"up", NULL, METRICS_GAUGE, tasks};
    char buf[128];
    static const char one[] = "# TYPE up gauge\nup{core=\"0\"} 1027\n";
    cr_assert_eq(format(buf, sizeof buf, &f, 1, 1), 0);
    cr_assert_str_eq(buf, one);
    cr_assert_eq(format(buf, sizeof buf, &f, 1, 0), 0);
    cr_assert_str_eq(buf, "# TYPE up gauge\n");
    cr_assert_eq(format(buf, sizeof buf, NULL, 0, 4), 0);
    cr_assert_str_eq(buf, "");
}

Test(metrics_text, invalid_names_are_refused)
{
    static const char *const bad[] = {"", "0abc", "a-b", "a b", "a{b}", "é"};
    char buf[128];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct metrics_family f[] = {{"ok", "h", METRICS_COUNTER, tasks},
                                     {bad[i], "h", METRICS_COUNTER, tasks}};
        cr_assert_eq(format(buf, sizeof buf, f, 2, 1), -EINVAL, "%s", bad[i]);
        cr_assert_str_eq(buf, "", "%s: nothing is appended", bad[i]);
    }
    struct metrics_family f = {NULL, "h", METRICS_COUNTER, tasks};
    cr_assert_eq(format(buf, sizeof buf, &f, 1, 1), -EINVAL);
}
