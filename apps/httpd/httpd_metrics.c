/*
 * sn-httpd /metrics: every core's reactor counters (sn_metrics_core) and httpd's own request
 * and connection counters, one sample per core, in the Prometheus text format. Other
 * cores' values are read as they are (relaxed loads of single-writer counters), so the page
 * is a snapshot that may be a few events behind on those cores.
 */
#include "apps/httpd/httpd.h"
#include "apps/common/metrics_text.h"

#include <errno.h>
#include <stdlib.h>

struct field {
    const char *name;
    const char *help;
    enum metrics_type type;
};

/* The order of struct sn_core_metrics. */
static const struct field reactor_fields[] = {
    {"sn_mesh_msgs_in_total", "Mesh messages handled (requests and replies).", METRICS_COUNTER},
    {"sn_mesh_msgs_out_total", "Mesh messages sent.", METRICS_COUNTER},
    {"sn_tasks_run_total", "Tasks run from the run queue.", METRICS_COUNTER},
    {"sn_uring_cqes_total", "io_uring completions reaped.", METRICS_COUNTER},
    {"sn_sleeps_total", "Times the loop blocked in io_uring.", METRICS_COUNTER},
    {"sn_wakeups_sent_total", "Wake-ups sent to sleeping cores.", METRICS_COUNTER},
    {"sn_mesh_overflow_total", "Messages that went through the mesh overflow FIFO.",
     METRICS_COUNTER},
    {"sn_stalls_total", "Loop phases that ran longer than the stall threshold in CPU time.",
     METRICS_COUNTER},
    {"sn_stall_max_ns", "Most CPU time a stalled loop phase ran, in nanoseconds.", METRICS_GAUGE},
    {"sn_preemptions_total",
     "Loop phases over the stall threshold on the wall clock only (the core was not running).",
     METRICS_COUNTER},
    {"sn_timers_fired_total", "Timers fired.", METRICS_COUNTER},
    {"sn_external_total", "Functions run from the inbox of non-core threads.", METRICS_COUNTER},
    {"sn_loops_total", "Reactor loop turns.", METRICS_COUNTER},
    {"sn_cancelled_total", "Cross-core calls cancelled at shutdown.", METRICS_COUNTER},
    {"sn_pool_in_use", "Pooled objects in use.", METRICS_GAUGE},
    {"sn_pool_capacity", "Pooled objects owned.", METRICS_GAUGE},
    {"sn_fibers", "Fibers alive.", METRICS_GAUGE},
    {"sn_fibers_spawned_total", "Fibers spawned.", METRICS_COUNTER},
    {"sn_fiber_stack_bytes", "Usable stack bytes of the live fibers.", METRICS_GAUGE},
    {"sn_fiber_stack_high_water_bytes", "Most stack bytes a measured fiber used.",
     METRICS_GAUGE},
    {"sn_batched_sleeps_total", "Sleeps that waited for a batch of completions (io_batch_us).",
     METRICS_COUNTER},
    {"sn_batch_timeouts_total", "Batched sleeps whose time ran out before the batch was complete.",
     METRICS_COUNTER},
};
#define NREACTOR (sizeof reactor_fields / sizeof reactor_fields[0])
_Static_assert(NREACTOR * sizeof(uint64_t) == sizeof(struct sn_core_metrics),
               "one family per field of struct sn_core_metrics");

/* The order of enum httpd_counter. */
static const struct field httpd_fields[HC_NCOUNTERS] = {
    {"httpd_requests_total", "HTTP requests parsed.", METRICS_COUNTER},
    {"httpd_responses_2xx_total", "Responses with a 2xx status.", METRICS_COUNTER},
    {"httpd_responses_4xx_total", "Responses with a 4xx status.", METRICS_COUNTER},
    {"httpd_responses_5xx_total", "Responses with a 5xx status.", METRICS_COUNTER},
    {"httpd_bad_requests_total", "Requests rejected by the parser (connection closed).",
     METRICS_COUNTER},
    {"httpd_static_cache_hits_total", "Static files served from the core's cache.",
     METRICS_COUNTER},
    {"httpd_static_cache_misses_total", "Static files read from disk.", METRICS_COUNTER},
    {"httpd_connections_opened_total", "Connections accepted.", METRICS_COUNTER},
    {"httpd_connections_closed_total", "Connections closed.", METRICS_COUNTER},
};

#define NLISTENER 1
#define NFAM      (NREACTOR + HC_NCOUNTERS + NLISTENER)

/* Fills vals[family * ncores + core] and fams[]. */
static void collect(const struct httpd_server *srv, struct metrics_family *fams, uint64_t *vals)
{
    unsigned nc = srv->ncores;
    for (unsigned c = 0; c < nc; c++) {
        struct sn_core_metrics m = {0};
        sn_metrics_core(c, &m);
        const uint64_t *mv = (const uint64_t *)&m;
        for (size_t i = 0; i < NREACTOR; i++)
            vals[i * nc + c] = mv[i];
        const struct httpd_core *hc = srv->cores[c];
        for (size_t i = 0; i < HC_NCOUNTERS; i++)
            vals[(NREACTOR + i) * nc + c] =
                hc ? __atomic_load_n(&hc->ctr[i], __ATOMIC_RELAXED) : 0;
        /* Opened minus closed: two loads that may straddle an event, so clamp at 0. */
        uint64_t o = vals[(NREACTOR + HC_CONNS_OPENED) * nc + c];
        uint64_t d = vals[(NREACTOR + HC_CONNS_CLOSED) * nc + c];
        vals[(NREACTOR + HC_NCOUNTERS) * nc + c] = o > d ? o - d : 0;
    }
    for (size_t i = 0; i < NFAM; i++) {
        const struct field *f = i < NREACTOR                  ? &reactor_fields[i]
                                : i < NREACTOR + HC_NCOUNTERS ? &httpd_fields[i - NREACTOR]
                                                              : NULL;
        fams[i] = f ? (struct metrics_family){f->name, f->help, f->type, vals + i * nc}
                    : (struct metrics_family){"httpd_connections_active",
                                              "Connections open now.", METRICS_GAUGE,
                                              vals + i * nc};
    }
}

void httpd_metrics_serve(struct httpd_conn *h, const struct http_request *req)
{
    const struct httpd_server *srv = h->hc->srv;
    bool head = req->method == HTTP_HEAD;
    httpd_count(h->hc->ctr, HC_RESP_2XX); /* counted before the snapshot, so it shows */
    struct metrics_family fams[NFAM];
    uint64_t *vals = malloc(NFAM * srv->ncores * sizeof *vals);
    struct app_outbuf text;
    app_outbuf_init(&text);
    int rc = -ENOMEM;
    if (vals) {
        collect(srv, fams, vals);
        rc = metrics_text_format(&text, fams, NFAM, srv->ncores);
    }
    free(vals);
    if (rc < 0) {
        app_outbuf_free(&text);
        httpd_send_error(h, 500, req->keep_alive, req->minor, head, false);
        return;
    }
    char buf[512];
    struct http_response r = {
        .status = 200,
        .content_type = METRICS_TEXT_CONTENT_TYPE,
        .content_length = text.len,
        .keep_alive = req->keep_alive,
        .req_minor = req->minor,
    };
    int n = http_response_head(buf, sizeof buf, &r, h->hc->date.str);
    if (n > 0 && httpd_write(h, buf, (size_t)n) && !head)
        httpd_write(h, text.data, text.len);
    app_outbuf_free(&text);
}
