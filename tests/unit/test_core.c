/* Unit tests for the small core modules: err, arena, buf, clock. */
#include "core/arena.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "test.h"

#include <stdint.h>

TEST(err_table_maps_codes_names_and_statuses)
{
    CHECK_STR(cb_err_name(CB_EINVALID_FIELD), "invalid_field");
    CHECK_INT(cb_err_http_status(CB_EINVALID_FIELD), 400);
    CHECK_STR(cb_err_name(CB_EUNAUTHORIZED), "unauthorized");
    CHECK_INT(cb_err_http_status(CB_EUNAUTHORIZED), 401);
    CHECK_INT(cb_err_http_status(CB_EFORBIDDEN), 403);
    CHECK_INT(cb_err_http_status(CB_ENOT_FOUND), 404);
    CHECK_INT(cb_err_http_status(CB_ETOO_LARGE), 413);
    CHECK_INT(cb_err_http_status(CB_ESTORAGE_FULL), 507);
    CHECK_STR(cb_err_name(CB_ECONFIG), "invalid_config");
    CHECK(cb_err_valid(0));
    CHECK(cb_err_valid(CB_ECONFIG));
    CHECK(!cb_err_valid(CB_ECONFIG - 1));
    CHECK(!cb_err_valid(1));
    CHECK_STR(cb_strerror(-9999), "unknown error");
    CHECK_INT(cb_err_http_status(-9999), 500);
}

TEST(err_set_fills_field_and_message)
{
    cb_error e;
    int rc = cb_error_set(&e, CB_EMISSING_FIELD, "readings[3].value", "value %d missing", 3);
    CHECK_INT(rc, CB_EMISSING_FIELD);
    CHECK_INT(e.code, CB_EMISSING_FIELD);
    CHECK_STR(e.field, "readings[3].value");
    CHECK_STR(e.message, "value 3 missing");
    cb_error_set(&e, CB_ENOT_FOUND, NULL, NULL);
    CHECK_STR(e.field, "");
    CHECK_STR(e.message, "no such resource");
    CHECK_INT(cb_error_set(NULL, CB_EIO, "x", "y"), CB_EIO);
}

TEST(arena_allocations_are_aligned_distinct_and_survive_growth)
{
    arena *a = arena_create(64);
    CHECK(a != NULL);
    char *first = arena_strdup(a, "first");
    void *ptrs[200];
    for (int i = 0; i < 200; i++) {
        ptrs[i] = arena_alloc(a, (size_t)(i % 37) + 1);
        CHECK(((uintptr_t)ptrs[i] % 16) == 0);
        memset(ptrs[i], i & 0xff, (size_t)(i % 37) + 1);
    }
    for (int i = 0; i < 200; i++)
        CHECK(((unsigned char *)ptrs[i])[0] == (i & 0xff));
    CHECK_STR(first, "first");
    char *big = arena_alloc(a, 100000);
    CHECK(big != NULL);
    CHECK_STR(arena_printf(a, "%s-%d", "cell", 42), "cell-42");
    CHECK_STR(arena_strndup(a, "abcdef", 3), "abc");
    CHECK(arena_used(a) > 100000);
    arena_reset(a);
    CHECK_INT(arena_used(a), 0);
    CHECK(arena_alloc(a, (size_t)-1) == NULL);
    arena_destroy(a);
}

TEST(buf_appends_and_formats)
{
    buf b = BUF_INIT;
    for (int i = 0; i < 1000; i++)
        buf_printf(&b, "%d,", i);
    buf_puts(&b, "end");
    CHECK(!buf_failed(&b));
    CHECK(strncmp(b.data, "0,1,2,", 6) == 0);
    CHECK_STR(b.data + b.len - 7, "999,end");
    CHECK_INT(b.len, strlen(b.data));
    buf_free(&b);
    CHECK(b.data == NULL);
}

TEST(clock_formats_rfc3339)
{
    char t[CLOCK_RFC3339_MAX];
    CHECK_STR(clock_format_rfc3339(0, t), "1970-01-01T00:00:00.000Z");
    CHECK_STR(clock_format_rfc3339(1795428000123LL, t), "2026-11-23T10:00:00.123Z");
    CHECK_STR(clock_format_rfc3339(-1, t), "1969-12-31T23:59:59.999Z");
    CHECK(clock_now_ms() > 1700000000000LL);
    int64_t ms;
    CHECK_INT(clock_parse_rfc3339("2026-11-23T10:00:00.123Z", &ms), 0);
    CHECK_INT(ms, 1795428000123LL);
    CHECK_INT(clock_parse_rfc3339("2026-11-23T18:00:00+08:00", &ms), 0);
    CHECK_INT(ms, 1795428000000LL);
    CHECK_INT(clock_parse_rfc3339("2026-11-23 10:00:00.5z", &ms), 0);
    CHECK_INT(ms, 1795428000500LL);
    CHECK_INT(clock_parse_rfc3339("1969-12-31T23:59:59.999Z", &ms), 0);
    CHECK_INT(ms, -1);
    CHECK_INT(clock_parse_rfc3339("2024-02-29T00:00:00Z", &ms), 0);
    CHECK_INT(clock_parse_rfc3339("2026-13-01T00:00:00Z", &ms), -1);
    CHECK_INT(clock_parse_rfc3339("2026-11-23T10:00:00", &ms), -1);
    CHECK_INT(clock_parse_rfc3339("2026-11-23T10:00:00Zjunk", &ms), -1);
    CHECK_INT(clock_parse_rfc3339("2026-11-23T10:00:00.Z", &ms), -1);
    CHECK_INT(clock_parse_rfc3339("", &ms), -1);
    int64_t m1 = clock_mono_ms(), m2 = clock_mono_ms();
    CHECK(m2 >= m1);
}

TEST_MAIN(err_table_maps_codes_names_and_statuses, err_set_fills_field_and_message,
          arena_allocations_are_aligned_distinct_and_survive_growth, buf_appends_and_formats,
          clock_formats_rfc3339)
