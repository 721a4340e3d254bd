/*
 * sn-httpd start-up: every core makes its own state (Date cache, prebuilt hello responses,
 * static file cache) and a timer that refreshes the Date at each second boundary; then core 0
 * listens on every core. Shutdown needs nothing here: the reactor disarms the timers and
 * closes listeners and connections, and main frees the per-core state once sn_app_run
 * returns.
 */
#include "apps/httpd/httpd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_SEC 1000000000ull

/* Rebuilds the prebuilt hello responses for the current Date. */
static void build_hello(struct httpd_core *hc)
{
    struct http_response r = {
        .status = 200,
        .content_type = "text/plain; charset=utf-8",
        .content_length = sizeof(HTTPD_HELLO) - 1,
        .keep_alive = true,
        .req_minor = 1,
    };
    for (int v = 0; v < HELLO_NVARIANTS; v++) {
        int n = http_response_full(hc->hello[v], sizeof hc->hello[v], &r, hc->date.str, HTTPD_HELLO,
                                   v == HELLO_HEAD_KEEP);
        hc->hello_len[v] = n > 0 ? (unsigned)n : 0;
    }
}

/*
 * Refreshes the Date (and the hello responses) and re-arms for just after the next
 * wall-clock second. The precise clock, not time(): glibc's time() reads the coarse clock,
 * which can still show the old second a millisecond after the boundary.
 */
static int date_refresh(struct httpd_core *hc)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (http_date_update(&hc->date, ts.tv_sec))
        build_hello(hc);
    /* One-shot, re-aimed at each boundary (a late or early firing corrects itself).
     * -ECANCELED while the reactor stops is the end of it. */
    return sn_timer_arm(&hc->date_timer, NS_PER_SEC - (uint64_t)ts.tv_nsec + 1000000u);
}

static void date_tick(void *arg)
{
    (void)date_refresh(arg);
}

static struct sn_future *core_init(void *arg)
{
    struct httpd_server *srv = arg;
    struct httpd_core *hc = calloc(1, sizeof *hc);
    if (!hc)
        return sn_failed(-ENOMEM);
    hc->core = sn_core_id();
    hc->srv = srv;
    if (srv->root_fd >= 0 && !(hc->cache = httpd_static_cache_new())) {
        free(hc);
        return sn_failed(-ENOMEM);
    }
    srv->cores[hc->core] = hc;
    sn_timer_init(&hc->date_timer, date_tick, hc);
    int rc = date_refresh(hc);
    return rc < 0 ? sn_failed(rc) : SN_SUCCESS;
}

static struct sn_future *start_listening(void *arg, uint64_t value)
{
    (void)value;
    struct httpd_server *srv = arg;
    struct sn_listen_config cfg = {
        .host = srv->opt.host,
        .port = (uint16_t)srv->opt.port,
        .max_conns_per_core = srv->opt.max_conns,
        .limits = {.idle_ms = srv->opt.idle_ms,
                   .input_max = HTTPD_INPUT_MAX,
                   .max_open_replies = HTTPD_MAX_OPEN_REPLIES}, /* httpd.h, "Flow control" */
        .ops = &httpd_conn_ops,
        .on_accept = httpd_on_accept,
        .arg = srv,
    };
    return sn_listen(&cfg);
}

static struct sn_future *started(void *arg, int err, uint64_t value)
{
    struct httpd_server *srv = arg;
    if (err) { /* a core's state (-ENOMEM) or the listen (-EADDRINUSE, ...) */
        fprintf(stderr, "sn-httpd: cannot start on %s:%u: %s\n", srv->opt.host, srv->opt.port,
                sn_strerror(err));
        return sn_failed(err);
    }
    /* The listener lives until the reactor stops, which closes it. */
    struct sn_listener *l = (struct sn_listener *)(uintptr_t)value;
    printf("sn-httpd: listening on %s:%u, %u cores, root %s\n", srv->opt.host, sn_listener_port(l),
           srv->ncores, srv->opt.root ? srv->opt.root : "(none)");
    fflush(stdout);
    return SN_SUCCESS;
}

struct sn_future *httpd_start(void *arg)
{
    struct httpd_server *srv = arg;
    srv->ncores = sn_core_count();
    srv->cores = calloc(srv->ncores, sizeof *srv->cores);
    if (!srv->cores)
        return sn_failed(-ENOMEM);
    struct sn_future *f = sn_invoke_on_all(core_init, srv);
    return sn_then_wrapped(sn_then(f, start_listening, srv), started, srv);
}

void httpd_server_free(struct httpd_server *srv)
{
    if (srv->cores) {
        for (unsigned i = 0; i < srv->ncores; i++) {
            if (!srv->cores[i])
                continue;
            httpd_static_cache_free(srv->cores[i]->cache);
            free(srv->cores[i]);
        }
        free(srv->cores);
        srv->cores = NULL;
    }
    if (srv->root_fd >= 0)
        close(srv->root_fd);
    srv->root_fd = -1;
}
