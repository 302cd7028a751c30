/* config — every server option in one table: name, type, default, bounds, doc.
 *
 * The table drives the config file parser, the command-line flags of `serve`,
 * `citybrain serve --help` and the reference file citybrain.conf
 * (`citybrain config reference`), so they cannot drift apart.
 * File syntax (mosquitto.conf style): one `name value` per line, `#` comments.
 * Flags: `--name value` or `--name=value`, dashes or underscores alike. */
#ifndef CB_CONFIG_H
#define CB_CONFIG_H

#include "core/err.h"

#include <stdio.h>

#define CONFIG_PATH_MAX 1024

struct cb_config {
    char data_dir[CONFIG_PATH_MAX];
    char web_dir[CONFIG_PATH_MAX];
    char listen[64];
    int port;
    int log_level;          /* enum log_level */
    int wal_fsync;          /* enum wal_fsync of store/wal.h: the choices are in its order */
    long long max_body;     /* bytes */
    long long max_header;   /* bytes */
    int max_connections;
    int max_connections_per_ip;
    int connection_timeout; /* seconds */
    int shutdown_timeout;   /* seconds */
    int max_future_s;       /* readings further ahead are refused */
    int max_past_s;         /* readings further back are refused */
    long long max_batch_readings;
    long long ingest_queue; /* readings waiting for the writer */
    int ingest_threads;     /* parse workers for large ingest bodies; 0: the HTTP thread */
    int checkpoint_interval; /* seconds */
    int history_raw_days;   /* 0: forever */
    int history_rollup_days; /* 0: forever */
    int mqtt;               /* 1: subscribe to the broker (option mqtt on|off) */
    char mqtt_host[256];
    int mqtt_port;
    char mqtt_client_id[128];
    char mqtt_user[128];
    char mqtt_password_file[CONFIG_PATH_MAX]; /* "": DATA_DIR/mosquitto/citybrain.password */
    char mqtt_broker_pid_file[CONFIG_PATH_MAX]; /* "": do not signal the broker */
    long long mqtt_max_payload; /* bytes */
    long long events_buffer;       /* events kept for reconnecting SSE clients */
    long long events_buffer_bytes; /* and at most this many bytes of them */
    int max_streams;               /* SSE clients at once */
    int stream_keepalive;          /* seconds between SSE keepalive comments */
    long long webhook_queue;       /* deliveries waiting or retrying, all webhooks */
    int webhook_max_attempts;
    int webhook_timeout;           /* seconds per delivery attempt */
    char city_dir[CONFIG_PATH_MAX]; /* reference data of the case centre */
    long long media_max;           /* bytes per uploaded photo */
    int duplicate_radius_m;
    int duplicate_window;          /* seconds */
    int case_file_limit;           /* minutes, natural */
    int case_dispatch_limit;       /* minutes, natural */
    int case_check_limit;          /* working minutes */
    int supervise_interval;        /* seconds */
};

void config_defaults(struct cb_config *cfg);

/* Sets one option from text; name may use dashes or underscores. */
int config_set(struct cb_config *cfg, const char *name, const char *value, cb_error *err);

/* Parses config text; name is used in messages ("citybrain.conf:3: ..."). */
int config_load_text(struct cb_config *cfg, const char *name, const char *text, size_t len,
                     cb_error *err);

/* Reads a config file; err names the file, line and option of the first problem. */
int config_load_file(struct cb_config *cfg, const char *path, cb_error *err);

/* Applies `--name value` / `--name=value` flags from argv[0..argc). Non-option
 * arguments and unknown flags are errors. */
int config_apply_args(struct cb_config *cfg, int argc, char **argv, cb_error *err);

/* 1 if `--name` (without the dashes) names a config option. */
int config_is_option(const char *name);

void config_print_flags(FILE *out);      /* for --help */
void config_write_reference(FILE *out);  /* citybrain.conf: every option at its default */
void config_print_effective(FILE *out, const struct cb_config *cfg);

#endif
