/*
 * An intrusive doubly linked list, all static inline: embed a struct sn_list_node in each
 * object, keep a struct sn_list as the head, and get the object back from a node with
 * SN_CONTAINER_OF. Nothing is allocated; every operation is O(1) except walking.
 *
 * The head is circular (an empty list points at itself), so insertion and removal have no
 * special cases. A node that is on no list has NULL links: sn_list_node_init and
 * sn_list_remove leave it so, and sn_list_linked tells.
 *
 *     struct item { int value; struct sn_list_node link; };
 *     struct sn_list items;
 *     sn_list_init(&items);
 *     sn_list_push_back(&items, &it->link);
 *     SN_LIST_FOR_EACH (n, &items) {           // may remove n (not the next node) inside
 *         struct item *x = SN_CONTAINER_OF(n, struct item, link);
 *         ...
 *     }
 *
 * Threads: none of this synchronises. A list and its nodes belong to whoever owns them (in
 * libsn, usually one core); every function is "any thread" as far as libsn is concerned.
 */
#ifndef SN_LIST_H
#define SN_LIST_H

#include <sn/common.h>

#include <stdbool.h>

SN_BEGIN_DECLS

/* A link embedded in a listed object. */
struct sn_list_node {
    struct sn_list_node *prev, *next;
};

/* A list head. Initialise it with sn_list_init (or SN_LIST_INIT) before use. */
struct sn_list {
    struct sn_list_node head;
};

/* A static initialiser: `struct sn_list l = SN_LIST_INIT(l);`. */
#define SN_LIST_INIT(name)                                                                         \
    {                                                                                              \
        {                                                                                          \
            &(name).head, &(name).head                                                             \
        }                                                                                          \
    }

/* Makes `l` an empty list. */
static inline void sn_list_init(struct sn_list *l)
{
    l->head.prev = l->head.next = &l->head;
}

/* Marks `n` as on no list (sn_list_linked false). */
static inline void sn_list_node_init(struct sn_list_node *n)
{
    n->prev = n->next = NULL;
}

/* True when `n` is on a list. */
static inline bool sn_list_linked(const struct sn_list_node *n)
{
    return n->next != NULL;
}

/* True when `l` holds no node. */
static inline bool sn_list_empty(const struct sn_list *l)
{
    return l->head.next == &l->head;
}

/* Links `n` (on no list) between `prev` and `next`, two adjacent nodes. */
static inline void sn__list_link(struct sn_list_node *n, struct sn_list_node *prev,
                                 struct sn_list_node *next)
{
    n->prev = prev;
    n->next = next;
    prev->next = n;
    next->prev = n;
}

/* Inserts `n` (on no list) at the front of `l`. */
static inline void sn_list_push_front(struct sn_list *l, struct sn_list_node *n)
{
    sn__list_link(n, &l->head, l->head.next);
}

/* Inserts `n` (on no list) at the back of `l`. */
static inline void sn_list_push_back(struct sn_list *l, struct sn_list_node *n)
{
    sn__list_link(n, l->head.prev, &l->head);
}

/* Inserts `n` (on no list) just before `pos`, a node of some list. */
static inline void sn_list_insert_before(struct sn_list_node *pos, struct sn_list_node *n)
{
    sn__list_link(n, pos->prev, pos);
}

/* Unlinks `n` from its list (it must be on one) and marks it as on no list. */
static inline void sn_list_remove(struct sn_list_node *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = NULL;
}

/* Moves `n`, a node of `l`, to the front of `l` (an LRU's "touch"). */
static inline void sn_list_move_front(struct sn_list *l, struct sn_list_node *n)
{
    if (l->head.next == n)
        return;
    sn_list_remove(n);
    sn_list_push_front(l, n);
}

/* The first node of `l`, or NULL when it is empty. */
static inline struct sn_list_node *sn_list_first(const struct sn_list *l)
{
    return sn_list_empty(l) ? NULL : l->head.next;
}

/* The last node of `l`, or NULL when it is empty. */
static inline struct sn_list_node *sn_list_last(const struct sn_list *l)
{
    return sn_list_empty(l) ? NULL : l->head.prev;
}

/* The node after `n` in `l`, or NULL when `n` is the last. */
static inline struct sn_list_node *sn_list_next(const struct sn_list *l,
                                                const struct sn_list_node *n)
{
    return n->next == &l->head ? NULL : n->next;
}

/* The node before `n` in `l`, or NULL when `n` is the first. */
static inline struct sn_list_node *sn_list_prev(const struct sn_list *l,
                                                const struct sn_list_node *n)
{
    return n->prev == &l->head ? NULL : n->prev;
}

/* Unlinks and returns the first node of `l`, or NULL when it is empty. */
static inline struct sn_list_node *sn_list_pop_front(struct sn_list *l)
{
    struct sn_list_node *n = sn_list_first(l);
    if (n)
        sn_list_remove(n);
    return n;
}

/*
 * Walks `l` front to back with `node` (a struct sn_list_node * declared by the macro). The
 * body may remove `node` itself, and may insert anywhere, but must not remove the node after
 * it (the walk has already read that one's address).
 */
#define SN_LIST_FOR_EACH(node, l)                                                                  \
    for (struct sn_list_node *node = (l)->head.next, *node##_next_ = node->next;                   \
         node != &(l)->head; node = node##_next_, node##_next_ = node->next)

SN_END_DECLS

#endif
