/*
 * Internal: the body of a multi-lane MD5 for one vector width, included by md5_lanes.c once
 * per width with these defined:
 *   LANES      number of uint32 lanes of VEC (8 or 16)
 *   VEC        a GCC vector type of LANES uint32_t
 *   FN         the function's name
 *   FN_TARGET  the __attribute__((target(...))) string the width needs
 * The function is static void FN(keys, count, a_out): for each lane l < count (count <=
 * LANES), a_out[l] = the first state word of MD5(keys[l]) (digest bytes 0..3, little-endian),
 * the value ketama needs.
 */
__attribute__((target(FN_TARGET))) static void FN(const struct sn_partition_key *keys,
                                                  unsigned count, uint32_t *a_out)
{
    /* words[blk][w][lane]: message word w of block blk of each lane, so that one vector load
     * gives word w for all lanes. Lanes past count and blocks past a lane's end stay 0 and
     * their results are masked out. */
    uint32_t words[MD5_LANES_MAX_BLOCKS][16][LANES] __attribute__((aligned(64)));
    uint32_t nblocks[LANES] __attribute__((aligned(64)));
    unsigned most = fill_lanes(keys, count, &words[0][0][0], nblocks, LANES);

    VEC sa = {0}, sb = {0}, sc = {0}, sd = {0};
    sa += MD5_IV_A;
    sb += MD5_IV_B;
    sc += MD5_IV_C;
    sd += MD5_IV_D;
    VEC lane_blocks;
    memcpy(&lane_blocks, nblocks, sizeof(lane_blocks));
    for (unsigned blk = 0; blk < most; blk++) {
        VEC x[16];
        memcpy(x, words[blk], sizeof(x));
        VEC a = sa, b = sb, c = sc, d = sd;
        MD5_64_STEPS();
        /* Lanes whose message has ended keep their state: live is all-ones where blk is one
         * of the lane's blocks. */
        VEC live = (VEC)(lane_blocks > blk);
        sa += a & live;
        sb += b & live;
        sc += c & live;
        sd += d & live;
    }
    for (unsigned l = 0; l < count; l++)
        a_out[l] = sa[l];
}
