/*
 * Per-core counters in the Prometheus text exposition format (version 0.0.4):
 *
 *   # HELP sn_tasks_run_total Tasks run by the reactor.
 *   # TYPE sn_tasks_run_total counter
 *   sn_tasks_run_total{core="0"} 1027
 *   sn_tasks_run_total{core="1"} 998
 *
 * Generic: it knows nothing of httpd, so kv serves the same page with it. Pure code: any
 * thread, no state.
 */
#ifndef SN_APPS_HTTPD_METRICS_TEXT_H
#define SN_APPS_HTTPD_METRICS_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* The Content-Type a scraper expects for this format. */
#define METRICS_TEXT_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

enum metrics_type { METRICS_COUNTER, METRICS_GAUGE };

struct metrics_family {
    const char *name; /* [a-zA-Z_:][a-zA-Z0-9_:]*; counters should end in "_total" */
    const char *help; /* free text; '\' and newlines are escaped. NULL: no HELP line */
    enum metrics_type type;
    const uint64_t *values; /* ncores values, values[core] for core 0 .. ncores-1 */
};

/*
 * Formats n families, each with one sample per core labelled core="<index>". Like snprintf,
 * writes at most cap bytes including a terminating NUL (when cap > 0) and returns the length
 * the whole text needs, so a return >= cap means "grow the buffer and call again". Returns
 * -EINVAL, writing nothing useful, when a name is not a valid metric name.
 */
long metrics_text_format(char *buf, size_t cap, const struct metrics_family *fams, size_t n,
                         unsigned ncores);

#endif
