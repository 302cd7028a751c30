/* staff — the workflow's people and their role keys; see staff.h. */
#include "staff.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

/* The first line of path, or NULL (no file, empty). Caller frees. */
static char *read_key_file(const char *path)
{
    char line[512];
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *got = fgets(line, sizeof line, f);
    fclose(f);
    if (!got)
        return NULL;
    line[strcspn(line, " \t\r\n")] = 0;
    return *line ? strdup(line) : NULL;
}

static int write_key_file(const char *path, const char *key)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -1;
    size_t len = strlen(key);
    int ok = write(fd, key, len) == (ssize_t)len && write(fd, "\n", 1) == 1;
    return close(fd) == 0 && ok ? 0 : -1;
}

/* 1 when citybrain still takes the key: GET /api/v1/whoami for staff; a
 * citizen app's key reads nothing but the nearby services. */
static int key_works(api *a, const char *key, const char *role)
{
    char err[256];
    int status = 0;
    const char *probe = strcmp(role, "citizen") == 0 ? "/api/v1/nearby?lon=113.24&lat=35.22" : "/api/v1/whoami";
    json_t *who = api_json_as(a, key, "GET", probe, NULL, &status, err, sizeof err);
    json_decref(who);
    return who && status == 200;
}

/* A new key of role (department may be NULL) through POST /api/v1/keys. */
static char *create_key(api *a, const char *role, const char *department, const char *name, char *err,
                        size_t errlen)
{
    json_t *body = json_pack("{s:s, s:s, s:s?}", "role", role, "name", name, "department", department);
    int status = 0;
    json_t *ans = body ? api_json(a, "POST", "/api/v1/keys", body, &status, err, errlen) : NULL;
    if (!body)
        snprintf(err, errlen, "out of memory");
    json_decref(body);
    const char *key = json_string_value(json_object_get(ans, "key"));
    char *out = status == 201 && key ? strdup(key) : NULL;
    if (!out && ans)
        snprintf(err, errlen, "POST /api/v1/keys (%s %s): HTTP %d %s", role, department ? department : "", status,
                 status == 403 ? "(citysim's --key must be an admin's to play the case workflow)"
                               : json_string_value(json_object_get(json_object_get(ans, "error"), "message")));
    json_decref(ans);
    return out;
}

/* The key kept in dir/file if it still works, else a new one (kept there). */
static char *get_key(api *a, const char *dir, const char *file, const char *role, const char *department,
                     const char *name, int *created, char *err, size_t errlen)
{
    char path[1024] = "";
    if (dir) {
        snprintf(path, sizeof path, "%s/%s", dir, file);
        char *kept = read_key_file(path);
        if (kept && key_works(a, kept, role))
            return kept;
        free(kept);
    }
    char *key = create_key(a, role, department, name, err, errlen);
    if (key && *path && write_key_file(path, key) != 0)
        sim_log(SIM_WARN, "key_not_kept", "path=%s error=\"%s\"", path, strerror(errno));
    *created += key != NULL;
    return key;
}

static void copy_text(char *out, size_t n, const json_t *v)
{
    snprintf(out, n, "%s", json_is_string(v) ? json_string_value(v) : "");
}

static int load_departments(staff *s, api *a, char *err, size_t errlen)
{
    int status = 0;
    json_t *ans = api_json(a, "GET", "/api/v1/departments", NULL, &status, err, errlen);
    json_t *list = json_object_get(ans, "departments");
    if (status != 200 || !json_is_array(list)) {
        if (ans)
            snprintf(err, errlen, "GET /api/v1/departments: HTTP %d (does this citybrain have cases?)", status);
        json_decref(ans);
        return -1;
    }
    s->dept = calloc(json_array_size(list) + 1, sizeof *s->dept);
    size_t i;
    json_t *d;
    json_array_foreach(list, i, d) {
        if (!s->dept || !json_is_string(json_object_get(d, "code")))
            continue;
        struct department *x = &s->dept[s->ndept++];
        copy_text(x->code, sizeof x->code, json_object_get(d, "code"));
        copy_text(x->name, sizeof x->name, json_object_get(d, "name"));
        copy_text(x->parent, sizeof x->parent, json_object_get(d, "parent"));
        copy_text(x->district, sizeof x->district, json_object_get(d, "district"));
    }
    json_decref(ans);
    return s->dept ? 0 : (snprintf(err, errlen, "out of memory"), -1);
}

int staff_load(staff *s, api *a, const city *ct, const char *dir, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    if (dir && mkdir(dir, 0700) != 0 && errno != EEXIST)
        return snprintf(err, errlen, "cannot make the keys directory %s: %s", dir, strerror(errno)), -1;
    if (load_departments(s, a, err, errlen) != 0)
        return -1;
    int created = 0;
    char file[96], name[192];
    if (!(s->operator_key = get_key(a, dir, "operator.key", "operator", NULL, "运营中心调度员 (citysim)", &created,
                                    err, errlen)) ||
        !(s->hotline_key = get_key(a, dir, "hotline.key", "hotline", NULL, "12345热线话务员 (citysim)", &created,
                                   err, errlen)) ||
        !(s->citizen_key = get_key(a, dir, "citizen.key", "citizen", NULL, "市民端 (citysim)", &created, err,
                                   errlen)))
        return -1;
    if (!(s->grid_keys = calloc(ct->n ? ct->n : 1, sizeof *s->grid_keys)))
        return snprintf(err, errlen, "out of memory"), -1;
    for (size_t i = 0; i < ct->n; i++, s->ngrid++) {
        snprintf(file, sizeof file, "grid-%s.key", ct->d[i].code);
        snprintf(name, sizeof name, "%s网格员 (citysim)", ct->d[i].name);
        if (!(s->grid_keys[i] = get_key(a, dir, file, "grid", ct->d[i].code, name, &created, err, errlen)))
            return -1;
    }
    for (size_t i = 0; i < s->ndept; i++) {
        struct department *d = &s->dept[i];
        snprintf(file, sizeof file, "dept-%s.key", d->code);
        snprintf(name, sizeof name, "%s (citysim)", d->name);
        if (!(d->key = get_key(a, dir, file, "dept", d->code, name, &created, err, errlen)))
            return -1;
    }
    sim_log(SIM_INFO, "staff", "departments=%zu grid_workers=%zu keys_created=%d keys_dir=%s", s->ndept, s->ngrid,
            created, dir ? dir : "-");
    return 0;
}

void staff_free(staff *s)
{
    free(s->operator_key);
    free(s->hotline_key);
    free(s->citizen_key);
    for (size_t i = 0; s->grid_keys && i < s->ngrid; i++)
        free(s->grid_keys[i]);
    free(s->grid_keys);
    for (size_t i = 0; i < s->ndept; i++)
        free(s->dept[i].key);
    free(s->dept);
    memset(s, 0, sizeof *s);
}

const struct department *staff_department(const staff *s, const char *code)
{
    for (size_t i = 0; code && i < s->ndept; i++)
        if (strcmp(s->dept[i].code, code) == 0)
            return &s->dept[i];
    return NULL;
}
