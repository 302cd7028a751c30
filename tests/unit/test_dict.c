/* test_dict — names to small ids: assigned from 1 per kind, stored in
 * SQLite and the same after a reopen, validated, and consistent when several
 * threads ask for the same new names at once. Each test uses a fresh data dir. */
#include "core/log.h"
#include "state/dict.h"
#include "test.h"

#include <dirent.h>
#include <pthread.h>
#include <unistd.h>

static dict *open_dict(const char *dir)
{
    dict *d = NULL;
    cb_error err;
    log_set_level(LOG_WARN); /* no migration chatter */
    int rc = dict_open(dir, &d, &err);
    if (rc != 0)
        fprintf(stderr, "  dict_open: %s\n", err.message);
    CHECK_INT(rc, 0);
    if (!d)
        exit(2);
    return d;
}

static uint16_t id_of(dict *d, enum dict_kind k, const char *name)
{
    uint16_t id = 0xdead;
    cb_error err;
    int rc = dict_id(d, k, name, 1, &id, "f", &err);
    if (rc != 0)
        fprintf(stderr, "  dict_id(%s): %s\n", name, err.message);
    return rc == 0 ? id : 0xdead;
}

TEST(test_ids_from_one_per_kind)
{
    char dir[64];
    test_make_dir(dir);
    dict *d = open_dict(dir);
    for (int k = 0; k < DICT_KIND_COUNT; k++)
        CHECK_INT(dict_count(d, (enum dict_kind)k), 0);
    CHECK_INT(id_of(d, DICT_TYPE, "AirQualityObserved"), 1);
    CHECK_INT(id_of(d, DICT_TYPE, "ParkingSpot"), 2);
    CHECK_INT(id_of(d, DICT_TYPE, "AirQualityObserved"), 1); /* known: same id */
    /* kinds are independent: the same name gets its own id per kind */
    CHECK_INT(id_of(d, DICT_ATTR, "ParkingSpot"), 1);
    CHECK_INT(id_of(d, DICT_ATTR, "pm25"), 2);
    CHECK_INT(id_of(d, DICT_DEPARTMENT, "HBJ"), 1);
    CHECK_INT(dict_count(d, DICT_TYPE), 2);
    CHECK_INT(dict_count(d, DICT_ATTR), 2);
    CHECK_INT(dict_count(d, DICT_DEPARTMENT), 1);
    CHECK_STR(dict_name(d, DICT_TYPE, 1), "AirQualityObserved");
    CHECK_STR(dict_name(d, DICT_TYPE, 2), "ParkingSpot");
    CHECK_STR(dict_name(d, DICT_ATTR, 1), "ParkingSpot");
    CHECK_STR(dict_name(d, DICT_ATTR, 2), "pm25");
    CHECK_STR(dict_name(d, DICT_DEPARTMENT, 1), "HBJ");
    CHECK(dict_name(d, DICT_TYPE, DICT_NONE) == NULL);
    CHECK(dict_name(d, DICT_TYPE, 3) == NULL);
    CHECK(dict_name(d, DICT_DEPARTMENT, 2) == NULL);
    CHECK(dict_name(d, DICT_ATTR, 65535) == NULL);
    /* names are case-sensitive */
    CHECK_INT(id_of(d, DICT_ATTR, "PM25"), 3);
    dict_close(d);
    dict_close(NULL);
    test_remove_dir(dir);
}

TEST(test_persisted_across_reopen)
{
    char dir[64];
    test_make_dir(dir);
    dict *d = open_dict(dir);
    CHECK_INT(id_of(d, DICT_TYPE, "Streetlight"), 1);
    CHECK_INT(id_of(d, DICT_TYPE, "Vehicle"), 2);
    CHECK_INT(id_of(d, DICT_ATTR, "speed"), 1);
    CHECK_INT(id_of(d, DICT_DEPARTMENT, "JTJ"), 1);
    dict_close(d);
    d = open_dict(dir);
    CHECK_INT(dict_count(d, DICT_TYPE), 2);
    CHECK_INT(dict_count(d, DICT_ATTR), 1);
    CHECK_INT(dict_count(d, DICT_DEPARTMENT), 1);
    CHECK_STR(dict_name(d, DICT_TYPE, 2), "Vehicle");
    uint16_t id = 0;
    CHECK_INT(dict_id(d, DICT_TYPE, "Vehicle", 0, &id, "type", NULL), 0); /* known without create */
    CHECK_INT(id, 2);
    CHECK_INT(id_of(d, DICT_ATTR, "speed"), 1);
    CHECK_INT(id_of(d, DICT_TYPE, "SmartMeter"), 3); /* new names continue after the loaded ones */
    CHECK_INT(id_of(d, DICT_ATTR, "heading"), 2);
    dict_close(d);
    d = open_dict(dir);
    CHECK_STR(dict_name(d, DICT_TYPE, 3), "SmartMeter");
    CHECK_STR(dict_name(d, DICT_ATTR, 2), "heading");
    CHECK_INT(dict_count(d, DICT_TYPE), 3);
    dict_close(d);
    test_remove_dir(dir);
}

TEST(test_name_validation)
{
    char n64[65], n65[66];
    memset(n64, 'a', 64);
    n64[64] = '\0';
    memset(n65, 'b', 65);
    n65[65] = '\0';
    CHECK(dict_name_valid("a"));
    CHECK(dict_name_valid(n64));
    CHECK(dict_name_valid("A-z_0.9:x"));
    CHECK(!dict_name_valid(""));
    CHECK(!dict_name_valid(n65));
    CHECK(!dict_name_valid("a b"));
    CHECK(!dict_name_valid("a/b"));
    CHECK(!dict_name_valid("a\tb"));
    CHECK(!dict_name_valid("a\"b"));
    CHECK(!dict_name_valid("温度"));     /* UTF-8 */
    CHECK(!dict_name_valid("caf\xc3\xa9"));
    CHECK(!dict_name_valid("\xff"));

    char dir[64];
    test_make_dir(dir);
    dict *d = open_dict(dir);
    const char *bad[] = {"", n65, "a b", "温度", "x;DROP TABLE dict", "a\nb"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cb_error err;
        uint16_t id = 77;
        cb_error_clear(&err);
        CHECK_INT(dict_id(d, DICT_ATTR, bad[i], 1, &id, "values.x", &err), CB_EINVALID_FIELD);
        CHECK_INT(id, DICT_NONE);
        CHECK_STR(err.field, "values.x");
        CHECK(strstr(err.message, "attr name") != NULL);
    }
    CHECK_INT(dict_count(d, DICT_ATTR), 0); /* nothing stored */
    CHECK_INT(id_of(d, DICT_ATTR, n64), 1);
    CHECK_STR(dict_name(d, DICT_ATTR, 1), n64);
    dict_close(d);
    d = open_dict(dir); /* and nothing invalid came back from the database */
    CHECK_INT(dict_count(d, DICT_ATTR), 1);
    dict_close(d);
    test_remove_dir(dir);
}

TEST(test_lookup_without_create)
{
    char dir[64];
    test_make_dir(dir);
    dict *d = open_dict(dir);
    cb_error err;
    uint16_t id = 5;
    CHECK_INT(dict_id(d, DICT_TYPE, "Ghost", 0, &id, "type", &err), CB_ENOT_FOUND);
    CHECK_INT(id, DICT_NONE);
    CHECK_STR(err.field, "type");
    CHECK(strstr(err.message, "Ghost") != NULL);
    CHECK_INT(dict_count(d, DICT_TYPE), 0);
    CHECK_INT(id_of(d, DICT_ATTR, "Ghost"), 1);
    /* known in another kind only: still not found here */
    CHECK_INT(dict_id(d, DICT_TYPE, "Ghost", 0, &id, "type", NULL), CB_ENOT_FOUND);
    /* an invalid name is reported as invalid even without create */
    CHECK_INT(dict_id(d, DICT_TYPE, "no spaces", 0, &id, "type", &err), CB_EINVALID_FIELD);
    CHECK_INT(id_of(d, DICT_TYPE, "Ghost"), 1);
    CHECK_INT(dict_id(d, DICT_TYPE, "Ghost", 0, &id, "type", &err), 0);
    CHECK_INT(id, 1);
    dict_close(d);
    test_remove_dir(dir);
}

TEST(test_many_names_round_trip)
{
    enum { N = 5000 };
    char dir[64], name[32];
    test_make_dir(dir);
    dict *d = open_dict(dir);
    int bad = 0;
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "attr_%d", i * 7919 % 100000);
        bad += id_of(d, DICT_ATTR, name) != i + 1;
    }
    CHECK_INT(bad, 0);
    CHECK_INT(dict_count(d, DICT_ATTR), N);
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "attr_%d", i * 7919 % 100000);
        const char *got = dict_name(d, DICT_ATTR, (uint16_t)(i + 1));
        bad += !got || strcmp(got, name) != 0;
        bad += id_of(d, DICT_ATTR, name) != i + 1;
    }
    CHECK_INT(bad, 0);
    dict_close(d);
    d = open_dict(dir);
    CHECK_INT(dict_count(d, DICT_ATTR), N);
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "attr_%d", i * 7919 % 100000);
        uint16_t id = 0;
        bad += dict_id(d, DICT_ATTR, name, 0, &id, "f", NULL) != 0 || id != i + 1;
        const char *got = dict_name(d, DICT_ATTR, (uint16_t)(i + 1));
        bad += !got || strcmp(got, name) != 0;
    }
    CHECK_INT(bad, 0);
    CHECK_INT(dict_count(d, DICT_TYPE), 0);
    dict_close(d);
    test_remove_dir(dir);
}

enum { THREADS = 4, PER_THREAD = 300, OVERLAP_SPAN = 600 };

struct worker {
    dict *d;
    int index;
    uint16_t ids[OVERLAP_SPAN]; /* id each thread got for name k (0 = not asked) */
    int failures;
};

/* Thread t asks for names t*100 .. t*100+PER_THREAD-1 (so neighbours overlap
 * by 200), in an order of its own. */
static void *create_names(void *arg)
{
    struct worker *w = arg;
    for (int j = 0; j < PER_THREAD; j++) {
        int k = w->index * 100 + (j * 7 + w->index * 13) % PER_THREAD;
        char name[32];
        snprintf(name, sizeof name, "shared-%d", k);
        uint16_t id = 0;
        if (dict_id(w->d, DICT_DEPARTMENT, name, 1, &id, "department", NULL) != 0 || id == 0)
            w->failures++;
        else if (w->ids[k] && w->ids[k] != id)
            w->failures++;
        w->ids[k] = id;
        const char *back = dict_name(w->d, DICT_DEPARTMENT, id);
        if (!back || strcmp(back, name) != 0)
            w->failures++;
    }
    return NULL;
}

TEST(test_threads_get_consistent_ids)
{
    char dir[64];
    test_make_dir(dir);
    dict *d = open_dict(dir);
    static struct worker w[THREADS];
    pthread_t th[THREADS];
    memset(w, 0, sizeof w);
    for (int t = 0; t < THREADS; t++) {
        w[t].d = d;
        w[t].index = t;
        CHECK_INT(pthread_create(&th[t], NULL, create_names, &w[t]), 0);
    }
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    int distinct = (THREADS - 1) * 100 + PER_THREAD;
    CHECK_INT(dict_count(d, DICT_DEPARTMENT), distinct);
    int bad = 0;
    static int seen[DICT_MAX_IDS + 1];
    memset(seen, 0, sizeof seen);
    for (int k = 0; k < distinct; k++) {
        uint16_t id = 0;
        for (int t = 0; t < THREADS; t++) {
            bad += w[t].failures;
            w[t].failures = 0;
            if (!w[t].ids[k])
                continue;
            if (id && w[t].ids[k] != id)
                bad++; /* two threads got different ids for one name */
            id = w[t].ids[k];
        }
        bad += id == 0 || id > distinct || seen[id]++; /* every name asked; ids unique, dense */
    }
    CHECK_INT(bad, 0);
    dict_close(d);
    d = open_dict(dir); /* what the threads stored is what they were told */
    for (int k = 0; k < distinct; k++) {
        char name[32];
        snprintf(name, sizeof name, "shared-%d", k);
        uint16_t id = 0;
        int t = k / 100 < THREADS ? k / 100 : THREADS - 1;
        bad += dict_id(d, DICT_DEPARTMENT, name, 0, &id, "f", NULL) != 0 || id != w[t].ids[k];
    }
    CHECK_INT(bad, 0);
    dict_close(d);
    test_remove_dir(dir);
}

TEST(test_open_fails_cleanly)
{
    dict *d = NULL;
    cb_error err;
    cb_error_clear(&err);
    /* a data dir under a regular file cannot be created */
    CHECK(dict_open("/dev/null/sub", &d, &err) < 0);
    CHECK(d == NULL);
    CHECK(err.message[0] != '\0');
}

TEST_MAIN(test_ids_from_one_per_kind, test_persisted_across_reopen, test_name_validation,
          test_lookup_without_create, test_many_names_round_trip, test_threads_get_consistent_ids,
          test_open_fails_cleanly)
