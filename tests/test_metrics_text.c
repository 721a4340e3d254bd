/* Tests of the Prometheus text formatter (apps/httpd/metrics_text.c). */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "apps/httpd/metrics_text.h"

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

Test(metrics_text, formats_families_per_core)
{
    char buf[1024];
    long n = metrics_text_format(buf, sizeof(buf), fams, 2, 2);
    cr_assert_eq(n, (long)sizeof(want) - 1);
    cr_assert_str_eq(buf, want);
}

Test(metrics_text, small_buffers_report_the_needed_size)
{
    long need = (long)sizeof(want) - 1;
    for (long cap = 0; cap <= need + 1; cap++) {
        char *b = malloc((size_t)cap + 1);
        b[cap] = '#';
        cr_assert_eq(metrics_text_format(b, (size_t)cap, fams, 2, 2), need, "cap %ld", cap);
        cr_assert_eq(b[cap], '#', "cap %ld: wrote past the end", cap);
        if (cap > 0) {
            size_t got = strlen(b);
            cr_assert_eq(got, (size_t)(cap - 1 < need ? cap - 1 : need));
            cr_assert_arr_eq(b, want, got);
        }
        free(b);
    }
}

Test(metrics_text, no_help_and_no_cores)
{
    struct metrics_family f = {"up", NULL, METRICS_GAUGE, tasks};
    char buf[128];
    static const char one[] = "# TYPE up gauge\nup{core=\"0\"} 1027\n";
    cr_assert_eq(metrics_text_format(buf, sizeof(buf), &f, 1, 1), (long)sizeof(one) - 1);
    cr_assert_str_eq(buf, one);
    cr_assert_eq(metrics_text_format(buf, sizeof(buf), &f, 1, 0), 16);
    cr_assert_eq(metrics_text_format(buf, sizeof(buf), NULL, 0, 4), 0);
    cr_assert_str_eq(buf, "");
}

Test(metrics_text, invalid_names_are_refused)
{
    static const char *const bad[] = {"", "0abc", "a-b", "a b", "a{b}", "é"};
    char buf[128];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct metrics_family f = {bad[i], "h", METRICS_COUNTER, tasks};
        cr_assert_eq(metrics_text_format(buf, sizeof(buf), &f, 1, 1), -EINVAL, "%s", bad[i]);
    }
    struct metrics_family f = {NULL, "h", METRICS_COUNTER, tasks};
    cr_assert_eq(metrics_text_format(buf, sizeof(buf), &f, 1, 1), -EINVAL);
}
