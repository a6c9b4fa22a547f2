/* libFuzzer target for plg_range_*: checking any text never crashes and always yields a
   NUL-terminated message; for input "RANGE\nVERSION" with a valid version, satisfies gives the
   same answer every time, agrees with plg_range_check on validity, with the _text variant, and
   with the range doubled ("R || R") or padded with blanks. Any broken invariant aborts. */
#define PLUGIN_REGISTRY_IMPLEMENTATION
#include "plugin_registry.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FZ_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed at %s:%d: %s\n", __FILE__, __LINE__, #cond);       \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* plg_range_check; also with tiny and absent message buffers, which must agree. */
static plg_result fz_check(const char *range)
{
    char msg[512], small[5];
    plg_result r = plg_range_check(range, msg, sizeof msg);
    FZ_CHECK(r == PLG_OK || r == PLG_ERR_INVALID_RANGE);
    FZ_CHECK(memchr(msg, '\0', sizeof msg) != NULL);
    FZ_CHECK(r == PLG_OK ? msg[0] == '\0' : msg[0] == '"');
    memset(small, 'Z', sizeof small);
    FZ_CHECK(plg_range_check(range, small, sizeof small) == r);
    FZ_CHECK(memchr(small, '\0', sizeof small) != NULL);
    FZ_CHECK(plg_range_check(range, NULL, 0) == r);
    return r;
}

/* satisfies, twice; returns the result code and sets *s. */
static plg_result fz_satisfies(const char *range, const plg_semver *v, int *s)
{
    char m1[512], m2[512];
    int s1 = -1, s2 = -1;
    plg_result r1 = plg_range_satisfies(range, v, &s1, m1, sizeof m1);
    plg_result r2 = plg_range_satisfies(range, v, &s2, m2, sizeof m2);
    FZ_CHECK(r1 == r2 && s1 == s2 && strcmp(m1, m2) == 0);
    FZ_CHECK(r1 == PLG_OK || r1 == PLG_ERR_INVALID_RANGE);
    FZ_CHECK(s1 == 0 || (r1 == PLG_OK && s1 == 1));
    *s = s1;
    return r1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = (char *)malloc(size + 1);
    char *nl, *both;
    plg_semver fixed, v;
    plg_result whole, r, rc;
    int s, s2, st;
    size_t rlen;
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    /* the whole input as a range, against a plain and a pre-release version */
    whole = fz_check(text);
    FZ_CHECK(plg_semver_parse("1.2.3", &fixed, NULL, 0) == PLG_OK);
    FZ_CHECK(fz_satisfies(text, &fixed, &s) == whole);
    FZ_CHECK(plg_semver_parse("1.2.3-rc.1", &fixed, NULL, 0) == PLG_OK);
    FZ_CHECK(fz_satisfies(text, &fixed, &s) == whole);

    nl = strchr(text, '\n');
    if (nl == NULL) {
        free(text);
        return 0;
    }
    *nl = '\0';
    rc = fz_check(text);
    if (plg_semver_parse(nl + 1, &v, NULL, 0) != PLG_OK) {
        FZ_CHECK(plg_range_satisfies_text(text, nl + 1, &st) == PLG_ERR_INVALID_VERSION);
        FZ_CHECK(st == 0);
        free(text);
        return 0;
    }
    r = fz_satisfies(text, &v, &s);
    FZ_CHECK(r == rc);
    FZ_CHECK(plg_range_satisfies_text(text, nl + 1, &st) == r && st == s);

    /* "R || R" and " R " mean the same as R */
    rlen = strlen(text);
    both = (char *)malloc(2 * rlen + 8);
    if (both != NULL) {
        snprintf(both, 2 * rlen + 8, "%s || %s", text, text);
        FZ_CHECK(fz_check(both) == rc);
        FZ_CHECK(fz_satisfies(both, &v, &s2) == r && s2 == s);
        snprintf(both, 2 * rlen + 8, " \t%s\n ", text);
        FZ_CHECK(fz_check(both) == rc);
        FZ_CHECK(fz_satisfies(both, &v, &s2) == r && s2 == s);
        free(both);
    }
    free(text);
    return 0;
}
