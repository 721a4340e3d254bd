/*
 * The meta protocol of memcached 1.6 (apps/kv): mg, ms, md, ma, me, mn, answered byte for byte
 * as Debian's memcached 1.6.18 answers them. mc_meta_parse.c reads the lines (mc_parse calls
 * it), mc_meta_exec.c runs them on the store that owns the key and writes the answers.
 *
 * What is supported (memcached's protocol.txt describes each flag):
 *   mg <key> <flags>*   b c f h k l O q s t u v, N(ttl) R(ttl) T(ttl): HD / VA <n> / EN, and
 *                       the W (won), X (stale), Z (win already sent) flags.
 *   ms <key> <n> <flags>*  b c C(cas) F(flags) I k O q T(ttl) M(E A P R S): HD / NS / EX / NF.
 *   md <key> <flags>*   b C(cas) I k O q T(ttl, with I): HD / NF / EX.
 *   ma <key> <flags>*   b c C(cas) N(ttl) J(initial) D(delta) T(ttl) M(I + D -) q t k O v:
 *                       HD / VA <n> / NF / NS / EX.
 *   me <key> [b]        ME <key> exp= la= cas= fetch= cls= size= / EN.
 *   mn                  MN.
 * P and L are taken and ignored everywhere; any flag letter memcached knows is accepted by
 * every command (and ignored where it means nothing), as memcached does. Quiet mode (q) hides
 * what memcached hides: EN for mg, HD for ms and md, HD/VA of a successful ma; errors are
 * always sent. Replies keep request order, also for keys on other cores and with q (an mn
 * after quiet commands comes back after all of their answers).
 *
 * The order of the flags matters where memcached's does: answers list the flags in request
 * order, and mg/ma apply T and N and check R at their place, so "mg k t T30" shows the TTL
 * before the change and "mg k T30 t" after it; an O token over 32 bytes in mg or ma is
 * reported when its turn comes, after what the flags before it did.
 *
 * Deliberate differences from 1.6.18:
 *  - E(token) (a later memcached's flag: use token as the new cas unique of the item that ms,
 *    md I, ma or mg N stores or changes) is accepted; 1.6.18 answers CLIENT_ERROR invalid flag.
 *  - me shows this server's own numbers: cas as below, size as this store counts an item
 *    (mc_item_size), cls=1 (there are no slab classes).
 *  - cas values are this server's (per-core sequences; see mc_store.h), not memcached's.
 *  - As for the classic commands: keys with control bytes and numbers that overflow their
 *    32-bit field (T N R F, <datalen>) are refused where memcached takes or truncates them.
 *
 * Threads: mc_meta_exec runs on the core that owns `s`.
 */
#ifndef MC_META_H
#define MC_META_H

#include "mc_proto.h"
#include "mc_reply.h"
#include "mc_store.h"

/*
 * Runs mg, ms, md, ma or me on s and appends its answer to out (nothing when quiet mode hides
 * it). 0, -ENOMEM when out could not grow (the store change has happened, as with mc_exec),
 * -EINVAL for another command.
 */
int mc_meta_exec(struct mc_store *s, const struct mc_cmd *cmd, struct app_outbuf *out);

/*
 * The answer to a binary protocol request (cmd->op == MC_OP_BINARY): a binary response with
 * status "unknown command" and a text saying this server speaks the text protocols; the
 * connection is then closed. 0 or -ENOMEM.
 */
int mc_meta_binary_refusal(const struct mc_cmd *cmd, struct app_outbuf *out);

#endif
