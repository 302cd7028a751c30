/* app — the running citybrain: the parts a command opens (config, store,
 * principals, HTTP) and the commands of the CLI. main.c only dispatches to
 * the cmd_* functions here; library modules below never exit. */
#ifndef CB_APP_H
#define CB_APP_H

#include "auth/apikey.h"
#include "cases/cases.h"
#include "cases/kpi.h"
#include "core/config.h"
#include "core/log.h"
#include "core/workers.h"
#include "entity/entity.h"
#include "events/events.h"
#include "geo/region_store.h"
#include "http/http.h"
#include "ingest/ingest.h"
#include "mqtt/mqtt.h"
#include "rules/rules.h"
#include "series/series.h"
#include "state/dict.h"
#include "state/state.h"
#include "store/db.h"

/* Owned by the command that opened it; app_close releases everything. */
struct app {
    struct cb_config cfg;
    db *db;                 /* the HTTP thread's connection */
    apikey_store *keys;
    db *regions_db;         /* the region store's own connection */
    region_store *regions;
    dict *names;
    state *state;
    entities *entities;
    events *events;         /* the live event stream and webhooks; before rules and cases */
    series *series;         /* history; queried on the HTTP thread with db */
    ingest *ingest;
    workers *parsers;       /* parse large ingest bodies off the HTTP thread; NULL: on it */
    rules *rules;           /* rules and alarms; opened before ingest, closed after it */
    cases *cases;           /* the case centre; opened after events, closed before them */
    kpi_worker *kpi;        /* KPI queries off the HTTP thread, kpi.tick; stopped before events */
    mqtt_client *mqtt;
    http_server *http;
    double started; /* clock_mono_s at start */
};

/* The route table (routes.c): every HTTP endpoint, its roles and summary. */
extern const struct http_route app_routes[];
extern const size_t app_route_count;

/* Defaults, then `--config FILE` if given, then the other flags in argv. */
int app_load_config(int argc, char **argv, struct cb_config *cfg, cb_error *err);
int app_open_store(struct app *a, cb_error *err); /* db + principals */
int app_open_regions(struct app *a, cb_error *err); /* + the region store */
int app_open_city(struct app *a, cb_error *err);    /* + names, state, entities, ingest */
void app_close(struct app *a);

/* Removes `--name VALUE` (or --name=VALUE) from argv; returns VALUE or NULL.
 * Sets *missing when the flag is present without a value. */
const char *cli_take_flag(int *argc, char **argv, const char *name, int *missing);
int cli_take_switch(int *argc, char **argv, const char *name); /* 1 if present */
int cli_has_help(int argc, char **argv);

/* Commands: argc/argv start after the command name; return the exit status. */
int cmd_serve(int argc, char **argv);
int cmd_key(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_routes(int argc, char **argv);
int cmd_errors(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_regions(int argc, char **argv);
int cmd_cases(int argc, char **argv);              /* cases_cli.c */
int cmd_import_categories(int argc, char **argv);

/* HTTP handlers (system_api.c, keys_api.c). */
int api_healthz(http_request *req, void *app);
int api_metrics(http_request *req, void *app);
int api_whoami(http_request *req, void *app);
int api_keys_list(http_request *req, void *app);
int api_keys_create(http_request *req, void *app);
int api_keys_revoke(http_request *req, void *app);
int api_regions_list(http_request *req, void *app);
int api_regions_locate(http_request *req, void *app);
int api_region_get(http_request *req, void *app);
int api_entities_list(http_request *req, void *app);
int api_entities_stats(http_request *req, void *app);
int api_entities_create(http_request *req, void *app);
int api_entity_get(http_request *req, void *app);
int api_entity_update(http_request *req, void *app);
int api_entity_delete(http_request *req, void *app);
int api_entity_token_issue(http_request *req, void *app);
int api_entity_token_revoke(http_request *req, void *app);
int api_types_list(http_request *req, void *app);
int api_type_set(http_request *req, void *app);
int api_ingest_json(http_request *req, void *app);
int api_ingest_lp(http_request *req, void *app);
int api_series_get(http_request *req, void *app);
int api_series_aggregate(http_request *req, void *app);
int api_rules_list(http_request *req, void *app);      /* rules_api.c */
int api_rules_create(http_request *req, void *app);
int api_rule_get(http_request *req, void *app);
int api_rule_update(http_request *req, void *app);
int api_rule_delete(http_request *req, void *app);
int api_maintenance_list(http_request *req, void *app);
int api_maintenance_create(http_request *req, void *app);
int api_maintenance_delete(http_request *req, void *app);
int api_alarms_list(http_request *req, void *app);     /* alarms_api.c */
int api_alarms_stats(http_request *req, void *app);
int api_alarm_get(http_request *req, void *app);
int api_alarm_acknowledge(http_request *req, void *app);
int api_alarm_clear(http_request *req, void *app);
int api_stream(http_request *req, void *app);          /* stream_api.c */
int api_webhooks_list(http_request *req, void *app);
int api_webhooks_create(http_request *req, void *app);
int api_webhook_delete(http_request *req, void *app);
int api_cases_list(http_request *req, void *app);      /* cases_api.c */
int api_cases_create(http_request *req, void *app);
int api_cases_stats(http_request *req, void *app);
int api_case_get(http_request *req, void *app);
int api_case_action(http_request *req, void *app);
int api_categories_list(http_request *req, void *app);
int api_category_put(http_request *req, void *app);
int api_departments_list(http_request *req, void *app);
int api_routing_get(http_request *req, void *app);
int api_routing_put(http_request *req, void *app);
int api_supervisions_list(http_request *req, void *app);
int api_media_upload(http_request *req, void *app);
int api_media_get(http_request *req, void *app);
int api_kpis(http_request *req, void *app);           /* kpis_api.c */
int api_open311_get(http_request *req, void *app);    /* open311_api.c */
int api_open311_post(http_request *req, void *app);
int api_open311_service(http_request *req, void *app);
int api_open311_request(http_request *req, void *app);
int api_open311_token(http_request *req, void *app);
int api_open311_rating(http_request *req, void *app);
int api_nearby(http_request *req, void *app);          /* nearby_api.c */
/* The case centre's options from the config (cases_api.c); interval_ms 0: no supervision thread. */
void app_cases_options(struct app *a, int interval_ms, struct cases_options *o);

#endif
