/*
 * sn-httpd: the server's shared state. One `struct httpd_server` per process (made in main,
 * read-only once the reactor runs, except `cores[]` which each core fills for itself at
 * start-up), one `struct httpd_core` per reactor core (touched only by its core, except the
 * counters, which other cores read for /metrics), one `struct httpd_conn` per connection
 * (its core only).
 *
 * Files: server.c (start-up, per-core state, Date timer), conn.c (connection callbacks,
 * request framing, routing), static_files.c (/static with a per-core cache, answered in reply
 * slots), httpd_metrics.c (/metrics), healthz.c (/healthz), main.c (options, sn_app_run).
 */
#ifndef SN_APPS_HTTPD_HTTPD_H
#define SN_APPS_HTTPD_HTTPD_H

#include <sn.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "apps/httpd/http_parser.h"
#include "apps/httpd/http_response.h"

struct httpd_static_cache;

struct httpd_options {
    unsigned port;      /* 0: any (printed at start-up) */
    const char *host;   /* numeric listen address */
    const char *root;   /* /static directory, or NULL: /static answers 404 */
    unsigned idle_ms;   /* close idle connections; 0: never */
    unsigned max_conns; /* per core; 0: no limit */
    /* A request head not complete this long after its first byte: 408 and close; 0: never. */
    unsigned header_timeout_ms;
};

/*
 * Flow control is libsn's (include/sn/reply.h, "Backpressure"): on_data takes requests while
 * sn_conn_may_read says so, that is while the output and the reply slots are under
 * limits.output_high (default 1 MiB) and HTTPD_MAX_OPEN_REPLIES, and libsn resumes reading at
 * half. Each /static response holds a slot until its file is read and queued, so the slot
 * limit also bounds the file reads a pipelining client starts (each holds up to 1 MiB).
 * HTTPD_INPUT_MAX is the unconsumed input a connection may hold (a head is at most 8 KiB:
 * 431; the rest is what a client pipelined ahead).
 */
#define HTTPD_MAX_OPEN_REPLIES 8u
#define HTTPD_INPUT_MAX        ((size_t)4 << 20)
/* After a response that ends the connection, how long a client that goes on sending (and
 * never closes) is read and discarded before the connection is closed. */
#define HTTPD_LINGER_MS 5000u
/* --header-timeout-ms default (nginx's client_header_timeout is 60 s; a head is a few hundred
 * bytes, which any real client sends in well under a second). */
#define HTTPD_HEADER_TIMEOUT_MS 10000u

/*
 * Per-core counters, written only by their core and read by any core for /metrics. Updates are
 * relaxed atomic load + store (never a locked read-modify-write: there is one writer), so a
 * reader sees each value whole, maybe a few events behind.
 */
enum httpd_counter {
    HC_REQUESTS,      /* requests parsed (including 501s) */
    HC_RESP_2XX,
    HC_RESP_4XX,
    HC_RESP_5XX,
    HC_BAD_REQUESTS,  /* requests rejected by the parser (the connection closes) */
    HC_STATIC_HITS,   /* /static served from the core's cache */
    HC_STATIC_MISSES, /* /static read from the file */
    HC_CONNS_OPENED,
    HC_CONNS_CLOSED,
    HC_NCOUNTERS
};

static inline void httpd_count(uint64_t *ctr, enum httpd_counter which)
{
    uint64_t v = __atomic_load_n(&ctr[which], __ATOMIC_RELAXED);
    __atomic_store_n(&ctr[which], v + 1, __ATOMIC_RELAXED);
}

/* Hello responses prebuilt with the current Date, so the common case is one copy. */
enum { HELLO_GET_KEEP, HELLO_HEAD_KEEP, HELLO_NVARIANTS };

struct httpd_core {
    unsigned core;
    struct httpd_server *srv;
    struct http_date date;
    struct sn_timer date_timer;
    uint64_t ctr[HC_NCOUNTERS];
    struct httpd_static_cache *cache; /* NULL without --root */
    char hello[HELLO_NVARIANTS][256];
    unsigned hello_len[HELLO_NVARIANTS];
};

struct httpd_server {
    struct httpd_options opt;
    int root_fd; /* O_PATH directory fd of opt.root, or -1 */
    unsigned ncores;
    struct httpd_core **cores; /* [ncores]; cores[i] is set by core i at start-up */
};

/* The body of "/". */
#define HTTPD_HELLO "Hello, world!\n"

/* ---- server.c ---------------------------------------------------------------------------- */

/*
 * The app's start hook (sn_app.start, arg: the server): makes every core's state, then listens
 * and prints "sn-httpd: listening on HOST:PORT, N cores" on stdout. Core 0.
 */
struct sn_future *httpd_start(void *arg);

/* Frees what httpd_start made, after sn_app_run returned. Not a core. */
void httpd_server_free(struct httpd_server *srv);

/* ---- conn.c ------------------------------------------------------------------------------ */

/* The connection callbacks and the accept hook (arg: the server). */
extern const struct sn_conn_ops httpd_conn_ops;
void *httpd_on_accept(struct sn_conn *conn, void *arg);

/* Per-connection state, freed by on_close: what answers later (a /static file read) holds
 * its reply slot and its core, never this. */
struct httpd_conn {
    struct httpd_core *hc;
    struct sn_conn *conn;
    struct http_reader rd;
    /* Armed while a request head is incomplete (the header timeout), then after a response
     * that ends the connection (the linger time); cancelled by on_close. */
    struct sn_timer timer;
    bool closing;             /* no more requests: the output drains, then it closes */
    bool peer_eof;
    bool head_wait;           /* the timer is the header timeout of a head arriving */
};

/* Queues a copy of data; on failure aborts the connection. False when nothing was queued. */
bool httpd_write(struct httpd_conn *h, const void *data, size_t len);

/* Counts a response status. */
void httpd_count_status(struct httpd_core *hc, int status);

/*
 * Queues an error response; when `close` the connection half-closes after it and takes no
 * more requests. Owner core.
 */
void httpd_send_error(struct httpd_conn *h, int status, bool keep_alive, int minor,
                      bool head_only, bool close);

/* ---- static_files.c ---------------------------------------------------------------------- */

/* Per-core cache of small files; NULL on -ENOMEM. Owner core. */
struct httpd_static_cache *httpd_static_cache_new(void);
/* Frees the cache (entries still referenced by queued output are freed by their release). */
void httpd_static_cache_free(struct httpd_static_cache *c);

/*
 * Answers GET/HEAD of /static/<rest> (rest: the path after "/static/") in `slot`, which it
 * ends: at once (cache hits, errors) or from the continuations of the file's open and reads,
 * while later requests are answered behind it. A response that cannot be completed once begun
 * (a read error, out of memory) resets the connection: answers to later requests may be
 * queued behind it already, so it cannot end with a clean close. Owner core.
 */
void httpd_static_serve(struct httpd_core *hc, struct sn_reply *slot,
                        const struct http_request *req, const char *rest, size_t rest_len);

/* ---- httpd_metrics.c --------------------------------------------------------------------- */

/* Queues the /metrics response (or its head for HEAD). Owner core. */
void httpd_metrics_serve(struct httpd_conn *h, const struct http_request *req);

/* GET /healthz (apps/httpd/healthz.c): 200 "ok", or 503 "stopping" once the reactor stops. */
void httpd_health_serve(struct httpd_conn *h, const struct http_request *req, bool head);
/* The health check's status (200 or 503) and body, as /healthz answers now. Any core. */
int httpd_health(const char **body);

#endif
