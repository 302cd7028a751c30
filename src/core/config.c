/* config — the option table and its parsers; see config.h. */
#include "core/config.h"

#include "core/buf.h"
#include "store/wal.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG_FILE_MAX (1 << 20)

enum opt_type { OPT_PATH, OPT_STRING, OPT_INT, OPT_SIZE, OPT_SECONDS, OPT_ENUM };

struct option_def {
    const char *name;
    enum opt_type type;
    size_t offset;
    size_t size;            /* for strings: capacity of the field */
    const char *fallback;   /* default, as text */
    long long min, max;     /* for numbers */
    const char *const *choices; /* for enums: NULL-terminated */
    const char *doc;
};

static const char *const level_choices[] = {"debug", "info", "warn", "error", NULL};
static const char *const fsync_choices[] = {"always", "everysec", "off", NULL};
static const char *const mqtt_choices[] = {"off", "on", NULL};
_Static_assert(WAL_FSYNC_ALWAYS == 0 && WAL_FSYNC_EVERYSEC == 1 && WAL_FSYNC_OFF == 2,
               "wal_fsync choices are stored as enum wal_fsync");

#define F(field) offsetof(struct cb_config, field), sizeof(((struct cb_config *)0)->field)

static const struct option_def options[] = {
    {"data_dir", OPT_PATH, F(data_dir), "./data", 0, 0, NULL,
     "Directory holding the SQLite database and the write-ahead log. Created if missing."},
    {"web_dir", OPT_PATH, F(web_dir), "./web", 0, 0, NULL,
     "Directory of the static pages (dashboard, citizen page) served at /."},
    {"listen", OPT_STRING, F(listen), "0.0.0.0", 0, 0, NULL,
     "IPv4 address the HTTP server binds to; 127.0.0.1 keeps it local."},
    {"port", OPT_INT, F(port), "8080", 1, 65535, NULL, "HTTP port."},
    {"log_level", OPT_ENUM, F(log_level), "info", 0, 0, level_choices,
     "Least severe log level written: debug, info, warn or error."},
    {"wal_fsync", OPT_ENUM, F(wal_fsync), "everysec", 0, 0, fsync_choices,
     "When the WAL is fsynced: always (before each acknowledgement, group commit), everysec "
     "(at most 1 s of acknowledged writes lost on power failure, none on a process crash) or off."},
    {"max_body", OPT_SIZE, F(max_body), "16M", 1024, 1LL << 30, NULL,
     "Largest request body accepted (K, M, G suffixes); larger bodies get 413."},
    {"max_header", OPT_SIZE, F(max_header), "32K", 4096, 1LL << 20, NULL,
     "Memory per connection for the request line and headers; larger headers are refused."},
    {"max_connections", OPT_INT, F(max_connections), "1024", 1, 1000000, NULL,
     "Simultaneous HTTP connections; further connections are refused until one closes."},
    {"max_connections_per_ip", OPT_INT, F(max_connections_per_ip), "256", 1, 1000000, NULL,
     "Simultaneous HTTP connections from one IP address."},
    {"connection_timeout", OPT_SECONDS, F(connection_timeout), "30", 1, 86400, NULL,
     "Seconds of inactivity after which a connection is closed (slow clients)."},
    {"shutdown_timeout", OPT_SECONDS, F(shutdown_timeout), "10", 0, 3600, NULL,
     "Seconds a SIGTERM/SIGINT waits for in-flight requests to finish before closing them."},
    {"max_future_s", OPT_SECONDS, F(max_future_s), "300", 0, 86400 * 365, NULL,
     "A reading timestamped more than this many seconds ahead of the server clock is refused."},
    {"max_past_s", OPT_SECONDS, F(max_past_s), "31536000", 0, 86400 * 3650, NULL,
     "A reading older than this many seconds is refused (default one year)."},
    {"max_batch_readings", OPT_SIZE, F(max_batch_readings), "100000", 1, 10000000, NULL,
     "Most readings in one ingest request; larger batches get 413."},
    {"ingest_queue", OPT_SIZE, F(ingest_queue), "1000000", 1000, 1000000000, NULL,
     "Readings waiting for the WAL writer at most; beyond it ingest answers 503 with Retry-After "
     "and MQTT slows down, so memory stays bounded."},
    {"ingest_threads", OPT_INT, F(ingest_threads), "1", 0, 64, NULL,
     "Threads that parse ingest bodies of 64 KB or more, so the HTTP thread goes on reading while "
     "the WAL writer applies; 0 parses every body on the HTTP thread."},
    {"checkpoint_interval", OPT_SECONDS, F(checkpoint_interval), "60", 1, 86400, NULL,
     "Seconds between checkpoints that store the live state in SQLite and trim the WAL."},
    {"history_raw_days", OPT_INT, F(history_raw_days), "365", 0, 36500, NULL,
     "Days raw history (every reading) is kept; 0 keeps it forever, else at least 1. Deleted a "
     "bounded batch at a time after each checkpoint, so ingest never stalls on it."},
    {"history_rollup_days", OPT_INT, F(history_rollup_days), "0", 0, 36500, NULL,
     "Days the hourly and minute rollups are kept; 0 keeps them forever. Never shorter than raw "
     "history in effect (a chunk's rollups live in its row)."},
    {"mqtt", OPT_ENUM, F(mqtt), "on", 0, 0, mqtt_choices,
     "on: subscribe to city/+/telemetry on the MQTT broker (connecting in the background, "
     "retrying while it is away); off: no MQTT."},
    {"mqtt_host", OPT_STRING, F(mqtt_host), "127.0.0.1", 0, 0, NULL,
     "Host of the Mosquitto broker the devices publish to."},
    {"mqtt_port", OPT_INT, F(mqtt_port), "1883", 1, 65535, NULL, "Port of the MQTT broker."},
    {"mqtt_client_id", OPT_STRING, F(mqtt_client_id), "citybrain", 0, 0, NULL,
     "MQTT client id of citybrain's persistent session: the broker queues QoS 1 telemetry under "
     "it while citybrain is away. Two servers must not share one."},
    {"mqtt_user", OPT_STRING, F(mqtt_user), "citybrain", 0, 0, NULL,
     "MQTT user of citybrain's service account (allowed to read city/+/telemetry)."},
    {"mqtt_password_file", OPT_PATH, F(mqtt_password_file), "", 0, 0, NULL,
     "File holding the service account's password; empty: DATA_DIR/mosquitto/citybrain.password, "
     "generated once."},
    {"mqtt_broker_pid_file", OPT_PATH, F(mqtt_broker_pid_file), "", 0, 0, NULL,
     "Pid file of the Mosquitto that reads DATA_DIR/mosquitto/passwd and acl; citybrain sends it "
     "SIGHUP when device credentials change. Empty: only write the files."},
    {"mqtt_max_payload", OPT_SIZE, F(mqtt_max_payload), "256K", 64, 256LL << 20, NULL,
     "Largest MQTT telemetry message; larger ones are logged, counted and dropped."},
    {"events_buffer", OPT_SIZE, F(events_buffer), "10000", 16, 10000000, NULL,
     "Recent events (alarms, case transitions, supervision, KPI ticks) kept in memory, so an SSE "
     "client that reconnects with Last-Event-ID gets what it missed; older ones are a gap."},
    {"events_buffer_bytes", OPT_SIZE, F(events_buffer_bytes), "64M", 64 * 1024, 1LL << 34, NULL,
     "Most memory those recent events may take (K, M, G); the oldest go first beyond it."},
    {"max_streams", OPT_INT, F(max_streams), "256", 1, 100000, NULL,
     "Simultaneous GET /api/v1/stream (SSE) clients; more get 503."},
    {"stream_keepalive", OPT_SECONDS, F(stream_keepalive), "15", 1, 3600, NULL,
     "Seconds between keepalive comments on an idle SSE stream (keeps proxies from closing it)."},
    {"webhook_queue", OPT_SIZE, F(webhook_queue), "10000", 16, 10000000, NULL,
     "Webhook deliveries waiting or retrying, over all webhooks; beyond it the oldest is dropped "
     "and counted, so a dead receiver never holds back the city."},
    {"webhook_max_attempts", OPT_INT, F(webhook_max_attempts), "6", 1, 30, NULL,
     "Attempts per webhook delivery, with backoff 1 s, 2 s, 4 s, ... between them; then dropped "
     "and counted."},
    {"webhook_timeout", OPT_SECONDS, F(webhook_timeout), "10", 1, 300, NULL,
     "Seconds one webhook delivery attempt may take (connect, send, answer)."},
    {"city_dir", OPT_PATH, F(city_dir), "./city", 0, 0, NULL,
     "Directory of the city's reference data loaded on first start: categories.json, "
     "departments.json, routing.json, calendar-*.json (README \"Cases\"). Later edits go through "
     "the API; a missing file leaves that table empty."},
    {"media_max", OPT_SIZE, F(media_max), "5M", 1024, 1LL << 30, NULL,
     "Largest photo accepted by POST /api/v1/media (JPEG, PNG, WebP); larger ones get 413."},
    {"duplicate_radius_m", OPT_INT, F(duplicate_radius_m), "50", 0, 100000, NULL,
     "A new case of the same category within this many metres of an open case is linked to it "
     "as a duplicate instead of dispatched again; 0 turns duplicate linking off."},
    {"duplicate_window", OPT_SECONDS, F(duplicate_window), "86400", 0, 86400 * 365, NULL,
     "... and reported within this many seconds of it (default 24 h)."},
    {"case_file_limit", OPT_INT, F(case_file_limit), "30", 1, 100000, NULL,
     "Minutes (natural time) from intake until a case must be accepted and filed (受理/立案)."},
    {"case_dispatch_limit", OPT_INT, F(case_dispatch_limit), "30", 1, 100000, NULL,
     "Minutes (natural time) from filing, or from a return, until a case must be dispatched (派遣)."},
    {"case_check_limit", OPT_INT, F(case_check_limit), "120", 1, 100000, NULL,
     "Working minutes from the handling feedback until the result must be checked (核查)."},
    {"supervise_interval", OPT_SECONDS, F(supervise_interval), "5", 1, 3600, NULL,
     "Seconds between passes over the open cases' timers (督办: yellow at 80 %, red at 100 %)."},
};

#define OPTION_COUNT (sizeof options / sizeof options[0])

static const struct option_def *option_find(const char *name, size_t len)
{
    char norm[64];
    if (len == 0 || len >= sizeof norm)
        return NULL;
    for (size_t i = 0; i < len; i++)
        norm[i] = name[i] == '-' ? '_' : name[i];
    norm[len] = '\0';
    for (size_t i = 0; i < OPTION_COUNT; i++)
        if (strcmp(options[i].name, norm) == 0)
            return &options[i];
    return NULL;
}

int config_is_option(const char *name)
{
    return option_find(name, strlen(name)) != NULL;
}

static int parse_number(const struct option_def *o, const char *value, long long *out,
                        cb_error *err)
{
    char *end;
    errno = 0;
    long long n = strtoll(value, &end, 10);
    if (end == value || errno)
        return cb_error_set(err, CB_EINVALID_FIELD, o->name, "%s: '%s' is not a number",
                            o->name, value);
    if (o->type == OPT_SIZE && *end) {
        long long mult = 1;
        switch (toupper((unsigned char)*end)) {
        case 'K': mult = 1LL << 10; break;
        case 'M': mult = 1LL << 20; break;
        case 'G': mult = 1LL << 30; break;
        default: mult = 0;
        }
        if (mult && n <= LLONG_MAX / mult && (end[1] == '\0' || (toupper((unsigned char)end[1]) == 'B' && end[2] == '\0'))) {
            n *= mult;
            end += strlen(end);
        }
    }
    if (*end)
        return cb_error_set(err, CB_EINVALID_FIELD, o->name, "%s: '%s' is not a %s", o->name,
                            value, o->type == OPT_SIZE ? "size (e.g. 16M)" : "whole number");
    if (n < o->min || n > o->max)
        return cb_error_set(err, CB_EINVALID_FIELD, o->name, "%s: %lld is outside %lld..%lld",
                            o->name, n, o->min, o->max);
    *out = n;
    return 0;
}

static int parse_choice(const struct option_def *o, const char *value, int *out, cb_error *err)
{
    for (int i = 0; o->choices[i]; i++) {
        if (strcmp(o->choices[i], value) == 0) {
            *out = i;
            return 0;
        }
    }
    char list[256] = "";
    for (int i = 0; o->choices[i]; i++) {
        strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
        strncat(list, o->choices[i], sizeof list - strlen(list) - 1);
    }
    return cb_error_set(err, CB_EINVALID_FIELD, o->name, "%s: '%s' is not one of %s", o->name,
                        value, list);
}

static int option_apply(struct cb_config *cfg, const struct option_def *o, const char *value,
                        cb_error *err)
{
    char *field = (char *)cfg + o->offset;
    long long n;
    int rc;
    switch (o->type) {
    case OPT_PATH:
    case OPT_STRING:
        if ((!*value && *o->fallback) || strlen(value) >= o->size) /* "" only if the default */
            return cb_error_set(err, CB_EINVALID_FIELD, o->name, "%s: must be 1..%zu characters",
                                o->name, o->size - 1);
        memcpy(field, value, strlen(value) + 1);
        return 0;
    case OPT_ENUM:
        return parse_choice(o, value, (int *)(void *)field, err);
    case OPT_SIZE:
        if ((rc = parse_number(o, value, &n, err)) != 0)
            return rc;
        *(long long *)(void *)field = n;
        return 0;
    case OPT_INT:
    case OPT_SECONDS:
        if ((rc = parse_number(o, value, &n, err)) != 0)
            return rc;
        *(int *)(void *)field = (int)n;
        return 0;
    }
    return cb_error_set(err, CB_EINTERNAL, o->name, "unknown option type");
}

void config_defaults(struct cb_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        int rc = option_apply(cfg, &options[i], options[i].fallback, NULL);
        assert(rc == 0 && "every default in the option table parses");
        (void)rc;
    }
}

int config_set(struct cb_config *cfg, const char *name, const char *value, cb_error *err)
{
    const struct option_def *o = option_find(name, strlen(name));
    if (!o)
        return cb_error_set(err, CB_EINVALID_FIELD, name, "unknown option '%s'", name);
    return option_apply(cfg, o, value, err);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

static int config_line(struct cb_config *cfg, char *line, const char *path, int lineno,
                       cb_error *err)
{
    char *s = trim(line);
    if (*s == '\0' || *s == '#')
        return 0;
    char *sp = s;
    while (*sp && !isspace((unsigned char)*sp))
        sp++;
    char *value = *sp ? trim(sp + 1) : sp;
    *sp = '\0';
    const struct option_def *o = option_find(s, strlen(s));
    if (*value == '\0' && !(o && !*o->fallback)) /* options empty by default may be set empty */
        return cb_error_set(err, CB_ECONFIG, s, "%s:%d: option '%s' has no value", path, lineno, s);
    cb_error e;
    int rc = config_set(cfg, s, value, &e);
    if (rc != 0)
        return cb_error_set(err, CB_ECONFIG, e.field, "%s:%d: %s", path, lineno, e.message);
    return 0;
}

int config_load_text(struct cb_config *cfg, const char *name, const char *text, size_t len,
                     cb_error *err)
{
    char line[4096];
    int lineno = 0;
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
        lineno++;
        if (n >= sizeof line)
            return cb_error_set(err, CB_ECONFIG, "config", "%s:%d: line too long", name, lineno);
        if (memchr(text + pos, '\0', n))
            return cb_error_set(err, CB_ECONFIG, "config", "%s:%d: NUL byte", name, lineno);
        memcpy(line, text + pos, n);
        line[n] = '\0';
        int rc = config_line(cfg, line, name, lineno, err);
        if (rc != 0)
            return rc;
        pos += n + 1;
    }
    return 0;
}

int config_load_file(struct cb_config *cfg, const char *path, cb_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return cb_error_set(err, CB_ECONFIG, "config", "%s: %s", path, strerror(errno));
    buf text = BUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && text.len < CONFIG_FILE_MAX)
        buf_append(&text, chunk, n);
    int failed = ferror(f) || buf_failed(&text);
    fclose(f);
    int rc;
    if (failed || text.len >= CONFIG_FILE_MAX)
        rc = cb_error_set(err, CB_ECONFIG, "config", "%s: unreadable or larger than %d bytes",
                          path, CONFIG_FILE_MAX);
    else
        rc = config_load_text(cfg, path, text.data ? text.data : "", text.len, err);
    buf_free(&text);
    return rc;
}

int config_apply_args(struct cb_config *cfg, int argc, char **argv, cb_error *err)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0)
            return cb_error_set(err, CB_EINVALID_FIELD, a, "unexpected argument '%s'", a);
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const struct option_def *o = option_find(name, len);
        if (!o)
            return cb_error_set(err, CB_EINVALID_FIELD, a, "unknown flag '%.*s'", (int)len + 2, a);
        const char *value = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!value)
            return cb_error_set(err, CB_EINVALID_FIELD, o->name, "flag '%s' needs a value", a);
        int rc = option_apply(cfg, o, value, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static void flag_name(const char *name, char *out, size_t outlen)
{
    snprintf(out, outlen, "--%s", name);
    for (char *p = out; *p; p++)
        if (*p == '_')
            *p = '-';
}

void config_print_flags(FILE *out)
{
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        char flag[80];
        flag_name(options[i].name, flag, sizeof flag);
        fprintf(out, "  %-28s %s (default: %s)\n", flag, options[i].doc, options[i].fallback);
    }
}

void config_write_reference(FILE *out)
{
    fprintf(out, "# citybrain.conf — every option of `citybrain serve`, commented out at its default.\n"
                 "# Generated by `citybrain config reference`; command-line flags override this file\n"
                 "# (--data-dir DIR, --port N, ...). Sizes take K, M, G suffixes; times are seconds.\n");
    for (size_t i = 0; i < OPTION_COUNT; i++)
        fprintf(out, "\n# %s\n#%s %s\n", options[i].doc, options[i].name, options[i].fallback);
}

void config_print_effective(FILE *out, const struct cb_config *cfg)
{
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        const struct option_def *o = &options[i];
        const char *field = (const char *)cfg + o->offset;
        switch (o->type) {
        case OPT_PATH:
        case OPT_STRING: fprintf(out, "%s %s\n", o->name, field); break;
        case OPT_ENUM: fprintf(out, "%s %s\n", o->name, o->choices[*(const int *)(const void *)field]); break;
        case OPT_SIZE: fprintf(out, "%s %lld\n", o->name, *(const long long *)(const void *)field); break;
        case OPT_INT:
        case OPT_SECONDS: fprintf(out, "%s %d\n", o->name, *(const int *)(const void *)field); break;
        }
    }
}
