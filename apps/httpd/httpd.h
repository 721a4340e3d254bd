/*
 * sn-httpd: the server's shared state. One `struct httpd_server` per process (made in main,
 * read-only once the reactor runs, except `cores[]` which each core fills for itself at
 * start-up), one `struct httpd_core` per reactor core (touched only by its core, except the
 * counters, which other cores read for /metrics), one `struct httpd_conn` per connection
 * (its core only).
 *
 * Files: server.c (start-up, per-core state, Date timer), conn.c (connection callbacks,
 * pipelining, routing), static_files.c (/static with a per-core cache), httpd_metrics.c
 * (/metrics), main.c (options).
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
 * Flow control. A connection stops taking requests while its output backlog is over
 * HTTPD_OUTPUT_HIGH and leaves the rest of its input to libsn, which holds it. The listener
 * sets limits.output_high to the same value, so whenever httpd stops, libsn has paused reading
 * too (it pauses as soon as a write takes the backlog over output_high), and when the backlog
 * has fallen to half, libsn presents the held input to on_data again: that resume is httpd's
 * "output drained" signal (libsn has no drain callback). Keep the two equal.
 *
 * HTTPD_INPUT_MAX is the unconsumed input a connection may hold. While reading is paused,
 * libsn still holds what was already in flight (up to its 128 x 16 KiB receive ring per core)
 * and then applies input_max to what on_data leaves: a client that pipelined far ahead, and
 * whose answers are big, leaves a lot each time; 4 MiB keeps such a client from being cut with
 * -EMSGSIZE, while a request head alone is never over 8 KiB (431).
 */
#define HTTPD_OUTPUT_HIGH ((size_t)1 << 20)
#define HTTPD_INPUT_MAX   ((size_t)4 << 20)
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

/*
 * Per-connection state. `refs` counts the owners: the connection itself (until on_close) and
 * each asynchronous operation (a file read) still to finish for it. Input that is not taken
 * yet (requests behind a busy one or behind a full output, a head still arriving) is left
 * unconsumed: libsn holds it and presents it again (include/sn/net.h, on_data).
 */
struct httpd_conn {
    struct httpd_core *hc;
    struct sn_conn *conn;     /* NULL once on_close ran */
    struct http_reader rd;
    /* Armed while a request head is incomplete (the header timeout), then after a response
     * that ends the connection (the linger time); cancelled by on_close. */
    struct sn_timer timer;
    unsigned refs;
    bool busy;                /* an asynchronous response is in progress: later requests wait */
    bool keep;                /* the request being answered keeps the connection open */
    bool in_process;          /* the request loop runs (an inline resume must not re-enter) */
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

/* An asynchronous response is complete (its bytes are queued): take the next requests. */
void httpd_conn_resume(struct httpd_conn *h);

/* Drops one reference; frees the state with the last one. */
void httpd_conn_unref(struct httpd_conn *h);

/* Ends the connection now with a reset (a response that cannot be completed). */
void httpd_conn_abort(struct httpd_conn *h);

/* ---- static_files.c ---------------------------------------------------------------------- */

/* Per-core cache of small files; NULL on -ENOMEM. Owner core. */
struct httpd_static_cache *httpd_static_cache_new(void);
/* Frees the cache (entries still referenced by queued output are freed by their release). */
void httpd_static_cache_free(struct httpd_static_cache *c);

/*
 * Answers GET/HEAD of /static/<rest> (rest: the path after "/static/"). Returns true when the
 * response is complete (queued), false when it went asynchronous: h->busy is then set and
 * httpd_conn_resume follows once it is queued. Owner core.
 */
bool httpd_static_serve(struct httpd_conn *h, const struct http_request *req, const char *rest,
                        size_t rest_len);

/* ---- httpd_metrics.c --------------------------------------------------------------------- */

/* Queues the /metrics response (or its head for HEAD). Owner core. */
void httpd_metrics_serve(struct httpd_conn *h, const struct http_request *req);

/* GET /healthz (apps/httpd/healthz.c): 200 "ok", or 503 "stopping" once the reactor stops. */
void httpd_health_serve(struct httpd_conn *h, const struct http_request *req, bool head);
/* The health check's status (200 or 503) and body, as /healthz answers now. Any core. */
int httpd_health(const char **body);

#endif
