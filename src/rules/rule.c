/* rule — a rule's JSON definition validated and compiled into struct rule.
 * The kind table (rules__kinds) is the one place a kind is described: its
 * name, the members it takes, whether it needs an attribute, its parser and
 * its evaluator (eval.c). */
#include "rules/rules_int.h"

#include <assert.h>
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

const char *const rules__severity_names[SEV_COUNT] = {"critical", "major", "minor", "warning"};
const char *const rules__op_names[OP_COUNT] = {">", ">=", "<", "<=", "==", "!="};

#define NAME_MAX_BYTES 200
#define CATEGORY_MAX_BYTES 100
#define POLYGON_MAX_BYTES (4u << 20)
#define RULE_ENTITIES_MAX 10000
#define LONGEST_S (366LL * 86400)

/* How alarm messages name an attribute (Chinese label and unit); others go by
 * their own name. */
static const struct {
    const char *attr, *label, *unit;
} labels[] = {
    {"level_m", "水位", " m"},      {"tilt_deg", "井盖倾角", "°"},   {"smoke", "烟感", ""},
    {"pm25", "PM2.5", " μg/m³"},    {"pm10", "PM10", " μg/m³"},     {"aqi", "AQI", ""},
    {"pressure_mpa", "管网压力", " MPa"}, {"speed_kmh", "车速", " km/h"}, {"power_w", "功率", " W"},
    {"power_kw", "负荷", " kW"},    {"battery", "电量", "%"},        {"occupied", "占用", ""},
    {"open", "开启", ""},           {"no2", "NO₂", " μg/m³"},       {"o3", "O₃", " μg/m³"},
};

const char *rules__attr_label(const char *attr, const char **unit)
{
    for (size_t i = 0; i < sizeof labels / sizeof labels[0]; i++)
        if (strcmp(labels[i].attr, attr) == 0) {
            *unit = labels[i].unit;
            return labels[i].label;
        }
    *unit = "";
    return attr;
}

/* --- member readers: each names the field in its error --- */

static int want_number(const json_t *def, const char *name, int required, double *out, cb_error *err)
{
    const json_t *v = json_object_get(def, name);
    if (!v)
        return required ? cb_error_set(err, CB_EMISSING_FIELD, name, "%s is required", name) : 1;
    if (!json_is_number(v) || !isfinite(json_number_value(v)))
        return cb_error_set(err, CB_EINVALID_FIELD, name, "%s must be a number", name);
    *out = json_number_value(v);
    return 0;
}

/* Seconds in [min_s, LONGEST_S] as milliseconds; absent: *ms untouched. */
static int want_seconds(const json_t *def, const char *name, int required, double min_s, int64_t *ms, cb_error *err)
{
    double s;
    int rc = want_number(def, name, required, &s, err);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    if (s < min_s || s > LONGEST_S)
        return cb_error_set(err, CB_EINVALID_FIELD, name, "%s must be between %g and %lld seconds", name, min_s,
                            LONGEST_S);
    *ms = (int64_t)llround(s * 1000);
    return 0;
}

static int want_string(const json_t *def, const char *name, const char *field, int required, size_t max,
                       const char **out, cb_error *err)
{
    const json_t *v = json_object_get(def, name);
    if (!v)
        return required ? cb_error_set(err, CB_EMISSING_FIELD, field, "%s is required", field) : 1;
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max)
        return cb_error_set(err, CB_EINVALID_FIELD, field, "%s must be a non-empty string of at most %zu bytes", field,
                            max);
    *out = json_string_value(v);
    return 0;
}

static int want_op(const json_t *def, int required, enum rule_op *op, cb_error *err)
{
    const char *s;
    int rc = want_string(def, "op", "op", required, 2, &s, err);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    for (int i = 0; i < OP_COUNT; i++)
        if (strcmp(s, rules__op_names[i]) == 0) {
            *op = (enum rule_op)i;
            return 0;
        }
    return cb_error_set(err, CB_EINVALID_FIELD, "op", "unknown op '%s': use >, >=, <, <=, == or !=", s);
}

/* --- the kinds --- */

static int parse_threshold(rules *R, struct rule *ru, const json_t *def, cb_error *err)
{
    (void)R;
    int rc = want_op(def, 1, &ru->op, err);
    if (rc == 0)
        rc = want_number(def, "value", 1, &ru->value, err);
    if (rc == 0 && (rc = want_number(def, "clear", 0, &ru->clear, err)) == 0) {
        ru->has_clear = 1;
        if (ru->op == OP_EQ || ru->op == OP_NE)
            return cb_error_set(err, CB_EINVALID_FIELD, "clear", "clear (hysteresis) needs op >, >=, < or <=");
        if ((ru->op <= OP_GE && ru->clear > ru->value) || ((ru->op == OP_LT || ru->op == OP_LE) && ru->clear < ru->value))
            return cb_error_set(err, CB_EINVALID_FIELD, "clear",
                                "clear %g must lie on the normal side of value %g (op %s)", ru->clear, ru->value,
                                rules__op_names[ru->op]);
    }
    if (rc > 0)
        rc = 0;
    if (rc == 0)
        rc = want_seconds(def, "for_s", 0, 0, &ru->for_ms, err);
    return rc;
}

static int parse_rate(rules *R, struct rule *ru, const json_t *def, cb_error *err)
{
    (void)R;
    int rc = want_number(def, "change_pct", 1, &ru->change_pct, err);
    if (rc == 0 && (ru->change_pct == 0 || fabs(ru->change_pct) > 1e6))
        return cb_error_set(err, CB_EINVALID_FIELD, "change_pct",
                            "change_pct must be a non-zero percentage (-30: falls by 30 %%, 50: rises by 50 %%)");
    if (rc == 0)
        rc = want_seconds(def, "window_s", 1, 1, &ru->window_ms, err);
    return rc;
}

static int parse_nodata(rules *R, struct rule *ru, const json_t *def, cb_error *err)
{
    (void)R;
    return want_seconds(def, "seconds", 1, 1, &ru->nodata_ms, err);
}

static int parse_polygon(rules *R, struct rule *ru, const json_t *poly, cb_error *err)
{
    if (json_is_object(poly) && json_is_string(json_object_get(poly, "type")) &&
        strcmp(json_string_value(json_object_get(poly, "type")), "Feature") == 0)
        poly = json_object_get(poly, "geometry");
    const char *type = json_string_value(json_object_get(poly, "type"));
    if (!json_is_object(poly) || !type || (strcmp(type, "Polygon") != 0 && strcmp(type, "MultiPolygon") != 0))
        return cb_error_set(err, CB_EINVALID_FIELD, "polygon", "polygon must be a GeoJSON Polygon or MultiPolygon");
    char *text = json_dumps(poly, JSON_COMPACT);
    if (!text)
        return cb_error_set(err, CB_ENOMEM, "polygon", "out of memory");
    if (strlen(text) > POLYGON_MAX_BYTES) {
        free(text);
        return cb_error_set(err, CB_EINVALID_FIELD, "polygon", "polygon is larger than %u bytes", POLYGON_MAX_BYTES);
    }
    GEOSGeoJSONReader *rd = GEOSGeoJSONReader_create_r(R->geos);
    GEOSGeometry *g = rd ? GEOSGeoJSONReader_readGeometry_r(R->geos, rd, text) : NULL;
    if (rd)
        GEOSGeoJSONReader_destroy_r(R->geos, rd);
    free(text);
    if (!g)
        return cb_error_set(err, CB_EINVALID_FIELD, "polygon", "polygon is not valid GeoJSON geometry");
    double x0, y0, x1, y1;
    int rc = 0;
    if (GEOSisEmpty_r(R->geos, g) != 0 || !GEOSGeom_getXMin_r(R->geos, g, &x0) || !GEOSGeom_getYMin_r(R->geos, g, &y0) ||
        !GEOSGeom_getXMax_r(R->geos, g, &x1) || !GEOSGeom_getYMax_r(R->geos, g, &y1) || x0 < -180 || x1 > 180 ||
        y0 < -90 || y1 > 90)
        rc = cb_error_set(err, CB_EINVALID_FIELD, "polygon", "polygon must be non-empty, in lon/lat degrees");
    else if (GEOSisValid_r(R->geos, g) != 1) {
        char *why = GEOSisValidReason_r(R->geos, g);
        rc = cb_error_set(err, CB_EINVALID_FIELD, "polygon", "invalid polygon: %s", why ? why : "GEOS says invalid");
        GEOSFree_r(R->geos, why);
    }
    if (rc == 0 && !(ru->prep = GEOSPrepare_r(R->geos, g)))
        rc = cb_error_set(err, CB_EINTERNAL, "polygon", "cannot prepare the polygon");
    if (rc != 0) {
        GEOSGeom_destroy_r(R->geos, g);
        return rc;
    }
    ru->poly = g;
    return 0;
}

static int parse_geofence(rules *R, struct rule *ru, const json_t *def, cb_error *err)
{
    const char *on;
    int rc = want_string(def, "on", "on", 1, 8, &on, err);
    if (rc != 0)
        return rc;
    if (strcmp(on, "enter") != 0 && strcmp(on, "exit") != 0)
        return cb_error_set(err, CB_EINVALID_FIELD, "on", "on must be enter or exit");
    ru->on_exit = on[1] == 'x';
    const json_t *poly = json_object_get(def, "polygon");
    if (!poly)
        return cb_error_set(err, CB_EMISSING_FIELD, "polygon", "polygon is required");
    return parse_polygon(R, ru, poly, err);
}

static int parse_region_count(rules *R, struct rule *ru, const json_t *def, cb_error *err)
{
    (void)R;
    double count = 0;
    const char *group = "grid";
    int rc = want_op(def, 1, &ru->op, err);
    if (rc == 0)
        rc = want_number(def, "value", 1, &ru->value, err);
    if (rc == 0)
        rc = want_number(def, "count", 1, &count, err);
    if (rc == 0 && (count < 1 || count > 1e6 || count != floor(count)))
        return cb_error_set(err, CB_EINVALID_FIELD, "count", "count must be a whole number from 1");
    ru->count = (long long)count;
    if (rc == 0)
        rc = want_seconds(def, "window_s", 1, 1, &ru->window_ms, err);
    if (rc == 0 && (rc = want_string(def, "group", "group", 0, 8, &group, err)) > 0)
        rc = 0;
    if (rc == 0 && region_level_parse(group, &ru->group, NULL) != 0)
        return cb_error_set(err, CB_EINVALID_FIELD, "group", "group must be grid or district");
    return rc;
}

const struct rule_kind_def rules__kinds[RULE_KIND_COUNT] = {
    [RULE_THRESHOLD] = {"threshold", "op value clear for_s", 1, parse_threshold, rules__eval_threshold},
    [RULE_RATE] = {"rate", "change_pct window_s", 1, parse_rate, rules__eval_rate},
    [RULE_NODATA] = {"nodata", "seconds", 0, parse_nodata, rules__eval_nodata},
    [RULE_GEOFENCE] = {"geofence", "polygon on", -1, parse_geofence, rules__eval_geofence},
    [RULE_REGION_COUNT] = {"region_count", "op value count window_s group", 1, parse_region_count,
                           rules__eval_region_count},
};

static const char common_members[] = "id name kind scope attr severity category dedup_s enabled open_case description";

static int member_listed(const char *list, const char *key)
{
    size_t n = strlen(key);
    for (const char *p = list; (p = strstr(p, key)) != NULL; p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return 1;
    return 0;
}

static int check_members(const json_t *def, const struct rule_kind_def *k, cb_error *err)
{
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)def, key, v) {
        if (!member_listed(common_members, key) && !member_listed(k->params, key))
            return cb_error_set(err, CB_EINVALID_FIELD, key, "unknown member '%s' for a %s rule (it takes: %s)", key,
                                k->name, k->params);
    }
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int parse_scope_entities(struct rule *ru, const json_t *list, cb_error *err)
{
    if (!json_is_array(list) || json_array_size(list) == 0 || json_array_size(list) > RULE_ENTITIES_MAX)
        return cb_error_set(err, CB_EINVALID_FIELD, "scope.entities",
                            "scope.entities must be a list of 1 to %d entity ids", RULE_ENTITIES_MAX);
    ru->nentities = json_array_size(list);
    if (!(ru->entities = calloc(ru->nentities, sizeof *ru->entities)))
        return cb_error_set(err, CB_ENOMEM, NULL, "out of memory");
    for (size_t i = 0; i < ru->nentities; i++) {
        const char *id = json_string_value(json_array_get(list, i));
        if (!id || !*id || strlen(id) >= ENTITY_ID_MAX)
            return cb_error_set(err, CB_EINVALID_FIELD, "scope.entities", "scope.entities[%zu] must be an entity id", i);
        if (!(ru->entities[i] = strdup(id)))
            return cb_error_set(err, CB_ENOMEM, NULL, "out of memory");
    }
    qsort(ru->entities, ru->nentities, sizeof *ru->entities, cmp_str);
    return 0;
}

static int parse_region(rules *R, const json_t *scope, const char *name, enum region_level level, uint32_t *out,
                        cb_error *err)
{
    char field[32];
    const char *code;
    snprintf(field, sizeof field, "scope.%s", name);
    int rc = want_string(scope, name, field, 0, REGION_CODE_MAX - 1, &code, err);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    if ((*out = region_store_index(R->regions, level, code)) == REGION_INDEX_NONE)
        return cb_error_set(err, CB_EINVALID_FIELD, field, "unknown %s '%s'", name, code);
    return 0;
}

static int parse_scope(rules *R, struct rule *ru, const json_t *scope, cb_error *err)
{
    ru->district = ru->grid = REGION_INDEX_NONE;
    if (!scope)
        return 0;
    if (!json_is_object(scope))
        return cb_error_set(err, CB_EINVALID_FIELD, "scope", "scope must be an object {type?, district?|grid?, entities?}");
    const char *key, *type;
    const json_t *v;
    json_object_foreach((json_t *)scope, key, v) {
        if (!member_listed("type district grid entities", key))
            return cb_error_set(err, CB_EINVALID_FIELD, "scope", "unknown member scope.%s", key);
    }
    int rc = want_string(scope, "type", "scope.type", 0, DICT_NAME_MAX, &type, err);
    if (rc == 0) {
        rc = dict_id(R->names, DICT_TYPE, type, 1, &ru->type, "scope.type", err);
        snprintf(ru->type_name, sizeof ru->type_name, "%s", type);
    }
    if (rc > 0)
        rc = 0;
    if (rc == 0)
        rc = parse_region(R, scope, "district", REGION_DISTRICT, &ru->district, err);
    if (rc == 0)
        rc = parse_region(R, scope, "grid", REGION_GRID, &ru->grid, err);
    if (rc == 0 && ru->district != REGION_INDEX_NONE && ru->grid != REGION_INDEX_NONE)
        return cb_error_set(err, CB_EINVALID_FIELD, "scope.grid", "give scope.district or scope.grid, not both");
    if (rc == 0 && json_object_get(scope, "entities"))
        rc = parse_scope_entities(ru, json_object_get(scope, "entities"), err);
    return rc;
}

static int parse_enum(const json_t *def, const char *name, const char *const *names, int n, int *out, cb_error *err)
{
    const char *s;
    int rc = want_string(def, name, name, 1, 32, &s, err);
    if (rc != 0)
        return rc;
    for (int i = 0; i < n; i++)
        if (names[i] && strcmp(s, names[i]) == 0) {
            *out = i;
            return 0;
        }
    char list[160] = "";
    for (int i = 0; i < n; i++)
        if (names[i])
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", *list ? ", " : "", names[i]);
    return cb_error_set(err, CB_EINVALID_FIELD, name, "unknown %s '%s': use %s", name, s, list);
}

static int parse_common(rules *R, struct rule *ru, const json_t *def, cb_error *err)
{
    const char *s;
    int rc = want_string(def, "name", "name", 1, NAME_MAX_BYTES, &ru->name, err);
    if (rc == 0)
        rc = parse_enum(def, "severity", rules__severity_names, SEV_COUNT, (int *)&ru->severity, err);
    if (rc == 0)
        rc = want_string(def, "category", "category", 1, CATEGORY_MAX_BYTES, &ru->category, err);
    int attr_need = rules__kinds[ru->kind].attr;
    if (rc == 0 && (rc = want_string(def, "attr", "attr", attr_need == 1, DICT_NAME_MAX, &s, err)) == 0) {
        if (attr_need < 0)
            return cb_error_set(err, CB_EINVALID_FIELD, "attr", "a %s rule takes no attr", rules__kinds[ru->kind].name);
        rc = dict_id(R->names, DICT_ATTR, s, 1, &ru->attr, "attr", err);
        snprintf(ru->attr_name, sizeof ru->attr_name, "%s", s);
    }
    if (rc > 0)
        rc = 0;
    if (rc == 0)
        rc = want_seconds(def, "dedup_s", 0, 0, &ru->dedup_ms, err);
    const json_t *en = json_object_get(def, "enabled");
    if (rc == 0 && en && !json_is_boolean(en))
        return cb_error_set(err, CB_EINVALID_FIELD, "enabled", "enabled must be true or false");
    ru->enabled = !en || json_is_true(en);
    const json_t *oc = json_object_get(def, "open_case");
    if (rc == 0 && oc) {
        if (!json_is_object(oc) || want_string(oc, "category", "open_case.category", 1, 15, &s, err) != 0)
            return cb_error_set(err, CB_EINVALID_FIELD, "open_case.category",
                                "open_case must be {\"category\": \"<case category code>\"}");
        snprintf(ru->open_case, sizeof ru->open_case, "%s", s);
    }
    if (rc == 0 && json_object_get(def, "description") && !json_is_string(json_object_get(def, "description")))
        return cb_error_set(err, CB_EINVALID_FIELD, "description", "description must be a string");
    if (rc == 0)
        rc = parse_scope(R, ru, json_object_get(def, "scope"), err);
    return rc;
}

static int valid_id(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n >= RULE_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-", id[i]))
            return 0;
    return 1;
}

static int pick_id(const json_t *def, const char *id, struct rule *ru, cb_error *err)
{
    const json_t *v = json_object_get(def, "id");
    if (v && (!json_is_string(v) || !valid_id(json_string_value(v))))
        return cb_error_set(err, CB_EINVALID_FIELD, "id", "id must be 1 to %d characters of A-Z a-z 0-9 _ . : -",
                            RULE_ID_MAX - 1);
    if (id && v && strcmp(id, json_string_value(v)) != 0)
        return cb_error_set(err, CB_EINVALID_FIELD, "id", "id '%s' differs from the rule's id '%s' in the path",
                            json_string_value(v), id);
    if (id)
        snprintf(ru->id, sizeof ru->id, "%s", id);
    else if (v)
        snprintf(ru->id, sizeof ru->id, "%s", json_string_value(v));
    else {
        unsigned char b[6];
        randombytes_buf(b, sizeof b);
        snprintf(ru->id, sizeof ru->id, "r%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5]);
    }
    return 0;
}

/* def becomes the stored definition: the input with its id and defaults. */
static int normalise(struct rule *ru, const json_t *def, cb_error *err)
{
    if (!(ru->def = json_deep_copy(def)))
        return cb_error_set(err, CB_ENOMEM, NULL, "out of memory");
    json_object_set_new(ru->def, "id", json_string(ru->id));
    json_object_set_new(ru->def, "enabled", json_boolean(ru->enabled));
    json_object_set_new(ru->def, "dedup_s", ru->dedup_ms % 1000 ? json_real((double)ru->dedup_ms / 1000)
                                                                : json_integer(ru->dedup_ms / 1000));
    if (ru->kind == RULE_REGION_COUNT)
        json_object_set_new(ru->def, "group", json_string(region_level_name(ru->group)));
    ru->name = json_string_value(json_object_get(ru->def, "name"));
    ru->category = json_string_value(json_object_get(ru->def, "category"));
    return 0;
}

int rules__rule_compile(rules *R, const json_t *def, const char *id, struct rule **out, cb_error *err)
{
    if (!json_is_object(def))
        return cb_error_set(err, CB_EINVALID_FIELD, "body", "a rule is a JSON object");
    struct rule *ru = calloc(1, sizeof *ru);
    if (!ru)
        return cb_error_set(err, CB_ENOMEM, NULL, "out of memory");
    int kind = 0;
    const char *names[RULE_KIND_COUNT];
    for (int i = 0; i < RULE_KIND_COUNT; i++)
        names[i] = rules__kinds[i].name;
    int rc = pick_id(def, id, ru, err);
    if (rc == 0)
        rc = parse_enum(def, "kind", names, RULE_KIND_COUNT, &kind, err);
    ru->kind = (enum rule_kind)kind;
    if (rc == 0)
        rc = check_members(def, &rules__kinds[ru->kind], err);
    if (rc == 0)
        rc = parse_common(R, ru, def, err);
    if (rc == 0)
        rc = rules__kinds[ru->kind].parse(R, ru, def, err);
    if (rc == 0)
        rc = normalise(ru, def, err);
    if (rc != 0) {
        rules__rule_free(R, ru);
        return rc;
    }
    *out = ru;
    return 0;
}

void rules__rule_free(rules *R, struct rule *ru)
{
    if (!ru)
        return;
    if (ru->prep)
        GEOSPreparedGeom_destroy_r(R->geos, ru->prep);
    if (ru->poly)
        GEOSGeom_destroy_r(R->geos, ru->poly);
    for (size_t i = 0; ru->entities && i < ru->nentities; i++)
        free(ru->entities[i]);
    free(ru->entities);
    rules__state_map_free(&ru->states);
    json_decref(ru->def);
    free(ru);
}
