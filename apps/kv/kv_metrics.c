/*
 * --metrics-port: the server's counters in the Prometheus text format over HTTP.
 *
 * A deliberately minimal responder: it reads one request head (up to 8 KiB), answers
 * "GET /metrics" (or HEAD) with the page, anything else with 404 / 405 / 400, always with
 * "Connection: close", and closes. The page is made by a gather (kv_gather.c) so every core
 * reports its own counters from its own core; libsn's per-core reactor counters are read with
 * sn_metrics_core, which any thread may call.
 */
#include "kv.h"

#include "apps/common/metrics_text.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEAD_MAX 8192

/* ---- the page ----------------------------------------------------------------------------- */

enum src { SNAP, SN };

static const struct fam {
    const char *name, *help;
    enum metrics_type type;
    enum src src;
    size_t off;
} fams[] = {
#define S(f) SNAP, offsetof(struct kv_core_snap, f)
#define R(f) SN, offsetof(struct sn_core_metrics, f)
    {"kv_cmd_get_total", "Keys asked by get, gets, gat and gats.", METRICS_COUNTER, S(st.cmd_get)},
    {"kv_cmd_set_total", "Storage commands.", METRICS_COUNTER, S(st.cmd_set)},
    {"kv_cmd_touch_total", "touch, gat and gats commands.", METRICS_COUNTER, S(st.cmd_touch)},
    {"kv_cmd_flush_total", "flush_all commands.", METRICS_COUNTER, S(st.cmd_flush)},
    {"kv_get_hits_total", "Keys found by get.", METRICS_COUNTER, S(st.get_hits)},
    {"kv_get_misses_total", "Keys not found by get.", METRICS_COUNTER, S(st.get_misses)},
    {"kv_get_expired_total", "Keys found expired by get.", METRICS_COUNTER, S(st.get_expired)},
    {"kv_delete_hits_total", "Keys deleted.", METRICS_COUNTER, S(st.delete_hits)},
    {"kv_delete_misses_total", "delete of missing keys.", METRICS_COUNTER, S(st.delete_misses)},
    {"kv_incr_hits_total", "incr of existing keys.", METRICS_COUNTER, S(st.incr_hits)},
    {"kv_decr_hits_total", "decr of existing keys.", METRICS_COUNTER, S(st.decr_hits)},
    {"kv_cas_hits_total", "cas that stored.", METRICS_COUNTER, S(st.cas_hits)},
    {"kv_cas_badval_total", "cas with a stale unique.", METRICS_COUNTER, S(st.cas_badval)},
    {"kv_store_too_large_total", "Items refused as too large.", METRICS_COUNTER,
     S(st.store_too_large)},
    {"kv_evictions_total", "Items evicted to make room.", METRICS_COUNTER, S(st.evictions)},
    {"kv_items_total", "Items stored since start.", METRICS_COUNTER, S(st.total_items)},
    {"kv_curr_items", "Items stored now.", METRICS_GAUGE, S(st.curr_items)},
    {"kv_bytes", "Bytes used by items now.", METRICS_GAUGE, S(st.bytes)},
    {"kv_limit_maxbytes", "Memory limit for items.", METRICS_GAUGE, S(st.limit_maxbytes)},
    {"kv_curr_connections", "Open client connections.", METRICS_GAUGE, S(c.curr_conns)},
    {"kv_connections_total", "Client connections accepted.", METRICS_COUNTER, S(c.total_conns)},
    {"kv_rejected_connections_total", "Connections refused by -c.", METRICS_COUNTER,
     S(c.rejected_conns)},
    {"kv_bytes_read_total", "Request bytes read.", METRICS_COUNTER, S(c.bytes_read)},
    {"kv_bytes_written_total", "Answer bytes written.", METRICS_COUNTER, S(c.bytes_written)},
    {"kv_remote_ops_total", "Commands or get keys sent to their owner core.", METRICS_COUNTER,
     S(c.remote_ops)},
    {"kv_remote_batches_total", "Cross-core batches sent.", METRICS_COUNTER,
     S(c.remote_batches)},
    {"kv_served_ops_total", "Commands or get keys run for other cores.", METRICS_COUNTER,
     S(c.served_ops)},
    {"sn_msgs_in_total", "Mesh messages handled.", METRICS_COUNTER, R(msgs_in)},
    {"sn_msgs_out_total", "Mesh messages sent.", METRICS_COUNTER, R(msgs_out)},
    {"sn_tasks_total", "Tasks run.", METRICS_COUNTER, R(tasks)},
    {"sn_cqes_total", "io_uring completions reaped.", METRICS_COUNTER, R(cqes)},
    {"sn_loops_total", "Reactor loop turns.", METRICS_COUNTER, R(loops)},
    {"sn_sleeps_total", "Times a core slept.", METRICS_COUNTER, R(sleeps)},
    {"sn_wakeups_sent_total", "Wake-ups sent: a core's message found its target asleep.",
     METRICS_COUNTER, R(wakeups_sent)},
    {"sn_stalls_total", "Loop phases over the stall threshold in CPU time.", METRICS_COUNTER,
     R(stalls)},
    {"sn_preemptions_total", "Loop phases over the stall threshold on the wall clock only.",
     METRICS_COUNTER, R(preemptions)},
#undef S
#undef R
};

#define NFAMS (sizeof fams / sizeof fams[0])

int kv_metrics_format(struct app_outbuf *out, const struct kv_core_snap *snap, unsigned ncores)
{
    struct metrics_family f[NFAMS];
    uint64_t *vals = calloc(NFAMS * ncores, sizeof *vals);
    struct sn_core_metrics *m = calloc(ncores, sizeof *m);
    int rc = -ENOMEM;
    if (!vals || !m)
        goto done;
    for (unsigned c = 0; c < ncores; c++)
        sn_metrics_core(c, &m[c]);
    for (size_t i = 0; i < NFAMS; i++) {
        for (unsigned c = 0; c < ncores; c++) {
            const char *base = fams[i].src == SNAP ? (const char *)&snap[c] : (const char *)&m[c];
            memcpy(&vals[i * ncores + c], base + fams[i].off, sizeof(uint64_t));
        }
        f[i] = (struct metrics_family){fams[i].name, fams[i].help, fams[i].type,
                                       &vals[i * ncores]};
    }
    rc = metrics_text_format(out, f, NFAMS, ncores);
done:
    free(vals);
    free(m);
    return rc;
}

/* ---- the HTTP side ------------------------------------------------------------------------ */

struct kv_mconn {
    struct sn_conn *conn; /* NULL once closed */
    bool busy;            /* a request is being answered */
    bool head;            /* HEAD: no body */
    unsigned refs;        /* the gather in flight */
};

static void respond(struct sn_conn *conn, const char *status, const char *type, const char *body,
                    size_t len, bool head)
{
    char mem[256];
    struct app_outbuf hdr;
    app_outbuf_init_fixed(&hdr, mem, sizeof mem);
    app_outbuf_printf(&hdr,
                      "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\n\r\n",
                      status, type, len);
    if (!hdr.err)
        sn_conn_write(conn, hdr.data, hdr.len);
    if (!hdr.err && !head)
        sn_conn_write(conn, body, len);
    sn_ignore(sn_conn_close(conn));
}

static void respond_text(struct sn_conn *conn, const char *status, const char *text)
{
    respond(conn, status, "text/plain; charset=utf-8", text, strlen(text), false);
}

static void gather_done(void *arg, struct sn_reply *reply, const struct app_outbuf *out)
{
    (void)reply;
    struct kv_mconn *m = arg;
    m->refs--;
    if (m->conn)
        respond(m->conn, "200 OK", METRICS_TEXT_CONTENT_TYPE, out->data, out->len, m->head);
    else if (!m->refs)
        free(m);
}

/* The request line's target is /metrics, optionally with a query string. */
static bool wants_metrics(const char *p, size_t len)
{
    static const char path[] = "/metrics";
    size_t n = sizeof path - 1;
    return len >= n && memcmp(p, path, n) == 0 && (len == n || p[n] == '?');
}

static size_t m_on_data(struct sn_conn *conn, void *arg, const char *data, size_t len)
{
    struct kv_mconn *m = arg;
    if (!m || m->busy)
        return len;
    const char *end = memmem(data, len, "\r\n\r\n", 4);
    if (!end) {
        if (len > HEAD_MAX) {
            m->busy = true;
            respond_text(conn, "431 Request Header Fields Too Large", "too large\n");
            return len;
        }
        return 0;
    }
    m->busy = true;
    const char *sp1 = memchr(data, ' ', (size_t)(end - data));
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1)) : NULL;
    if (!sp2) {
        respond_text(conn, "400 Bad Request", "bad request\n");
        return len;
    }
    size_t mlen = (size_t)(sp1 - data);
    m->head = mlen == 4 && memcmp(data, "HEAD", 4) == 0;
    if (!m->head && !(mlen == 3 && memcmp(data, "GET", 3) == 0)) {
        respond_text(conn, "405 Method Not Allowed", "only GET /metrics\n");
        return len;
    }
    if (!wants_metrics(sp1 + 1, (size_t)(sp2 - sp1 - 1))) {
        respond_text(conn, "404 Not Found", "try /metrics\n");
        return len;
    }
    m->refs++; /* before: the page may be ready inside the call */
    if (kv_gather_start(KV_G_METRICS, 0, false, gather_done, m, NULL) < 0) {
        m->refs--;
        respond_text(conn, "503 Service Unavailable", "out of memory\n");
    }
    return len;
}

static void m_on_close(struct sn_conn *conn, void *arg, int err)
{
    (void)conn;
    (void)err;
    struct kv_mconn *m = arg;
    if (!m)
        return;
    m->conn = NULL;
    if (!m->refs)
        free(m);
}

const struct sn_conn_ops kv_metrics_ops = {
    .on_data = m_on_data,
    .on_close = m_on_close,
};

void *kv_metrics_accept(struct sn_conn *conn, void *arg)
{
    (void)arg;
    struct kv_mconn *m = calloc(1, sizeof *m);
    if (!m) {
        sn_ignore(sn_conn_close(conn));
        return NULL;
    }
    m->conn = conn;
    return m;
}
