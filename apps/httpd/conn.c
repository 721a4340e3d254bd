/*
 * sn-httpd connections: request framing, pipelining and routing, in callback form.
 *
 * on_data parses every whole request head libsn presents (http_reader: a head may arrive in
 * any number of pieces) and answers it at once: /, /metrics, /healthz and errors are plain
 * writes, so all the answers to one read leave together in one send (libsn corks a
 * connection's writes per turn). /static begins a reply slot (include/sn/reply.h), which the
 * file's open and reads fill later; the requests behind it are answered at once all the same
 * and libsn sends their bytes after the slot's, so the order holds without waiting here.
 * Flow control is libsn's: on_data stops taking requests when sn_conn_may_read says the
 * output or the open slots are over their limits (httpd.h) and is called again with the rest
 * once they are back at half.
 *
 * Slow clients: a request head must be complete within header_timeout_ms of its first byte
 * (the idle timeout alone restarts with every byte, so one byte a second would hold a
 * connection for hours); else 408 and close.
 *
 * Closing: after a response that ends the connection (Connection: close, HTTP/1.0 without
 * keep-alive, a request the parser rejects, a header timeout), the server half-closes and
 * discards whatever the client still sends until it closes its side, for at most
 * HTTPD_LINGER_MS. Closing at once with unread input would make the kernel send a reset, which
 * can destroy the response before the client has read it.
 */
#include "apps/httpd/httpd.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NS_PER_MS 1000000ull

void httpd_count_status(struct httpd_core *hc, int status)
{
    if (status >= 500)
        httpd_count(hc->ctr, HC_RESP_5XX);
    else if (status >= 400)
        httpd_count(hc->ctr, HC_RESP_4XX);
    else
        httpd_count(hc->ctr, HC_RESP_2XX);
}

/* The head timer: a head is late (408, then linger), or the linger time is over (close). */
static void conn_timer_fired(void *arg)
{
    struct httpd_conn *h = arg;
    if (h->closing) {
        sn_ignore(sn_conn_close(h->conn));
        return;
    }
    h->head_wait = false;
    httpd_send_error(h, 408, false, 1, false, true); /* closes: finish_close arms the linger */
}

/*
 * After a pass over the input: starts the header timeout when a head has begun to arrive
 * (its deadline counts from that first byte, not from the latest one), stops it otherwise.
 */
static void head_timer_update(struct httpd_conn *h, bool head_started)
{
    unsigned ms = h->hc->srv->opt.header_timeout_ms;
    if (h->closing || !ms)
        return;
    if (!head_started) {
        if (h->head_wait)
            sn_timer_cancel(&h->timer);
        h->head_wait = false;
    } else if (!h->head_wait) {
        h->head_wait = sn_timer_arm(&h->timer, (uint64_t)ms * NS_PER_MS) == 0;
    }
}

void *httpd_on_accept(struct sn_conn *conn, void *arg)
{
    struct httpd_server *srv = arg;
    struct httpd_core *hc = srv->cores[sn_core_id()];
    struct httpd_conn *h = calloc(1, sizeof *h);
    if (!h) {
        sn_ignore(sn_conn_abort(conn));
        return NULL;
    }
    h->hc = hc;
    h->conn = conn;
    sn_timer_init(&h->timer, conn_timer_fired, h);
    httpd_count(hc->ctr, HC_CONNS_OPENED);
    return h;
}

/* Ends the connection now with a reset (a write that failed: the response cannot be whole). */
static void conn_abort(struct httpd_conn *h)
{
    h->closing = true;
    sn_ignore(sn_conn_abort(h->conn));
}

/*
 * No more requests: half-close once the output has left, then wait for the client's EOF, for
 * at most HTTPD_LINGER_MS (a client that never closes must not keep the connection).
 */
static void finish_close(struct httpd_conn *h)
{
    if (h->closing)
        return;
    h->closing = true;
    if (h->peer_eof) {
        sn_ignore(sn_conn_close(h->conn));
        return;
    }
    sn_conn_shutdown(h->conn);
    h->head_wait = false;
    (void)sn_timer_arm(&h->timer, HTTPD_LINGER_MS * NS_PER_MS); /* -ECANCELED: stopping */
}

bool httpd_write(struct httpd_conn *h, const void *data, size_t len)
{
    if (h->closing)
        return false;
    if (sn_conn_write(h->conn, data, len) < 0) {
        conn_abort(h);
        return false;
    }
    return true;
}

void httpd_send_error(struct httpd_conn *h, int status, bool keep_alive, int minor,
                      bool head_only, bool close)
{
    char buf[256];
    int n = http_response_error(buf, sizeof buf, status, h->hc->date.str, keep_alive && !close,
                                minor, head_only);
    httpd_count_status(h->hc, status);
    if (n > 0)
        httpd_write(h, buf, (size_t)n);
    if (close)
        finish_close(h);
}

static void serve_hello(struct httpd_conn *h, const struct http_request *req, bool head)
{
    struct httpd_core *hc = h->hc;
    httpd_count(hc->ctr, HC_RESP_2XX);
    if (req->minor == 1 && req->keep_alive) {
        int v = head ? HELLO_HEAD_KEEP : HELLO_GET_KEEP;
        httpd_write(h, hc->hello[v], hc->hello_len[v]);
        return;
    }
    char buf[256];
    struct http_response r = {
        .status = 200,
        .content_type = "text/plain; charset=utf-8",
        .content_length = sizeof(HTTPD_HELLO) - 1,
        .keep_alive = req->keep_alive,
        .req_minor = req->minor,
    };
    int n = http_response_full(buf, sizeof buf, &r, hc->date.str, HTTPD_HELLO, head);
    if (n > 0)
        httpd_write(h, buf, (size_t)n);
}

static bool path_is(const struct http_str *p, const char *lit, size_t n)
{
    return p->len == n && memcmp(p->p, lit, n) == 0;
}

/* Answers one parsed request: at once, or (/static) in a reply slot filled later. */
static void dispatch(struct httpd_conn *h, const struct http_request *req)
{
    struct httpd_core *hc = h->hc;
    bool head = req->method == HTTP_HEAD;
    httpd_count(hc->ctr, HC_REQUESTS);
    if (req->status) { /* 501: well framed, so the connection may go on */
        httpd_send_error(h, req->status, req->keep_alive, req->minor, head, !req->keep_alive);
        return;
    }
    const struct http_str *p = &req->path;
    if (path_is(p, "/", 1)) {
        serve_hello(h, req, head);
    } else if (p->len >= 8 && memcmp(p->p, "/static/", 8) == 0) {
        struct sn_reply *slot;
        if (sn_reply_begin(h->conn, &slot) == 0) /* else the connection is closing */
            httpd_static_serve(hc, slot, req, p->p + 8, p->len - 8);
    } else if (path_is(p, "/metrics", 8)) {
        httpd_metrics_serve(h, req);
    } else if (path_is(p, "/healthz", 8)) {
        httpd_health_serve(h, req, head);
    } else {
        httpd_send_error(h, 404, req->keep_alive, req->minor, head, false);
    }
    if (!req->keep_alive)
        finish_close(h);
}

/*
 * Answers the requests in buf[0, len) until the connection ends, libsn says to stop (limits)
 * or the input runs out. Returns the bytes consumed; the rest stays with libsn.
 */
static size_t process(struct httpd_conn *h, const char *buf, size_t len)
{
    size_t off = 0;
    bool head_started = false;
    while (!h->closing && sn_conn_may_read(h->conn) == 1) {
        struct http_request req;
        size_t used = 0;
        int rc = http_reader_next(&h->rd, buf + off, len - off, &http_default_limits, &req, &used);
        if (rc == -EAGAIN) {
            off += used;
            /* Bytes of a head are here (not body bytes still to discard): it has started. */
            head_started = off < len && h->rd.skip == 0;
            break;
        }
        if (rc < 0) { /* -EBADMSG: the byte stream cannot be trusted any further */
            httpd_count(h->hc->ctr, HC_BAD_REQUESTS);
            httpd_send_error(h, req.status, false, 1, false, true);
            off = len;
            break;
        }
        off += used;
        head_timer_update(h, false); /* this head is complete; the next one starts afresh */
        dispatch(h, &req);
        if (h->closing)
            off = len;
    }
    head_timer_update(h, head_started);
    return off;
}

static size_t on_data(struct sn_conn *conn, void *arg, const char *data, size_t len)
{
    (void)conn;
    struct httpd_conn *h = arg;
    if (!h || h->closing)
        return len; /* draining before the close */
    size_t used = process(h, data, len);
    return h->closing ? len : used;
}

static void on_eof(struct sn_conn *conn, void *arg)
{
    struct httpd_conn *h = arg;
    if (h)
        h->peer_eof = true;
    sn_ignore(sn_conn_close(conn)); /* graceful: open reply slots still leave */
}

static void on_close(struct sn_conn *conn, void *arg, int err)
{
    (void)conn;
    (void)err;
    struct httpd_conn *h = arg;
    if (!h)
        return;
    httpd_count(h->hc->ctr, HC_CONNS_CLOSED);
    sn_timer_cancel(&h->timer);
    free(h);
}

const struct sn_conn_ops httpd_conn_ops = {
    .on_data = on_data,
    .on_eof = on_eof,
    .on_close = on_close,
};
