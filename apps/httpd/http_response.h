/*
 * httpd: building HTTP/1.1 responses, the Date header, MIME types and the /static path
 * resolver. Pure code with no reactor dependency and no global mutable state: every function
 * may be called by any thread on its own buffers.
 *
 * Builders write into a caller-supplied buffer and return the bytes written, or -ENOSPC when
 * the buffer is too small (its contents are then unspecified). The status line is always
 * "HTTP/1.1" (a server sends its own highest version, RFC 9110 6.2), also to 1.0 clients.
 */
#ifndef SN_APPS_HTTPD_HTTP_RESPONSE_H
#define SN_APPS_HTTPD_HTTP_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define HTTP_SERVER_NAME "sn-httpd"

/* Length of an IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 9110 5.6.7). */
#define HTTP_DATE_LEN 29

/* Writes the IMF-fixdate of t (seconds since the epoch, UTC) and a NUL into out. Locale-free. */
void http_date_format(char out[HTTP_DATE_LEN + 1], time_t t);

/*
 * A per-core cached Date value. Zero-initialise, then call http_date_update from the core's
 * once-a-second timer (or each loop turn: it is cheap when the second has not changed) and
 * use `str` in every response. Owner core only: each core keeps its own, nothing is shared.
 */
struct http_date {
    time_t sec;
    char str[HTTP_DATE_LEN + 1];
};

/* Reformats d->str when `now` differs from the cached second. Returns true if it changed. */
bool http_date_update(struct http_date *d, time_t now);

/* What goes into a response head. */
struct http_response {
    int status;               /* e.g. 200; the reason phrase comes from http_reason() */
    const char *content_type; /* NULL: no Content-Type header */
    uint64_t content_length;  /* always sent, also for HEAD (the length GET would have) */
    bool keep_alive;          /* false: "Connection: close" */
    int req_minor;            /* request was HTTP/1.<minor>; a kept 1.0 connection gets
                                 "Connection: keep-alive", which 1.0 clients need */
    const char *extra;        /* more header lines, each ending in CRLF, or NULL */
};

/* The reason phrase of a status ("Not Found"); "Unknown" for codes it does not know. */
const char *http_reason(int status);

/*
 * Writes the status line and headers (Date when date is not NULL, Server, Content-Type,
 * Content-Length, Connection, r->extra) and the empty line. Returns bytes written or -ENOSPC.
 */
int http_response_head(char *buf, size_t cap, const struct http_response *r, const char *date);

/*
 * Head plus body: body holds r->content_length bytes and is left out when head_only (the
 * answer to HEAD). Returns bytes written or -ENOSPC.
 */
int http_response_full(char *buf, size_t cap, const struct http_response *r, const char *date,
                       const void *body, bool head_only);

/*
 * A complete error response with a short text/plain body "<status> <reason>\n". 405 carries
 * "Allow: GET, HEAD". Returns bytes written or -ENOSPC. 256 bytes are always enough.
 */
int http_response_error(char *buf, size_t cap, int status, const char *date, bool keep_alive,
                        int req_minor, bool head_only);

/* The HTTP status that suits a negative errno from the path resolver or a file open. */
int http_status_from_errno(int err);

/*
 * Content-Type for a file name by its extension, case-insensitive ("a/b.HTML" -> "text/html;
 * charset=utf-8"); "application/octet-stream" when unknown or absent. Never NULL.
 */
const char *http_mime_type(const char *name, size_t len);

/*
 * Turns the part of a request path after the route prefix (for "/static/css/a.css", the
 * caller passes "css/a.css") into a clean relative file path in out: percent-decoded, with
 * empty segments ("a//b") collapsed. It never resolves anything: whatever could leave the
 * root directory or surprise is refused instead:
 *   -EINVAL       malformed percent-encoding, a NUL or any control byte (400)
 *   -EACCES       a segment starting with '.' (".", "..", dotfiles), a backslash, an encoded
 *                 '/' or '\' (%2F, %5C) (403)
 *   -ENOENT       nothing left ("", "/"), or a trailing '/' (a directory: 404)
 *   -ENAMETOOLONG a segment over 255 bytes, or out too small (414)
 * Returns the length of out (NUL-terminated) on success.
 *
 * The check is lexical: a symlink inside the root can still point outside it. Open the result
 * relative to a directory fd of the root with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)
 * (io_uring_prep_openat2) to close that hole too.
 */
int http_static_relpath(char *out, size_t cap, const char *path, size_t len);

/* root + "/" + http_static_relpath(path): same errors; returns the length of out. */
int http_static_resolve(char *out, size_t cap, const char *root, const char *path, size_t len);

#endif
