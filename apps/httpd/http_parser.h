/*
 * httpd: an incremental, zero-copy HTTP/1.1 request-head parser (RFC 9110, RFC 9112).
 *
 * Pure code: no reactor, no allocation, no global state, so any core may call it at any time on
 * its own buffers. The parser is stateless like picohttpparser: each call parses the head from
 * the start of the buffer, and every string it returns is a slice of that buffer, valid for as
 * long as the caller keeps those bytes. `struct http_reader` below adds the little state a
 * connection needs (body bytes to discard, the re-scan hint) on top.
 *
 * Decisions, in the order the checks run (the first failing check wins). "close" means the
 * call returns -EBADMSG and the connection must close after the error response.
 *
 * Syntax, checked in byte order as the bytes arrive:
 *   400 close  request line not "METHOD SP target SP HTTP/d.d CRLF" with exactly one SP each;
 *              method not a token (RFC 9110 5.6.2); target bytes outside 0x21-0x7e
 *   400 close  version not "HTTP/" DIGIT "." DIGIT (case-sensitive)
 *   505 close  HTTP/0.x, HTTP/2.0 and above. HTTP/1.2 .. 1.9 are served as 1.1 (RFC 9110 2.5)
 *   414 close  request-target longer than max_target
 *   400 close  header not "name:" OWS value OWS CRLF: no space before ':' (RFC 9112 5.1);
 *              value bytes other than HTAB, SP, VCHAR, obs-text (NUL, CTLs, DEL)
 *   400 close  obs-fold, a line starting with SP/HTAB (rejecting it is allowed, RFC 9112 5.2)
 *   400 close  a bare LF or bare CR. Lines must end in CRLF: RFC 9112 2.2 lets a server accept
 *              a lone LF, but lenient line endings are a request-smuggling lever when a proxy
 *              in front disagrees, so httpd does not
 *   431 close  more than max_headers header lines
 *   431 close  head (empty lines, request line, headers, final CRLF) over max_head bytes
 *   Empty lines (CRLF) before the request line are skipped (RFC 9112 2.2).
 *
 * Semantics, once the whole head is in:
 *   400 close  Transfer-Encoding with HTTP/1.0 or with Content-Length (a smuggling sign,
 *              RFC 9112 6.1, 6.3), or with chunked absent, not last, repeated or parametrised
 *   411 close  Transfer-Encoding ending in chunked: httpd serves only GET and HEAD and has no
 *              chunked decoder, so it asks for a Content-Length (RFC 9110 15.5.12); unable to
 *              find the end of the body, it must close
 *   400 close  Content-Length not 1*DIGIT (lists such as "5, 5" too), or two different values;
 *              identical repeats are accepted (RFC 9110 8.6)
 *   413 close  Content-Length over max_body or beyond 64 bits
 *   400 close  HTTP/1.1 without Host; two Hosts; a Host value outside RFC 3986 host[:port]
 *              (RFC 9112 3.2), port at most 65535 (http_host_valid below); the same for
 *              the authority of an absolute-form target
 *   501 keep   a method other than GET and HEAD (methods are case-sensitive: "get" is one).
 *              501, not 405: 405 says "this resource does not allow it" and needs an Allow
 *              list; httpd supports no other method on any resource, which is 501's meaning
 *              (RFC 9110 15.6.2). The request is well framed, so the connection may go on.
 *   400 close  GET/HEAD target neither origin-form "/p?q" nor absolute-form "http(s)://a/p"
 *
 * Bodies: a request without Content-Length or Transfer-Encoding has none (RFC 9112 6.3). A GET
 * or HEAD with Content-Length <= max_body is served and its body ignored: the caller discards
 * content_length bytes after the head before parsing the next request (http_reader does it).
 * Every 4xx closes, even where the framing would allow going on (a missing Host): a client
 * that sends a malformed request is not trusted with a second one, as nginx does.
 *
 * Keep-alive: HTTP/1.1 unless a Connection option is "close"; HTTP/1.0 only when an option is
 * "keep-alive" and none is "close". Connection options are a case-insensitive list.
 */
#ifndef SN_APPS_HTTPD_HTTP_PARSER_H
#define SN_APPS_HTTPD_HTTP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Capacity of http_request.headers; http_limits.max_headers may not exceed it. */
#define HTTP_MAX_HEADERS 64

/* A slice of the caller's buffer. p is NULL for an absent optional part. */
struct http_str {
    const char *p;
    size_t len;
};

struct http_header {
    struct http_str name;  /* a token, case as received */
    struct http_str value; /* without leading/trailing OWS */
};

enum http_method { HTTP_GET, HTTP_HEAD, HTTP_OTHER };

struct http_limits {
    size_t max_head;      /* bytes in the whole head; over: 431. At most 1 GiB. */
    size_t max_target;    /* bytes in the request-target; over: 414 */
    unsigned max_headers; /* header lines; over: 431. At most HTTP_MAX_HEADERS. */
    uint64_t max_body;    /* Content-Length accepted (and discarded); over: 413 */
};

/* 8 KiB head, 4 KiB target, 64 headers, 1 MiB body: nginx's defaults, roughly. */
extern const struct http_limits http_default_limits;

struct http_request {
    enum http_method method;
    struct http_str method_str; /* the token as received */
    struct http_str target;     /* the request-target as received */
    struct http_str path;       /* target up to '?'; for absolute-form, the path after the
                                   authority ("/" if it has none) */
    struct http_str query;      /* after '?', p NULL when there is no '?' */
    struct http_str host;       /* Host value (absolute-form: its authority); p NULL if absent */
    int minor;                  /* HTTP/1.minor: 0 or 1 */
    unsigned nheaders;
    uint64_t content_length; /* body bytes after the head, to be discarded */
    bool keep_alive;         /* may the connection carry another request after this one */
    int status;              /* 0: serve it; else the HTTP status to answer with */
    struct http_header headers[HTTP_MAX_HEADERS];
};

/*
 * Parses the request head at the start of buf[0, len). lim NULL means http_default_limits.
 *
 * prev_len is a re-scan hint for a slowly arriving head: the length of buf at the previous
 * call that returned -EAGAIN for this same request start, or 0. With it, a call whose new bytes
 * hold no LF returns -EAGAIN without re-parsing, so a head trickling in byte by byte costs
 * O(lines * head) rather than O(head^2). The price: an error inside a line that has not ended
 * yet is then reported when that line ends or the input outgrows max_head, instead of at once
 * (with the same status). A complete head is never delayed, since it ends with an LF. The
 * first call for a request (prev_len 0) always parses everything it is given.
 *
 * Returns:
 *   > 0      the head is complete and is that many bytes. req->status is 0 (serve it) or 501;
 *            req->keep_alive says whether the connection continues, after discarding
 *            req->content_length body bytes.
 *   -EAGAIN  the head is incomplete and nothing wrong has been seen yet: read more, call again.
 *   -EBADMSG the request is rejected and the byte stream cannot be trusted any further:
 *            answer req->status (400, 411, 413, 414, 431, 505), then close.
 * On -EAGAIN req's fields are unspecified. Any thread; touches only buf and req.
 */
int http_parse_request(const char *buf, size_t len, size_t prev_len, const struct http_limits *lim,
                       struct http_request *req);

/*
 * True when p[0, n) is RFC 3986  host [":" port]: an IP-literal ("[" IPv6 or IPvFuture "]"),
 * or a reg-name (unreserved, pct-encoded and sub-delims characters, which covers IPv4),
 * optionally followed by ':' and a port of digits whose value is at most 65535. Empty host and
 * empty port are valid, as RFC 3986 allows. Any thread (http_host.c).
 */
bool http_host_valid(const char *p, size_t n);

/* Case-insensitive lookup of a header by name; NULL when absent. First match wins. */
const struct http_header *http_find_header(const struct http_request *req, const char *name);

/*
 * Per-connection parsing state: owns nothing, zero-initialise it ({0}) for a new connection.
 * One connection, one core.
 */
struct http_reader {
    uint64_t skip;   /* body bytes of the previous request still to discard */
    size_t prev_len; /* the -EAGAIN hint for http_parse_request */
};

/*
 * Takes the next request from a connection's unconsumed input buf[0, len).
 * Sets *used to the bytes the caller must drop from the front of its input once it is done with
 * req (req's slices point into them): body bytes of an earlier request plus this head.
 * Returns 0 when req holds a request (answer it; req->status may be 501), -EAGAIN when more
 * input is needed (*used may still be > 0: discarded body bytes), or -EBADMSG (answer
 * req->status and close). Owner core of the connection only.
 */
int http_reader_next(struct http_reader *rd, const char *buf, size_t len,
                     const struct http_limits *lim, struct http_request *req, size_t *used);

#endif
