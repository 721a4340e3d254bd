/* Parsed command + store -> answer bytes; see mc_exec.h. */
#include "mc_exec.h"
#include "mc_meta.h"

#include <errno.h>
#include <string.h>

static enum mc_set_mode set_mode(enum mc_op op)
{
    switch (op) {
    case MC_OP_ADD: return MC_ADD;
    case MC_OP_REPLACE: return MC_REPLACE;
    case MC_OP_APPEND: return MC_APPEND;
    case MC_OP_PREPEND: return MC_PREPEND;
    case MC_OP_CAS: return MC_CAS;
    default: return MC_SET;
    }
}

static enum mc_result run_storage(struct mc_store *s, const struct mc_cmd *c)
{
    struct mc_set_req req = {
        .key = c->key.p,
        .nkey = c->key.len,
        .data = c->data.p,
        .nbytes = c->data.len,
        .flags = c->flags,
        .exptime = c->exptime,
        .cas = c->cas,
    };
    return mc_store_set(s, set_mode(c->op), &req, NULL);
}

static int answer(const struct mc_cmd *c, struct app_outbuf *out, enum mc_result r, uint64_t v)
{
    if (c->noreply)
        return 0;
    return r == MC_DELTA_OK ? mc_reply_number(out, v) : mc_reply_result(out, r);
}

int mc_exec_key(struct mc_store *s, const struct mc_cmd *c, struct app_outbuf *out)
{
    uint64_t v = 0;
    switch (c->op) {
    case MC_OP_SET:
    case MC_OP_ADD:
    case MC_OP_REPLACE:
    case MC_OP_APPEND:
    case MC_OP_PREPEND:
    case MC_OP_CAS: return answer(c, out, run_storage(s, c), 0);
    case MC_OP_DELETE: return answer(c, out, mc_store_delete(s, c->key.p, c->key.len), 0);
    case MC_OP_TOUCH:
        return answer(c, out, mc_store_touch(s, c->key.p, c->key.len, c->exptime), 0);
    case MC_OP_INCR:
    case MC_OP_DECR: {
        enum mc_result r =
            mc_store_delta(s, c->key.p, c->key.len, c->op == MC_OP_INCR, c->delta, &v);
        return answer(c, out, r, v);
    }
    case MC_OP_MG:
    case MC_OP_MS:
    case MC_OP_MD:
    case MC_OP_MA:
    case MC_OP_ME: return mc_meta_exec(s, c, out);
    case MC_OP_ERROR:
        if (c->err != MC_ERR_TOO_LARGE)
            return -EINVAL;
        /* memcached drops the old value of a set, and of an ms in any mode */
        mc_store_too_large(s, c->key.p, c->key.len,
                           c->failed == MC_OP_SET || c->failed == MC_OP_MS);
        return c->noreply ? 0 : mc_reply_error(out, c->err);
    default: return -EINVAL;
    }
}

const struct mc_item *mc_exec_get_item(struct mc_store *s, const struct mc_cmd *c,
                                       struct mc_slice key)
{
    switch (c->op) {
    case MC_OP_GET:
    case MC_OP_GETS: return mc_store_get(s, key.p, key.len);
    case MC_OP_GAT:
    case MC_OP_GATS: return mc_store_gat(s, key.p, key.len, c->exptime);
    default: return NULL;
    }
}

int mc_exec_get_key(struct mc_store *s, const struct mc_cmd *c, struct mc_slice key,
                    struct app_outbuf *out)
{
    if (mc_cmd_route(c) != MC_ROUTE_KEYS)
        return -EINVAL;
    const struct mc_item *it = mc_exec_get_item(s, c, key);
    if (!it)
        return 0;
    return mc_reply_item(out, it, c->op == MC_OP_GETS || c->op == MC_OP_GATS);
}

int mc_exec_local(const struct mc_cmd *c, struct app_outbuf *out)
{
    switch (c->op) {
    case MC_OP_NONE: return 0;
    case MC_OP_ERROR: return c->noreply ? 0 : mc_reply_error(out, c->err);
    case MC_OP_VERSION: return mc_reply_version(out, MC_VERSION);
    case MC_OP_VERBOSITY: return c->noreply ? 0 : mc_reply_line(out, "OK");
    case MC_OP_MN: return mc_reply_line(out, "MN");
    case MC_OP_QUIT: return 1;
    case MC_OP_BINARY: {
        int rc = mc_meta_binary_refusal(c, out);
        return rc < 0 ? rc : 1;
    }
    default: return -EINVAL;
    }
}

static int exec_keys(struct mc_store *s, const struct mc_cmd *c, struct app_outbuf *out)
{
    size_t pos = 0;
    struct mc_slice key;
    while (mc_cmd_next_key(c, &pos, &key)) {
        int rc = mc_exec_get_key(s, c, key, out);
        if (rc)
            return rc;
    }
    return mc_reply_end(out);
}

static bool args_are(const struct mc_cmd *c, const char *word)
{
    size_t n = strlen(word);
    return c->args.len == n && memcmp(c->args.p, word, n) == 0;
}

static int exec_stats(struct mc_store *s, const struct mc_cmd *c, struct app_outbuf *out)
{
    if (args_are(c, "reset")) {
        mc_store_stats_reset(s);
        return mc_reply_line(out, "RESET");
    }
    if (c->args.len)
        return mc_reply_error(out, MC_ERR_UNKNOWN);
    struct mc_store_stats st;
    mc_store_stats(s, &st);
    int rc = mc_reply_store_stats(out, &st, MC_STATS_CMDS);
    if (!rc)
        rc = mc_reply_stat_u64(out, "limit_maxbytes", st.limit_maxbytes);
    if (!rc)
        rc = mc_reply_store_stats(out, &st, MC_STATS_HASH);
    if (!rc)
        rc = mc_reply_store_stats(out, &st, MC_STATS_ITEMS);
    return rc ? rc : mc_reply_end(out);
}

int mc_exec(struct mc_store *s, const struct mc_cmd *c, struct app_outbuf *out)
{
    switch (mc_cmd_route(c)) {
    case MC_ROUTE_KEY: return mc_exec_key(s, c, out);
    case MC_ROUTE_KEYS: return exec_keys(s, c, out);
    case MC_ROUTE_ALL:
        if (c->op == MC_OP_STATS)
            return exec_stats(s, c, out);
        mc_store_flush_all(s, c->exptime);
        return c->noreply ? 0 : mc_reply_line(out, "OK");
    case MC_ROUTE_LOCAL: break;
    }
    return mc_exec_local(c, out);
}
