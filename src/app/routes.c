/* routes — the one table of HTTP endpoints (STYLE 18): the router, the role
 * checks, `citybrain routes` and the README's API overview all come from it. */
#include "app/app.h"

#define STAFF ROLES_ANY_USER
#define ADMIN ROLE_BIT(ROLE_ADMIN)
#define MONITOR (ROLE_BIT(ROLE_ADMIN) | ROLE_BIT(ROLE_OPERATOR) | ROLE_BIT(ROLE_VIEWER))
#define OPS (ROLE_BIT(ROLE_ADMIN) | ROLE_BIT(ROLE_OPERATOR))
#define WRITERS (OPS | ROLE_BIT(ROLE_DEVICE))

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
};

const size_t app_route_count = sizeof app_routes / sizeof app_routes[0];
