/* mqtt_auth — the broker's password and ACL files, rendered from our own
 * device list at every change; see mqtt_auth.h. An edit loads the list, the
 * changes are appended as records, and commit settles them (the latest record
 * of an entity wins, then the latest of a user) before writing. */
#include "mqtt/mqtt_auth.h"

#include "core/buf.h"
#include "core/log.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define AUTH_PATH_MAX (CONFIG_PATH_MAX + 64)
#define SALT_LEN 12 /* what mosquitto_passwd uses */
#define HASH_TEXT_MAX 160
#define ID_MAX 256        /* longer than any entity id (ENTITY_ID_MAX) */

/* One device's credentials; hash NULL means "taken away". */
struct record {
    char *id, *user, *hash;
    size_t seq; /* order of arrival: later wins */
};

struct mqtt_auth {
    const struct cb_config *cfg;
    char dir[CONFIG_PATH_MAX + 16]; /* DATA_DIR/mosquitto */
    int lock_fd;
    char service_password[MQTT_AUTH_PASSWORD_MAX];
    struct record *recs; /* loaded ones first, then this edit's changes */
    size_t n, cap;
};

/* --- the hash Mosquitto checks --- */

/* PBKDF2-HMAC-SHA512 with one 64-byte block, as mosquitto's pw__hash() does
 * through OpenSSL's PKCS5_PBKDF2_HMAC. The HMAC key schedule is computed once
 * and copied for each iteration. */
static void pbkdf2_sha512(const char *password, const unsigned char *salt, size_t salt_len,
                          int iterations, unsigned char out[64])
{
    crypto_auth_hmacsha512_state keyed, st;
    unsigned char u[64];
    static const unsigned char block1[4] = {0, 0, 0, 1};
    crypto_auth_hmacsha512_init(&keyed, (const unsigned char *)password, strlen(password));
    st = keyed;
    crypto_auth_hmacsha512_update(&st, salt, salt_len);
    crypto_auth_hmacsha512_update(&st, block1, sizeof block1);
    crypto_auth_hmacsha512_final(&st, u);
    memcpy(out, u, 64);
    for (int i = 1; i < iterations; i++) {
        st = keyed;
        crypto_auth_hmacsha512_update(&st, u, sizeof u);
        crypto_auth_hmacsha512_final(&st, u);
        for (int j = 0; j < 64; j++)
            out[j] ^= u[j];
    }
    sodium_memzero(&keyed, sizeof keyed);
    sodium_memzero(&st, sizeof st);
}

/* Device tokens are 128 random bits, so the iteration count adds nothing
 * against guessing them; it only costs the broker CPU at every CONNECT (a
 * city's devices reconnecting after a broker restart). Hence the default. */
void mqtt_auth_hash(const char *password, const unsigned char salt[SALT_LEN], char *out,
                    size_t outlen)
{
    unsigned char dk[64];
    char salt64[sodium_base64_ENCODED_LEN(SALT_LEN, sodium_base64_VARIANT_ORIGINAL)];
    char dk64[sodium_base64_ENCODED_LEN(64, sodium_base64_VARIANT_ORIGINAL)];
    pbkdf2_sha512(password, salt, SALT_LEN, MQTT_AUTH_PBKDF2_ITERATIONS, dk);
    sodium_bin2base64(salt64, sizeof salt64, salt, SALT_LEN, sodium_base64_VARIANT_ORIGINAL);
    sodium_bin2base64(dk64, sizeof dk64, dk, sizeof dk, sodium_base64_VARIANT_ORIGINAL);
    snprintf(out, outlen, "$7$%d$%s$%s", MQTT_AUTH_PBKDF2_ITERATIONS, salt64, dk64);
    sodium_memzero(dk, sizeof dk);
}

static void hash_new(const char *password, char out[HASH_TEXT_MAX])
{
    unsigned char salt[SALT_LEN];
    randombytes_buf(salt, sizeof salt);
    mqtt_auth_hash(password, salt, out, HASH_TEXT_MAX);
}

/* --- records --- */

static int record_add(mqtt_auth *a, const char *id, const char *user, const char *hash,
                      cb_error *err)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        struct record *r = realloc(a->recs, cap * sizeof *r);
        if (!r)
            return cb_error_set(err, CB_ENOMEM, NULL, "out of memory for MQTT credentials");
        a->recs = r;
        a->cap = cap;
    }
    struct record *r = &a->recs[a->n];
    r->id = strdup(id);
    r->user = strdup(user);
    r->hash = hash ? strdup(hash) : NULL;
    r->seq = a->n;
    if (!r->id || !r->user || (hash && !r->hash)) {
        free(r->id);
        free(r->user);
        free(r->hash);
        return cb_error_set(err, CB_ENOMEM, NULL, "out of memory for MQTT credentials");
    }
    a->n++;
    return 0;
}

static int cmp_id_seq(const void *x, const void *y)
{
    const struct record *a = x, *b = y;
    int c = strcmp(a->id, b->id);
    return c ? c : (a->seq > b->seq) - (a->seq < b->seq);
}

static int cmp_user_seq(const void *x, const void *y)
{
    const struct record *a = x, *b = y;
    int c = strcmp(a->user, b->user);
    return c ? c : (a->seq > b->seq) - (a->seq < b->seq);
}

/* Keeps, in place, the last record of each run of equal keys; returns the count. */
static size_t keep_last(struct record *r, size_t n, int (*cmp)(const void *, const void *),
                        int (*same)(const struct record *, const struct record *))
{
    qsort(r, n, sizeof *r, cmp);
    size_t out = 0;
    for (size_t i = 0; i < n; i++)
        if (i + 1 == n || !same(&r[i], &r[i + 1]))
            r[out++] = r[i];
    return out;
}

static int same_id(const struct record *a, const struct record *b) { return !strcmp(a->id, b->id); }
static int same_user(const struct record *a, const struct record *b) { return !strcmp(a->user, b->user); }

/* The settled list: live records only, one per entity and per user, sorted by
 * id. Pointers are shared with a->recs. Caller frees the array. */
static struct record *settle(const mqtt_auth *a, size_t *count, cb_error *err)
{
    struct record *r = malloc((a->n ? a->n : 1) * sizeof *r);
    if (!r) {
        cb_error_set(err, CB_ENOMEM, NULL, "out of memory for MQTT credentials");
        return NULL;
    }
    if (a->n)
        memcpy(r, a->recs, a->n * sizeof *r);
    size_t n = keep_last(r, a->n, cmp_id_seq, same_id), live = 0;
    for (size_t i = 0; i < n; i++)
        if (r[i].hash)
            r[live++] = r[i];
    n = keep_last(r, live, cmp_user_seq, same_user);
    qsort(r, n, sizeof *r, cmp_id_seq);
    *count = n;
    return r;
}

/* --- files --- */

static int ensure_dir(const char *dir, cb_error *err)
{
    if (mkdir(dir, 0750) == 0 || errno == EEXIST)
        return 0;
    return cb_error_set(err, CB_EIO, "data_dir", "cannot create %s: %s", dir, strerror(errno));
}

/* Replaces path by data: temp file, fsync, rename — a reader (the broker)
 * sees the old file or the new one, never half of one. */
static int write_atomic(const char *path, const buf *data, mode_t mode, cb_error *err)
{
    char tmp[AUTH_PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return cb_error_set(err, CB_EIO, NULL, "cannot write %s: %s", tmp, strerror(errno));
    size_t off = 0;
    while (off < data->len) {
        ssize_t w = write(fd, data->data + off, data->len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    int ok = off == data->len && fsync(fd) == 0;
    int saved = errno;
    close(fd);
    if (!ok || rename(tmp, path) != 0) {
        saved = ok ? errno : saved;
        unlink(tmp);
        return cb_error_set(err, saved == ENOSPC ? CB_ESTORAGE_FULL : CB_EIO, NULL,
                            "cannot write %s: %s", path, strerror(saved));
    }
    return 0;
}

static void path_in(const mqtt_auth *a, const char *name, char out[AUTH_PATH_MAX])
{
    snprintf(out, AUTH_PATH_MAX, "%s/%s", a->dir, name);
}

/* devices: "<id> <user> <hash>" per line. A damaged line is skipped with a
 * warning: the device re-appears when its token is issued again. */
static int load_devices(mqtt_auth *a, cb_error *err)
{
    char path[AUTH_PATH_MAX];
    path_in(a, "devices", path);
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? 0 : cb_error_set(err, CB_EIO, NULL, "cannot read %s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    int rc = 0, lineno = 0;
    while (rc == 0 && getline(&line, &cap, f) > 0) {
        lineno++;
        char *save = NULL, *id = strtok_r(line, " \n", &save), *user = strtok_r(NULL, " \n", &save),
             *hash = strtok_r(NULL, " \n", &save);
        if (!id || !user || !hash || strncmp(hash, "$7$", 3) != 0) {
            log_event(LOG_WARN, "mqtt_auth", "msg=\"skipping a damaged line\" file=%s line=%d", path, lineno);
            continue;
        }
        rc = record_add(a, id, user, hash, err);
    }
    free(line);
    fclose(f);
    return rc;
}

/* The service password: from mqtt_password_file, else from our own file,
 * made once from 24 random bytes. */
static int load_service_password(mqtt_auth *a, cb_error *err)
{
    char own[AUTH_PATH_MAX];
    path_in(a, "citybrain.password", own);
    const char *path = a->cfg->mqtt_password_file[0] ? a->cfg->mqtt_password_file : own;
    FILE *f = fopen(path, "r");
    if (!f && errno == ENOENT && path == own) {
        unsigned char raw[24];
        randombytes_buf(raw, sizeof raw);
        sodium_bin2base64(a->service_password, sizeof a->service_password, raw, sizeof raw,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        buf b = BUF_INIT;
        buf_printf(&b, "%s\n", a->service_password);
        int rc = buf_failed(&b) ? cb_error_set(err, CB_ENOMEM, NULL, "out of memory")
                                : write_atomic(own, &b, 0600, err);
        buf_free(&b);
        return rc;
    }
    if (!f)
        return cb_error_set(err, CB_ECONFIG, "mqtt_password_file", "cannot read %s: %s", path, strerror(errno));
    int got = fgets(a->service_password, sizeof a->service_password, f) != NULL;
    fclose(f);
    a->service_password[strcspn(a->service_password, "\r\n")] = '\0';
    if (!got || !a->service_password[0])
        return cb_error_set(err, CB_ECONFIG, "mqtt_password_file", "%s holds no password", path);
    return 0;
}

int mqtt_auth_begin(const struct cb_config *cfg, mqtt_auth **out, cb_error *err)
{
    if (sodium_init() < 0)
        return cb_error_set(err, CB_EINTERNAL, NULL, "libsodium failed to initialise");
    mqtt_auth *a = calloc(1, sizeof *a);
    if (!a)
        return cb_error_set(err, CB_ENOMEM, NULL, "out of memory");
    a->cfg = cfg;
    a->lock_fd = -1;
    snprintf(a->dir, sizeof a->dir, "%s/mosquitto", cfg->data_dir);
    char lock[AUTH_PATH_MAX];
    path_in(a, ".lock", lock);
    int rc = ensure_dir(cfg->data_dir, err);
    if (rc == 0)
        rc = ensure_dir(a->dir, err);
    if (rc == 0 && ((a->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0 ||
                    flock(a->lock_fd, LOCK_EX) != 0))
        rc = cb_error_set(err, CB_EIO, NULL, "cannot lock %s: %s", lock, strerror(errno));
    if (rc == 0)
        rc = load_service_password(a, err);
    if (rc == 0)
        rc = load_devices(a, err);
    if (rc != 0) {
        mqtt_auth_abort(a);
        return rc;
    }
    *out = a;
    return 0;
}

void mqtt_auth_abort(mqtt_auth *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n; i++) {
        free(a->recs[i].id);
        free(a->recs[i].user);
        free(a->recs[i].hash);
    }
    free(a->recs);
    if (a->lock_fd >= 0)
        close(a->lock_fd); /* releases the flock */
    sodium_memzero(a->service_password, sizeof a->service_password);
    free(a);
}

/* An entity id goes into a topic and a line of each file; a user also into
 * "user:hash" of passwd. Mosquitto refuses users with + # / in ACLs. */
static int text_ok(const char *s, size_t max, const char *forbidden)
{
    size_t n = strlen(s);
    if (n == 0 || n >= max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isgraph((unsigned char)s[i]) || strchr(forbidden, s[i]))
            return 0;
    return 1;
}

int mqtt_auth_put(mqtt_auth *a, const char *entity_id, const char *token, cb_error *err)
{
    const char *us = strrchr(token, '_');
    char user[MQTT_AUTH_USER_MAX];
    if (!us || us == token || (size_t)(us - token) >= sizeof user || !us[1])
        return cb_error_set(err, CB_EINVALID_FIELD, "token", "a device token is <user>_<secret>");
    snprintf(user, sizeof user, "%.*s", (int)(us - token), token);
    if (!text_ok(entity_id, ID_MAX, "+#/") || !text_ok(user, sizeof user, ":+#/") ||
        strcmp(user, a->cfg->mqtt_user) == 0)
        return cb_error_set(err, CB_EINVALID_FIELD, "id", "'%s' cannot be an MQTT device", entity_id);
    char hash[HASH_TEXT_MAX];
    hash_new(token, hash);
    return record_add(a, entity_id, user, hash, err);
}

int mqtt_auth_drop(mqtt_auth *a, const char *entity_id, cb_error *err)
{
    return record_add(a, entity_id, "-", NULL, err);
}

/* --- rendering --- */

static int cmp_str(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* Lines of the current passwd whose users we did not make (added by hand with
 * mosquitto_passwd), so a rewrite keeps them. Our users, live or dropped, are
 * looked up in a sorted array: O(log n) per line. */
static void keep_foreign_users(const mqtt_auth *a, buf *out)
{
    char path[AUTH_PATH_MAX];
    path_in(a, "passwd", path);
    FILE *f = fopen(path, "r");
    const char **ours = malloc((a->n + 1) * sizeof *ours);
    if (!f || !ours) {
        if (f)
            fclose(f);
        out->failed |= f != NULL; /* without the list, foreign lines cannot be told apart */
        free(ours);
        return;
    }
    for (size_t i = 0; i < a->n; i++)
        ours[i] = a->recs[i].user;
    ours[a->n] = a->cfg->mqtt_user;
    qsort(ours, a->n + 1, sizeof *ours, cmp_str);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        *colon = '\0';
        const char *key = line;
        int mine = bsearch(&key, ours, a->n + 1, sizeof *ours, cmp_str) != NULL;
        *colon = ':';
        if (!mine)
            buf_printf(out, "%s%s", line, line[len - 1] == '\n' ? "" : "\n");
    }
    free(line);
    free(ours);
    fclose(f);
}

static void render(const mqtt_auth *a, const struct record *r, size_t n, buf *devices,
                   buf *passwd, buf *acl)
{
    char hash[HASH_TEXT_MAX];
    hash_new(a->service_password, hash);
    buf_printf(passwd, "%s:%s\n", a->cfg->mqtt_user, hash);
    keep_foreign_users(a, passwd);
    buf_printf(acl, "# Generated by citybrain from %s/devices at every device token change;\n"
                    "# edits here are overwritten.\n\nuser %s\ntopic read city/+/telemetry\n",
               a->dir, a->cfg->mqtt_user);
    for (size_t i = 0; i < n; i++) {
        buf_printf(devices, "%s %s %s\n", r[i].id, r[i].user, r[i].hash);
        buf_printf(passwd, "%s:%s\n", r[i].user, r[i].hash);
        buf_printf(acl, "\nuser %s\ntopic write city/%s/telemetry\n", r[i].user, r[i].id);
    }
}

/* SIGHUP makes Mosquitto re-read passwd and acl. The pid is checked to be a
 * mosquitto first: a stale pid file must not hang up an unrelated process. */
static void reload_broker(const struct cb_config *cfg)
{
    const char *pidfile = cfg->mqtt_broker_pid_file;
    if (!pidfile[0])
        return;
    FILE *f = fopen(pidfile, "r");
    long pid = 0;
    if (f) {
        if (fscanf(f, "%ld", &pid) != 1)
            pid = 0;
        fclose(f);
    }
    char comm_path[64], comm[64] = "";
    snprintf(comm_path, sizeof comm_path, "/proc/%ld/comm", pid);
    FILE *c = pid > 0 ? fopen(comm_path, "r") : NULL;
    if (c) {
        if (!fgets(comm, sizeof comm, c))
            comm[0] = '\0';
        fclose(c);
    }
    if (strncmp(comm, "mosquitto", 9) != 0 || kill((pid_t)pid, SIGHUP) != 0)
        log_event(LOG_WARN, "mqtt_auth", "msg=\"broker not reloaded; it reads the files when it starts\" "
                  "pid_file=%s pid=%ld", pidfile, pid);
}

int mqtt_auth_commit(mqtt_auth *a, cb_error *err)
{
    size_t n = 0;
    struct record *r = settle(a, &n, err);
    if (!r) {
        mqtt_auth_abort(a);
        return CB_ENOMEM;
    }
    buf devices = BUF_INIT, passwd = BUF_INIT, acl = BUF_INIT;
    render(a, r, n, &devices, &passwd, &acl);
    int rc = 0;
    if (buf_failed(&devices) || buf_failed(&passwd) || buf_failed(&acl))
        rc = cb_error_set(err, CB_ENOMEM, NULL, "out of memory for MQTT credentials");
    /* devices first: if a later write fails, the next commit renders the rest. */
    const struct { const char *name; const buf *data; mode_t mode; } files[] = {
        {"devices", &devices, 0600}, {"passwd", &passwd, 0640}, {"acl", &acl, 0640}};
    for (size_t i = 0; rc == 0 && i < sizeof files / sizeof files[0]; i++) {
        char path[AUTH_PATH_MAX];
        path_in(a, files[i].name, path);
        rc = write_atomic(path, files[i].data, files[i].mode, err);
    }
    if (rc == 0)
        reload_broker(a->cfg);
    buf_free(&devices);
    buf_free(&passwd);
    buf_free(&acl);
    free(r);
    mqtt_auth_abort(a);
    return rc;
}

int mqtt_auth_set(const struct cb_config *cfg, const char *entity_id, const char *token, cb_error *err)
{
    mqtt_auth *a;
    int rc = mqtt_auth_begin(cfg, &a, err);
    if (rc != 0)
        return rc;
    if ((rc = mqtt_auth_put(a, entity_id, token, err)) != 0) {
        mqtt_auth_abort(a);
        return rc;
    }
    return mqtt_auth_commit(a, err);
}

int mqtt_auth_remove(const struct cb_config *cfg, const char *entity_id, cb_error *err)
{
    mqtt_auth *a;
    int rc = mqtt_auth_begin(cfg, &a, err);
    if (rc != 0)
        return rc;
    if ((rc = mqtt_auth_drop(a, entity_id, err)) != 0) {
        mqtt_auth_abort(a);
        return rc;
    }
    return mqtt_auth_commit(a, err);
}

int mqtt_auth_service(const struct cb_config *cfg, char password[MQTT_AUTH_PASSWORD_MAX], cb_error *err)
{
    mqtt_auth *a;
    int rc = mqtt_auth_begin(cfg, &a, err);
    if (rc != 0)
        return rc;
    assert(strlen(a->service_password) < MQTT_AUTH_PASSWORD_MAX);
    memcpy(password, a->service_password, MQTT_AUTH_PASSWORD_MAX);
    return mqtt_auth_commit(a, err);
}
