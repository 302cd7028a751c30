/* require — the fuzz targets' assertion: a broken contract aborts, so libFuzzer
 * keeps the input (and `make test`'s replay fails on it), whatever NDEBUG says. */
#ifndef CB_FUZZ_REQUIRE_H
#define CB_FUZZ_REQUIRE_H

#include <stdio.h>
#include <stdlib.h>

#define REQUIRE(cond)                                                                \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: REQUIRE(%s) failed\n", __FILE__, __LINE__, #cond); \
            abort();                                                                 \
        }                                                                            \
    } while (0)

#endif
