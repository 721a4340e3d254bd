/*
 * libFuzzer entry point for the httpd request parser and the /static path resolver.
 * Built and run by `make fuzz` (Makefile; tests/test_fuzz_corpus.c replays the corpus in the
 * normal suite). By hand, from the repository root with clang (Debian: apt-get install clang):
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -I. -D_GNU_SOURCE \
 *         tests/fuzz/fuzz_http.c apps/httpd/http_parser.c apps/httpd/http_response.c \
 *         apps/common/outbuf.c \
 *         -o build/fuzz_http
 *   mkdir -p build/fuzz-corpus
 *   build/fuzz_http build/fuzz-corpus tests/fuzz/http -max_total_time=60 -max_len=4096
 *
 * (new inputs go to the first directory; tests/fuzz/http/ is the seed corpus and stays as is).
 * Besides memory errors it aborts on a broken invariant: a verdict on a prefix that contradicts
 * the whole input, a consumed length outside the input, a slice outside the buffer, or a
 * resolved path that could leave the root.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "apps/httpd/http_parser.h"
#include "apps/httpd/http_response.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
    if (!ok)
        abort();
}

static void check_slice(struct http_str s, const char *buf, size_t len)
{
    if (s.p)
        check(s.p >= buf && s.p + s.len <= buf + len);
}

static void check_request(const struct http_request *r, const char *buf, size_t len, int rc)
{
    check(rc <= (int)len);
    check(r->status == 0 || r->status == 501);
    check_slice(r->method_str, buf, len);
    check_slice(r->target, buf, len);
    if (!(r->path.len == 1 && r->path.p[0] == '/')) /* "/" may be the parser's own default */
        check_slice(r->path, buf, len);
    check_slice(r->query, buf, len);
    check_slice(r->host, buf, len);
    check(r->nheaders <= HTTP_MAX_HEADERS);
    for (unsigned i = 0; i < r->nheaders; i++) {
        check_slice(r->headers[i].name, buf, len);
        check_slice(r->headers[i].value, buf, len);
    }
}

/* A resolved path never starts with '/', never holds "..", "/.", "\\" or control bytes. */
static void check_relpath(const struct http_request *r)
{
    char out[512];
    if (!r->path.p) /* a 501 leaves the path unset; NULL + 0 is undefined behaviour in C */
        return;
    int n = http_static_relpath(out, sizeof(out), r->path.p, r->path.len);
    if (n < 0)
        return;
    check((size_t)n == strlen(out) && out[0] != '/' && out[0] != '.');
    check(!strstr(out, "/.") && !strchr(out, '\\') && !strstr(out, "//"));
    for (int i = 0; i < n; i++)
        check((unsigned char)out[i] >= 0x20 && out[i] != 0x7f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1); /* exact size: ASan sees any over-read */
    memcpy(buf, data, size);
    struct http_request req, part;
    int rc = http_parse_request(buf, size, 0, NULL, &req);
    check(rc == -EAGAIN || rc == -EBADMSG || rc > 0);
    if (rc > 0) {
        check_request(&req, buf, size, rc);
        check_relpath(&req);
    }
    /* A prefix, then the whole with the re-scan hint: the same verdict as in one piece. */
    size_t k = size ? data[0] % size : 0;
    int prc = http_parse_request(buf, k, 0, NULL, &part);
    if (prc == -EAGAIN) {
        int again = http_parse_request(buf, size, k, NULL, &part);
        /* The hint may defer an error in an unfinished line (see http_parse_request). */
        bool deferred = again == -EAGAIN && rc == -EBADMSG && k > 0 &&
                        size <= http_default_limits.max_head && !memchr(buf + k, '\n', size - k);
        check(deferred || (again == rc && (rc != -EBADMSG || part.status == req.status)));
    } else if (rc > 0) {
        check(prc == rc);
    } else {
        check(prc == rc && part.status == req.status);
    }
    free(buf);
    return 0;
}
