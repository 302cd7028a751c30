/* app — opening the parts and `citybrain serve`: start, wait for a signal,
 * shut down gracefully (stop accepting, drain in-flight requests, close the
 * store, exit 0). */
#include "app/app.h"

#include "core/clock.h"
#include "core/log.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

int app_load_config(int argc, char **argv, struct cb_config *cfg, cb_error *err)
{
    config_defaults(cfg);
    int missing = 0;
    const char *file = cli_take_flag(&argc, argv, "--config", &missing);
    if (missing)
        return cb_error_set(err, CB_ECONFIG, "config", "--config needs a file name");
    if (file) {
        int rc = config_load_file(cfg, file, err);
        if (rc != 0)
            return rc;
    }
    return config_apply_args(cfg, argc, argv, err);
}

int app_open_store(struct app *a, cb_error *err)
{
    a->started = clock_mono_s();
    int rc = db_open(a->cfg.data_dir, &a->db, err);
    if (rc == 0)
        rc = apikey_store_open(a->db, &a->keys, err);
    return rc;
}

int app_open_regions(struct app *a, cb_error *err)
{
    int rc = app_open_store(a, err);
    if (rc == 0)
        rc = db_open(a->cfg.data_dir, &a->regions_db, err);
    if (rc == 0)
        rc = region_store_open(a->regions_db, &a->regions, err);
    return rc;
}

/* The rules module's case hook (rules_case_fn) on the case module. */
static int alarm_opens_case(void *ctx, const json_t *alarm, const char *category, char *case_id, size_t n)
{
    return cases_open_from_alarm(ctx, alarm, category, case_id, n);
}

int app_open_city(struct app *a, cb_error *err)
{
    double t0 = clock_mono_s();
    int rc = app_open_regions(a, err);
    if (rc == 0)
        rc = dict_open(a->cfg.data_dir, &a->names, err);
    if (rc == 0)
        rc = state_create(&a->state, err);
    if (rc == 0)
        rc = entities_open(a->db, a->state, a->names, a->regions, &a->entities, err);
    if (rc == 0)
        rc = events_open(&a->cfg, &a->events, err);
    struct cases_options co;
    app_cases_options(a, a->cfg.supervise_interval * 1000, &co);
    if (rc == 0)
        rc = cases_open(&co, &a->cases, err);
    if (rc == 0)
        rc = series_open(a->db, &a->series, err);
    if (rc == 0) /* before ingest, so the WAL replay is evaluated (rules.h "Time") */
        rc = rules_open(&a->cfg, a->entities, a->events, &a->rules, err);
    if (rc == 0) /* a rule that says "open a case" opens it through the case module */
        rules_set_case_hook(a->rules, alarm_opens_case, a->cases);
    struct ingest_observer rules_observer = {rules_applied, rules_checkpoint, a->rules};
    if (rc == 0)
        rc = ingest_open_observed(&a->cfg, a->entities, a->series, &rules_observer, &a->ingest, err);
    if (rc == 0 && a->cfg.ingest_threads > 0)
        rc = workers_start((size_t)a->cfg.ingest_threads, 64, "cb-parse", &a->parsers, err);
    if (rc == 0)
        log_event(LOG_INFO, "loaded", "entities=%zu districts=%zu grid_cells=%zu state_bytes=%zu took_ms=%.1f",
                  state_count(a->state), region_store_count(a->regions, REGION_DISTRICT),
                  region_store_count(a->regions, REGION_GRID), state_memory(a->state), (clock_mono_s() - t0) * 1000);
    return rc;
}

/* Closes in the reverse order of opening; the HTTP server goes first so no
 * request runs while the parts it uses close. */
void app_close(struct app *a)
{
    http_server_stop(a->http);
    mqtt_stop(a->mqtt); /* before ingest: its last message is committed, then acknowledged */
    workers_stop(a->parsers); /* before ingest: what they parsed goes to the writer */
    a->parsers = NULL;
    ingest_close(a->ingest); /* its last checkpoint flushes the series */
    rules_close(a->rules);   /* after ingest: the writer's last readings are evaluated, their alarms stored */
    a->rules = NULL;
    series_close(a->series);
    kpi_worker_stop(a->kpi); /* after HTTP (it answers requests), before events (kpi.tick) */
    a->kpi = NULL;
    cases_close(a->cases);   /* before events: it publishes case and supervision events */
    a->cases = NULL;
    events_close(a->events); /* after the modules that publish */
    a->events = NULL;
    entities_close(a->entities);
    state_destroy(a->state);
    dict_close(a->names);
    region_store_close(a->regions);
    db_close(a->regions_db);
    apikey_store_close(a->keys);
    db_close(a->db);
    a->http = NULL;
    a->mqtt = NULL;
    a->ingest = NULL;
    a->series = NULL;
    a->entities = NULL;
    a->state = NULL;
    a->names = NULL;
    a->regions = NULL;
    a->regions_db = NULL;
    a->keys = NULL;
    a->db = NULL;
}

/* API keys for people and systems, device tokens ("cbd_...") for devices. */
static int authenticate(void *app, const char *key, struct principal *out, cb_error *err)
{
    struct app *a = app;
    if (strncmp(key, "cbd_", 4) == 0)
        return entity_authenticate(a->entities, key, out, err);
    return apikey_authenticate(a->keys, key, out, err);
}

/* Blocks the shutdown signals in this thread before any other thread starts,
 * so they are all delivered to sigwait() below and never interrupt a worker. */
static void block_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    pthread_sigmask(SIG_BLOCK, set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static void serve_usage(FILE *out)
{
    fprintf(out, "usage: citybrain serve [--config FILE] [flags]\n\n"
                 "Runs the server until SIGTERM or SIGINT, then shuts down gracefully:\n"
                 "stops accepting, lets in-flight requests finish (shutdown_timeout), exits 0.\n\n"
                 "  --config FILE                a config file (see `citybrain config reference`)\n");
    config_print_flags(out);
}

static void shutdown_gracefully(struct app *a, int sig)
{
    log_event(LOG_INFO, "shutdown", "signal=%s draining_s=%d", sig == SIGTERM ? "SIGTERM" : "SIGINT",
              a->cfg.shutdown_timeout);
    http_server_quiesce(a->http);
    int left = http_server_drain(a->http, a->cfg.shutdown_timeout * 1000);
    if (left > 0)
        log_event(LOG_WARN, "shutdown", "msg=\"closing requests still in flight\" in_flight=%d", left);
    http_server_stop(a->http); /* no request may reach the parts below any more */
    a->http = NULL;
}

int cmd_serve(int argc, char **argv)
{
    if (cli_has_help(argc, argv)) {
        serve_usage(stdout);
        return 0;
    }
    struct app a;
    memset(&a, 0, sizeof a);
    cb_error err;
    if (app_load_config(argc, argv, &a.cfg, &err) != 0) {
        fprintf(stderr, "citybrain serve: %s\n", err.message);
        return 2;
    }
    log_set_level((enum log_level)a.cfg.log_level);
    sigset_t set;
    block_signals(&set);
    struct http_options ho = {&a.cfg, app_routes, app_route_count, authenticate, &a};
    int rc = app_open_city(&a, &err);
    if (rc == 0)
        rc = kpi_worker_start(a.cfg.data_dir, a.events, KPI_TICK_MS, &a.kpi, &err);
    if (rc == 0)
        rc = http_server_start(&ho, &a.http, &err);
    if (rc == 0)
        rc = mqtt_start(&a.cfg, a.ingest, &a.mqtt, &err);
    if (rc != 0) {
        log_event(LOG_ERROR, "start", "error=%s msg=\"%s\"", cb_err_name(rc), err.message);
        app_close(&a);
        return 1;
    }
    log_event(LOG_INFO, "listening", "address=%s port=%d data_dir=%s schema_version=%d version=%s",
              a.cfg.listen, a.cfg.port, a.cfg.data_dir, db_schema_version(a.db), CB_VERSION);
    int sig = 0;
    sigwait(&set, &sig);
    shutdown_gracefully(&a, sig);
    app_close(&a);
    log_event(LOG_INFO, "stopped", "exit=0");
    return 0;
}
