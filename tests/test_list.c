/* The intrusive list (include/sn/list.h) and SN_CONTAINER_OF (include/sn/common.h). */
#include <criterion/criterion.h>

#include <sn.h>

#include <stdlib.h>

struct item {
    int value;
    struct sn_list_node link;
};

static struct item *item_of(struct sn_list_node *n)
{
    return n ? SN_CONTAINER_OF(n, struct item, link) : NULL;
}

/* Checks that `l` holds exactly want[0..n) front to back, walking both ways. */
static void expect_order(const struct sn_list *l, const int *want, int n)
{
    int i = 0;
    for (struct sn_list_node *x = sn_list_first(l); x; x = sn_list_next(l, x), i++) {
        cr_assert_lt(i, n, "more nodes than expected");
        cr_expect_eq(item_of(x)->value, want[i], "node %d: %d, want %d", i, item_of(x)->value,
                     want[i]);
    }
    cr_assert_eq(i, n, "%d nodes, want %d", i, n);
    for (struct sn_list_node *x = sn_list_last(l); x; x = sn_list_prev(l, x))
        cr_expect_eq(item_of(x)->value, want[--i], "backwards: node %d", i);
    cr_expect_eq(i, 0);
    cr_expect_eq(sn_list_empty(l), n == 0);
}

Test(list, container_of_recovers_the_object)
{
    struct item it = {.value = 7};
    cr_expect_eq(SN_CONTAINER_OF(&it.link, struct item, link), &it);
    cr_expect_eq(SN_CONTAINER_OF(&it.value, struct item, value), &it);
}

Test(list, empty_list)
{
    struct sn_list l;
    sn_list_init(&l);
    cr_expect(sn_list_empty(&l));
    cr_expect_null(sn_list_first(&l));
    cr_expect_null(sn_list_last(&l));
    cr_expect_null(sn_list_pop_front(&l));
    int visited = 0;
    SN_LIST_FOR_EACH (n, &l)
        visited++;
    cr_expect_eq(visited, 0);
}

Test(list, static_initialiser_makes_an_empty_list)
{
    static struct sn_list l = SN_LIST_INIT(l);
    cr_expect(sn_list_empty(&l));
    struct item a = {.value = 1};
    sn_list_push_back(&l, &a.link);
    cr_expect_eq(sn_list_first(&l), &a.link);
    sn_list_remove(&a.link);
    cr_expect(sn_list_empty(&l));
}

Test(list, push_front_and_back_keep_order)
{
    struct sn_list l;
    struct item it[4] = {{.value = 0}, {.value = 1}, {.value = 2}, {.value = 3}};
    sn_list_init(&l);
    sn_list_push_back(&l, &it[1].link);
    sn_list_push_back(&l, &it[2].link);
    sn_list_push_front(&l, &it[0].link);
    sn_list_insert_before(&it[2].link, &it[3].link);
    expect_order(&l, (int[]){0, 1, 3, 2}, 4);
}

Test(list, linked_tracks_membership)
{
    struct sn_list l;
    struct item a = {.value = 1};
    sn_list_init(&l);
    sn_list_node_init(&a.link);
    cr_expect_not(sn_list_linked(&a.link));
    sn_list_push_back(&l, &a.link);
    cr_expect(sn_list_linked(&a.link));
    sn_list_remove(&a.link);
    cr_expect_not(sn_list_linked(&a.link));
    cr_expect(sn_list_empty(&l));
}

Test(list, remove_first_middle_last)
{
    struct sn_list l;
    struct item it[5];
    sn_list_init(&l);
    for (int i = 0; i < 5; i++) {
        it[i].value = i;
        sn_list_push_back(&l, &it[i].link);
    }
    sn_list_remove(&it[2].link);
    expect_order(&l, (int[]){0, 1, 3, 4}, 4);
    sn_list_remove(&it[0].link);
    expect_order(&l, (int[]){1, 3, 4}, 3);
    sn_list_remove(&it[4].link);
    expect_order(&l, (int[]){1, 3}, 2);
    cr_expect_eq(item_of(sn_list_pop_front(&l)), &it[1]);
    cr_expect_eq(item_of(sn_list_pop_front(&l)), &it[3]);
    expect_order(&l, NULL, 0);
}

Test(list, move_front_is_an_lru_touch)
{
    struct sn_list l;
    struct item it[3] = {{.value = 0}, {.value = 1}, {.value = 2}};
    sn_list_init(&l);
    for (int i = 0; i < 3; i++)
        sn_list_push_back(&l, &it[i].link);
    sn_list_move_front(&l, &it[2].link);
    expect_order(&l, (int[]){2, 0, 1}, 3);
    sn_list_move_front(&l, &it[2].link); /* already first: unchanged */
    expect_order(&l, (int[]){2, 0, 1}, 3);
    sn_list_move_front(&l, &it[0].link);
    expect_order(&l, (int[]){0, 2, 1}, 3);
}

Test(list, for_each_may_remove_the_current_node)
{
    struct sn_list l;
    struct item it[6];
    sn_list_init(&l);
    for (int i = 0; i < 6; i++) {
        it[i].value = i;
        sn_list_push_back(&l, &it[i].link);
    }
    int visited = 0;
    SN_LIST_FOR_EACH (n, &l) {
        visited++;
        if (item_of(n)->value % 2)
            sn_list_remove(n);
    }
    cr_expect_eq(visited, 6);
    expect_order(&l, (int[]){0, 2, 4}, 3);
}

Test(list, for_each_may_free_the_current_node)
{
    /* The way a list is torn down: every node freed inside the walk (ASan checks the reads). */
    struct sn_list l;
    sn_list_init(&l);
    for (int i = 0; i < 100; i++) {
        struct item *x = malloc(sizeof *x);
        cr_assert_not_null(x);
        x->value = i;
        sn_list_push_back(&l, &x->link);
    }
    int sum = 0;
    SN_LIST_FOR_EACH (n, &l) {
        sum += item_of(n)->value;
        free(item_of(n));
    }
    cr_expect_eq(sum, 99 * 100 / 2);
}

Test(list, random_operations_match_a_model)
{
    /* A model array in list order against the real list, over many random operations. */
    enum { N = 64, OPS = 20000 };
    struct item it[N];
    int model[N], len = 0;
    struct sn_list l;
    sn_list_init(&l);
    for (int i = 0; i < N; i++) {
        it[i].value = i;
        sn_list_node_init(&it[i].link);
    }
    unsigned seed = 12345;
    for (int op = 0; op < OPS; op++) {
        seed = seed * 1103515245u + 12345u;
        int i = (int)((seed >> 8) % N);
        int pos = -1;
        for (int k = 0; k < len; k++)
            if (model[k] == i)
                pos = k;
        cr_assert_eq(sn_list_linked(&it[i].link), pos >= 0);
        switch ((seed >> 20) % 3) {
        case 0: /* push front, or remove when linked */
            if (pos < 0) {
                sn_list_push_front(&l, &it[i].link);
                memmove(model + 1, model, (size_t)len * sizeof *model);
                model[0] = i;
                len++;
            } else {
                sn_list_remove(&it[i].link);
                memmove(model + pos, model + pos + 1, (size_t)(len - pos - 1) * sizeof *model);
                len--;
            }
            break;
        case 1: /* push back, or move to the front when linked */
            if (pos < 0) {
                sn_list_push_back(&l, &it[i].link);
                model[len++] = i;
            } else {
                sn_list_move_front(&l, &it[i].link);
                memmove(model + 1, model, (size_t)pos * sizeof *model);
                model[0] = i;
            }
            break;
        default: { /* pop front */
            struct sn_list_node *n = sn_list_pop_front(&l);
            if (!len) {
                cr_assert_null(n);
            } else {
                cr_assert_eq(item_of(n)->value, model[0]);
                memmove(model, model + 1, (size_t)(len - 1) * sizeof *model);
                len--;
            }
            break;
        }
        }
    }
    expect_order(&l, model, len);
}
