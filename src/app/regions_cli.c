/* regions_cli — `citybrain import regions` and `citybrain regions grid|list`:
 * loading a city's districts and grid cells into the data directory. A
 * running server reads them at its next start. */
#include "app/app.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void import_usage(FILE *out)
{
    fprintf(out,
            "usage: citybrain import regions FILE.geojson --level district|grid [options] [store flags]\n"
            "       citybrain import categories FILE.json [store flags]   (case categories; --help there)\n\n"
            "Loads Polygon/MultiPolygon features, validated with GEOS; all or nothing.\n"
            "  --level district|grid   what the features are\n"
            "  --name-prop P           property holding the name (default: name)\n"
            "  --code-prop P           property holding the code (default: code)\n"
            "  --codes FILE.json       {\"name\": \"code\"} for files without codes\n"
            "  --parent CODE           parent of every feature (grid cells: else the district containing them)\n"
            "  --repair                repair invalid rings if the area changes < 0.1%% (echarts maps need it)\n"
            "Store flags: --config FILE, --data-dir DIR. Restart a running server to load new regions.\n");
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    buf b = BUF_INIT;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_append(&b, chunk, n);
    fclose(f);
    if (buf_failed(&b)) {
        buf_free(&b);
        return NULL;
    }
    *len = b.len;
    return b.data ? b.data : calloc(1, 1);
}

struct import_args {
    const char *file, *level, *name_prop, *code_prop, *codes, *parent;
    int repair;
};

static int take_import_args(int *argc, char **argv, struct import_args *x)
{
    int missing = 0;
    memset(x, 0, sizeof *x);
    x->level = cli_take_flag(argc, argv, "--level", &missing);
    x->name_prop = cli_take_flag(argc, argv, "--name-prop", &missing);
    x->code_prop = cli_take_flag(argc, argv, "--code-prop", &missing);
    x->codes = cli_take_flag(argc, argv, "--codes", &missing);
    x->parent = cli_take_flag(argc, argv, "--parent", &missing);
    x->repair = cli_take_switch(argc, argv, "--repair");
    if (*argc < 1 || argv[0][0] == '-' || missing || !x->level)
        return -1;
    x->file = argv[0];
    return 0;
}

static int run_import(struct app *a, const struct import_args *x)
{
    cb_error err;
    struct region_import_opts o = {.name_prop = x->name_prop, .code_prop = x->code_prop, .parent = x->parent,
                                   .repair = x->repair};
    json_t *codes = NULL;
    size_t len = 0;
    char *data = read_file(x->file, &len);
    int rc = region_level_parse(x->level, &o.level, &err);
    if (rc == 0 && !data)
        rc = cb_error_set(&err, CB_EIO, "file", "cannot read %s", x->file);
    if (rc == 0 && x->codes && !(codes = json_load_file(x->codes, 0, NULL)))
        rc = cb_error_set(&err, CB_EIO, "codes", "cannot read %s as JSON", x->codes);
    o.code_map = codes;
    struct region_import_stats st = {0};
    if (rc == 0)
        rc = region_store_import(a->regions, data, len, &o, &st, &err);
    if (rc == 0)
        printf("imported %zu %s regions (%zu repaired, %zu vertices) from %s\n", st.imported, x->level, st.repaired,
               st.vertices, x->file);
    else
        fprintf(stderr, "citybrain import regions: %s\n", err.message);
    json_decref(codes);
    free(data);
    return rc == 0 ? 0 : 1;
}

int cmd_import(int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "categories") == 0)
        return cmd_import_categories(argc - 1, argv + 1);
    if (argc < 1 || cli_has_help(argc, argv) || strcmp(argv[0], "regions") != 0) {
        import_usage(argc > 0 && cli_has_help(argc, argv) ? stdout : stderr);
        return argc > 0 && cli_has_help(argc, argv) ? 0 : 2;
    }
    argc--, argv++;
    struct import_args x;
    if (take_import_args(&argc, argv, &x) != 0) {
        import_usage(stderr);
        return 2;
    }
    struct app a;
    cb_error err;
    memset(&a, 0, sizeof a);
    if (app_load_config(argc - 1, argv + 1, &a.cfg, &err) != 0 || app_open_regions(&a, &err) != 0) {
        fprintf(stderr, "citybrain import regions: %s\n", err.message);
        app_close(&a);
        return 2;
    }
    int rc = run_import(&a, &x);
    app_close(&a);
    return rc;
}

static void regions_usage(FILE *out)
{
    fprintf(out, "usage: citybrain regions grid --size METRES [--district CODE] [store flags]\n"
                 "       citybrain regions list [--level district|grid] [store flags]\n\n"
                 "grid: generates square grid cells (网格) of the size inside every district (or one),\n"
                 "      coded <district>-G<row>-<col>. list: prints code, level, parent, area, name.\n");
}

static int regions_grid(struct app *a, const char *size, const char *district)
{
    char *end;
    double metres = size ? strtod(size, &end) : 0;
    if (!size || *end) {
        fprintf(stderr, "citybrain regions grid: --size METRES is required\n");
        return 2;
    }
    size_t count = 0;
    cb_error err;
    if (region_store_grid(a->regions, district, metres, &count, &err) != 0) {
        fprintf(stderr, "citybrain regions grid: %s\n", err.message);
        return 1;
    }
    printf("generated %zu grid cells of %g m\n", count, metres);
    return 0;
}

static int regions_list(struct app *a, const char *level)
{
    enum region_level l = REGION_DISTRICT;
    if (level && region_level_parse(level, &l, NULL) != 0) {
        fprintf(stderr, "citybrain regions list: --level must be district or grid\n");
        return 2;
    }
    json_t *list = region_store_list(a->regions, level ? (int)l : -1);
    size_t i;
    json_t *r;
    json_array_foreach(list, i, r) {
        const char *parent = json_string_value(json_object_get(r, "parent"));
        printf("%-22s %-8s %-8s %9.3f km²  %s\n", json_string_value(json_object_get(r, "code")),
               json_string_value(json_object_get(r, "level")), parent ? parent : "-",
               json_real_value(json_object_get(r, "area_km2")), json_string_value(json_object_get(r, "name")));
    }
    json_decref(list);
    return 0;
}

int cmd_regions(int argc, char **argv)
{
    if (argc < 1 || cli_has_help(argc, argv)) {
        regions_usage(argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    const char *sub = argv[0];
    argc--, argv++;
    int missing = 0;
    const char *size = cli_take_flag(&argc, argv, "--size", &missing);
    const char *district = cli_take_flag(&argc, argv, "--district", &missing);
    const char *level = cli_take_flag(&argc, argv, "--level", &missing);
    struct app a;
    cb_error err;
    memset(&a, 0, sizeof a);
    if (missing || (strcmp(sub, "grid") && strcmp(sub, "list"))) {
        regions_usage(stderr);
        return 2;
    }
    if (app_load_config(argc, argv, &a.cfg, &err) != 0 || app_open_regions(&a, &err) != 0) {
        fprintf(stderr, "citybrain regions: %s\n", err.message);
        app_close(&a);
        return 2;
    }
    int rc = strcmp(sub, "grid") == 0 ? regions_grid(&a, size, district) : regions_list(&a, level);
    app_close(&a);
    return rc;
}
