/* routes — the one table of HTTP endpoints (STYLE 18): the router, the role
 * checks, `citybrain routes` and the README's API overview all come from it. */
#include "app/app.h"

#define STAFF ROLES_ANY_USER
#define ADMIN ROLE_BIT(ROLE_ADMIN)
#define MONITOR (ROLE_BIT(ROLE_ADMIN) | ROLE_BIT(ROLE_OPERATOR) | ROLE_BIT(ROLE_VIEWER))
#define OPS (ROLE_BIT(ROLE_ADMIN) | ROLE_BIT(ROLE_OPERATOR))
#define WRITERS (OPS | ROLE_BIT(ROLE_DEVICE))
#define INTAKE (STAFF & ~ROLE_BIT(ROLE_VIEWER))   /* who may report a case */
#define CASE_ACTORS INTAKE                         /* workflow.c decides per action */
/* A citizen app's key is public by nature (it ships in a page or an app):
 * it may upload a photo and read the nearby services, and report through
 * Open311 (whose handler checks the api_key); no route below lists it
 * otherwise, so it never reads cases, reporters, KPIs, rules or alarms. */
#define CITIZEN ROLE_BIT(ROLE_CITIZEN)
#define REPORTERS (INTAKE | CITIZEN)               /* who may upload a photo for a report */

const struct http_route app_routes[] = {
    {"GET", "/healthz", api_healthz, ROLES_PUBLIC, "liveness and readiness (public)"},
    {"GET", "/metrics", api_metrics, MONITOR, "Prometheus metrics"},
    {"GET", "/api/v1/whoami", api_whoami, STAFF, "the principal of the presented key"},
    {"GET", "/api/v1/keys", api_keys_list, ADMIN, "list API keys (never the secrets)"},
    {"POST", "/api/v1/keys", api_keys_create, ADMIN, "create an API key: {role, department?, name?}"},
    {"DELETE", "/api/v1/keys/{id}", api_keys_revoke, ADMIN, "revoke an API key"},
    {"GET", "/api/v1/regions", api_regions_list, STAFF, "districts and grid cells (?level=district|grid)"},
    {"GET", "/api/v1/regions/locate", api_regions_locate, STAFF, "the district and grid cell of ?lon=&lat="},
    {"GET", "/api/v1/regions/{code}", api_region_get, STAFF, "one region as a GeoJSON Feature"},
    {"GET", "/api/v1/entities", api_entities_list, STAFF,
     "entities with latest values: ?type=&district=&grid=&bbox=&near=&q=&online=&limit=&cursor="},
    {"POST", "/api/v1/entities", api_entities_create, OPS, "create one entity, or {\"entities\": [...]} (up to 10,000)"},
    {"GET", "/api/v1/nearby", api_nearby, STAFF | CITIZEN,
     "free parking bays within 1 km and the nearest air-quality station of ?lon=&lat= (for citizen apps)"},
    {"GET", "/api/v1/entities/stats", api_entities_stats, STAFF, "totals, online and avg/min/max by type, district, grid"},
    {"GET", "/api/v1/entities/{id}", api_entity_get, STAFF, "one entity with properties and latest values"},
    {"PATCH", "/api/v1/entities/{id}", api_entity_update, OPS, "change location, department, heartbeat, properties"},
    {"DELETE", "/api/v1/entities/{id}", api_entity_delete, OPS, "delete an entity"},
    {"POST", "/api/v1/entities/{id}/token", api_entity_token_issue, OPS, "issue a new device token (shown once)"},
    {"DELETE", "/api/v1/entities/{id}/token", api_entity_token_revoke, OPS, "revoke the device token"},
    {"GET", "/api/v1/types", api_types_list, STAFF, "entity types and their heartbeat intervals"},
    {"PUT", "/api/v1/types/{type}", api_type_set, ADMIN, "set a type's heartbeat: {\"heartbeat_s\": N}"},
    {"POST", "/api/v1/ingest", api_ingest_json, WRITERS, "readings as a JSON batch"},
    {"POST", "/api/v1/write", api_ingest_lp, WRITERS, "readings as InfluxDB line protocol (?precision=ns|us|ms|s)"},
    {"GET", "/api/v1/series", api_series_get, STAFF,
     "history of one attribute: ?entity=&attr=&from=&to=&step=&agg= (format=csv)"},
    {"GET", "/api/v1/series/aggregate", api_series_aggregate, STAFF,
     "history of many series: ?attr=&type=&district=&group=district|grid|type&from=&to=&step=&agg="},
    {"GET", "/api/v1/rules", api_rules_list, STAFF, "alarm rules (threshold, rate, nodata, geofence, region_count)"},
    {"POST", "/api/v1/rules", api_rules_create, OPS, "create a rule: {name, kind, scope?, attr, severity, category, ...}"},
    {"GET", "/api/v1/rules/{id}", api_rule_get, STAFF, "one rule"},
    {"PUT", "/api/v1/rules/{id}", api_rule_update, OPS, "replace a rule's definition"},
    {"DELETE", "/api/v1/rules/{id}", api_rule_delete, OPS, "delete a rule (its active alarms clear)"},
    {"GET", "/api/v1/alarms", api_alarms_list, STAFF,
     "alarms, newest first: ?state=open|acknowledged|cleared|active&severity=&district=&type=&entity=&rule=&limit=&cursor="},
    {"GET", "/api/v1/alarms/stats", api_alarms_stats, STAFF, "alarm counts by severity, type, district (?state=active)"},
    {"GET", "/api/v1/alarms/{id}", api_alarm_get, STAFF, "one alarm with its history"},
    {"POST", "/api/v1/alarms/{id}/acknowledge", api_alarm_acknowledge, OPS, "acknowledge an open alarm: {note?}"},
    {"POST", "/api/v1/alarms/{id}/clear", api_alarm_clear, OPS, "clear an alarm by hand: {note?}"},
    {"GET", "/api/v1/maintenance", api_maintenance_list, STAFF, "maintenance windows (they suppress raising alarms)"},
    {"POST", "/api/v1/maintenance", api_maintenance_create, OPS,
     "add a window: {entity?|district?|grid?, rule?, from, to, reason}"},
    {"DELETE", "/api/v1/maintenance/{id}", api_maintenance_delete, OPS, "remove a maintenance window"},
    {"GET", "/api/v1/stream", api_stream, STAFF,
     "live events as Server-Sent Events: ?kind=alarm,case,supervision,kpi&district=&department= (Last-Event-ID resumes)"},
    {"GET", "/api/v1/webhooks", api_webhooks_list, ADMIN, "webhooks with their delivery counters (never the secrets)"},
    {"POST", "/api/v1/webhooks", api_webhooks_create, ADMIN,
     "add a webhook: {url, secret?, kinds?} → 201 with the secret (shown once)"},
    {"DELETE", "/api/v1/webhooks/{id}", api_webhook_delete, ADMIN, "remove a webhook"},
    {"GET", "/api/v1/cases", api_cases_list, STAFF,
     "cases, newest first: ?status=&category=&department=&district=&grid=&channel=&q=&from=&to=&overdue=1&limit=&cursor="},
    {"POST", "/api/v1/cases", api_cases_create, INTAKE,
     "report a case: {channel, category, description, lon?, lat?, address?, reporter?, media?}"},
    {"GET", "/api/v1/cases/stats", api_cases_stats, STAFF, "open and overdue cases by status, category, district, hour"},
    {"GET", "/api/v1/cases/{id}", api_case_get, STAFF, "one case with its history and media"},
    {"POST", "/api/v1/cases/{id}/{action}", api_case_action, CASE_ACTORS,
     "a workflow action (accept, file, dispatch, start, handle, check, close, evaluate, ...; see README \"Cases\")"},
    {"GET", "/api/v1/supervisions", api_supervisions_list, STAFF, "督办 records: ?case=&level=yellow|red|manual"},
    {"GET", "/api/v1/categories", api_categories_list, STAFF, "the case category tree (GB/T 47678.5 codes)"},
    {"PUT", "/api/v1/categories/{code}", api_category_put, ADMIN,
     "add or change a category: {name?, urgency?, limit_hours?|limit_minutes?, natural?, enabled?}"},
    {"GET", "/api/v1/departments", api_departments_list, STAFF, "departments cases are dispatched to"},
    {"GET", "/api/v1/routing", api_routing_get, ADMIN, "the routing table (category x region -> department)"},
    {"PUT", "/api/v1/routing", api_routing_put, ADMIN, "replace the routing table: {rules: [{category, region, department}]}"},
    {"POST", "/api/v1/media", api_media_upload, REPORTERS,
     "upload a photo (raw image/jpeg|png|webp body, up to media_max) → {url}"},
    {"GET", "/media/{name}", api_media_get, ROLES_PUBLIC, "an uploaded photo"},
    {"GET", "/api/v1/kpis", api_kpis, STAFF,
     "考核 indicators and score, ranked: ?by=department|district|role|city&from=&to= (dept: its own cases)"},
    {"GET", "/open311/v2/{doc}", api_open311_get, ROLES_PUBLIC,
     "Open311 GeoReport v2: discovery, services, requests (?service_request_id=&service_code=&start_date=&end_date=&status=) .json|.xml"},
    {"POST", "/open311/v2/{doc}", api_open311_post, ROLES_PUBLIC,
     "Open311: submit a service request (requests.json|.xml, form-encoded, api_key required)"},
    {"GET", "/open311/v2/services/{file}", api_open311_service, ROLES_PUBLIC,
     "Open311: a service definition with its attributes ({service_code}.json|.xml)"},
    {"GET", "/open311/v2/requests/{file}", api_open311_request, ROLES_PUBLIC,
     "Open311: one service request ({service_request_id}.json|.xml)"},
    {"POST", "/open311/v2/requests/{id}/{doc}", api_open311_rating, ROLES_PUBLIC,
     "Open311 extension: rate a closed request (rating.json|.xml; form: access_token, rating, comment?)"},
    {"GET", "/open311/v2/tokens/{file}", api_open311_token, ROLES_PUBLIC,
     "Open311: the service request of a token ({token}.json|.xml)"},
};

const size_t app_route_count = sizeof app_routes / sizeof app_routes[0];
