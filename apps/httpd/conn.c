/*
 * sn-httpd connections: parsing, pipelining and routing.
 *
 * Every request that can be answered at once (/, /metrics, errors, cached static files) is
 * answered inside on_data, so all the responses to one read are queued in the same loop turn
 * and leave together in one send (libsn corks a connection's writes per turn). A request whose
 * answer needs a file read makes the connection "busy": the requests behind it wait, in
 * order, in the connection's own buffer (reading pauses meanwhile), and are taken up again by
 * httpd_conn_resume once that response is queued.
 *
 * Closing: after a response that ends the connection (Connection: close, HTTP/1.0 without
 * keep-alive, a request the parser rejects), the server half-closes and discards whatever
 * the client still sends until it closes its side (or the idle timeout ends it). Closing
 * at once with unread input would make the kernel send a reset, which can destroy the
 * response before the client has read it.
 */
#include "apps/httpd/httpd.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Input held per connection while a response is prepared; more aborts the connection. */
#define PEND_MAX (1u << 20)

void httpd_count_status(struct httpd_core *hc, int status)
{
    if (status >= 500)
        httpd_count(hc->ctr, HC_RESP_5XX);
    else if (status >= 400)
        httpd_count(hc->ctr, HC_RESP_4XX);
    else
        httpd_count(hc->ctr, HC_RESP_2XX);
}

void *httpd_on_accept(void *arg, struct sn_conn *conn)
{
    struct httpd_server *srv = arg;
    struct httpd_core *hc = srv->cores[sn_core_id()];
    struct httpd_conn *h = calloc(1, sizeof *h);
    if (!h) {
        sn_conn_abort(conn);
        return NULL;
    }
    h->hc = hc;
    h->conn = conn;
    h->refs = 1; /* the connection's own, dropped by on_close */
    h->keep = true;
    httpd_count(hc->ctr, HC_CONNS_OPENED);
    return h;
}

void httpd_conn_unref(struct httpd_conn *h)
{
    if (--h->refs)
        return;
    free(h->pend);
    free(h);
}

void httpd_conn_abort(struct httpd_conn *h)
{
    h->closing = true;
    h->plen = 0;
    if (h->conn)
        sn_conn_abort(h->conn);
}

/* No more requests: half-close once the output has left, then wait for the client's EOF. */
static void finish_close(struct httpd_conn *h)
{
    if (h->closing)
        return;
    h->closing = true;
    h->plen = 0;
    if (!h->conn)
        return;
    if (h->peer_eof)
        sn_conn_close(h->conn);
    else
        sn_conn_shutdown(h->conn);
}

bool httpd_write(struct httpd_conn *h, const void *data, size_t len)
{
    if (!h->conn || h->closing)
        return false;
    if (sn_conn_write(h->conn, data, len) < 0) {
        httpd_conn_abort(h);
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

/* Answers one parsed request (synchronously, or starting an asynchronous response). */
static void dispatch(struct httpd_conn *h, const struct http_request *req)
{
    struct httpd_core *hc = h->hc;
    bool head = req->method == HTTP_HEAD;
    httpd_count(hc->ctr, HC_REQUESTS);
    h->keep = req->keep_alive;
    if (req->status) { /* 501: well framed, so the connection may go on */
        httpd_send_error(h, req->status, req->keep_alive, req->minor, head, !req->keep_alive);
        return;
    }
    const struct http_str *p = &req->path;
    if (path_is(p, "/", 1)) {
        serve_hello(h, req, head);
    } else if (p->len >= 8 && memcmp(p->p, "/static/", 8) == 0) {
        if (!httpd_static_serve(h, req, p->p + 8, p->len - 8)) {
            /* Asynchronous: httpd_conn_resume finishes (unless it already did, inline). */
            if (h->busy && h->conn)
                sn_conn_set_reading(h->conn, false);
            return;
        }
    } else if (path_is(p, "/metrics", 8)) {
        httpd_metrics_serve(h, req);
    } else {
        httpd_send_error(h, 404, req->keep_alive, req->minor, head, false);
    }
    if (!req->keep_alive)
        finish_close(h);
}

/* Answers the requests in buf[0, len) until one goes asynchronous, the connection ends or the
 * input runs out. Returns the bytes consumed. */
static size_t process(struct httpd_conn *h, const char *buf, size_t len)
{
    size_t off = 0;
    h->in_process = true;
    while (!h->busy && !h->closing && h->conn) {
        struct http_request req;
        size_t used = 0;
        int rc = http_reader_next(&h->rd, buf + off, len - off, &http_default_limits, &req,
                                  &used);
        if (rc == -EAGAIN) {
            off += used;
            break;
        }
        if (rc < 0) { /* -EBADMSG: the byte stream cannot be trusted any further */
            httpd_count(h->hc->ctr, HC_BAD_REQUESTS);
            httpd_send_error(h, req.status, false, 1, false, true);
            off = len;
            break;
        }
        off += used;
        dispatch(h, &req);
        if (h->closing)
            off = len;
    }
    h->in_process = false;
    return off;
}

static bool pend_append(struct httpd_conn *h, const char *data, size_t len)
{
    size_t need = h->plen + len;
    if (need > PEND_MAX)
        return false;
    if (need > h->pcap) {
        size_t cap = h->pcap ? h->pcap : 4096;
        while (cap < need)
            cap *= 2;
        char *p = realloc(h->pend, cap);
        if (!p)
            return false;
        h->pend = p;
        h->pcap = cap;
    }
    memcpy(h->pend + h->plen, data, len);
    h->plen += len;
    return true;
}

static void run_pending(struct httpd_conn *h)
{
    size_t used = process(h, h->pend, h->plen);
    if (h->closing) {
        h->plen = 0;
        return;
    }
    h->plen -= used;
    memmove(h->pend, h->pend + used, h->plen);
}

void httpd_conn_resume(struct httpd_conn *h)
{
    h->busy = false;
    if (!h->conn || h->closing)
        return;
    if (!h->keep) {
        finish_close(h);
        return;
    }
    if (h->in_process)
        return; /* settled inline: the loop that started it goes on */
    sn_conn_set_reading(h->conn, true);
    if (h->plen)
        run_pending(h);
    if (!h->busy && !h->closing && h->peer_eof)
        sn_conn_close(h->conn);
}

static size_t on_data(struct sn_conn *conn, void *arg, const char *data, size_t len)
{
    (void)conn;
    struct httpd_conn *h = arg;
    if (!h || h->closing)
        return len; /* draining before the close */
    if (h->busy || h->plen) {
        if (!pend_append(h, data, len))
            httpd_conn_abort(h);
        else if (!h->busy)
            run_pending(h);
        return len;
    }
    size_t used = process(h, data, len);
    if (h->closing)
        return len;
    if (h->busy && used < len) {
        /* The rest waits in our own buffer: libsn would show it again only with new bytes. */
        if (!pend_append(h, data + used, len - used))
            httpd_conn_abort(h);
        return len;
    }
    return used;
}

static void on_eof(struct sn_conn *conn, void *arg)
{
    struct httpd_conn *h = arg;
    if (!h) {
        sn_conn_close(conn);
        return;
    }
    h->peer_eof = true;
    if (h->closing || !h->busy)
        sn_conn_close(conn);
}

static void on_close(struct sn_conn *conn, void *arg, int err)
{
    (void)conn;
    (void)err;
    struct httpd_conn *h = arg;
    if (!h)
        return;
    httpd_count(h->hc->ctr, HC_CONNS_CLOSED);
    h->conn = NULL;
    h->closing = true;
    httpd_conn_unref(h);
}

const struct sn_conn_ops httpd_conn_ops = {
    .on_data = on_data,
    .on_eof = on_eof,
    .on_close = on_close,
};
