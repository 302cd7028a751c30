/* Roles and the route table's masks: the citizen role (a citizen app's
 * public key) reaches exactly the routes meant for it and nothing that
 * carries cases, reporters, KPIs, rules or alarms; staff masks leave it
 * out; the workflow lets it only rate; keys of the role can be made. */
#include "test.h"

#include "app/app.h"
#include "cases/workflow.h"

TEST(test_role_names)
{
    enum role r;
    for (int i = 0; i < ROLE_COUNT; i++) {
        CHECK_INT(role_parse(role_name((enum role)i), &r), 0);
        CHECK_INT(r, i);
    }
    CHECK_STR(role_name(ROLE_CITIZEN), "citizen");
    CHECK_INT(ROLE_CITIZEN, ROLE_HOTLINE + 1); /* added after the existing roles */
    CHECK_INT(role_parse("mayor", &r), CB_EINVALID_FIELD);
    char buf[128];
    CHECK_STR(role_mask_names(ROLE_BIT(ROLE_HOTLINE) | ROLE_BIT(ROLE_CITIZEN), buf, sizeof buf), "hotline, citizen");
    CHECK(!(ROLES_ANY_USER & ROLE_BIT(ROLE_CITIZEN)));
    CHECK(!(ROLES_ANY_USER & ROLE_BIT(ROLE_DEVICE)));
}

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

TEST(test_citizen_routes)
{
    static const char *const allowed[][2] = {{"POST", "/api/v1/media"}, {"GET", "/api/v1/nearby"}};
    size_t found = 0;
    for (size_t i = 0; i < app_route_count; i++) {
        const struct http_route *r = &app_routes[i];
        int meant = 0;
        for (size_t j = 0; j < sizeof allowed / sizeof allowed[0]; j++)
            meant |= strcmp(r->method, allowed[j][0]) == 0 && strcmp(r->path, allowed[j][1]) == 0;
        found += meant;
        if (r->roles == ROLES_PUBLIC) { /* public: liveness, photos by their hash, Open311 */
            CHECK(strcmp(r->path, "/healthz") == 0 || strcmp(r->path, "/media/{name}") == 0 ||
                  starts_with(r->path, "/open311/v2/"));
            continue;
        }
        if ((r->roles & ROLE_BIT(ROLE_CITIZEN)) != 0 && !meant)
            fprintf(stderr, "  %s %s admits citizen\n", r->method, r->path);
        CHECK(((r->roles & ROLE_BIT(ROLE_CITIZEN)) != 0) == meant);
        if (starts_with(r->path, "/api/v1/cases") || starts_with(r->path, "/api/v1/kpis") ||
            starts_with(r->path, "/api/v1/rules") || starts_with(r->path, "/api/v1/alarms") ||
            starts_with(r->path, "/api/v1/entities") || starts_with(r->path, "/api/v1/stream"))
            CHECK(!(r->roles & ROLE_BIT(ROLE_CITIZEN)));
    }
    CHECK_INT(found, sizeof allowed / sizeof allowed[0]);
}

TEST(test_citizen_in_the_workflow)
{
    int rows = 0;
    for (size_t i = 0; i < case_transition_count; i++) {
        const struct case_transition *t = &case_transitions[i];
        if (!(t->roles & ROLE_BIT(ROLE_CITIZEN)))
            continue;
        rows++;
        CHECK_INT(t->from, CASE_CLOSED);
        CHECK_STR(t->action, "evaluate");
    }
    CHECK_INT(rows, 1);
}

TEST(test_citizen_keys)
{
    char dir[64], key[APIKEY_MAX];
    test_make_dir(dir);
    db *d = NULL;
    apikey_store *s = NULL;
    cb_error err;
    struct principal made, p;
    log_set_level(LOG_ERROR); /* no migration lines */
    CHECK_INT(db_open(dir, &d, &err), 0);
    CHECK_INT(apikey_store_open(d, &s, &err), 0);
    CHECK_INT(apikey_create(s, ROLE_CITIZEN, NULL, "市民端", key, &made, &err), 0);
    CHECK_INT(apikey_authenticate(s, key, &p, &err), 0);
    CHECK_INT(p.role, ROLE_CITIZEN);
    CHECK_STR(p.name, "市民端");
    json_t *list = NULL;
    CHECK_INT(apikey_list(s, &list, &err), 0);
    CHECK_STR(json_string_value(json_object_get(json_array_get(list, 0), "role")), "citizen");
    json_decref(list);
    apikey_store_close(s);
    db_close(d);
    test_remove_dir(dir);
}

TEST_MAIN(test_role_names, test_citizen_routes, test_citizen_in_the_workflow, test_citizen_keys)
