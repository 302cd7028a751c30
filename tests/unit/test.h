/* test — citybrain's in-tree unit test harness.
 *
 * A test file defines functions with TEST(name) and lists them in
 * TEST_MAIN(test_a, test_b, ...). CHECK* record a failure and go on; the run
 * prints one line per failed check and ends with "N passed, N failed"; the
 * exit status is non-zero when any test failed. */
#ifndef CB_TEST_H
#define CB_TEST_H

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int test_failed_checks_;

#define TEST(name) static void name(void)

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
            test_failed_checks_++;                                                   \
        }                                                                            \
    } while (0)

#define CHECK_INT(a, b)                                                              \
    do {                                                                             \
        long long a_ = (long long)(a), b_ = (long long)(b);                          \
        if (a_ != b_) {                                                              \
            fprintf(stderr, "  %s:%d: %s == %lld, expected %s == %lld\n", __FILE__, \
                    __LINE__, #a, a_, #b, b_);                                       \
            test_failed_checks_++;                                                   \
        }                                                                            \
    } while (0)

#define CHECK_STR(a, b)                                                              \
    do {                                                                             \
        const char *a_ = (a), *b_ = (b);                                             \
        if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                     \
            fprintf(stderr, "  %s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__,   \
                    __LINE__, #a, a_ ? a_ : "(null)", b_ ? b_ : "(null)");           \
            test_failed_checks_++;                                                   \
        }                                                                            \
    } while (0)

/* A fresh temporary directory; dir holds at least 32 bytes. Exits on failure:
 * a test without its directory cannot say anything. */
static inline void test_make_dir(char *dir)
{
    strcpy(dir, "/tmp/cb_test.XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(2);
    }
}

/* Removes a flat directory made by test_make_dir and the files in it. */
static inline void test_remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

typedef void (*test_fn)(void);
struct test_case {
    const char *name;
    test_fn fn;
};

static inline int test_run_all(const char *file, const struct test_case *cases, size_t n)
{
    int passed = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        int before = test_failed_checks_;
        cases[i].fn();
        if (test_failed_checks_ == before) {
            passed++;
        } else {
            failed++;
            fprintf(stderr, "FAIL %s: %s\n", file, cases[i].name);
        }
    }
    printf("%s: %d passed, %d failed\n", file, passed, failed);
    return failed ? 1 : 0;
}

#define TEST_ENTRY_(fn) {#fn, fn},
#define TEST_MAIN(...)                                                               \
    int main(void)                                                                   \
    {                                                                                \
        static const struct test_case cases_[] = {TEST_FOREACH_(TEST_ENTRY_, __VA_ARGS__)}; \
        return test_run_all(__FILE__, cases_, sizeof cases_ / sizeof cases_[0]);     \
    }

/* Up to 32 tests per file. */
#define TEST_FOREACH_(M, ...) TEST_FE_N_(__VA_ARGS__, TEST_FE_32_, TEST_FE_31_, TEST_FE_30_, TEST_FE_29_, TEST_FE_28_, TEST_FE_27_, TEST_FE_26_, TEST_FE_25_, TEST_FE_24_, TEST_FE_23_, TEST_FE_22_, TEST_FE_21_, TEST_FE_20_, TEST_FE_19_, TEST_FE_18_, TEST_FE_17_, TEST_FE_16_, TEST_FE_15_, TEST_FE_14_, TEST_FE_13_, TEST_FE_12_, TEST_FE_11_, TEST_FE_10_, TEST_FE_9_, TEST_FE_8_, TEST_FE_7_, TEST_FE_6_, TEST_FE_5_, TEST_FE_4_, TEST_FE_3_, TEST_FE_2_, TEST_FE_1_)(M, __VA_ARGS__)
#define TEST_FE_N_(_1,_2,_3,_4,_5,_6,_7,_8,_9,_10,_11,_12,_13,_14,_15,_16,_17,_18,_19,_20,_21,_22,_23,_24,_25,_26,_27,_28,_29,_30,_31,_32,N,...) N
#define TEST_FE_1_(M, x) M(x)
#define TEST_FE_2_(M, x, ...) M(x) TEST_FE_1_(M, __VA_ARGS__)
#define TEST_FE_3_(M, x, ...) M(x) TEST_FE_2_(M, __VA_ARGS__)
#define TEST_FE_4_(M, x, ...) M(x) TEST_FE_3_(M, __VA_ARGS__)
#define TEST_FE_5_(M, x, ...) M(x) TEST_FE_4_(M, __VA_ARGS__)
#define TEST_FE_6_(M, x, ...) M(x) TEST_FE_5_(M, __VA_ARGS__)
#define TEST_FE_7_(M, x, ...) M(x) TEST_FE_6_(M, __VA_ARGS__)
#define TEST_FE_8_(M, x, ...) M(x) TEST_FE_7_(M, __VA_ARGS__)
#define TEST_FE_9_(M, x, ...) M(x) TEST_FE_8_(M, __VA_ARGS__)
#define TEST_FE_10_(M, x, ...) M(x) TEST_FE_9_(M, __VA_ARGS__)
#define TEST_FE_11_(M, x, ...) M(x) TEST_FE_10_(M, __VA_ARGS__)
#define TEST_FE_12_(M, x, ...) M(x) TEST_FE_11_(M, __VA_ARGS__)
#define TEST_FE_13_(M, x, ...) M(x) TEST_FE_12_(M, __VA_ARGS__)
#define TEST_FE_14_(M, x, ...) M(x) TEST_FE_13_(M, __VA_ARGS__)
#define TEST_FE_15_(M, x, ...) M(x) TEST_FE_14_(M, __VA_ARGS__)
#define TEST_FE_16_(M, x, ...) M(x) TEST_FE_15_(M, __VA_ARGS__)
#define TEST_FE_17_(M, x, ...) M(x) TEST_FE_16_(M, __VA_ARGS__)
#define TEST_FE_18_(M, x, ...) M(x) TEST_FE_17_(M, __VA_ARGS__)
#define TEST_FE_19_(M, x, ...) M(x) TEST_FE_18_(M, __VA_ARGS__)
#define TEST_FE_20_(M, x, ...) M(x) TEST_FE_19_(M, __VA_ARGS__)
#define TEST_FE_21_(M, x, ...) M(x) TEST_FE_20_(M, __VA_ARGS__)
#define TEST_FE_22_(M, x, ...) M(x) TEST_FE_21_(M, __VA_ARGS__)
#define TEST_FE_23_(M, x, ...) M(x) TEST_FE_22_(M, __VA_ARGS__)
#define TEST_FE_24_(M, x, ...) M(x) TEST_FE_23_(M, __VA_ARGS__)
#define TEST_FE_25_(M, x, ...) M(x) TEST_FE_24_(M, __VA_ARGS__)
#define TEST_FE_26_(M, x, ...) M(x) TEST_FE_25_(M, __VA_ARGS__)
#define TEST_FE_27_(M, x, ...) M(x) TEST_FE_26_(M, __VA_ARGS__)
#define TEST_FE_28_(M, x, ...) M(x) TEST_FE_27_(M, __VA_ARGS__)
#define TEST_FE_29_(M, x, ...) M(x) TEST_FE_28_(M, __VA_ARGS__)
#define TEST_FE_30_(M, x, ...) M(x) TEST_FE_29_(M, __VA_ARGS__)
#define TEST_FE_31_(M, x, ...) M(x) TEST_FE_30_(M, __VA_ARGS__)
#define TEST_FE_32_(M, x, ...) M(x) TEST_FE_31_(M, __VA_ARGS__)

#endif
