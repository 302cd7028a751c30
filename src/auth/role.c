/* role — role names; see role.h. */
#include "auth/role.h"

#include "core/err.h"

#include <stdio.h>
#include <string.h>

static const char *const role_names[ROLE_COUNT] = {"admin",  "operator", "dept",    "grid",
                                                   "viewer", "device",   "hotline", "citizen"};

const char *role_name(enum role r)
{
    return (unsigned)r < ROLE_COUNT ? role_names[r] : "unknown";
}

int role_parse(const char *name, enum role *out)
{
    for (int i = 0; i < ROLE_COUNT; i++) {
        if (strcmp(name, role_names[i]) == 0) {
            *out = (enum role)i;
            return 0;
        }
    }
    return CB_EINVALID_FIELD;
}

const char *role_mask_names(unsigned mask, char *out, int outlen)
{
    int n = 0;
    out[0] = '\0';
    for (int i = 0; i < ROLE_COUNT && n < outlen; i++)
        if (mask & ROLE_BIT(i))
            n += snprintf(out + n, (size_t)(outlen - n), "%s%s", n ? ", " : "", role_names[i]);
    return out;
}
