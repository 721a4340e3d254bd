/*
 * httpd responses: see http_response.h. Heads are assembled from pieces (app_outbuf into the
 * caller's fixed buffer) rather than with snprintf because a keep-alive benchmark builds one
 * per request.
 */
#include "apps/httpd/http_response.h"
#include "apps/common/outbuf.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

/* A fixed buffer's result: bytes written, or -ENOSPC when anything did not fit. */
static int finish(const struct app_outbuf *o)
{
    return o->err || o->len > INT_MAX ? -ENOSPC : (int)o->len;
}

/* ---------------------------------------------------------------- Date */

static void two_digits(char *p, int v)
{
    p[0] = (char)('0' + v / 10 % 10);
    p[1] = (char)('0' + v % 10);
}

void http_date_format(char out[HTTP_DATE_LEN + 1], time_t t)
{
    static const char days[] = "SunMonTueWedThuFriSat";
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    struct tm tm;
    gmtime_r(&t, &tm);
    memcpy(out, "Sun, 00 Jan 0000 00:00:00 GMT", HTTP_DATE_LEN + 1);
    memcpy(out, days + 3 * tm.tm_wday, 3);
    two_digits(out + 5, tm.tm_mday);
    memcpy(out + 8, months + 3 * tm.tm_mon, 3);
    two_digits(out + 12, (tm.tm_year + 1900) / 100);
    two_digits(out + 14, (tm.tm_year + 1900) % 100);
    two_digits(out + 17, tm.tm_hour);
    two_digits(out + 20, tm.tm_min);
    two_digits(out + 23, tm.tm_sec);
}

bool http_date_update(struct http_date *d, time_t now)
{
    if (d->str[0] && d->sec == now)
        return false;
    d->sec = now;
    http_date_format(d->str, now);
    return true;
}

/* ---------------------------------------------------------------- heads and bodies */

const char *http_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

static void put_status_line(struct app_outbuf *o, int status)
{
    char code[3];
    if (status < 100 || status > 999)
        status = 500;
    code[0] = (char)('0' + status / 100);
    two_digits(code + 1, status % 100);
    app_outbuf_str(o, "HTTP/1.1 ");
    app_outbuf_put(o, code, 3);
    app_outbuf_put(o, " ", 1);
    app_outbuf_str(o, http_reason(status));
    app_outbuf_put(o, "\r\n", 2);
}

static void put_head(struct app_outbuf *o, const struct http_response *r, const char *date)
{
    put_status_line(o, r->status);
    if (date) {
        app_outbuf_str(o, "Date: ");
        app_outbuf_str(o, date);
        app_outbuf_put(o, "\r\n", 2);
    }
    app_outbuf_str(o, "Server: " HTTP_SERVER_NAME "\r\n");
    if (r->content_type) {
        app_outbuf_str(o, "Content-Type: ");
        app_outbuf_str(o, r->content_type);
        app_outbuf_put(o, "\r\n", 2);
    }
    app_outbuf_str(o, "Content-Length: ");
    app_outbuf_u64(o, r->content_length);
    app_outbuf_put(o, "\r\n", 2);
    if (!r->keep_alive)
        app_outbuf_str(o, "Connection: close\r\n");
    else if (r->req_minor == 0)
        app_outbuf_str(o, "Connection: keep-alive\r\n");
    if (r->extra)
        app_outbuf_str(o, r->extra);
    app_outbuf_put(o, "\r\n", 2);
}

int http_response_head(char *buf, size_t cap, const struct http_response *r, const char *date)
{
    struct app_outbuf o;
    app_outbuf_init_fixed(&o, buf, cap);
    put_head(&o, r, date);
    return finish(&o);
}

int http_response_full(char *buf, size_t cap, const struct http_response *r, const char *date,
                       const void *body, bool head_only)
{
    struct app_outbuf o;
    app_outbuf_init_fixed(&o, buf, cap);
    put_head(&o, r, date);
    if (!head_only && r->content_length > cap)
        return -ENOSPC;
    if (!head_only)
        app_outbuf_put(&o, body, (size_t)r->content_length);
    return finish(&o);
}

int http_response_error(char *buf, size_t cap, int status, const char *date, bool keep_alive,
                        int req_minor, bool head_only)
{
    char body[64]; /* "431 Request Header Fields Too Large\n" is the longest */
    struct app_outbuf b;
    app_outbuf_init_fixed(&b, body, sizeof body);
    app_outbuf_u64(&b, (uint64_t)status);
    app_outbuf_put(&b, " ", 1);
    app_outbuf_str(&b, http_reason(status));
    app_outbuf_put(&b, "\n", 1);
    struct http_response r = {
        .status = status,
        .content_type = "text/plain; charset=utf-8",
        .content_length = b.len,
        .keep_alive = keep_alive,
        .req_minor = req_minor,
        .extra = status == 405 ? "Allow: GET, HEAD\r\n" : NULL,
    };
    return http_response_full(buf, cap, &r, date, body, head_only);
}

int http_status_from_errno(int err)
{
    switch (err < 0 ? -err : err) {
    case EINVAL: return 400;
    case EACCES:
    case EPERM:
    case EXDEV:
    case ELOOP: return 403;
    case ENOENT:
    case ENOTDIR:
    case EISDIR: return 404;
    case ENAMETOOLONG: return 414;
    default: return 500;
    }
}

/* ---------------------------------------------------------------- MIME types */

static bool ext_ieq(const char *ext, size_t n, const char *lit)
{
    if (strlen(lit) != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = ext[i] >= 'A' && ext[i] <= 'Z' ? (char)(ext[i] + 32) : ext[i];
        if (c != lit[i])
            return false;
    }
    return true;
}

const char *http_mime_type(const char *name, size_t len)
{
    static const char *const table[][2] = {
        {"html", "text/html; charset=utf-8"},
        {"htm", "text/html; charset=utf-8"},
        {"css", "text/css; charset=utf-8"},
        {"js", "text/javascript; charset=utf-8"},
        {"mjs", "text/javascript; charset=utf-8"},
        {"json", "application/json"},
        {"txt", "text/plain; charset=utf-8"},
        {"md", "text/markdown; charset=utf-8"},
        {"csv", "text/csv; charset=utf-8"},
        {"xml", "application/xml"},
        {"svg", "image/svg+xml"},
        {"png", "image/png"},
        {"jpg", "image/jpeg"},
        {"jpeg", "image/jpeg"},
        {"gif", "image/gif"},
        {"webp", "image/webp"},
        {"avif", "image/avif"},
        {"ico", "image/vnd.microsoft.icon"},
        {"woff", "font/woff"},
        {"woff2", "font/woff2"},
        {"wasm", "application/wasm"},
        {"pdf", "application/pdf"},
        {"zip", "application/zip"},
        {"gz", "application/gzip"},
        {"mp4", "video/mp4"},
        {"webm", "video/webm"},
        {"mp3", "audio/mpeg"},
    };
    size_t dot = len;
    while (dot > 0 && name[dot - 1] != '.' && name[dot - 1] != '/')
        dot--;
    if (dot > 1 && name[dot - 1] == '.' && name[dot - 2] != '/') {
        const char *ext = name + dot;
        for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
            if (ext_ieq(ext, len - dot, table[i][0]))
                return table[i][1];
    }
    return "application/octet-stream";
}

/* ---------------------------------------------------------------- static path resolver */

#define SEGMENT_MAX 255 /* NAME_MAX on Linux */

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Appends one decoded, checked segment s[0, n) to out at *o. */
static int put_segment(char *out, size_t cap, size_t *o, const char *s, size_t n)
{
    size_t start = *o;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            bool whole = i + 2 < n; /* "%" and two hex digits */
            int hi = whole ? hex_value(s[i + 1]) : -1;
            int lo = whole ? hex_value(s[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return -EINVAL;
            c = (unsigned char)(hi * 16 + lo);
            if (c == '/' || c == '\\')
                return -EACCES; /* an encoded separator is never a name byte */
            i += 3;
        } else {
            i++;
        }
        if (c < 0x20 || c == 0x7f)
            return -EINVAL;
        if (c == '\\')
            return -EACCES;
        if (*o + 1 >= cap)
            return -ENAMETOOLONG;
        out[(*o)++] = (char)c;
    }
    if (*o - start > SEGMENT_MAX)
        return -ENAMETOOLONG;
    if (out[start] == '.')
        return -EACCES; /* ".", "..", and dotfiles */
    return 0;
}

int http_static_relpath(char *out, size_t cap, const char *path, size_t len)
{
    size_t o = 0;
    const char *p = path, *end = path + len;
    if (cap == 0)
        return -ENAMETOOLONG;
    while (p < end) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        const char *e = slash ? slash : end;
        if (e > p) {
            if (o && o + 1 < cap)
                out[o++] = '/';
            else if (o)
                return -ENAMETOOLONG;
            int rc = put_segment(out, cap, &o, p, (size_t)(e - p));
            if (rc)
                return rc;
        }
        p = slash ? slash + 1 : end;
    }
    out[o] = '\0';
    if (o == 0 || path[len - 1] == '/')
        return -ENOENT;
    return o > INT_MAX ? -ENAMETOOLONG : (int)o;
}

int http_static_resolve(char *out, size_t cap, const char *root, const char *path, size_t len)
{
    size_t rlen = strlen(root);
    if (rlen == 0)
        return -EINVAL;
    while (rlen > 0 && root[rlen - 1] == '/')
        rlen--; /* "/srv/www/" and "/" join without a double slash */
    if (rlen + 2 > cap)
        return -ENAMETOOLONG;
    memcpy(out, root, rlen);
    out[rlen] = '/';
    int rc = http_static_relpath(out + rlen + 1, cap - rlen - 1, path, len);
    return rc < 0 ? rc : rc + (int)rlen + 1;
}
