/*
 * A main() for a fuzz target built without libFuzzer (-DFUZZ_STANDALONE, any compiler): runs
 * LLVMFuzzerTestOneInput once on each file named on the command line.
 */
#ifndef SN_FUZZ_STANDALONE_H
#define SN_FUZZ_STANDALONE_H

#include <stdint.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    static uint8_t buf[1 << 20];
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (!f) {
            perror(argv[i]);
            return 1;
        }
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        LLVMFuzzerTestOneInput(buf, n);
        printf("%s: ok\n", argv[i]);
    }
    return 0;
}

#endif
