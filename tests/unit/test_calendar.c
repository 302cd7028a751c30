/* Unit tests of the city calendar: working days, work periods, holidays,
 * make-up days, working-time arithmetic across every kind of edge. */
#include "test.h"

#include "cases/calendar.h"
#include "core/clock.h"

#define MIN 60000LL
#define HOUR (60 * MIN)

/* Local Asia/Shanghai time "2026-11-23 08:30" as ms since the epoch. */
static int64_t at(const char *local)
{
    char buf[64];
    int64_t ms = 0;
    snprintf(buf, sizeof buf, "%.10sT%s:00+08:00", local, local + 11);
    if (clock_parse_rfc3339(buf, &ms) != 0) {
        fprintf(stderr, "bad test time %s\n", local);
        exit(2);
    }
    return ms;
}

/* The 2026 calendar as shipped in city/calendar-2026.json (a part of it). */
static calendar *china_2026(void)
{
    calendar *c = calendar_create();
    json_t *doc = json_pack("{s:[[s,s],[s,s]], s:[s,s,s,s,s,s,s, {s:s}], s:[s,s,s]}", "periods", "08:00", "12:00",
                            "14:00", "18:00", "holidays", "2026-10-01", "2026-10-02", "2026-10-03", "2026-10-04",
                            "2026-10-05", "2026-10-06", "2026-10-07", "date", "2026-01-01", "workdays", "2026-10-10",
                            "2026-09-20", "2026-02-14");
    cb_error err;
    CHECK_INT(calendar_load_json(c, doc, &err), 0);
    json_decref(doc);
    return c;
}

TEST(test_days)
{
    calendar *c = china_2026();
    CHECK(calendar_is_workday(c, at("2026-11-23 10:00")));  /* Monday */
    CHECK(calendar_is_workday(c, at("2026-11-27 23:59")));  /* Friday night */
    CHECK(!calendar_is_workday(c, at("2026-11-28 10:00"))); /* Saturday */
    CHECK(!calendar_is_workday(c, at("2026-11-29 00:00"))); /* Sunday */
    CHECK(!calendar_is_workday(c, at("2026-10-01 10:00"))); /* 国庆, a Thursday */
    CHECK(!calendar_is_workday(c, at("2026-01-01 09:00"))); /* 元旦, given as an object */
    CHECK(calendar_is_workday(c, at("2026-10-10 10:00")));  /* make-up Saturday */
    CHECK(calendar_is_workday(c, at("2026-09-20 10:00")));  /* make-up Sunday */
    /* the local day starts at 00:00 +08:00, i.e. 16:00 UTC the day before */
    CHECK(calendar_is_workday(c, at("2026-11-30 00:00")));
    CHECK(!calendar_is_workday(c, at("2026-11-29 23:59")));
    calendar_free(c);
}

TEST(test_add_within_a_day)
{
    calendar *c = china_2026();
    CHECK_INT(calendar_add_working(c, at("2026-11-23 09:00"), 60), at("2026-11-23 10:00"));
    CHECK_INT(calendar_add_working(c, at("2026-11-23 11:00"), 60), at("2026-11-23 12:00")); /* ends at the edge */
    CHECK_INT(calendar_add_working(c, at("2026-11-23 11:30"), 60), at("2026-11-23 14:30")); /* over lunch */
    CHECK_INT(calendar_add_working(c, at("2026-11-23 12:30"), 30), at("2026-11-23 14:30")); /* starts in lunch */
    CHECK_INT(calendar_add_working(c, at("2026-11-23 07:00"), 30), at("2026-11-23 08:30")); /* before work */
    CHECK_INT(calendar_add_working(c, at("2026-11-23 08:00"), 480), at("2026-11-23 18:00")); /* the whole day */
    CHECK_INT(calendar_add_working(c, at("2026-11-23 12:00"), 0), at("2026-11-23 12:00"));
    CHECK_INT(calendar_add_working(c, at("2026-11-23 12:00"), -5), at("2026-11-23 12:00"));
    CHECK_INT(calendar_add_working(c, at("2026-11-23 12:00"), 1), at("2026-11-23 14:01"));
    calendar_free(c);
}

TEST(test_add_across_days)
{
    calendar *c = china_2026();
    CHECK_INT(calendar_add_working(c, at("2026-11-23 17:30"), 60), at("2026-11-24 08:30"));
    CHECK_INT(calendar_add_working(c, at("2026-11-23 18:00"), 1), at("2026-11-24 08:01"));
    CHECK_INT(calendar_add_working(c, at("2026-11-23 23:00"), 1), at("2026-11-24 08:01"));
    CHECK_INT(calendar_add_working(c, at("2026-11-27 17:00"), 120), at("2026-11-30 09:00")); /* over a weekend */
    CHECK_INT(calendar_add_working(c, at("2026-11-28 10:00"), 60), at("2026-11-30 09:00"));  /* from a Saturday */
    CHECK_INT(calendar_add_working(c, at("2026-11-23 08:00"), 5 * 480), at("2026-11-27 18:00")); /* a week */
    CHECK_INT(calendar_add_working(c, at("2026-11-23 08:00"), 5 * 480 + 1), at("2026-11-30 08:01"));
    /* 国庆: Sept 30 (Wed) 17:00 + 2 h: one hour that day, then October 1-7 are off,
     * Oct 8 is a Thursday */
    CHECK_INT(calendar_add_working(c, at("2026-09-30 17:00"), 120), at("2026-10-08 09:00"));
    /* the make-up Saturday after it counts */
    CHECK_INT(calendar_add_working(c, at("2026-10-09 17:00"), 120), at("2026-10-10 09:00"));
    /* and the make-up Sunday before it */
    CHECK_INT(calendar_add_working(c, at("2026-09-19 10:00"), 30), at("2026-09-20 08:30"));
    calendar_free(c);
}

TEST(test_working_between)
{
    calendar *c = china_2026();
    CHECK_INT(calendar_working_ms(c, at("2026-11-23 08:00"), at("2026-11-23 18:00")), 8 * HOUR);
    CHECK_INT(calendar_working_ms(c, at("2026-11-23 11:00"), at("2026-11-23 15:00")), 2 * HOUR);
    CHECK_INT(calendar_working_ms(c, at("2026-11-23 12:10"), at("2026-11-23 13:50")), 0);
    CHECK_INT(calendar_working_ms(c, at("2026-11-27 17:00"), at("2026-11-30 09:00")), 2 * HOUR);
    CHECK_INT(calendar_working_ms(c, at("2026-11-28 00:00"), at("2026-11-29 23:59")), 0);
    CHECK_INT(calendar_working_ms(c, at("2026-11-30 09:00"), at("2026-11-27 17:00")), -2 * HOUR);
    CHECK_INT(calendar_working_ms(c, at("2026-09-30 00:00"), at("2026-10-11 00:00")),
              4 * 8 * HOUR); /* Sept 30, Oct 8 (Thu), Oct 9 (Fri), Oct 10 (make-up Saturday) */
    calendar_free(c);
}

/* Adding then measuring gives back what was added, from any start. */
TEST(test_add_measure_roundtrip)
{
    calendar *c = china_2026();
    uint64_t x = 88172645463325252ULL;
    int bad = 0;
    for (int i = 0; i < 2000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int64_t t = at("2026-09-01 00:00") + (int64_t)(x % (90ULL * 24 * 60)) * MIN;
        int64_t minutes = (int64_t)((x >> 20) % 5000);
        int64_t end = calendar_add_working(c, t, minutes);
        if (calendar_working_ms(c, t, end) != minutes * MIN)
            bad++;
        if (minutes > 0 && !calendar_is_workday(c, end - 1))
            bad++; /* the deadline falls inside working time */
    }
    CHECK_INT(bad, 0);
    calendar_free(c);
}

TEST(test_natural)
{
    CHECK_INT(calendar_add_natural(at("2026-11-28 23:00"), 120), at("2026-11-29 01:00"));
}

TEST(test_days_text)
{
    int64_t d;
    char out[11];
    CHECK_INT(calendar_parse_day("2026-11-23", &d), 0);
    calendar_format_day(d, out);
    CHECK_STR(out, "2026-11-23");
    CHECK_INT(calendar_local_day(at("2026-11-23 00:00")), d);
    CHECK_INT(calendar_local_day(at("2026-11-22 23:59")), d - 1);
    CHECK_INT(calendar_parse_day("2024-02-29", &d), 0);
    calendar_format_day(d, out);
    CHECK_STR(out, "2024-02-29");
    CHECK_INT(calendar_parse_day("2026-02-29", &d), -1);
    CHECK_INT(calendar_parse_day("2026-13-01", &d), -1);
    CHECK_INT(calendar_parse_day("2026-1-1", &d), -1);
    CHECK_INT(calendar_parse_day("2026-01-01x", &d), -1);
    CHECK_INT(calendar_parse_day(NULL, &d), -1);
}

TEST(test_periods)
{
    calendar *c = calendar_create();
    cb_error err;
    const int overlap[2][2] = {{480, 720}, {700, 1080}};
    CHECK_INT(calendar_set_periods(c, overlap, 2, &err), CB_EINVALID_FIELD);
    const int empty[1][2] = {{600, 600}};
    CHECK_INT(calendar_set_periods(c, empty, 1, &err), CB_EINVALID_FIELD);
    const int one[1][2] = {{510, 1050}}; /* 08:30-17:30 without a break */
    CHECK_INT(calendar_set_periods(c, one, 1, &err), 0);
    CHECK_INT(calendar_add_working(c, at("2026-11-23 08:00"), 60), at("2026-11-23 09:30"));
    CHECK_INT(calendar_add_working(c, at("2026-11-23 12:00"), 60), at("2026-11-23 13:00"));
    CHECK_INT(calendar_set_day(c, "2026-11-24", CALENDAR_HOLIDAY, &err), 0);
    CHECK_INT(calendar_add_working(c, at("2026-11-23 17:00"), 60), at("2026-11-25 09:00"));
    CHECK_INT(calendar_set_day(c, "2026-11-24", CALENDAR_WORKDAY, &err), 0); /* the later entry wins */
    CHECK_INT(calendar_add_working(c, at("2026-11-23 17:00"), 60), at("2026-11-24 09:00"));
    CHECK_INT(calendar_set_day(c, "24.11.2026", CALENDAR_HOLIDAY, &err), CB_EINVALID_FIELD);
    json_t *bad = json_pack("{s:[[s,s]]}", "periods", "8:00", "25:00");
    CHECK_INT(calendar_load_json(c, bad, &err), CB_EINVALID_FIELD);
    json_decref(bad);
    bad = json_pack("{s:[s]}", "holidays", "2026-02-30");
    CHECK_INT(calendar_load_json(c, bad, &err), CB_EINVALID_FIELD);
    CHECK_STR(err.field, "holidays[0]");
    json_decref(bad);
    calendar_free(c);
}

/* No working day for ten years: the answer says "never" rather than loop. */
TEST(test_no_working_days)
{
    calendar *c = calendar_create();
    cb_error err;
    int64_t first;
    CHECK_INT(calendar_parse_day("2026-11-23", &first), 0);
    for (int64_t d = first; d < first + 3700; d++) {
        char day[11];
        calendar_format_day(d, day);
        CHECK_INT(calendar_set_day(c, day, CALENDAR_HOLIDAY, &err), 0);
    }
    CHECK(calendar_add_working(c, at("2026-11-24 09:00"), 60) == INT64_MAX);
    CHECK_INT(calendar_working_ms(c, at("2026-11-24 09:00"), at("2026-11-30 09:00")), 0);
    calendar_free(c);
}

/* The file the server loads on first start. */
TEST(test_shipped_2026)
{
    json_error_t je;
    json_t *doc = json_load_file("city/calendar-2026.json", 0, &je);
    CHECK(doc != NULL);
    if (!doc)
        return;
    calendar *c = calendar_create();
    cb_error err;
    CHECK_INT(calendar_load_json(c, doc, &err), 0);
    CHECK(!calendar_is_workday(c, at("2026-02-17 10:00"))); /* 春节 (Tuesday) */
    CHECK(calendar_is_workday(c, at("2026-02-14 10:00")));  /* make-up Saturday */
    CHECK(!calendar_is_workday(c, at("2026-05-04 10:00"))); /* 劳动节 (Monday) */
    CHECK(calendar_is_workday(c, at("2026-05-06 10:00")));
    CHECK_INT(json_array_size(json_object_get(doc, "holidays")), 33);
    CHECK_INT(json_array_size(json_object_get(doc, "workdays")), 6);
    calendar_free(c);
    json_decref(doc);
}

TEST_MAIN(test_days, test_add_within_a_day, test_add_across_days, test_working_between, test_add_measure_roundtrip,
          test_natural, test_days_text, test_periods, test_no_working_days, test_shipped_2026)
