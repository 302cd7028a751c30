/* text — see text.h. */
#include "core/text.h"

#include <stdlib.h>
#include <string.h>

json_t *text_json(const char *text)
{
    json_t *j = json_string(text);
    if (j)
        return j;
    char *copy = strdup(text);
    if (!copy)
        return NULL;
    for (char *ch = copy; *ch; ch++)
        if ((unsigned char)*ch >= 0x80)
            *ch = '?';
    j = json_string(copy);
    free(copy);
    return j;
}
