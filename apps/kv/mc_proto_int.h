/*
 * Internals of the memcached text parser shared by mc_proto.c (framing, classic commands) and
 * mc_meta_parse.c (meta commands). Not for use elsewhere (tests may).
 */
#ifndef MC_PROTO_INT_H
#define MC_PROTO_INT_H

#include "mc_proto.h"

/* memcached's MAX_TOKENS: 23 words plus a terminal token that marks unread text. */
#define MC_MAX_TOKENS 24

struct mc_tok {
    const char *p;
    size_t len;
};

/* A tokenized line. n counts the terminal token, as memcached's ntokens does. */
struct mc_line {
    struct mc_tok t[MC_MAX_TOKENS];
    size_t n;
    const char *start; /* first byte of the line */
    const char *end;   /* end of its content (before "\r\n" or "\n") */
    size_t size;       /* bytes the line occupies, "\n" included */
};

/* What a command parser needs besides the line: the buffer for the data block. */
struct mc_ctx {
    struct mc_parser *p;
    const char *buf;
    size_t len;
    struct mc_cmd *cmd;
};

/* Keys: 1..250 bytes, no control bytes (a deliberate addition to memcached's length check)
 * unless p->lax_keys. */
bool mc__key_ok(const struct mc_parser *p, const char *k, size_t n);

/* The command answers err; `consumed` bytes are used up. */
ssize_t mc__fail(struct mc_ctx *x, enum mc_err err, size_t consumed);

/* The command answers err and its data block of `block` bytes is discarded as it arrives. */
ssize_t mc__fail_swallow(struct mc_ctx *x, const struct mc_line *l, enum mc_err err, size_t block);

/* The command is op; `consumed` bytes are used up. */
ssize_t mc__done(struct mc_ctx *x, enum mc_op op, size_t consumed);

/*
 * The data block of a storage command (classic or ms) whose line is l and whose value is vlen
 * bytes: refused as too large (answered at once, swallowed as it arrives), not all there yet
 * (returns 0 with p->need set), not ended by "\r\n" (bad data chunk, consumed), or taken
 * into cmd->data. cmd->op and cmd->key must be set.
 */
ssize_t mc__read_block(struct mc_ctx *x, const struct mc_line *l, size_t vlen);

/* A meta command line (the first token is "m" and one more byte). */
ssize_t mc__parse_meta(struct mc_ctx *x, const struct mc_line *l);

#endif
