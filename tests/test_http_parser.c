/*
 * Tests of the httpd request parser (apps/httpd/http_parser.c): valid requests of many shapes,
 * every request split at every byte, pipelined streams fed in every chunking, a malformed
 * corpus mapped to statuses, limits at and one past the boundary, the keep-alive matrix, and a
 * small mutation test of the invariants. Every parse runs on a heap copy of exactly the bytes
 * given, so AddressSanitizer catches any read past the end.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apps/httpd/http_parser.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define MUTATIONS 1500
#else
#define MUTATIONS 6000
#endif

#define S(lit) lit, sizeof(lit) - 1

/* ---------------------------------------------------------------- helpers */

/* A comparable text of a parse outcome, built from slice contents, not addresses. */
static void summarize(int rc, const struct http_request *r, char *out, size_t cap)
{
    if (rc == -EAGAIN) {
        snprintf(out, cap, "AGAIN");
        return;
    }
    if (rc < 0) {
        snprintf(out, cap, "ERR %d rc=%d ka=%d", r->status, rc, r->keep_alive);
        return;
    }
    int n = snprintf(out, cap,
                     "len=%d st=%d m=%d/%.*s t=%.*s p=%.*s q=%s%.*s host=%s%.*s v=%d "
                     "ka=%d cl=%llu nh=%u",
                     rc, r->status, (int)r->method, (int)r->method_str.len, r->method_str.p,
                     (int)r->target.len, r->target.p, (int)r->path.len, r->path.p,
                     r->query.p ? "" : "(none)", (int)r->query.len, r->query.p ? r->query.p : "",
                     r->host.p ? "" : "(none)", (int)r->host.len, r->host.p ? r->host.p : "",
                     r->minor, r->keep_alive, (unsigned long long)r->content_length, r->nheaders);
    for (unsigned i = 0; i < r->nheaders && n > 0 && (size_t)n < cap; i++)
        n += snprintf(out + n, cap - (size_t)n, " |%.*s:%.*s|", (int)r->headers[i].name.len,
                      r->headers[i].name.p, (int)r->headers[i].value.len, r->headers[i].value.p);
}

/* Parses s[0, n) from an exact-size heap copy and summarizes the outcome into out. */
static int parse_copy(const char *s, size_t n, size_t prev, const struct http_limits *lim,
                      char *out, size_t cap)
{
    char *b = malloc(n ? n : 1);
    memcpy(b, s, n);
    struct http_request req;
    int rc = http_parse_request(b, n, prev, lim, &req);
    summarize(rc, &req, out, cap);
    free(b);
    return rc;
}

/* Parses a string literal in place (the request's slices point into it). */
static int parse(const char *s, size_t n, struct http_request *req)
{
    return http_parse_request(s, n, 0, NULL, req);
}

static bool slice_is(struct http_str s, const char *lit)
{
    return s.p && s.len == strlen(lit) && memcmp(s.p, lit, s.len) == 0;
}

/*
 * The one permitted difference the re-scan hint makes: an error in a line without an LF yet
 * may show as -EAGAIN until the line ends (see http_parse_request).
 */
static bool deferred(int hinted, int whole, const char *s, size_t n, size_t prev,
                     const struct http_limits *lim)
{
    size_t max_head = lim ? lim->max_head : http_default_limits.max_head;
    return hinted == -EAGAIN && whole == -EBADMSG && prev > 0 && n <= max_head &&
           !memchr(s + prev, '\n', n - prev);
}

/*
 * The split property: every proper prefix gives -EAGAIN (valid) or -EAGAIN/the same verdict
 * (malformed); completing a prefix with or without the re-scan hint gives the whole's result;
 * and so does growing the request one byte at a time with the hint chained.
 */
static void check_splits(const char *s, size_t n, const struct http_limits *lim, bool valid)
{
    char whole[4096], part[4096], again[4096];
    int rc = parse_copy(s, n, 0, lim, whole, sizeof(whole));
    size_t prev = 0;
    bool stopped = false;
    for (size_t k = 0; k < n; k++) {
        int prc = parse_copy(s, k, 0, lim, part, sizeof(part));
        if (valid && (int)k < rc) /* a body may follow the head: prefixes past it are whole */
            cr_assert_eq(prc, -EAGAIN, "prefix %zu of %.*s: %s", k, (int)n, s, part);
        else if (prc != -EAGAIN)
            cr_assert_str_eq(part, whole, "prefix %zu of %.*s", k, (int)n, s);
        if (prc == -EAGAIN) {
            int arc = parse_copy(s, n, k, lim, again, sizeof(again));
            if (!deferred(arc, rc, s, n, k, lim))
                cr_assert_str_eq(again, whole, "split at %zu of %.*s", k, (int)n, s);
        }
        if (!stopped) { /* byte-by-byte growth, hint chained like a connection would */
            int grc = parse_copy(s, k, prev, lim, part, sizeof(part));
            if (grc == -EAGAIN)
                prev = k;
            else
                stopped = true;
        }
    }
    int arc = parse_copy(s, n, prev, lim, again, sizeof(again));
    if (!deferred(arc, rc, s, n, prev, lim))
        cr_assert_str_eq(again, whole, "grown byte by byte: %.*s", (int)n, s);
    if (valid)
        cr_assert_gt(rc, 0, "%.*s: %s", (int)n, s, whole);
}

/* ---------------------------------------------------------------- valid requests */

static const char *const valid_requests[] = {
    "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    "HEAD /index.html HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: curl/8.0\r\n"
    "Accept: */*\r\n\r\n",
    "GET /search?q=a+b&x=%20&&y HTTP/1.1\r\nHost: h\r\n\r\n",
    "GET / HTTP/1.0\r\n\r\n",
    "GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET / HTTP/1.1\r\nHost:a\r\nX-Empty:\r\nX-Spaces: \t v a l \t \r\nX-Tab:\tt\r\n\r\n",
    "GET http://example.com/x?y HTTP/1.1\r\nHost: ignored\r\n\r\n",
    "GET HTTPS://Example.com HTTP/1.1\r\nHost: e\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    "GET / HTTP/1.1\r\nhost: a\r\nContent-Length: 0\r\ncontent-length: 0\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n",
    "GET / HTTP/1.9\r\nHost: a\r\n\r\n",
    "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    "POST /form HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
    "get / HTTP/1.1\r\nHost: a\r\n\r\n",
    "M-SEARCH * HTTP/1.1\r\nHost: 239.255.255.250:1900\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: [::1]:80\r\nX-Obs: caf\xc3\xa9\r\n\r\n",
    "GET /%7Euser/a%20b HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, close\r\n\r\n",
    "GET / HTTP/1.1\r\nX!#$%&'*+-.^_`|~Z: v\r\nHost: a\r\n\r\n",
    "GET /{weird}|\"chars\"^ HTTP/1.1\r\nHost: a\r\n\r\n",
    "HEAD / HTTP/1.1\r\nHost:\r\n\r\n",
    "GET /a?b?c HTTP/1.1\r\nHost: a\r\nCookie: x=1; y=2\r\nReferer: http://q/r\r\n\r\n",
};

Test(http_parser, valid_requests_split_at_every_byte)
{
    for (size_t i = 0; i < sizeof(valid_requests) / sizeof(valid_requests[0]); i++)
        check_splits(valid_requests[i], strlen(valid_requests[i]), NULL, true);
}

Test(http_parser, simple_get_fields_are_slices_of_the_buffer)
{
    static const char r[] = "GET /a/b?x=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\nNEXT";
    struct http_request req;
    int rc = parse(S(r), &req);
    cr_assert_eq(rc, (int)(sizeof(r) - 1 - 4));
    cr_assert_eq(req.status, 0);
    cr_assert_eq(req.method, HTTP_GET);
    cr_assert_eq(req.method_str.p, r);
    cr_assert_eq(req.target.p, r + 4);
    cr_assert(slice_is(req.target, "/a/b?x=1"));
    cr_assert(slice_is(req.path, "/a/b"));
    cr_assert(slice_is(req.query, "x=1"));
    cr_assert(slice_is(req.host, "example.com"));
    cr_assert_eq(req.minor, 1);
    cr_assert(req.keep_alive);
    cr_assert_eq(req.content_length, 0);
    cr_assert_eq(req.nheaders, 2);
    cr_assert(slice_is(req.headers[1].name, "Accept"));
    cr_assert(slice_is(req.headers[1].value, "*/*"));
    const struct http_header *h = http_find_header(&req, "ACCEPT");
    cr_assert_not_null(h);
    cr_assert_eq(h, &req.headers[1]);
    cr_assert_null(http_find_header(&req, "Accept-Encoding"));
}

Test(http_parser, shapes)
{
    struct http_request req;
    static const char head[] = "HEAD /x HTTP/1.0\r\n\r\n";
    cr_assert_eq(parse(S(head), &req), (int)sizeof(head) - 1);
    cr_assert_eq(req.method, HTTP_HEAD);
    cr_assert_eq(req.minor, 0);
    cr_assert_not(req.keep_alive);
    cr_assert_null(req.host.p);
    cr_assert_null(req.query.p);

    static const char ows[] = "GET / HTTP/1.1\r\nHost: a\r\nX:  \t v a l \t \r\nY:\r\n\r\n";
    cr_assert_gt(parse(S(ows), &req), 0);
    cr_assert(slice_is(req.headers[1].value, "v a l"));
    cr_assert_eq(req.headers[2].value.len, 0);

    static const char lead[] = "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    cr_assert_eq(parse(S(lead), &req), (int)sizeof(lead) - 1);
    cr_assert_eq(req.method_str.p, lead + 4);

    static const char absf[] = "GET http://Ex.com:81/p/q?z HTTP/1.1\r\nHost: other\r\n\r\n";
    cr_assert_gt(parse(S(absf), &req), 0);
    cr_assert(slice_is(req.host, "Ex.com:81"));
    cr_assert(slice_is(req.path, "/p/q"));
    cr_assert(slice_is(req.query, "z"));

    static const char bare[] = "GET https://h HTTP/1.1\r\nHost: h\r\n\r\n";
    cr_assert_gt(parse(S(bare), &req), 0);
    cr_assert(slice_is(req.path, "/"));

    static const char v19[] = "GET / HTTP/1.9\r\nHost: a\r\n\r\n";
    cr_assert_gt(parse(S(v19), &req), 0);
    cr_assert_eq(req.minor, 1);

    static const char emptyq[] = "GET /p? HTTP/1.1\r\nHost: a\r\n\r\n";
    cr_assert_gt(parse(S(emptyq), &req), 0);
    cr_assert_not_null(req.query.p);
    cr_assert_eq(req.query.len, 0);
}

Test(http_parser, body_on_get_is_reported_for_discarding)
{
    static const char r[] = "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello";
    struct http_request req;
    int rc = parse(S(r), &req);
    cr_assert_eq(rc, (int)sizeof(r) - 1 - 5, "the head only");
    cr_assert_eq(req.content_length, 5);
    cr_assert_eq(req.status, 0);
    cr_assert(req.keep_alive);
}

Test(http_parser, unknown_methods_are_501_and_keep_the_connection)
{
    static const char *const methods[] = {"POST",  "PUT",     "DELETE", "PATCH", "OPTIONS",
                                          "TRACE", "CONNECT", "get",    "Head",  "BREW"};
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        char r[128];
        int n = snprintf(r, sizeof(r), "%s /x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nab",
                         methods[i]);
        struct http_request req;
        int rc = http_parse_request(r, (size_t)n, 0, NULL, &req);
        cr_assert_eq(rc, n - 2, "%s", methods[i]);
        cr_assert_eq(req.status, 501, "%s", methods[i]);
        cr_assert(req.keep_alive, "%s", methods[i]);
        cr_assert_eq(req.content_length, 2, "%s", methods[i]);
        cr_assert_eq(req.method, HTTP_OTHER);
    }
}

/* ---------------------------------------------------------------- malformed corpus */

struct bad {
    const char *req;
    size_t len;
    int status;
};

static const struct bad malformed[] = {
    {S("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {S("GET / HTTP/1.1 \r\nHost: a\r\n\r\n"), 400},
    {S("GET /  HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {S("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {S("GET /\r\n\r\n"), 400},
    {S("GET / HTTP/1.1\nHost: a\n\n"), 400},
    {S("GET / HTTP/1.1\r\nHost: a\n\r\n"), 400},
    {S("GET / HTTP/1.1\r\nHost: a\r\n\n"), 400},
    {S("GET / HTTP/1.1\r\nHost: a\r\r\n\r\n"), 400},
    {S("GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n"), 400},
    {S("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {S("\r\rGET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {S("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), 400},
    {S("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n"), 400},
    {S("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n"), 400},
    {S("GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n\tfolded\r\n\r\n"), 400},
    {S("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), 400},
    {S("GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n"), 400},
    {S("GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f"
       "b\r\n\r\n"),
     400},
    {S("GET / HTTP/1.1\r\nHost: a\r\nX: a\x01"
       "b\r\n\r\n"),
     400},
    {S("GET / HTTP/1.1\r\nHost: a\r\nX: a\x1b"
       "b\r\n\r\n"),
     400},
    {S("GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {S("GET /a\0b HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {S("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {S("GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {S("G\x7fT / HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {S("GE(T / HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {S(" GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {S("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), 400},
    {S("GET / http/1.1\r\nHost: a\r\n\r\n"), 400},
    {S("GET / HTTP/1\r\nHost: a\r\n\r\n"), 400},
    {S("GET / HTTP/1.10\r\nHost: a\r\n\r\n"), 400},
    {S("GET / HTTP/11.1\r\nHost: a\r\n\r\n"), 400},
    {S("GET / HTTP/1.x\r\nHost: a\r\n\r\n"), 400},
    {S("GET / HTTPS/1.1\r\nHost: a\r\n\r\n"), 400},
    {S("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), 505},
    {S("GET / HTTP/3.0\r\n\r\n"), 505},
    {S("GET / HTTP/0.9\r\n\r\n"), 505},
    {S("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 505},
    {S("GET / HTTP/1.1\r\n: x\r\nHost: a\r\n\r\n"), 400},
    {S("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n"), 400},
    {S("GET / HTTP/1.1\r\nHo\"st: a\r\n\r\n"), 400},
    {S("GET / HTTP/1.1\r\nX(y): a\r\nHost: a\r\n\r\n"), 400},
    {S("GET / HTTP/1.1\r\nX\xc3\xa9: a\r\nHost: a\r\n\r\n"), 400},
    {S("GET / HTTP/1.1\r\n\r\n"), 400},
    {S("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n"), 400},
    {S("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), 400},
    {S("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"), 400},
    {S("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), 400},
    {S("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), 400},
    {S("GET / HTTP/1.1\r\nHost: user@a\r\n\r\n"), 400},
    {S("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n"), 400},
    {S("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n"), 400},
    {S("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n"), 400},
    {S("GET / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n"), 400},
    {S("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n"), 400},
    {S("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n"), 400},
    {S("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n"), 400},
    {S("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"), 400},
    {S("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n"), 413},
    {S("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n"), 413},
    {S("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551615\r\n\r\n"), 413},
    {S("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1048577\r\n\r\n"), 413},
    {S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10000000\r\n\r\n"), 413},
    {S("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"), 411},
    {S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n"), 411},
    {S("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"), 400},
    {S("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"), 400},
    {S("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"), 400},
    {S("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;x=1\r\n\r\n"), 400},
    {S("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n"), 400},
    {S("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"),
     400},
    {S("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
     400},
    {S("GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400},
    {S("GET * HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {S("GET foo HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {S("GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {S("GET ftp://a/x HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {S("HEAD http://us@er/x HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
};

Test(http_parser, malformed_corpus_maps_to_statuses)
{
    for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
        const struct bad *b = &malformed[i];
        size_t n = b->len;
        char *copy = malloc(n);
        memcpy(copy, b->req, n);
        struct http_request req;
        int rc = http_parse_request(copy, n, 0, NULL, &req);
        cr_expect_eq(rc, -EBADMSG, "case %zu: %.*s", i, (int)n, b->req);
        cr_expect_eq(req.status, b->status, "case %zu: %.*s: got %d", i, (int)n, b->req,
                     req.status);
        cr_expect_not(req.keep_alive, "case %zu", i);
        free(copy);
        check_splits(b->req, n, NULL, false);
    }
}

Test(http_parser, early_errors_need_no_complete_head)
{
    struct http_request req;
    cr_assert_eq(parse(S("\x16\x03"), &req), -EBADMSG, "a TLS hello is refused at once");
    cr_assert_eq(req.status, 400);
    cr_assert_eq(parse(S("GET / HTTP/2.0"), &req), -EBADMSG, "before the line ends");
    cr_assert_eq(req.status, 505);
    cr_assert_eq(parse(S("GET / HTTP/1.1\r\nHost a"), &req), -EBADMSG);
    cr_assert_eq(req.status, 400);
    cr_assert_eq(parse(S("GET / HTTP/1.1\n"), &req), -EBADMSG);
    cr_assert_eq(parse(S("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1x"), &req), -EAGAIN,
                 "semantic checks wait for the whole head");
}

Test(http_parser, hint_defers_an_error_until_the_line_ends)
{
    struct http_limits lim = http_default_limits;
    lim.max_head = 64;
    char b[80] = "GET / HTTP/1.1ET / HTTP/1.1";
    struct http_request req;
    cr_assert_eq(http_parse_request(b, 9, 0, &lim, &req), -EAGAIN);
    cr_assert_eq(http_parse_request(b, 20, 9, &lim, &req), -EAGAIN, "no LF yet: not looked at");
    cr_assert_eq(http_parse_request(b, 20, 0, &lim, &req), -EBADMSG, "without the hint: at once");
    cr_assert_eq(req.status, 400);
    memcpy(b + 27, "\r\n", 2);
    cr_assert_eq(http_parse_request(b, 29, 20, &lim, &req), -EBADMSG, "the LF brings it out");
    cr_assert_eq(req.status, 400);
    memset(b + 27, 'x', sizeof(b) - 27);
    cr_assert_eq(http_parse_request(b, 64, 20, &lim, &req), -EAGAIN);
    cr_assert_eq(http_parse_request(b, 65, 64, &lim, &req), -EBADMSG, "so does the limit");
    cr_assert_eq(req.status, 400, "with the status of the first bad byte, not 431");
}

/* ---------------------------------------------------------------- limits */

/* "GET <target> HTTP/1.1\r\nHost: a\r\n" + filler header to reach `total` bytes + CRLF. */
static char *make_request(size_t target_len, unsigned extra_headers, size_t total, size_t *n)
{
    size_t cap = total + target_len + 64 * (extra_headers + 2) + 64;
    char *b = malloc(cap);
    size_t o = (size_t)sprintf(b, "GET /");
    memset(b + o, 'a', target_len - 1);
    o += target_len - 1;
    o += (size_t)sprintf(b + o, " HTTP/1.1\r\nHost: a\r\n");
    for (unsigned i = 0; i < extra_headers; i++)
        o += (size_t)sprintf(b + o, "X-%u: v\r\n", i);
    if (total) { /* "F: " + filler + "\r\n" + "\r\n" brings the head to `total` bytes */
        cr_assert_geq(total, o + 7);
        size_t fill = total - o - 7;
        o += (size_t)sprintf(b + o, "F: ");
        memset(b + o, 'f', fill);
        o += fill;
        o += (size_t)sprintf(b + o, "\r\n");
    }
    o += (size_t)sprintf(b + o, "\r\n");
    *n = o;
    return b;
}

static int parse_status(const char *s, size_t n, const struct http_limits *lim)
{
    struct http_request req;
    int rc = http_parse_request(s, n, 0, lim, &req);
    if (rc == -EAGAIN)
        return -EAGAIN;
    return rc > 0 ? req.status : -req.status;
}

Test(http_parser, head_size_limit_at_the_boundary)
{
    struct http_limits lim = http_default_limits;
    lim.max_head = 300;
    size_t n;
    char *at = make_request(10, 0, 300, &n);
    cr_assert_eq(n, 300);
    cr_assert_eq(parse_status(at, n, &lim), 0, "exactly max_head is accepted");
    check_splits(at, n, &lim, true);
    cr_assert_eq(parse_status(at, n - 1, &lim), -EAGAIN);
    free(at);

    char *over = make_request(10, 0, 301, &n);
    cr_assert_eq(parse_status(over, n, &lim), -431, "one over");
    cr_assert_eq(parse_status(over, 300, &lim), -EAGAIN, "at the limit it may still finish");
    check_splits(over, n, &lim, false);
    free(over);

    /* The default limit, 8192 bytes. */
    char *d = make_request(10, 0, 8192, &n);
    cr_assert_eq(parse_status(d, n, NULL), 0);
    free(d);
    d = make_request(10, 0, 8193, &n);
    cr_assert_eq(parse_status(d, n, NULL), -431);
    free(d);
}

Test(http_parser, endless_head_is_431_once_past_the_limit)
{
    struct http_limits lim = http_default_limits;
    lim.max_head = 64;
    char buf[200];
    int n = snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: a\r\nX: ");
    memset(buf + n, 'x', sizeof(buf) - (size_t)n);
    cr_assert_eq(parse_status(buf, 64, &lim), -EAGAIN);
    cr_assert_eq(parse_status(buf, 65, &lim), -431);
    cr_assert_eq(parse_status(buf, sizeof(buf), &lim), -431);
    /* Empty lines before the request count too: they cannot be used to stall forever. */
    memset(buf, 0, sizeof(buf));
    for (size_t i = 0; i + 1 < sizeof(buf); i += 2)
        memcpy(buf + i, "\r\n", 2);
    cr_assert_eq(parse_status(buf, 64, &lim), -EAGAIN);
    cr_assert_eq(parse_status(buf, 66, &lim), -431);
}

Test(http_parser, target_length_limit_at_the_boundary)
{
    struct http_limits lim = http_default_limits;
    lim.max_target = 100;
    size_t n;
    char *at = make_request(100, 0, 0, &n);
    cr_assert_eq(parse_status(at, n, &lim), 0);
    free(at);
    char *over = make_request(101, 0, 0, &n);
    cr_assert_eq(parse_status(over, n, &lim), -414);
    cr_assert_eq(parse_status(over, 4 + 101, &lim), -414, "before the request line ends");
    cr_assert_eq(parse_status(over, 4 + 100, &lim), -EAGAIN);
    check_splits(over, n, &lim, false);
    free(over);
    /* Defaults: 4096. */
    at = make_request(4096, 0, 0, &n);
    cr_assert_eq(parse_status(at, n, NULL), 0);
    free(at);
    over = make_request(4097, 0, 0, &n);
    cr_assert_eq(parse_status(over, n, NULL), -414);
    free(over);
}

Test(http_parser, header_count_limit_at_the_boundary)
{
    struct http_limits lim = http_default_limits;
    lim.max_headers = 8;
    size_t n;
    char *at = make_request(1, 7, 0, &n); /* Host + 7 */
    cr_assert_eq(parse_status(at, n, &lim), 0);
    check_splits(at, n, &lim, true);
    free(at);
    char *over = make_request(1, 8, 0, &n);
    cr_assert_eq(parse_status(over, n, &lim), -431);
    check_splits(over, n, &lim, false);
    free(over);
    /* Defaults: HTTP_MAX_HEADERS, and a larger setting is clamped to it. */
    at = make_request(1, HTTP_MAX_HEADERS - 1, 0, &n);
    cr_assert_eq(parse_status(at, n, NULL), 0);
    free(at);
    lim.max_headers = 1000;
    over = make_request(1, HTTP_MAX_HEADERS, 0, &n);
    cr_assert_eq(parse_status(over, n, NULL), -431);
    cr_assert_eq(parse_status(over, n, &lim), -431);
    free(over);
}

Test(http_parser, body_limit_at_the_boundary)
{
    struct http_limits lim = http_default_limits;
    lim.max_body = 1000;
    static const char at[] = "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n";
    static const char over[] = "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\n\r\n";
    cr_assert_eq(parse_status(S(at), &lim), 0);
    cr_assert_eq(parse_status(S(over), &lim), -413);
    static const char dat[] = "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1048576\r\n\r\n";
    static const char dover[] = "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1048577\r\n\r\n";
    cr_assert_eq(parse_status(S(dat), NULL), 0);
    cr_assert_eq(parse_status(S(dover), NULL), -413);
}

/* ---------------------------------------------------------------- keep-alive matrix */

Test(http_parser, keep_alive_matrix)
{
    static const struct {
        const char *conn; /* NULL: no Connection header; "\n" separates two headers */
        bool ka10, ka11;
    } cases[] = {
        {NULL, false, true},
        {"close", false, false},
        {"keep-alive", true, true},
        {"Keep-Alive", true, true},
        {"CLOSE", false, false},
        {"keep-alive, close", false, false},
        {"close, keep-alive", false, false},
        {"Upgrade", false, true},
        {"foo,  keep-alive ,bar", true, true},
        {" , ,close", false, false},
        {"keep-alive\nclose", false, false},
        {"x-close", false, true},
        {"keep-alivee", false, true},
        {"", false, true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (int minor = 0; minor <= 1; minor++) {
            char r[256], hdr[128] = "";
            if (cases[i].conn) {
                const char *nl = strchr(cases[i].conn, '\n');
                if (nl)
                    snprintf(hdr, sizeof(hdr), "Connection: %.*s\r\nConnection: %s\r\n",
                             (int)(nl - cases[i].conn), cases[i].conn, nl + 1);
                else
                    snprintf(hdr, sizeof(hdr), "Connection: %s\r\n", cases[i].conn);
            }
            int n = snprintf(r, sizeof(r), "GET / HTTP/1.%d\r\nHost: a\r\n%s\r\n", minor, hdr);
            struct http_request req;
            cr_assert_gt(http_parse_request(r, (size_t)n, 0, NULL, &req), 0, "%s", r);
            bool want = minor ? cases[i].ka11 : cases[i].ka10;
            cr_expect_eq(req.keep_alive, want, "HTTP/1.%d Connection: %s", minor,
                         cases[i].conn ? cases[i].conn : "(none)");
        }
    }
}

/* ---------------------------------------------------------------- pipelining */

/*
 * Plays a connection: the stream arrives in chunks ending at cuts[]; unconsumed input is kept
 * in an exact-size heap buffer; each request is logged; the log must not depend on chunking.
 */
static void run_stream(const char *s, size_t n, const size_t *cuts, size_t ncuts, char *log,
                       size_t cap)
{
    struct http_reader rd = {0};
    char *buf = malloc(1);
    size_t have = 0, fed = 0, o = 0;
    log[0] = '\0';
    for (size_t ci = 0; ci <= ncuts; ci++) {
        size_t upto = ci < ncuts ? cuts[ci] : n;
        char *nb = malloc(have + upto - fed + 1);
        memcpy(nb, buf, have);
        memcpy(nb + have, s + fed, upto - fed);
        free(buf);
        buf = nb;
        have += upto - fed;
        fed = upto;
        size_t off = 0;
        for (;;) {
            struct http_request req;
            size_t used;
            char line[1024];
            int rc = http_reader_next(&rd, buf + off, have - off, NULL, &req, &used);
            cr_assert_leq(used, have - off);
            if (rc != -EAGAIN) {
                summarize(rc, &req, line, sizeof(line));
                o += (size_t)snprintf(log + o, cap - o, "%s\n", line);
            }
            off += used;
            if (rc == -EAGAIN)
                break;
            if (rc < 0 || !req.keep_alive) {
                o += (size_t)snprintf(log + o, cap - o, "CLOSE\n");
                free(buf);
                return;
            }
        }
        memmove(buf, buf + off, have - off);
        have -= off;
    }
    snprintf(log + o, cap - o, "EOF left=%zu skip=%llu\n", have, (unsigned long long)rd.skip);
    free(buf);
}

static void check_stream(const char *s, size_t n, const char *must_contain)
{
    static char whole[16384], other[16384];
    run_stream(s, n, NULL, 0, whole, sizeof(whole));
    cr_assert(strstr(whole, must_contain), "log:\n%s", whole);
    for (size_t k = 1; k < n; k++) { /* two chunks, split at every byte */
        run_stream(s, n, &k, 1, other, sizeof(other));
        cr_assert_str_eq(other, whole, "split at %zu", k);
    }
    size_t *cuts = malloc(n * sizeof(*cuts)); /* one byte at a time */
    for (size_t k = 0; k < n; k++)
        cuts[k] = k;
    run_stream(s, n, cuts, n, other, sizeof(other));
    cr_assert_str_eq(other, whole, "byte by byte");
    unsigned seed = 12345; /* a few random chunkings */
    for (int round = 0; round < 50; round++) {
        size_t nc = 0;
        for (size_t k = 1; k < n; k++) {
            seed = seed * 1103515245u + 12345u;
            if ((seed >> 16) % 7 == 0)
                cuts[nc++] = k;
        }
        run_stream(s, n, cuts, nc, other, sizeof(other));
        cr_assert_str_eq(other, whole, "random chunking %d", round);
    }
    free(cuts);
}

Test(http_parser, pipelined_requests_in_any_chunking)
{
    static const char stream[] = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
                                 "HEAD /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody"
                                 "\r\n"
                                 "POST /3 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nxy"
                                 "GET /4?x=1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                                 "GET /5 HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"
                                 "GET /6 HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n"
                                 "GET /7 HTTP/1.1\r\nHost: a\r\n\r\n";
    char log[16384];
    run_stream(S(stream), NULL, 0, log, sizeof(log));
    /* Six requests are served, the POST answered 501, and /7 is never read. */
    const char *p = log;
    for (int i = 1; i <= 6; i++) {
        char want[16];
        snprintf(want, sizeof(want), " t=/%d", i);
        p = strstr(p, want);
        cr_assert_not_null(p, "request %d missing from:\n%s", i, log);
    }
    cr_assert_not_null(strstr(log, "st=501 m=2/POST"), "%s", log);
    cr_assert_null(strstr(log, "t=/7"), "%s", log);
    cr_assert_not_null(strstr(log, "CLOSE\n"), "%s", log);
    check_stream(S(stream), " p=/6 ");
}

Test(http_parser, pipeline_ending_in_a_bad_request_or_a_partial_one)
{
    static const char bad[] = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
                              "GET /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
                              "GET /3 HTTP/1.1\nHost: a\r\n\r\n"
                              "GET /4 HTTP/1.1\r\nHost: a\r\n\r\n";
    check_stream(S(bad), "ERR 400");
    static const char partial[] = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
                                  "GET /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc";
    check_stream(S(partial), "EOF left=0 skip=7");
    static const char partial2[] = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHo";
    check_stream(S(partial2), "EOF left=19 skip=0");
}

/* ---------------------------------------------------------------- mutations */

/* Invariants on arbitrary input: a verdict on a prefix never contradicts the whole. */
Test(http_parser, mutated_requests_keep_the_invariants)
{
    static const char base[] = "GET /a?b HTTP/1.1\r\nHost: h:1\r\nConnection: keep-alive\r\n"
                               "Content-Length: 2\r\nX: y\r\n\r\nzz";
    static const char alphabet[] = "\r\n :\t/?%0123456789GETHOSTPchunked,\x00\x7f\x80\xff";
    unsigned seed = 99;
    char buf[sizeof(base) + 8];
    for (int it = 0; it < MUTATIONS; it++) {
        size_t n = sizeof(base) - 1;
        memcpy(buf, base, n);
        for (int m = 0; m < 3; m++) {
            seed = seed * 1103515245u + 12345u;
            size_t at = (seed >> 8) % n;
            seed = seed * 1103515245u + 12345u;
            buf[at] = alphabet[(seed >> 8) % (sizeof(alphabet) - 1)];
        }
        char whole[4096], part[4096];
        int rc = parse_copy(buf, n, 0, NULL, whole, sizeof(whole));
        cr_assert(rc == -EAGAIN || rc == -EBADMSG || (rc > 0 && (size_t)rc <= n), "%d", rc);
        for (size_t k = (seed >> 8) % 8; k < n; k += 8) {
            int prc = parse_copy(buf, k, 0, NULL, part, sizeof(part));
            if (prc != -EAGAIN)
                cr_assert_str_eq(part, whole, "prefix %zu of mutation %d", k, it);
        }
    }
}
