/* routes — the one table of HTTP endpoints (STYLE 18): the router, the role
 * checks, `citybrain routes` and the README's API overview all come from it. */
#include "app/app.h"

#define STAFF ROLES_ANY_USER
#define ADMIN ROLE_BIT(ROLE_ADMIN)
#define MONITOR (ROLE_BIT(ROLE_ADMIN) | ROLE_BIT(ROLE_OPERATOR) | ROLE_BIT(ROLE_VIEWER))

const struct http_route app_routes[] = {
    {"GET", "/healthz", api_healthz, ROLES_PUBLIC, "liveness and readiness (public)"},
    {"GET", "/metrics", api_metrics, MONITOR, "Prometheus metrics"},
    {"GET", "/api/v1/whoami", api_whoami, STAFF, "the principal of the presented key"},
    {"GET", "/api/v1/keys", api_keys_list, ADMIN, "list API keys (never the secrets)"},
    {"POST", "/api/v1/keys", api_keys_create, ADMIN, "create an API key: {role, department?, name?}"},
    {"DELETE", "/api/v1/keys/{id}", api_keys_revoke, ADMIN, "revoke an API key"},
};

const size_t app_route_count = sizeof app_routes / sizeof app_routes[0];
