/*
 * Per-core counters in the Prometheus text exposition format (version 0.0.4):
 *
 *   # HELP sn_tasks_run_total Tasks run by the reactor.
 *   # TYPE sn_tasks_run_total counter
 *   sn_tasks_run_total{core="0"} 1027
 *   sn_tasks_run_total{core="1"} 998
 *
 * Shared by httpd's and kv's /metrics pages (it knows nothing of either); goes into
 * libsnapps.a like every non-main app file. Pure code: any thread, no state.
 */
#ifndef SN_APPS_COMMON_METRICS_TEXT_H
#define SN_APPS_COMMON_METRICS_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "apps/common/outbuf.h"

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
 * Appends n families to out, each with one sample per core labelled core="<index>" (no NUL).
 * -EINVAL, appending nothing, when a name is not a valid metric name; else out->err (outbuf.h:
 * 0, or the first append that did not fit since out was cleared, so the page is incomplete).
 */
int metrics_text_format(struct app_outbuf *out, const struct metrics_family *fams, size_t n,
                        unsigned ncores);

#endif
