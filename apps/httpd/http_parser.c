/*
 * httpd request-head parser: see http_parser.h for the contract and the table of decisions.
 *
 * Structure: a syntax pass walks the bytes once, left to right, and stops at the first byte
 * that is wrong (a status) or at the end of the available bytes (NEED). Because it only ever
 * looks at bytes it has, a prefix of a request yields either NEED or the same verdict as the
 * whole request, which is what makes parsing a request split anywhere give the same result.
 * A semantic pass then reads the collected header slices (Host, Content-Length, ...).
 */
#include "apps/httpd/http_parser.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

/* Internal verdicts: 0 ok, NEED for "ran out of bytes", or an HTTP status code (> 0). */
#define NEED (-1)

const struct http_limits http_default_limits = {
    .max_head = 8192, .max_target = 4096, .max_headers = HTTP_MAX_HEADERS, .max_body = 1 << 20};

struct cursor {
    const char *p;
    const char *end;
};

/*
 * tchar of RFC 9110 5.6.2 by table, as the parser's inner loops test every byte. (The Host
 * grammar is checked by http_host_valid, http_host.c.)
 */
enum { TOKEN = 1 };
static const unsigned char char_class[256] = {
    ['0' ... '9'] = TOKEN,
    ['A' ... 'Z'] = TOKEN,
    ['a' ... 'z'] = TOKEN,
    ['!'] = TOKEN,
    ['#'] = TOKEN,
    ['$'] = TOKEN,
    ['%'] = TOKEN,
    ['&'] = TOKEN,
    ['\''] = TOKEN,
    ['*'] = TOKEN,
    ['+'] = TOKEN,
    ['-'] = TOKEN,
    ['.'] = TOKEN,
    ['^'] = TOKEN,
    ['_'] = TOKEN,
    ['`'] = TOKEN,
    ['|'] = TOKEN,
    ['~'] = TOKEN,
};

static bool is_tchar(unsigned char c)
{
    return char_class[c] & TOKEN;
}

/* VCHAR: what a request-target may hold (its finer grammar is the router's business). */
static bool is_vchar(unsigned char c)
{
    return c > 0x20 && c < 0x7f;
}

/* field-vchar, SP, HTAB and obs-text: everything but CTLs other than HTAB, and DEL. */
static bool is_field_char(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static struct http_str slice(const char *from, const char *to)
{
    return (struct http_str){from, (size_t)(to - from)};
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

/* Case-insensitive comparison of a slice with n bytes of lit (ASCII, as HTTP tokens are). */
static bool str_ieqn(struct http_str s, const char *lit, size_t n)
{
    if (s.len != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower(s.p[i]) != lower(lit[i]))
            return false;
    return true;
}

/* The same with a string literal, whose length the compiler knows. */
#define str_ieq(s, lit) str_ieqn((s), (lit), sizeof(lit) - 1)

static bool str_eq(struct http_str s, const char *lit)
{
    return s.len == strlen(lit) && memcmp(s.p, lit, s.len) == 0;
}

/* ---------------------------------------------------------------- syntax pass */

static int parse_eol(struct cursor *c)
{
    if (c->p == c->end)
        return NEED;
    if (*c->p != '\r')
        return 400; /* bare LF, or a stray byte where the line should end */
    if (c->p + 1 == c->end)
        return NEED;
    if (c->p[1] != '\n')
        return 400; /* bare CR */
    c->p += 2;
    return 0;
}

static int skip_empty_lines(struct cursor *c)
{
    while (c->p < c->end && *c->p == '\r') {
        int st = parse_eol(c);
        if (st)
            return st;
    }
    return 0;
}

/* A token followed by `delim`; stores it in *out. */
static int parse_token(struct cursor *c, char delim, struct http_str *out)
{
    const char *start = c->p;
    while (c->p < c->end && is_tchar((unsigned char)*c->p))
        c->p++;
    if (c->p == c->end)
        return NEED;
    if (*c->p != delim || c->p == start)
        return 400;
    *out = slice(start, c->p++);
    return 0;
}

static int parse_target(struct cursor *c, size_t max_target, struct http_str *out)
{
    const char *start = c->p;
    while (c->p < c->end && is_vchar((unsigned char)*c->p)) {
        if ((size_t)(c->p - start) == max_target)
            return 414;
        c->p++;
    }
    if (c->p == c->end)
        return NEED;
    if (*c->p != ' ' || c->p == start)
        return 400;
    *out = slice(start, c->p++);
    return 0;
}

/* "HTTP/" DIGIT "." DIGIT, checked byte by byte so a bad prefix fails early. */
static int parse_version(struct cursor *c, int *minor)
{
    static const char pattern[] = "HTTP/#.#"; /* '#' stands for a digit */
    const char *v = c->p;
    for (size_t i = 0; i < sizeof(pattern) - 1; i++) {
        if (v + i == c->end)
            return NEED;
        bool ok = pattern[i] == '#' ? (v[i] >= '0' && v[i] <= '9') : v[i] == pattern[i];
        if (!ok)
            return 400;
    }
    c->p += sizeof(pattern) - 1;
    if (v[5] != '1')
        return 505;
    *minor = v[7] == '0' ? 0 : 1; /* 1.2 .. 1.9 are answered as 1.1 (RFC 9110 2.5) */
    return 0;
}

static int parse_request_line(struct cursor *c, const struct http_limits *lim,
                              struct http_request *req)
{
    int st = skip_empty_lines(c);
    if (!st)
        st = parse_token(c, ' ', &req->method_str);
    if (!st)
        st = parse_target(c, lim->max_target, &req->target);
    if (!st)
        st = parse_version(c, &req->minor);
    return st ? st : parse_eol(c);
}

static int parse_header(struct cursor *c, struct http_header *h)
{
    int st = parse_token(c, ':', &h->name);
    if (st)
        return st;
    while (c->p < c->end && is_ows(*c->p))
        c->p++;
    const char *value = c->p, *last = c->p;
    for (; c->p < c->end && is_field_char((unsigned char)*c->p); c->p++)
        if (!is_ows(*c->p))
            last = c->p + 1;
    if (c->p == c->end)
        return NEED;
    h->value = slice(value, last);
    return parse_eol(c);
}

static int parse_headers(struct cursor *c, unsigned max_headers, struct http_request *req)
{
    for (;;) {
        if (c->p == c->end)
            return NEED;
        if (*c->p == '\r')
            return parse_eol(c); /* the empty line that ends the head */
        if (req->nheaders == max_headers)
            return 431;
        int st = parse_header(c, &req->headers[req->nheaders]);
        if (st)
            return st;
        req->nheaders++;
    }
}

/* ---------------------------------------------------------------- semantic pass */

/* What the framing-relevant headers said, gathered before any decision is made. */
struct facts {
    unsigned hosts;
    bool host_bad;
    bool cl_seen, cl_bad, cl_overflow;
    uint64_t cl;
    bool te_seen, te_bad, te_chunked_last;
    unsigned te_chunked;
    bool conn_close, conn_keep;
};

/* Calls fn on each non-empty, OWS-trimmed element of a comma-separated list. */
static void for_each_element(struct http_str list, void (*fn)(struct http_str, struct facts *),
                             struct facts *f)
{
    const char *p = list.p, *end = list.p + list.len;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *e = comma ? comma : end;
        const char *s = p;
        while (s < e && is_ows(*s))
            s++;
        const char *t = e;
        while (t > s && is_ows(t[-1]))
            t--;
        if (t > s)
            fn(slice(s, t), f);
        p = comma ? comma + 1 : end;
    }
}

static void connection_option(struct http_str opt, struct facts *f)
{
    if (str_ieq(opt, "close"))
        f->conn_close = true;
    else if (str_ieq(opt, "keep-alive"))
        f->conn_keep = true;
}

static void transfer_coding(struct http_str coding, struct facts *f)
{
    const char *semi = memchr(coding.p, ';', coding.len); /* drop transfer-parameters */
    struct http_str name = semi ? slice(coding.p, semi) : coding;
    while (name.len && is_ows(name.p[name.len - 1]))
        name.len--;
    bool chunked = str_ieq(name, "chunked");
    if (chunked && semi)
        f->te_bad = true; /* chunked takes no parameters */
    f->te_chunked += chunked;
    f->te_chunked_last = chunked;
}

/* Content-Length = 1*DIGIT; overflow of 64 bits is remembered, not wrapped. */
static void content_length(struct http_str v, struct facts *f)
{
    uint64_t n = 0;
    bool overflow = false;
    if (v.len == 0)
        f->cl_bad = true;
    for (size_t i = 0; i < v.len; i++) {
        if (v.p[i] < '0' || v.p[i] > '9') {
            f->cl_bad = true;
            return;
        }
        unsigned d = (unsigned)(v.p[i] - '0');
        if (n > (UINT64_MAX - d) / 10)
            overflow = true;
        n = n * 10 + d;
    }
    if (f->cl_seen && (n != f->cl || overflow != f->cl_overflow))
        f->cl_bad = true; /* conflicting duplicates */
    f->cl_seen = true;
    f->cl = n;
    f->cl_overflow |= overflow;
}

static bool host_valid(struct http_str v)
{
    return http_host_valid(v.p, v.len);
}

static void gather_header(const struct http_header *h, struct http_request *req, struct facts *f)
{
    if (str_ieq(h->name, "host")) {
        f->hosts++;
        f->host_bad |= !host_valid(h->value);
        req->host = h->value;
    } else if (str_ieq(h->name, "content-length")) {
        content_length(h->value, f);
    } else if (str_ieq(h->name, "transfer-encoding")) {
        f->te_seen = true;
        for_each_element(h->value, transfer_coding, f);
    } else if (str_ieq(h->name, "connection")) {
        for_each_element(h->value, connection_option, f);
    }
}

static int check_framing(const struct http_request *req, const struct facts *f,
                         const struct http_limits *lim)
{
    if (f->te_seen) {
        if (req->minor == 0 || f->cl_seen || f->te_bad || f->te_chunked != 1 || !f->te_chunked_last)
            return 400;
        return 411;
    }
    if (f->cl_bad)
        return 400;
    if (f->cl_overflow || f->cl > lim->max_body)
        return 413;
    return 0;
}

/* Length of a leading "http://" or "https://" (schemes are case-insensitive), else 0. */
static size_t scheme_len(struct http_str t)
{
    static const char *const schemes[] = {"http://", "https://"};
    for (size_t i = 0; i < 2; i++) {
        size_t n = strlen(schemes[i]);
        if (t.len >= n && str_ieqn(slice(t.p, t.p + n), schemes[i], n))
            return n;
    }
    return 0;
}

/* Splits the target into path and query; absolute-form yields its authority as the host. */
static int split_target(struct http_request *req)
{
    struct http_str t = req->target;
    if (t.p[0] != '/') {
        size_t skip = scheme_len(t);
        const char *end = t.p + t.len, *auth = t.p + skip;
        const char *slash = auth;
        while (slash < end && *slash != '/' && *slash != '?')
            slash++;
        if (skip == 0 || slash == auth || !host_valid(slice(auth, slash)))
            return 400;
        req->host = slice(auth, slash);
        t = slice(slash, end);
    }
    const char *q = memchr(t.p, '?', t.len);
    req->path = q ? slice(t.p, q) : t;
    req->query = q ? slice(q + 1, t.p + t.len) : (struct http_str){NULL, 0};
    if (req->path.len == 0)
        req->path = (struct http_str){"/", 1};
    return 0;
}

static int check_semantics(struct http_request *req, const struct http_limits *lim)
{
    struct facts f = {0};
    for (unsigned i = 0; i < req->nheaders; i++)
        gather_header(&req->headers[i], req, &f);
    req->keep_alive = !f.conn_close && (req->minor == 1 || f.conn_keep);
    req->content_length = f.cl;
    int st = check_framing(req, &f, lim);
    if (st)
        return st;
    if ((req->minor == 1 && f.hosts == 0) || f.hosts > 1 || f.host_bad)
        return 400;
    if (str_eq(req->method_str, "GET"))
        req->method = HTTP_GET;
    else if (str_eq(req->method_str, "HEAD"))
        req->method = HTTP_HEAD;
    else
        return 501; /* methods are case-sensitive (RFC 9110 9.1): "get" is unknown */
    return split_target(req);
}

/* ---------------------------------------------------------------- entry points */

int http_parse_request(const char *buf, size_t len, size_t prev_len, const struct http_limits *lim,
                       struct http_request *req)
{
    if (!lim)
        lim = &http_default_limits;
    size_t max_head = lim->max_head < (1u << 30) ? lim->max_head : (1u << 30);
    /* Since the last -EAGAIN only the unfinished line grew; until it ends (or the limit is
     * passed) there is nothing new to report but, at most, an error that can wait. */
    if (prev_len && prev_len < len && len <= max_head &&
        !memchr(buf + prev_len, '\n', len - prev_len))
        return -EAGAIN;

    memset(req, 0, offsetof(struct http_request, headers));
    req->method = HTTP_OTHER;
    unsigned max_headers =
        lim->max_headers < HTTP_MAX_HEADERS ? lim->max_headers : HTTP_MAX_HEADERS;
    struct cursor c = {buf, buf + (len < max_head ? len : max_head)};
    int st = parse_request_line(&c, lim, req);
    if (!st)
        st = parse_headers(&c, max_headers, req);
    if (st == NEED && len <= max_head)
        return -EAGAIN;
    if (st == NEED)
        st = 431;
    if (!st)
        st = check_semantics(req, lim);
    req->status = st;
    if (st == 0 || st == 501)
        return (int)(c.p - buf);
    req->keep_alive = false;
    return -EBADMSG;
}

const struct http_header *http_find_header(const struct http_request *req, const char *name)
{
    for (unsigned i = 0; i < req->nheaders; i++)
        if (str_ieqn(req->headers[i].name, name, strlen(name)))
            return &req->headers[i];
    return NULL;
}

int http_reader_next(struct http_reader *rd, const char *buf, size_t len,
                     const struct http_limits *lim, struct http_request *req, size_t *used)
{
    size_t drop = rd->skip < len ? (size_t)rd->skip : len;
    rd->skip -= drop;
    *used = drop;
    if (rd->skip)
        return -EAGAIN;
    int rc = http_parse_request(buf + drop, len - drop, rd->prev_len, lim, req);
    if (rc == -EAGAIN) {
        rd->prev_len = len - drop;
        return rc;
    }
    rd->prev_len = 0;
    if (rc < 0)
        return rc;
    *used += (size_t)rc;
    rd->skip = req->content_length;
    return 0;
}
