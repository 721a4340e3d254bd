/* Prometheus text format writer: see metrics_text.h. */
#include "apps/common/metrics_text.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

/* HELP text escapes only backslash and line feed (the format's rule for HELP). */
static void put_help(struct app_outbuf *o, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            app_outbuf_put(o, "\\\\", 2);
        else if (*s == '\n')
            app_outbuf_put(o, "\\n", 2);
        else
            app_outbuf_put(o, s, 1);
    }
}

static bool name_valid(const char *s)
{
    if (!s || !*s || (*s >= '0' && *s <= '9'))
        return false;
    for (; *s; s++) {
        char c = *s;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == ':';
        if (!ok)
            return false;
    }
    return true;
}

static void put_family(struct app_outbuf *o, const struct metrics_family *f, unsigned ncores)
{
    if (f->help) {
        app_outbuf_str(o, "# HELP ");
        app_outbuf_str(o, f->name);
        app_outbuf_put(o, " ", 1);
        put_help(o, f->help);
        app_outbuf_put(o, "\n", 1);
    }
    app_outbuf_str(o, "# TYPE ");
    app_outbuf_str(o, f->name);
    app_outbuf_str(o, f->type == METRICS_COUNTER ? " counter\n" : " gauge\n");
    for (unsigned core = 0; core < ncores; core++) {
        app_outbuf_str(o, f->name);
        app_outbuf_str(o, "{core=\"");
        app_outbuf_u64(o, core);
        app_outbuf_str(o, "\"} ");
        app_outbuf_u64(o, f->values[core]);
        app_outbuf_put(o, "\n", 1);
    }
}

int metrics_text_format(struct app_outbuf *out, const struct metrics_family *fams, size_t n,
                        unsigned ncores)
{
    for (size_t i = 0; i < n; i++)
        if (!name_valid(fams[i].name))
            return -EINVAL;
    for (size_t i = 0; i < n; i++)
        put_family(out, &fams[i], ncores);
    return out->err;
}
