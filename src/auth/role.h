/* role — who may do what: the roles of DESIGN.md §9 and the principal an
 * authenticated request acts as. Routes list the roles they allow as a mask. */
#ifndef CB_ROLE_H
#define CB_ROLE_H

#include <stdint.h>

/* hotline: 12345 operators, who record calls and see callers' names and phones.
 * citizen: not a person but an app key of a citizen-facing app (the citizen
 * page /m/, a city app): public by nature, so it may only report through
 * Open311 (channel citizen), upload photos and read the narrow public
 * services (GET /api/v1/nearby); no case lists, reporter data, KPIs, rules
 * or alarms. ROLES_ANY_USER (the staff) does not include it. */
enum role {
    ROLE_ADMIN, ROLE_OPERATOR, ROLE_DEPT, ROLE_GRID, ROLE_VIEWER, ROLE_DEVICE, ROLE_HOTLINE, ROLE_CITIZEN,
    ROLE_COUNT
};

#define ROLE_BIT(r) (1u << (r))
#define ROLES_ANY_USER                                                                 \
    (ROLE_BIT(ROLE_ADMIN) | ROLE_BIT(ROLE_OPERATOR) | ROLE_BIT(ROLE_DEPT) |             \
     ROLE_BIT(ROLE_GRID) | ROLE_BIT(ROLE_VIEWER) | ROLE_BIT(ROLE_HOTLINE))
#define ROLES_PUBLIC 0u /* a route with this mask needs no principal */

#define PRINCIPAL_ID_MAX 32
#define PRINCIPAL_NAME_MAX 96
#define DEPARTMENT_CODE_MAX 33

/* Who a request acts as. Plain value, copied freely. */
struct principal {
    char id[PRINCIPAL_ID_MAX];         /* key id, e.g. "k3f9a0c21d7e4" */
    enum role role;
    char name[PRINCIPAL_NAME_MAX];
    char department[DEPARTMENT_CODE_MAX]; /* "" unless role is dept (or set for others) */
    uint32_t entity;                   /* ROLE_DEVICE: the entity number it may write */
};

const char *role_name(enum role r);
int role_parse(const char *name, enum role *out); /* 0 or CB_EINVALID_FIELD */
/* Writes "admin, operator" for a mask; returns out. */
const char *role_mask_names(unsigned mask, char *out, int outlen);

#endif
