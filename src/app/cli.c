/* cli — the administrative commands (key, info, config, routes, errors) and
 * the small argv helpers they share. */
#include "app/app.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *cli_take_flag(int *argc, char **argv, const char *name, int *missing)
{
    size_t n = strlen(name);
    for (int i = 0; i < *argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, name, n) != 0 || (a[n] != '\0' && a[n] != '='))
            continue;
        const char *value = a[n] == '=' ? a + n + 1 : (i + 1 < *argc ? argv[i + 1] : NULL);
        int used = a[n] == '=' ? 1 : 2;
        if (!value) {
            *missing = 1;
            return NULL;
        }
        memmove(&argv[i], &argv[i + used], (size_t)(*argc - i - used) * sizeof *argv);
        *argc -= used;
        return value;
    }
    return NULL;
}

int cli_take_switch(int *argc, char **argv, const char *name)
{
    for (int i = 0; i < *argc; i++) {
        if (strcmp(argv[i], name) == 0) {
            memmove(&argv[i], &argv[i + 1], (size_t)(*argc - i - 1) * sizeof *argv);
            (*argc)--;
            return 1;
        }
    }
    return 0;
}

int cli_has_help(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return 1;
    return 0;
}

/* Loads the config from the remaining flags and opens the store. */
static int open_for_cli(const char *cmd, int argc, char **argv, struct app *a)
{
    cb_error err;
    memset(a, 0, sizeof *a);
    if (app_load_config(argc, argv, &a->cfg, &err) != 0 || app_open_store(a, &err) != 0) {
        fprintf(stderr, "citybrain %s: %s\n", cmd, err.message);
        app_close(a);
        return 2;
    }
    return 0;
}

static void key_usage(FILE *out)
{
    fprintf(out,
            "usage: citybrain key create --role ROLE [--department CODE] [--name NAME] [store flags]\n"
            "       citybrain key list [--json] [store flags]\n"
            "       citybrain key revoke ID [store flags]\n\n"
            "API keys for people and systems. `create` prints the new key once; only an\n"
            "Argon2id hash is stored. ROLE is admin, operator, dept, grid, viewer, hotline\n"
            "(12345 operators) or citizen (a citizen app's key: Open311 reports, photos, nearby\n"
            "services); a dept key needs --department, a grid key may name its area there.\n"
            "Store flags: --config FILE, --data-dir DIR.\n");
}

static int key_create(int argc, char **argv)
{
    int missing = 0;
    const char *role_text = cli_take_flag(&argc, argv, "--role", &missing);
    const char *dep = cli_take_flag(&argc, argv, "--department", &missing);
    const char *name = cli_take_flag(&argc, argv, "--name", &missing);
    enum role role;
    if (missing || !role_text || role_parse(role_text, &role) != 0) {
        fprintf(stderr, "citybrain key create: --role must be admin, operator, dept, grid, viewer, hotline or citizen\n");
        return 2;
    }
    struct app a;
    if (open_for_cli("key create", argc, argv, &a) != 0)
        return 2;
    char key[APIKEY_MAX];
    struct principal p;
    cb_error err;
    int rc = apikey_create(a.keys, role, dep, name, key, &p, &err);
    if (rc == 0)
        printf("%s\n", key);
    else
        fprintf(stderr, "citybrain key create: %s\n", err.message);
    if (rc == 0)
        fprintf(stderr, "created key %s (role %s); it is shown only once\n", p.id, role_name(role));
    app_close(&a);
    return rc == 0 ? 0 : 1;
}

static int key_list(int argc, char **argv)
{
    int as_json = cli_take_switch(&argc, argv, "--json");
    struct app a;
    if (open_for_cli("key list", argc, argv, &a) != 0)
        return 2;
    json_t *keys;
    cb_error err;
    int rc = apikey_list(a.keys, &keys, &err);
    if (rc != 0) {
        fprintf(stderr, "citybrain key list: %s\n", err.message);
        app_close(&a);
        return 1;
    }
    if (as_json) {
        json_dumpf(keys, stdout, JSON_INDENT(2));
        putchar('\n');
    } else {
        printf("%-14s %-9s %-12s %-25s %s\n", "ID", "ROLE", "DEPARTMENT", "CREATED", "NAME");
        size_t i;
        json_t *k;
        json_array_foreach(keys, i, k) {
            const char *dep = json_string_value(json_object_get(k, "department"));
            int revoked = !json_is_null(json_object_get(k, "revoked_at"));
            printf("%-14s %-9s %-12s %-25s %s%s\n", json_string_value(json_object_get(k, "id")),
                   json_string_value(json_object_get(k, "role")), dep ? dep : "-",
                   json_string_value(json_object_get(k, "created_at")),
                   json_string_value(json_object_get(k, "name")), revoked ? " (revoked)" : "");
        }
    }
    json_decref(keys);
    app_close(&a);
    return 0;
}

static int key_revoke(int argc, char **argv)
{
    if (argc < 1 || argv[0][0] == '-') {
        fprintf(stderr, "citybrain key revoke: which key? (an ID from `citybrain key list`)\n");
        return 2;
    }
    const char *id = argv[0];
    struct app a;
    if (open_for_cli("key revoke", argc - 1, argv + 1, &a) != 0)
        return 2;
    cb_error err;
    int rc = apikey_revoke(a.keys, id, &err);
    if (rc == 0)
        printf("revoked %s\n", id);
    else
        fprintf(stderr, "citybrain key revoke: %s\n", err.message);
    app_close(&a);
    return rc == 0 ? 0 : 1;
}

int cmd_key(int argc, char **argv)
{
    if (argc < 1 || cli_has_help(argc, argv)) {
        key_usage(argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    if (strcmp(argv[0], "create") == 0)
        return key_create(argc - 1, argv + 1);
    if (strcmp(argv[0], "list") == 0)
        return key_list(argc - 1, argv + 1);
    if (strcmp(argv[0], "revoke") == 0)
        return key_revoke(argc - 1, argv + 1);
    fprintf(stderr, "citybrain key: unknown subcommand '%s'\n", argv[0]);
    key_usage(stderr);
    return 2;
}

int cmd_info(int argc, char **argv)
{
    if (cli_has_help(argc, argv)) {
        printf("usage: citybrain info [--config FILE] [--data-dir DIR]\n\n"
               "Prints the version, the data directory, the schema version and key counts.\n");
        return 0;
    }
    struct app a;
    if (open_for_cli("info", argc, argv, &a) != 0)
        return 2;
    printf("version         %s (%s)\n", CB_VERSION, CB_COMMIT);
    printf("data_dir        %s\n", a.cfg.data_dir);
    printf("schema_version  %d (this binary knows %d)\n", db_schema_version(a.db),
           db_schema_latest());
    printf("api_keys        %d active\n", apikey_count_active(a.keys));
    app_close(&a);
    return 0;
}

static void config_usage(FILE *out)
{
    fprintf(out, "usage: citybrain config reference     print citybrain.conf with every option at its default\n"
                 "       citybrain config check FILE    validate a config file (also: citybrain --test-config FILE)\n"
                 "       citybrain config show [--config FILE] [flags]  print the effective settings\n");
}

int cmd_config(int argc, char **argv)
{
    if (argc < 1 || cli_has_help(argc, argv)) {
        config_usage(argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    struct cb_config cfg;
    cb_error err;
    if (strcmp(argv[0], "reference") == 0) {
        config_write_reference(stdout);
        return 0;
    }
    if (strcmp(argv[0], "check") == 0 && argc == 2) {
        config_defaults(&cfg);
        if (config_load_file(&cfg, argv[1], &err) != 0) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
        printf("%s: ok\n", argv[1]);
        return 0;
    }
    if (strcmp(argv[0], "show") == 0) {
        if (app_load_config(argc - 1, argv + 1, &cfg, &err) != 0) {
            fprintf(stderr, "citybrain config show: %s\n", err.message);
            return 2;
        }
        config_print_effective(stdout, &cfg);
        return 0;
    }
    config_usage(stderr);
    return 2;
}

int cmd_routes(int argc, char **argv)
{
    (void)argv;
    if (argc > 0) {
        printf("usage: citybrain routes\n\nLists every HTTP endpoint with the roles allowed.\n");
        return 0;
    }
    for (size_t i = 0; i < app_route_count; i++) {
        const struct http_route *r = &app_routes[i];
        char roles[128];
        printf("%-7s %-24s %-34s %s\n", r->method, r->path,
               r->roles == ROLES_PUBLIC ? "public" : role_mask_names(r->roles, roles, sizeof roles),
               r->summary);
    }
    return 0;
}

int cmd_errors(int argc, char **argv)
{
    (void)argv;
    if (argc > 0) {
        printf("usage: citybrain errors\n\nLists the error codes of JSON error bodies with their HTTP status.\n");
        return 0;
    }
    printf("| code | HTTP | meaning |\n|---|---|---|\n");
    for (int c = -1; cb_err_valid(c); c--)
        printf("| `%s` | %d | %s |\n", cb_err_name(c), cb_err_http_status(c), cb_strerror(c));
    return 0;
}
