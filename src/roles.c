/* roles.c - placeholder, filled in with the roles below. */
#include "internal.h"

const char *naq__role_for_subject(const char *prefix, const char *subject)
{
    (void)prefix;
    (void)subject;
    return NULL;
}
