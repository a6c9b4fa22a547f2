/* libFuzzer target for plg_semver_*: parsing never crashes; a valid version re-parses to an equal
   version, compares equal to itself, has accessors that agree with its text, and satisfies the
   ranges made of itself. Input "A\nB" also checks that compare is antisymmetric for A and B and
   agrees with the primitive comparators of ranges. Any broken invariant aborts. */
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

static int fz_sign(int x) { return x < 0 ? -1 : x > 0 ? 1 : 0; }

/* The value of the digits text[off..off+len) the way the accessors must report it. */
static uint64_t fz_expected_number(const char *digits, size_t len)
{
    static const char max[] = "18446744073709551615";
    char buf[32];
    if (len > 20 || (len == 20 && memcmp(digits, max, 20) > 0))
        return UINT64_MAX;
    memcpy(buf, digits, len);
    buf[len] = '\0';
    return strtoull(buf, NULL, 10);
}

static int fz_satisfies(const char *op, const char *text, const plg_semver *v)
{
    char range[PLG_SEMVER_MAX + 8];
    int s = -1;
    snprintf(range, sizeof range, "%s%s", op, text);
    FZ_CHECK(plg_range_satisfies(range, v, &s, NULL, 0) == PLG_OK);
    FZ_CHECK(s == 0 || s == 1);
    return s;
}

/* Parses text; on success checks every single-version invariant. Returns 1 if valid. */
static int fz_check_one(const char *text, plg_semver *v)
{
    char msg[512], small[7];
    plg_result r = plg_semver_parse(text, v, msg, sizeof msg), r2;
    plg_semver again;
    size_t len;
    FZ_CHECK(r == PLG_OK || r == PLG_ERR_INVALID_VERSION);
    FZ_CHECK(memchr(msg, '\0', sizeof msg) != NULL);
    memset(small, 'Z', sizeof small);
    FZ_CHECK(plg_semver_parse(text, &again, small, sizeof small) == r);
    FZ_CHECK(memchr(small, '\0', sizeof small) != NULL);
    FZ_CHECK(plg_semver_parse(text, &again, NULL, 0) == r);
    if (r != PLG_OK) {
        FZ_CHECK(msg[0] == '"');
        FZ_CHECK(v->text[0] == '\0' && v->major_len == 0);
        return 0;
    }
    FZ_CHECK(msg[0] == '\0');
    len = strlen(text);
    FZ_CHECK(len >= 5 && len <= PLG_SEMVER_MAX);
    FZ_CHECK(strcmp(v->text, text) == 0);
    /* re-parsing the stored text gives an equal version with the same layout */
    r2 = plg_semver_parse(v->text, &again, NULL, 0);
    FZ_CHECK(r2 == PLG_OK);
    FZ_CHECK(memcmp(&again, v, sizeof again) == 0);
    FZ_CHECK(plg_semver_compare(v, &again) == 0);
    FZ_CHECK(plg_semver_compare(v, v) == 0);
    /* layout: MAJOR.MINOR.PATCH[-PRE][+BUILD] */
    FZ_CHECK(v->major_off == 0 && v->major_len > 0);
    FZ_CHECK(v->minor_off == v->major_len + 1 && text[v->major_len] == '.');
    FZ_CHECK(v->patch_off == v->minor_off + v->minor_len + 1);
    FZ_CHECK(text[v->minor_off + v->minor_len] == '.');
    {
        size_t end = (size_t)v->patch_off + v->patch_len;
        if (v->prerelease_len > 0) {
            FZ_CHECK(text[end] == '-' && v->prerelease_off == end + 1);
            end = (size_t)v->prerelease_off + v->prerelease_len;
        }
        if (v->build_len > 0) {
            FZ_CHECK(text[end] == '+' && v->build_off == end + 1);
            end = (size_t)v->build_off + v->build_len;
        }
        FZ_CHECK(end == len);
    }
    /* accessors agree with the text */
    FZ_CHECK(plg_semver_major(v) == fz_expected_number(text + v->major_off, v->major_len));
    FZ_CHECK(plg_semver_minor(v) == fz_expected_number(text + v->minor_off, v->minor_len));
    FZ_CHECK(plg_semver_patch(v) == fz_expected_number(text + v->patch_off, v->patch_len));
    /* build metadata does not count */
    if (v->build_len > 0) {
        char stripped[PLG_SEMVER_MAX + 1];
        plg_semver w;
        memcpy(stripped, text, (size_t)v->build_off - 1);
        stripped[v->build_off - 1] = '\0';
        FZ_CHECK(plg_semver_parse(stripped, &w, NULL, 0) == PLG_OK);
        FZ_CHECK(plg_semver_compare(v, &w) == 0 && plg_semver_compare(&w, v) == 0);
    }
    /* the version satisfies the ranges made of itself */
    FZ_CHECK(fz_satisfies("", text, v) == 1);
    FZ_CHECK(fz_satisfies("=", text, v) == 1);
    FZ_CHECK(fz_satisfies(">=", text, v) == 1);
    FZ_CHECK(fz_satisfies("<=", text, v) == 1);
    FZ_CHECK(fz_satisfies("~", text, v) == 1);
    FZ_CHECK(fz_satisfies("^", text, v) == 1);
    FZ_CHECK(fz_satisfies("<", text, v) == 0);
    FZ_CHECK(fz_satisfies(">", text, v) == 0);
    FZ_CHECK(fz_satisfies("*", "", v) == (v->prerelease_len == 0));
    return 1;
}

/* The primitive comparator "op b" accepts a exactly when node-semver's rules say so. */
static void fz_check_primitive(const char *op, int want_cmp_ok, const plg_semver *a,
                               const plg_semver *b)
{
    int expected;
    char ta[PLG_SEMVER_MAX + 1], tb[PLG_SEMVER_MAX + 1];
    plg_semver x, y;
    /* compare the numeric tuples only */
    memcpy(ta, a->text, (size_t)a->patch_off + a->patch_len);
    ta[a->patch_off + a->patch_len] = '\0';
    memcpy(tb, b->text, (size_t)b->patch_off + b->patch_len);
    tb[b->patch_off + b->patch_len] = '\0';
    FZ_CHECK(plg_semver_parse(ta, &x, NULL, 0) == PLG_OK);
    FZ_CHECK(plg_semver_parse(tb, &y, NULL, 0) == PLG_OK);
    expected = want_cmp_ok && (a->prerelease_len == 0 ||
                               (b->prerelease_len > 0 && plg_semver_compare(&x, &y) == 0));
    FZ_CHECK(fz_satisfies(op, b->text, a) == expected);
}

static void fz_check_pair(const plg_semver *a, const plg_semver *b)
{
    int ab = plg_semver_compare(a, b), ba = plg_semver_compare(b, a), t = 99;
    FZ_CHECK(fz_sign(ab) == -fz_sign(ba));
    FZ_CHECK(plg_semver_compare_text(a->text, b->text, &t) == PLG_OK);
    FZ_CHECK(fz_sign(t) == fz_sign(ab));
    fz_check_primitive("<", ab < 0, a, b);
    fz_check_primitive("<=", ab <= 0, a, b);
    fz_check_primitive(">", ab > 0, a, b);
    fz_check_primitive("=", ab == 0, a, b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = (char *)malloc(size + 1);
    char *nl;
    plg_semver a, b;
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    (void)fz_check_one(text, &a);
    nl = strchr(text, '\n');
    if (nl != NULL) {
        *nl = '\0';
        if (fz_check_one(text, &a) && fz_check_one(nl + 1, &b))
            fz_check_pair(&a, &b);
    }
    free(text);
    return 0;
}
