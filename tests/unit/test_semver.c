/* Unit tests of plg_semver_* (semver 2.0.0) and plg_range_* (node-semver ranges). */
#define PLUGIN_REGISTRY_IMPLEMENTATION
#include "plugin_registry.h"
#include "../test.h"

/* ---------------------------------------------------------------------------------------------
   Helpers
   ------------------------------------------------------------------------------------------- */

static int sign_of(int x) { return x < 0 ? -1 : x > 0 ? 1 : 0; }

/* Parses text, which must be valid. */
static plg_semver must_parse(const char *text)
{
    plg_semver v;
    char msg[512];
    plg_result r = plg_semver_parse(text, &v, msg, sizeof msg);
    if (r != PLG_OK) {
        char line[700];
        snprintf(line, sizeof line, "must_parse(\"%s\") failed: %s", text, msg);
        test_fail_line(__FILE__, __LINE__, line);
    }
    return v;
}

/* The result of plg_semver_parse for text, with its message in msg. */
static plg_result parse_msg(const char *text, char *msg, size_t size)
{
    plg_semver v;
    return plg_semver_parse(text, &v, msg, size);
}

/* sign(compare(a, b)), both valid. */
static int cmp_text(const char *a, const char *b)
{
    int c = 99;
    plg_result r = plg_semver_compare_text(a, b, &c);
    if (r != PLG_OK) {
        char line[700];
        snprintf(line, sizeof line, "plg_semver_compare_text(\"%s\", \"%s\") failed", a, b);
        test_fail_line(__FILE__, __LINE__, line);
    }
    return sign_of(c);
}

/* 1 or 0 when range and version are valid; -1 (and a failed check) otherwise. */
static int sat(const char *range, const char *version)
{
    int s = -1;
    plg_result r = plg_range_satisfies_text(range, version, &s);
    if (r != PLG_OK) {
        char line[700];
        snprintf(line, sizeof line, "plg_range_satisfies_text(\"%s\", \"%s\") returned %d", range,
                 version, (int)r);
        test_fail_line(__FILE__, __LINE__, line);
        return -1;
    }
    return s;
}

static char long_buf[20000];

/* A string of n copies of c (n < sizeof long_buf), after prefix. */
static const char *long_text(const char *prefix, char c, size_t n)
{
    size_t p = strlen(prefix);
    memcpy(long_buf, prefix, p);
    memset(long_buf + p, c, n);
    long_buf[p + n] = '\0';
    return long_buf;
}

/* ---------------------------------------------------------------------------------------------
   Parsing versions
   ------------------------------------------------------------------------------------------- */

TEST(parse_valid_spec_examples)
{
    static const char *const valid[] = {
        "0.0.0", "1.2.3", "10.20.30", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-0.3.7",
        "1.0.0-x.7.z.92", "1.0.0-x-y-z.--", "1.0.0-alpha+001", "1.0.0+20130313144700",
        "1.0.0-beta+exp.sha.5114f85", "1.0.0+21AF26D3----117B344092BD",
        "1.2.3----RC-SNAPSHOT.12.9.1--.12+788", "2.0.0+build.1848", "1.0.0-rc.1+build.1",
        "1.2.3-0", "1.2.3-0a", "1.2.3-a.0", "1.2.3-0-1", "1.2.3--", "1.2.3-a-", "1.2.3+-",
        "1.2.3+01", "1.2.3+00.001", "99999.0.1-Zz9.ZZ",
    };
    size_t i;
    for (i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        plg_semver v;
        char msg[256] = "junk";
        CHECK_INT(plg_semver_parse(valid[i], &v, msg, sizeof msg), PLG_OK);
        CHECK_STR(v.text, valid[i]);
        CHECK_STR(msg, "");
    }
}

TEST(parse_fills_offsets)
{
    plg_semver v = must_parse("12.345.6789-rc.1+b.7");
    CHECK_INT(v.major_off, 0);
    CHECK_INT(v.major_len, 2);
    CHECK_INT(v.minor_off, 3);
    CHECK_INT(v.minor_len, 3);
    CHECK_INT(v.patch_off, 7);
    CHECK_INT(v.patch_len, 4);
    CHECK_INT(v.prerelease_off, 12);
    CHECK_INT(v.prerelease_len, 4);
    CHECK_INT(v.build_off, 17);
    CHECK_INT(v.build_len, 3);
    v = must_parse("1.2.3");
    CHECK_INT(v.prerelease_len, 0);
    CHECK_INT(v.build_len, 0);
    v = must_parse("1.2.3+x");
    CHECK_INT(v.prerelease_len, 0);
    CHECK_INT(v.build_off, 6);
    CHECK_INT(v.build_len, 1);
}

TEST(parse_leading_zeros)
{
    char msg[256];
    CHECK_INT(parse_msg("01.2.3", msg, sizeof msg), PLG_ERR_INVALID_VERSION);
    CHECK_STR(msg, "\"01.2.3\": the major version has a leading zero at position 0");
    CHECK_INT(parse_msg("1.02.3", msg, sizeof msg), PLG_ERR_INVALID_VERSION);
    CHECK_CONTAINS(msg, "\"1.02.3\": ");
    CHECK_CONTAINS(msg, "minor version has a leading zero at position 2");
    CHECK_INT(parse_msg("1.2.03", msg, sizeof msg), PLG_ERR_INVALID_VERSION);
    CHECK_CONTAINS(msg, "patch version has a leading zero at position 4");
    CHECK_INT(parse_msg("00.0.0", msg, sizeof msg), PLG_ERR_INVALID_VERSION);
    CHECK_INT(parse_msg("1.2.3-01", msg, sizeof msg), PLG_ERR_INVALID_VERSION);
    CHECK_CONTAINS(msg, "pre-release identifier \"01\" has a leading zero at position 6");
    CHECK_INT(parse_msg("1.2.3-rc.00", msg, sizeof msg), PLG_ERR_INVALID_VERSION);
    CHECK_CONTAINS(msg, "\"00\" has a leading zero at position 9");
    /* allowed: alphanumeric identifiers starting with 0, and build metadata */
    CHECK_INT(parse_msg("1.2.3-0rc", msg, sizeof msg), PLG_OK);
    CHECK_INT(parse_msg("1.2.3+0001", msg, sizeof msg), PLG_OK);
    CHECK_INT(parse_msg("0.0.0-0", msg, sizeof msg), PLG_OK);
}

TEST(parse_empty_identifiers)
{
    char msg[256];
    CHECK_INT(parse_msg("1.2.3-", msg, sizeof msg), PLG_ERR_INVALID_VERSION);
    CHECK_CONTAINS(msg, "the pre-release is empty at position 6");
    CHECK_INT(parse_msg("1.2.3-+b", msg, sizeof msg), PLG_ERR_INVALID_VERSION);
    CHECK_CONTAINS(msg, "the pre-release is empty at position 6");
    CHECK_INT(parse_msg("1.2.3-a..b", msg, sizeof msg), PLG_ERR_INVALID_VERSION);
    CHECK_CONTAINS(msg, "pre-release identifier 2 is empty at position 8");
    CHECK_INT(parse_msg("1.2.3-.a", msg, sizeof msg), PLG_ERR_INVALID_VERSION);
    CHECK_CONTAINS(msg, "pre-release identifier 1 is empty at position 6");
    CHECK_INT(parse_msg("1.2.3-a.", msg, sizeof msg), PLG_ERR_INVALID_VERSION);
    CHECK_CONTAINS(msg, "pre-release identifier 2 is empty at position 8");
    CHECK_INT(parse_msg("1.2.3+", msg, sizeof msg), PLG_ERR_INVALID_VERSION);
    CHECK_CONTAINS(msg, "the build metadata is empty at position 6");
    CHECK_INT(parse_msg("1.2.3+a..b", msg, sizeof msg), PLG_ERR_INVALID_VERSION);
    CHECK_CONTAINS(msg, "build metadata identifier 2 is empty at position 8");
    CHECK_INT(parse_msg("1.2.3-a+", msg, sizeof msg), PLG_ERR_INVALID_VERSION);
    CHECK_CONTAINS(msg, "build metadata is empty");
}

TEST(parse_bad_characters)
{
    char msg[256];
    CHECK_INT(parse_msg("1.2.3-a_b", msg, sizeof msg), PLG_ERR_INVALID_VERSION);
    CHECK_CONTAINS(msg, "the pre-release contains '_' at position 7");
    CHECK_INT(parse_msg("1.2.3+a b", msg, sizeof msg), PLG_ERR_INVALID_VERSION);
    CHECK_CONTAINS(msg, "the build metadata contains a space at position 7");
    CHECK_INT(parse_msg("1.2.3+a+b", msg, sizeof msg), PLG_ERR_INVALID_VERSION);
    CHECK_CONTAINS(msg, "contains '+' at position 7");
    CHECK_INT(parse_msg("1.2.3-\xc3\xa9", msg, sizeof msg), PLG_ERR_INVALID_VERSION);
    CHECK_CONTAINS(msg, "\"1.2.3-\\xc3\\xa9\": the pre-release contains byte 0xc3 at position 6");
    CHECK_INT(parse_msg("1a.2.3", msg, sizeof msg), PLG_ERR_INVALID_VERSION);
    CHECK_CONTAINS(msg, "the major version contains 'a' at position 1; it must be a number");
    CHECK_INT(parse_msg("1.2b.3", msg, sizeof msg), PLG_ERR_INVALID_VERSION);
    CHECK_CONTAINS(msg, "the minor version contains 'b' at position 3");
    CHECK_INT(parse_msg("1.2.3c", msg, sizeof msg), PLG_ERR_INVALID_VERSION);
    CHECK_CONTAINS(msg, "the patch version contains 'c' at position 5");
    CHECK_INT(parse_msg("1.2.x", msg, sizeof msg), PLG_ERR_INVALID_VERSION);
    CHECK_CONTAINS(msg, "expected a number for the patch version at position 4, found 'x'");
    CHECK_INT(parse_msg("1.2.3\"", msg, sizeof msg), PLG_ERR_INVALID_VERSION);
    CHECK_CONTAINS(msg, "\"1.2.3\\\"\": found '\"' at position 5");
}

TEST(parse_missing_parts)
{
    char msg[256];
    CHECK_INT(parse_msg("", msg, sizeof msg), PLG_ERR_INVALID_VERSION);
    CHECK_STR(msg, "\"\": the version is empty");
    CHECK_INT(parse_msg("1", msg, sizeof msg), PLG_ERR_INVALID_VERSION);
    CHECK_CONTAINS(msg, "the minor version is missing at position 1");
    CHECK_INT(parse_msg("1.2", msg, sizeof msg), PLG_ERR_INVALID_VERSION);
    CHECK_CONTAINS(msg,
                   "the patch version is missing at position 3; a version is MAJOR.MINOR.PATCH");
    CHECK_INT(parse_msg("1.2.", msg, sizeof msg), PLG_ERR_INVALID_VERSION);
    CHECK_CONTAINS(msg, "the patch version is empty at position 4");
    CHECK_INT(parse_msg("1..3", msg, sizeof msg), PLG_ERR_INVALID_VERSION);
    CHECK_CONTAINS(msg, "the minor version is empty at position 2");
    CHECK_INT(parse_msg(".1.2", msg, sizeof msg), PLG_ERR_INVALID_VERSION);
    CHECK_CONTAINS(msg, "expected a number for the major version at position 0, found '.'");
    CHECK_INT(parse_msg("1.2.3.4", msg, sizeof msg), PLG_ERR_INVALID_VERSION);
    CHECK_CONTAINS(msg, "found '.' at position 5 after the patch version");
    CHECK_INT(parse_msg("-1.2.3", msg, sizeof msg), PLG_ERR_INVALID_VERSION);
    CHECK_INT(parse_msg("1.-2.3", msg, sizeof msg), PLG_ERR_INVALID_VERSION);
    CHECK_CONTAINS(msg, "the minor version is empty at position 2");
    CHECK_INT(parse_msg("a.b.c", msg, sizeof msg), PLG_ERR_INVALID_VERSION);
    CHECK_INT(parse_msg("1-rc.1", msg, sizeof msg), PLG_ERR_INVALID_VERSION);
    CHECK_CONTAINS(msg, "found '-' at position 1 after the major version; expected '.'");
    CHECK_INT(parse_msg("1.2-rc.1", msg, sizeof msg), PLG_ERR_INVALID_VERSION);
    CHECK_INT(parse_msg("1.2.3-rc.1.", msg, sizeof msg), PLG_ERR_INVALID_VERSION);
}

TEST(parse_prefix_and_whitespace)
{
    char msg[256];
    CHECK_INT(parse_msg("v1.2.3", msg, sizeof msg), PLG_ERR_INVALID_VERSION);
    CHECK_CONTAINS(msg, "unexpected 'v' at position 0; a version has no \"v\" prefix");
    CHECK_INT(parse_msg("V1.2.3", msg, sizeof msg), PLG_ERR_INVALID_VERSION);
    CHECK_INT(parse_msg("=1.2.3", msg, sizeof msg), PLG_ERR_INVALID_VERSION);
    CHECK_INT(parse_msg(" 1.2.3", msg, sizeof msg), PLG_ERR_INVALID_VERSION);
    CHECK_CONTAINS(msg, "for the major version at position 0, found a space");
    CHECK_INT(parse_msg("1.2.3 ", msg, sizeof msg), PLG_ERR_INVALID_VERSION);
    CHECK_CONTAINS(msg, "found a space at position 5 after the patch version");
    CHECK_INT(parse_msg("1.2.3\n", msg, sizeof msg), PLG_ERR_INVALID_VERSION);
    CHECK_CONTAINS(msg, "\"1.2.3\\x0a\": found a line break at position 5");
    CHECK_INT(parse_msg("1.2.3\t", msg, sizeof msg), PLG_ERR_INVALID_VERSION);
    CHECK_INT(parse_msg("1. 2.3", msg, sizeof msg), PLG_ERR_INVALID_VERSION);
}

TEST(parse_max_length)
{
    char msg[512];
    plg_semver v;
    /* "1.2.3-" plus 249 letters: exactly PLG_SEMVER_MAX characters */
    const char *t = long_text("1.2.3-", 'a', PLG_SEMVER_MAX - 6);
    CHECK_INT(strlen(t), 255);
    CHECK_INT(plg_semver_parse(t, &v, msg, sizeof msg), PLG_OK);
    CHECK_INT(strlen(v.text), 255);
    CHECK_INT(v.prerelease_len, 249);
    t = long_text("1.2.3-", 'a', PLG_SEMVER_MAX - 5);
    CHECK_INT(plg_semver_parse(t, &v, msg, sizeof msg), PLG_ERR_INVALID_VERSION);
    CHECK_CONTAINS(msg, "longer than 255 characters");
    CHECK_CONTAINS(msg, "...\"");
    CHECK(strlen(msg) < 120); /* the echo is cut */
    t = long_text("1.2.3+", 'b', 15000);
    CHECK_INT(plg_semver_parse(t, &v, msg, sizeof msg), PLG_ERR_INVALID_VERSION);
    CHECK_CONTAINS(msg, "longer than 255 characters");
    /* a 255-digit major number */
    memset(long_buf, '9', 251);
    memcpy(long_buf + 251, ".0.0", 5);
    CHECK_INT(plg_semver_parse(long_buf, &v, msg, sizeof msg), PLG_OK);
    CHECK_INT(v.major_len, 251);
    CHECK(plg_semver_major(&v) == UINT64_MAX);
}

TEST(parse_arguments_and_messages)
{
    char msg[256];
    char small[12];
    plg_semver v;
    CHECK_INT(plg_semver_parse(NULL, &v, msg, sizeof msg), PLG_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(msg, "NULL");
    CHECK_INT(plg_semver_parse("1.2.3", NULL, msg, sizeof msg), PLG_ERR_INVALID_ARGUMENT);
    CHECK_INT(plg_semver_parse(NULL, NULL, NULL, 0), PLG_ERR_INVALID_ARGUMENT);
    /* no message buffer is fine */
    CHECK_INT(plg_semver_parse("1.2", &v, NULL, 0), PLG_ERR_INVALID_VERSION);
    CHECK_INT(plg_semver_parse("1.2", &v, NULL, 100), PLG_ERR_INVALID_VERSION);
    /* a small buffer receives a NUL-terminated prefix */
    memset(small, 'Z', sizeof small);
    CHECK_INT(plg_semver_parse("1.02.3", &v, small, sizeof small), PLG_ERR_INVALID_VERSION);
    CHECK_INT(strlen(small), sizeof small - 1);
    CHECK_STR(small, "\"1.02.3\": t");
    memset(small, 'Z', sizeof small);
    CHECK_INT(plg_semver_parse("1.02.3", &v, small, 1), PLG_ERR_INVALID_VERSION);
    CHECK_INT(small[0], '\0');
    CHECK_INT(small[1], 'Z');
    memset(small, 'Z', sizeof small);
    CHECK_INT(plg_semver_parse("1.02.3", &v, small, 0), PLG_ERR_INVALID_VERSION);
    CHECK_INT(small[0], 'Z');
}

TEST(parse_failure_leaves_zeroed_output)
{
    plg_semver v = must_parse("1.2.3-rc.1+b");
    CHECK_INT(plg_semver_parse("1.2.3-", &v, NULL, 0), PLG_ERR_INVALID_VERSION);
    CHECK_STR(v.text, "");
    CHECK_INT(v.major_len, 0);
    CHECK_INT(v.prerelease_len, 0);
    /* a failed parse result is not a version: accessors and satisfies reject it safely */
    CHECK(plg_semver_major(&v) == 0);
}

/* ---------------------------------------------------------------------------------------------
   Numbers and accessors
   ------------------------------------------------------------------------------------------- */

TEST(accessors)
{
    plg_semver v = must_parse("1.22.333-rc.1+b");
    CHECK(plg_semver_major(&v) == 1);
    CHECK(plg_semver_minor(&v) == 22);
    CHECK(plg_semver_patch(&v) == 333);
    v = must_parse("0.0.0");
    CHECK(plg_semver_major(&v) == 0 && plg_semver_minor(&v) == 0 && plg_semver_patch(&v) == 0);
    CHECK(plg_semver_major(NULL) == 0);
    CHECK(plg_semver_minor(NULL) == 0);
    CHECK(plg_semver_patch(NULL) == 0);
}

TEST(accessors_beyond_64_bits)
{
    plg_semver v = must_parse("18446744073709551614.18446744073709551615.18446744073709551616");
    CHECK(plg_semver_major(&v) == UINT64_MAX - 1);
    CHECK(plg_semver_minor(&v) == UINT64_MAX); /* fits exactly */
    CHECK(plg_semver_patch(&v) == UINT64_MAX); /* does not fit */
    v = must_parse("99999999999999999999.100000000000000000000.4294967296");
    CHECK(plg_semver_major(&v) == UINT64_MAX);
    CHECK(plg_semver_minor(&v) == UINT64_MAX);
    CHECK(plg_semver_patch(&v) == 4294967296ull);
    v = must_parse("9223372036854775808.0.0");
    CHECK(plg_semver_major(&v) == 9223372036854775808ull);
}

TEST(compare_numbers_beyond_64_bits)
{
    CHECK_INT(cmp_text("18446744073709551616.0.0", "18446744073709551615.0.0"), 1);
    CHECK_INT(cmp_text("100000000000000000000.0.0", "99999999999999999999.0.0"), 1);
    CHECK_INT(cmp_text("1.99999999999999999998.0", "1.99999999999999999999.0"), -1);
    CHECK_INT(cmp_text("1.2.1234567890123456789012345678", "1.2.1234567890123456789012345678"), 0);
    CHECK_INT(cmp_text("1.2.1234567890123456789012345671", "1.2.1234567890123456789012345670"), 1);
    CHECK_INT(cmp_text("1.0.0-18446744073709551616", "1.0.0-18446744073709551615"), 1);
    CHECK_INT(cmp_text("1.0.0-99999999999999999999", "1.0.0-100000000000000000000"), -1);
    CHECK_INT(cmp_text("1.0.0-99999999999999999999999", "1.0.0-a"), -1);
    CHECK_INT(cmp_text("1.0.0-rc.99999999999999999999999", "1.0.0-rc.99999999999999999999999"), 0);
}

/* ---------------------------------------------------------------------------------------------
   Precedence
   ------------------------------------------------------------------------------------------- */

TEST(precedence_semver_org_chain)
{
    static const char *const chain[] = {
        "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
        "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "2.0.0", "2.1.0", "2.1.1",
    };
    size_t n = sizeof chain / sizeof chain[0], i, j;
    for (i = 0; i < n; i++)
        for (j = 0; j < n; j++)
            CHECK_INT(cmp_text(chain[i], chain[j]), i < j ? -1 : i > j ? 1 : 0);
}

TEST(precedence_prerelease_identifiers)
{
    CHECK_INT(cmp_text("1.0.0-2", "1.0.0-10"), -1);      /* numeric: numerically */
    CHECK_INT(cmp_text("1.0.0-10", "1.0.0-a"), -1);      /* numeric < alphanumeric */
    CHECK_INT(cmp_text("1.0.0-0", "1.0.0--"), -1);       /* "-" is alphanumeric */
    CHECK_INT(cmp_text("1.0.0-1", "1.0.0-0a"), -1);      /* "0a" is alphanumeric */
    CHECK_INT(cmp_text("1.0.0-A", "1.0.0-a"), -1);       /* ASCII order */
    CHECK_INT(cmp_text("1.0.0-Z", "1.0.0-a"), -1);
    CHECK_INT(cmp_text("1.0.0-a", "1.0.0-aa"), -1);      /* prefix first */
    CHECK_INT(cmp_text("1.0.0-ab", "1.0.0-b"), -1);
    CHECK_INT(cmp_text("1.0.0-alpha", "1.0.0-alpha.0"), -1); /* more fields rank higher */
    CHECK_INT(cmp_text("1.0.0-a.b.c", "1.0.0-a.b"), 1);
    CHECK_INT(cmp_text("1.0.0-rc.1", "1.0.0"), -1);      /* a tag ranks lower */
    CHECK_INT(cmp_text("1.0.0", "1.0.0-rc.1"), 1);
    CHECK_INT(cmp_text("1.0.1-alpha", "1.0.0"), 1);      /* numbers first */
    CHECK_INT(cmp_text("0.9.9", "1.0.0-0"), -1);
    CHECK_INT(cmp_text("1.0.0-x-y", "1.0.0-x-z"), -1);
}

TEST(precedence_ignores_build)
{
    plg_semver a = must_parse("1.0.0+a"), b = must_parse("1.0.0+b"), c = must_parse("1.0.0");
    CHECK_INT(plg_semver_compare(&a, &b), 0);
    CHECK_INT(plg_semver_compare(&a, &c), 0);
    CHECK_INT(cmp_text("1.0.0-rc.1+build.1", "1.0.0-rc.1"), 0);
    CHECK_INT(cmp_text("1.0.0-rc.1+zzz", "1.0.0-rc.2+aaa"), -1);
    CHECK_INT(cmp_text("2.0.0+build.1848", "1.9.9+build.9999"), 1);
}

TEST(compare_antisymmetry_and_order)
{
    /* strictly ascending */
    static const char *const list[] = {
        "0.0.0-0", "0.0.0-0.0", "0.0.0-1", "0.0.0-a", "0.0.0", "0.0.1", "0.1.0-rc", "0.1.0",
        "0.10.0", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta.2",
        "1.0.0-beta.11", "1.0.0", "1.0.1", "1.1.0", "1.9.0", "1.10.0", "2.0.0", "10.0.0",
        "18446744073709551615.0.0", "18446744073709551616.0.0",
    };
    size_t n = sizeof list / sizeof list[0], i, j;
    plg_semver v[sizeof list / sizeof list[0]];
    for (i = 0; i < n; i++)
        v[i] = must_parse(list[i]);
    for (i = 0; i < n; i++) {
        CHECK_INT(plg_semver_compare(&v[i], &v[i]), 0);
        for (j = 0; j < n; j++) {
            int ab = plg_semver_compare(&v[i], &v[j]), ba = plg_semver_compare(&v[j], &v[i]);
            CHECK_INT(sign_of(ab), -sign_of(ba));
            CHECK_INT(sign_of(ab), i < j ? -1 : i > j ? 1 : 0);
        }
    }
}

TEST(compare_text_and_null)
{
    int c = 42;
    plg_semver v = must_parse("1.0.0");
    CHECK_INT(plg_semver_compare_text("1.0.0", "2.0.0", &c), PLG_OK);
    CHECK(c < 0);
    c = 42;
    CHECK_INT(plg_semver_compare_text("1.0", "2.0.0", &c), PLG_ERR_INVALID_VERSION);
    CHECK_INT(c, 0);
    CHECK_INT(plg_semver_compare_text("1.0.0", "v2.0.0", &c), PLG_ERR_INVALID_VERSION);
    CHECK_INT(plg_semver_compare_text(NULL, "2.0.0", &c), PLG_ERR_INVALID_ARGUMENT);
    CHECK_INT(plg_semver_compare_text("1.0.0", NULL, &c), PLG_ERR_INVALID_ARGUMENT);
    CHECK_INT(plg_semver_compare_text("1.0.0", "1.0.0", NULL), PLG_ERR_INVALID_ARGUMENT);
    /* NULL sorts first; never a crash */
    CHECK_INT(plg_semver_compare(NULL, NULL), 0);
    CHECK(plg_semver_compare(NULL, &v) < 0);
    CHECK(plg_semver_compare(&v, NULL) > 0);
}

TEST(compare_rejects_forged_struct)
{
    plg_semver bad, good = must_parse("1.2.3");
    int s = 7;
    memset(&bad, 0, sizeof bad);
    CHECK(plg_semver_compare(&bad, &good) < 0);
    bad = good;
    bad.patch_len = 60000; /* points outside text */
    CHECK(plg_semver_compare(&bad, &good) < 0);
    CHECK(plg_semver_patch(&bad) == 0);
    CHECK_INT(plg_range_satisfies("*", &bad, &s, NULL, 0), PLG_ERR_INVALID_ARGUMENT);
    CHECK_INT(s, 0);
    memset(bad.text, 'x', sizeof bad.text); /* no terminating NUL */
    bad.patch_len = 1;
    CHECK(plg_semver_compare(&good, &bad) > 0);
}

/* ---------------------------------------------------------------------------------------------
   Ranges: semantics
   ------------------------------------------------------------------------------------------- */

typedef struct range_row {
    const char *range;
    const char *version;
    int expected;
} range_row;

/* Rows follow node-semver's documented semantics (README "Ranges" and "Advanced Range Syntax"). */
static const range_row range_rows[] = {
    /* primitives */
    { ">1.2.3", "1.2.4", 1 },
    { ">1.2.3", "1.2.3", 0 },
    { ">=1.2.3", "1.2.3", 1 },
    { ">=1.2.3", "1.2.2", 0 },
    { "<1.2.3", "1.2.2", 1 },
    { "<1.2.3", "1.2.3", 0 },
    { "<=1.2.3", "1.2.3", 1 },
    { "<=1.2.3", "1.2.4", 0 },
    { "=1.2.3", "1.2.3", 1 },
    { "1.2.3", "1.2.3+build.5", 1 },
    { "1.2.3", "1.2.4", 0 },
    { "1.2.3+build", "1.2.3", 1 },
    { ">=1.2.7", "1.2.8", 1 },
    { ">=1.2.7", "2.5.3", 1 },
    { ">=1.2.7", "1.3.9", 1 },
    { ">=1.2.7", "1.2.6", 0 },
    { ">=1.2.7", "1.1.0", 0 },
    { ">=1.2.7 <1.3.0", "1.2.99", 1 },
    { ">=1.2.7 <1.3.0", "1.3.0", 0 },
    { ">=1.2.7 <1.3.0", "1.2.6", 0 },
    /* || */
    { "1.2.7 || >=1.2.9 <2.0.0", "1.2.7", 1 },
    { "1.2.7 || >=1.2.9 <2.0.0", "1.2.9", 1 },
    { "1.2.7 || >=1.2.9 <2.0.0", "1.4.6", 1 },
    { "1.2.7 || >=1.2.9 <2.0.0", "1.2.8", 0 },
    { "1.2.7 || >=1.2.9 <2.0.0", "2.0.0", 0 },
    { "<1.0.0 || >=2.0.0", "1.5.0", 0 },
    { "<1.0.0 || >=2.0.0", "2.0.0", 1 },
    { "1.2.3||2.0.0", "2.0.0", 1 },
    /* x-ranges */
    { "*", "0.0.0", 1 },
    { "*", "99.1.0", 1 },
    { "", "1.0.0", 1 },
    { "   ", "1.0.0", 1 },
    { "x", "3.0.0", 1 },
    { "X", "3.0.0", 1 },
    { "1.x", "1.9.9", 1 },
    { "1.x", "2.0.0", 0 },
    { "1.x", "0.9.9", 0 },
    { "1.X.x", "1.0.0", 1 },
    { "1.2.x", "1.2.0", 1 },
    { "1.2.x", "1.3.0", 0 },
    { "1.2.*", "1.2.99", 1 },
    { "1", "1.5.0", 1 },
    { "1", "2.0.0", 0 },
    { "1.2", "1.2.9", 1 },
    { "1.2", "1.3.0", 0 },
    { "=1.2", "1.2.5", 1 },
    { ">=1.x", "1.0.0", 1 },
    { ">1", "2.0.0", 1 },
    { ">1", "1.9.9", 0 },
    { ">1.2", "1.3.0", 1 },
    { ">1.2", "1.2.9", 0 },
    { "<1.2", "1.1.9", 1 },
    { "<1.2", "1.2.0", 0 },
    { "<1.x", "0.9.9", 1 },
    { "<1.x", "1.0.0", 0 },
    { "<=1.x", "1.9.9", 1 },
    { "<=1.x", "2.0.0", 0 },
    { "<=1.2", "1.2.9", 1 },
    { "<=1.2", "1.3.0", 0 },
    { ">*", "0.0.0", 0 },
    { "<*", "1.0.0", 0 },
    { ">=*", "1.0.0", 1 },
    { "1.2.x-beta", "1.2.5", 1 },
    /* tilde */
    { "~1.2.3", "1.2.3", 1 },
    { "~1.2.3", "1.2.9", 1 },
    { "~1.2.3", "1.3.0", 0 },
    { "~1.2.3", "1.2.2", 0 },
    { "~1.2", "1.2.0", 1 },
    { "~1.2", "1.3.0", 0 },
    { "~1", "1.9.0", 1 },
    { "~1", "2.0.0", 0 },
    { "~0.2.3", "0.2.5", 1 },
    { "~0.2.3", "0.3.0", 0 },
    { "~0", "0.9.9", 1 },
    { "~0", "1.0.0", 0 },
    { "~>1.2.3", "1.2.5", 1 },
    { "~>1.2.3", "1.3.0", 0 },
    { "~1.2.3-beta.2", "1.2.3-beta.4", 1 },
    { "~1.2.3-beta.2", "1.2.3-beta.1", 0 },
    { "~1.2.3-beta.2", "1.2.4-beta.2", 0 },
    { "~1.2.3-beta.2", "1.2.5", 1 },
    { "~*", "2.0.0", 1 },
    /* caret */
    { "^1.2.3", "1.2.3", 1 },
    { "^1.2.3", "1.9.9", 1 },
    { "^1.2.3", "2.0.0", 0 },
    { "^1.2.3", "1.2.2", 0 },
    { "^0.2.3", "0.2.9", 1 },
    { "^0.2.3", "0.3.0", 0 },
    { "^0.0.3", "0.0.3", 1 },
    { "^0.0.3", "0.0.4", 0 },
    { "^1.2.3-beta.2", "1.2.3-beta.4", 1 },
    { "^1.2.3-beta.2", "1.2.4-beta.2", 0 },
    { "^1.2.3-beta.2", "1.9.0", 1 },
    { "^0.0.3-beta", "0.0.3-pr.2", 1 },
    { "^0.0.3-beta", "0.0.4", 0 },
    { "^1.2.x", "1.9.0", 1 },
    { "^1.2.x", "2.0.0", 0 },
    { "^0.0.x", "0.0.9", 1 },
    { "^0.0.x", "0.1.0", 0 },
    { "^0.0", "0.0.5", 1 },
    { "^1.x", "1.5.0", 1 },
    { "^1.x", "2.0.0", 0 },
    { "^0.x", "0.9.0", 1 },
    { "^0.x", "1.0.0", 0 },
    { "^0.1", "0.1.5", 1 },
    { "^0.1", "0.2.0", 0 },
    { "^0", "0.5.0", 1 },
    { "^*", "5.0.0", 1 },
    /* hyphen */
    { "1.2.3 - 2.3.4", "1.2.3", 1 },
    { "1.2.3 - 2.3.4", "2.3.4", 1 },
    { "1.2.3 - 2.3.4", "2.3.5", 0 },
    { "1.2.3 - 2.3.4", "1.2.2", 0 },
    { "1.2 - 2.3.4", "1.2.0", 1 },
    { "1.2 - 2.3.4", "1.1.9", 0 },
    { "1.2.3 - 2.3", "2.3.9", 1 },
    { "1.2.3 - 2.3", "2.4.0", 0 },
    { "1.2.3 - 2", "2.9.9", 1 },
    { "1.2.3 - 2", "3.0.0", 0 },
    { "1.2 - 2.3", "2.3.99", 1 },
    { "* - 2", "0.0.1", 1 },
    { "1 - *", "9.0.0", 1 },
    { "1.2.3 - 2.0.0-rc", "2.0.0-beta", 1 },
    { "1.2.3-alpha - 1.2.4", "1.2.3-beta", 1 },
    { "v1.2.3 - v2.0.0", "1.5.0", 1 },
    { "1 - 2 || 3 - 4", "4.5.0", 1 },
    { "1.2.3  -  2.3.4", "2.0.0", 1 },
    /* blanks and prefixes */
    { ">= 1.2.3", "1.2.3", 1 },
    { ">=v1.2.3", "1.2.3", 1 },
    { "=v1.2.3", "1.2.3", 1 },
    { "v1.2.3", "1.2.3", 1 },
    { "= 1.2.3", "1.2.3", 1 },
    { "~ 1.2.3", "1.2.5", 1 },
    { "~> 1.2.3", "1.2.5", 1 },
    { "^ 1.2.3", "1.5.0", 1 },
    { "~=1.2.3", "1.2.5", 1 },
    { "^v1.2.3", "1.5.0", 1 },
    { "  1.2.3  ||  2.0.0  ", "2.0.0", 1 },
    { ">=1.2.3\t<2\n", "1.5.0", 1 },
    { "> 1 < 3", "2.5.0", 1 },
    /* pre-release rule */
    { ">1.2.3-alpha.3", "1.2.3-alpha.7", 1 },
    { ">1.2.3-alpha.3", "3.4.5-alpha.9", 0 },
    { ">1.2.3-alpha.3", "3.4.5", 1 },
    { "*", "1.0.0-alpha", 0 },
    { "1.x", "1.5.0-beta", 0 },
    { ">=1.0.0", "1.0.1-rc", 0 },
    { "<2.0.0", "2.0.0-rc", 0 },
    { "<=2.0.0-rc.2", "2.0.0-rc.1", 1 },
    { ">=1.0.0-rc.1 <2", "1.0.0-rc.2", 1 },
    { ">=1.0.0-rc.1 <2", "1.1.0-rc.2", 0 },
    { "1.2.3-beta", "1.2.3-beta", 1 },
    { "1.2.3-beta || 2", "1.2.3-beta", 1 },
    { "1.2.3-beta || *", "1.2.3-beta", 0 },   /* a "*" set makes the range "*" */
    { "1.2.3-beta ||", "1.2.3-beta", 0 },     /* an empty set is "*" */
    { ">=0.0.0 <=0.0.0-z", "0.0.0-a", 1 },    /* ">=0.0.0" is "*" */
    { "^1.2.3", "2.0.0-0", 0 },
    { "1.x || >=2.5.0-beta <3", "2.6.0-x", 0 },
    { "1.x || >=2.5.0-beta <3", "2.5.0-gamma", 1 },
    /* numbers beyond 64 bits and carries in desugared bounds */
    { "^0.0.9", "0.0.9", 1 },
    { "^0.0.9", "0.0.10", 0 },
    { "^0.0.99", "0.0.100", 0 },
    { "^99.0.0", "99.99.99", 1 },
    { "^99.0.0", "100.0.0", 0 },
    { "<=9.x", "9.9.9", 1 },
    { "<=9.x", "10.0.0", 0 },
    { "^18446744073709551615.0.0", "18446744073709551615.5.0", 1 },
    { "^18446744073709551615.0.0", "18446744073709551616.0.0", 0 },
    { "~1.99999999999999999999.0", "1.99999999999999999999.5", 1 },
    { "~1.99999999999999999999.0", "1.100000000000000000000.0", 0 },
    { ">99999999999999999999", "100000000000000000000.0.0", 1 },
    { ">99999999999999999999", "99999999999999999999.9.9", 0 },
};

TEST(range_table)
{
    size_t i, n = sizeof range_rows / sizeof range_rows[0];
    CHECK(n >= 80);
    for (i = 0; i < n; i++) {
        int s = sat(range_rows[i].range, range_rows[i].version);
        if (s != range_rows[i].expected) {
            char line[600];
            snprintf(line, sizeof line, "row %lu: \"%s\" satisfies \"%s\": got %d, expected %d",
                     (unsigned long)i, range_rows[i].version, range_rows[i].range, s,
                     range_rows[i].expected);
            test_fail_line(__FILE__, __LINE__, line);
        }
    }
}

/* Two ranges accept the same versions among a grid (pre-releases included). */
static void check_same_range(const char *a, const char *b, int line)
{
    static const char *const grid[] = {
        "0.0.0", "0.0.1", "0.0.3-beta", "0.0.3", "0.0.4-0", "0.0.4", "0.1.0", "0.2.3", "0.2.9",
        "0.3.0-0", "0.3.0", "0.9.9", "1.0.0-0", "1.0.0", "1.1.9", "1.2.0-rc", "1.2.0", "1.2.2",
        "1.2.3-0", "1.2.3-beta.2", "1.2.3", "1.2.4", "1.2.99", "1.3.0-0", "1.3.0", "1.9.9",
        "2.0.0-0", "2.0.0-rc.1", "2.0.0", "2.3.4", "2.3.5", "2.4.0-0", "2.4.0", "3.0.0-0",
        "3.0.0", "10.0.0",
    };
    size_t i;
    for (i = 0; i < sizeof grid / sizeof grid[0]; i++) {
        int sa = sat(a, grid[i]), sb = sat(b, grid[i]);
        if (sa != sb) {
            char msg[600];
            snprintf(msg, sizeof msg, "line %d: \"%s\" gives %d for %s, \"%s\" gives %d", line, a,
                     sa, grid[i], b, sb);
            test_fail_line(__FILE__, __LINE__, msg);
        }
    }
}

#define SAME_RANGE(a, b) check_same_range(a, b, __LINE__)

TEST(range_desugaring_tilde_caret)
{
    SAME_RANGE("~1.2.3", ">=1.2.3 <1.3.0-0");
    SAME_RANGE("~1.2", ">=1.2.0 <1.3.0-0");
    SAME_RANGE("~1", ">=1.0.0 <2.0.0-0");
    SAME_RANGE("~0.2.3", ">=0.2.3 <0.3.0-0");
    SAME_RANGE("~0", ">=0.0.0 <1.0.0-0");
    SAME_RANGE("~1.2.3-beta.2", ">=1.2.3-beta.2 <1.3.0-0");
    SAME_RANGE("^1.2.3", ">=1.2.3 <2.0.0-0");
    SAME_RANGE("^0.2.3", ">=0.2.3 <0.3.0-0");
    SAME_RANGE("^0.0.3", ">=0.0.3 <0.0.4-0");
    SAME_RANGE("^1.2.3-beta.2", ">=1.2.3-beta.2 <2.0.0-0");
    SAME_RANGE("^0.0.3-beta", ">=0.0.3-beta <0.0.4-0");
    SAME_RANGE("^1.2.x", ">=1.2.0 <2.0.0-0");
    SAME_RANGE("^0.0.x", ">=0.0.0 <0.1.0-0");
    SAME_RANGE("^0.0", ">=0.0.0 <0.1.0-0");
    SAME_RANGE("^1.x", ">=1.0.0 <2.0.0-0");
    SAME_RANGE("^0.x", ">=0.0.0 <1.0.0-0");
}

TEST(range_desugaring_xrange_hyphen)
{
    SAME_RANGE("*", ">=0.0.0");
    SAME_RANGE("1.x", ">=1.0.0 <2.0.0-0");
    SAME_RANGE("1.2.x", ">=1.2.0 <1.3.0-0");
    SAME_RANGE("", "*");
    SAME_RANGE("1", "1.x.x");
    SAME_RANGE("1.2", "1.2.x");
    SAME_RANGE("1.2.3 - 2.3.4", ">=1.2.3 <=2.3.4");
    SAME_RANGE("1.2 - 2.3.4", ">=1.2.0 <=2.3.4");
    SAME_RANGE("1.2.3 - 2.3", ">=1.2.3 <2.4.0-0");
    SAME_RANGE("1.2.3 - 2", ">=1.2.3 <3.0.0-0");
    SAME_RANGE("1.2 - 2.3", ">=1.2.0 <2.4.0-0");
    SAME_RANGE(">1.2", ">=1.3.0");
    SAME_RANGE("<=1.2", "<1.3.0-0");
    SAME_RANGE("<1", "<1.0.0-0");
    SAME_RANGE(">*", "<0.0.0-0");
}

/* ---------------------------------------------------------------------------------------------
   Ranges: validity and messages
   ------------------------------------------------------------------------------------------- */

TEST(range_valid_forms)
{
    static const char *const valid[] = {
        "", " ", "*", "x", "X", "||", "1.2.3 ||", "|| 1.2.3", "1 || || 2", "1.2.3||2.0.0",
        ">= 1.2.3", "~> 1.2", "~>1", "^ 1", "=v1.2.3", "v1.2.3 - v2", "1.2.3 -\t2", "1.x.x",
        "1.*.X", "x.x.x-alpha", "1.2.3-alpha+b.1", "~1.2.3+build", ">=0.0.0", "<0.0.0-0",
        "1.2.3\n||\n2", "~=1.2.3", "^=v1.2.3",
    };
    size_t i, n = sizeof valid / sizeof valid[0];
    char msg[256];
    for (i = 0; i < n; i++) {
        strcpy(msg, "junk");
        if (plg_range_check(valid[i], msg, sizeof msg) != PLG_OK) {
            char line[600];
            snprintf(line, sizeof line, "\"%s\" rejected: %s", valid[i], msg);
            test_fail_line(__FILE__, __LINE__, line);
        }
        CHECK_STR(msg, "");
    }
}

typedef struct bad_range {
    const char *range;
    const char *fragment;
} bad_range;

static const bad_range bad_ranges[] = {
    { ">=1.2.3 <", "\">=1.2.3 <\": operator \"<\" at offset 8 has no version" },
    { ">=abc", "expected a number, 'x', 'X' or '*' for the major version at offset 2, found 'a'" },
    { "1.2.3.4", "found '.' at offset 5 after the patch version" },
    { "^^1", "found '^' at offset 1 after operator \"^\"; expected a version" },
    { ">=>=1", "found '>' at offset 2 after operator \">=\"" },
    { "<>1", "found '>' at offset 1 after operator \"<\"" },
    { "1 - ", "hyphen '-' at offset 2 has no version after it" },
    { "- 1", "hyphen '-' at offset 0 has no version before it" },
    { "1 - 2 3", "found '3' at offset 6; a hyphen range (\"A - B\") must be the whole" },
    { "1.2.3 - 2 - 3", "must be the whole comparator set" },
    { "1 2 - 3", "hyphen '-' at offset 4: a hyphen range is exactly two versions" },
    { ">=1 - 2", "hyphen '-' at offset 4: a hyphen range is exactly two versions" },
    { "=1.2 - 2", "hyphen '-' at offset 5" },
    { "1 - =2", "found '=' at offset 4; the versions of a hyphen range take no operator" },
    { "1 -2", "unexpected '-' at offset 2; a hyphen range needs blanks on both sides" },
    { "1 -- 2", "unexpected '-' at offset 2" },
    { "01.2.3",
      "version \"01.2.3\" at offset 0: the major version has a leading zero at offset 0" },
    { "^1.02", "the minor version has a leading zero at offset 3" },
    { ">=1.2.3-01", "pre-release identifier \"01\" has a leading zero at offset 8" },
    { "1.2.3-", "the pre-release is empty at offset 6" },
    { "1.2.3+", "the build metadata is empty at offset 6" },
    { "~1.2.3-a_b", "the pre-release contains '_' at offset 8" },
    { "1.x.3", "the patch version at offset 4 is a number after a wildcard" },
    { "*.1", "the minor version at offset 2 is a number after a wildcard" },
    { "^x.1", "is a number after a wildcard" },
    { "1.2-beta", "a pre-release tag at offset 3 needs a full MAJOR.MINOR.PATCH version" },
    { "1.x-beta", "a pre-release tag at offset 3 needs" },
    { "1.2+b", "build metadata at offset 3 needs a full MAJOR.MINOR.PATCH version" },
    { "1.2.3 ||| 2", "for the major version at offset 8, found '|'" },
    { "1.2.3|2", "found '|' at offset 5 after the patch version" },
    { "1.2.3 | 2", "found '|'" },
    { "a || 1", "found 'a'" },
    { "1 || b", "version \"b\" at offset 5" },
    { "<", "operator \"<\" at offset 0 has no version" },
    { "~", "operator \"~\" at offset 0 has no version" },
    { "^", "operator \"^\" at offset 0 has no version" },
    { "=", "operator \"=\" at offset 0 has no version" },
    { "~>", "operator \"~>\" at offset 0 has no version" },
    { ">= ", "operator \">=\" at offset 0 has no version" },
    { ">= || 1", "operator \">=\" at offset 0 has no version" },
    { ">= <1", "operator \">=\" at offset 0 has no version" },
    { "< =1.2.3", "operator \"<\" at offset 0 has no version" },
    { "v", "'v' at offset 0 is not followed by a version" },
    { "~=", "'=' at offset 1 is not followed by a version" },
    { "vv1.2", "found 'v'" },
    { "v 1.2.3", "'v' at offset 0 is not followed by a version" },
    { "==1.2.3", "found '=' at offset 1 after operator \"=\"" },
    { ">==1.2", "found '=' at offset 2 after operator \">=\"" },
    { "~ >1.2", "operator \"~\" at offset 0 has no version" },
    { "1.2.3\x01", "found byte 0x01 at offset 5 after the patch version" },
    { "1.2.3 \xc2\xa0", "for the major version at offset 6, found byte 0xc2" },
    { "!=1.2.3", "found '!'" },
    { "1.2.3 2.0.0 ^", "operator \"^\" at offset 12 has no version" },
    { "1.2.3-rc..1", "pre-release identifier 2 is empty at offset 9" },
    { "1..2", "the minor version is empty at offset 2" },
    { "1.", "the minor version is empty at offset 2" },
    { "1.2.", "the patch version is empty at offset 4" },
    { ".1", "expected a number, 'x', 'X' or '*' for the major version at offset 0, found '.'" },
    { "1.2.3 || 1.2.3.4.5", "found '.' at offset 14 after the patch version" },
    { "1a", "the major version contains 'a' at offset 1" },
    { "1.xy", "the minor version contains 'y' at offset 3" },
    { "1 - abc", "version \"abc\" at offset 4: expected a number" },
    { "1 - 2.x.3", "the patch version at offset 8 is a number after a wildcard" },
    { "1.2.3'", "found \"'\" at offset 5 after the patch version" },
};

TEST(range_invalid_forms)
{
    size_t i, n = sizeof bad_ranges / sizeof bad_ranges[0];
    char msg[512];
    for (i = 0; i < n; i++) {
        plg_result r;
        strcpy(msg, "junk");
        r = plg_range_check(bad_ranges[i].range, msg, sizeof msg);
        if (r != PLG_ERR_INVALID_RANGE || strstr(msg, bad_ranges[i].fragment) == NULL) {
            char line[1200];
            snprintf(line, sizeof line, "range \"%s\": code %d, message \"%s\", wanted \"%s\"",
                     bad_ranges[i].range, (int)r, msg, bad_ranges[i].fragment);
            test_fail_line(__FILE__, __LINE__, line);
        }
    }
}

TEST(range_invalid_agrees_with_satisfies)
{
    size_t i, n = sizeof bad_ranges / sizeof bad_ranges[0];
    plg_semver v = must_parse("1.2.3");
    for (i = 0; i < n; i++) {
        char m1[512], m2[512];
        int s = 5;
        CHECK_INT(plg_range_check(bad_ranges[i].range, m1, sizeof m1), PLG_ERR_INVALID_RANGE);
        CHECK_INT(plg_range_satisfies(bad_ranges[i].range, &v, &s, m2, sizeof m2),
                  PLG_ERR_INVALID_RANGE);
        CHECK_STR(m1, m2);
        CHECK_INT(s, 0);
        CHECK_INT(plg_range_satisfies_text(bad_ranges[i].range, "1.2.3", &s),
                  PLG_ERR_INVALID_RANGE);
    }
}

TEST(range_error_in_a_later_set_is_found)
{
    int s = 9;
    /* the first set already matches, yet the range is still checked to the end */
    CHECK_INT(plg_range_satisfies_text("* || >=abc", "1.0.0", &s), PLG_ERR_INVALID_RANGE);
    CHECK_INT(s, 0);
    CHECK_INT(plg_range_satisfies_text("1.0.0 || 2.0.0 ^", "1.0.0", &s), PLG_ERR_INVALID_RANGE);
}

TEST(range_long_inputs)
{
    static char big[60000];
    size_t i, o = 0;
    char msg[512];
    /* 3000 sets: no allocation, any length */
    for (i = 0; i < 3000; i++)
        o += (size_t)sprintf(big + o, "%s%lu.x", i ? " || " : "", (unsigned long)i);
    CHECK_INT(plg_range_check(big, msg, sizeof msg), PLG_OK);
    CHECK_INT(sat(big, "2999.5.0"), 1);
    CHECK_INT(sat(big, "3000.0.0"), 0);
    /* an error far away is reported with its offset, the echo of the range cut */
    strcpy(big + o, " || >=1.2.3 <");
    CHECK_INT(plg_range_check(big, msg, sizeof msg), PLG_ERR_INVALID_RANGE);
    CHECK_CONTAINS(msg, "...\": operator \"<\" at offset ");
    CHECK(strlen(msg) < 200);
    /* a version of 256 characters in a range */
    CHECK_INT(plg_range_check(long_text(">=1.2.3-", 'a', 250), msg, sizeof msg),
              PLG_ERR_INVALID_RANGE);
    CHECK_CONTAINS(msg, "version at offset 2 is longer than 255 characters");
    CHECK_INT(plg_range_check(long_text(">=1.2.3-", 'a', 249), msg, sizeof msg), PLG_OK);
    /* long runs of blanks and of "||" */
    CHECK_INT(plg_range_check(long_text("1.2.3", ' ', 15000), msg, sizeof msg), PLG_OK);
    CHECK_INT(plg_range_check(long_text("", '|', 15000), msg, sizeof msg), PLG_OK);
    CHECK_INT(plg_range_check(long_text("", '|', 15001), msg, sizeof msg), PLG_ERR_INVALID_RANGE);
    /* a huge number in a range is compared exactly */
    memcpy(big, ">=", 2);
    memset(big + 2, '9', 200);
    big[202] = '\0';
    CHECK_INT(plg_range_check(big, msg, sizeof msg), PLG_OK);
    CHECK_INT(sat(big, "1.0.0"), 0);
    memcpy(big, "<=", 2);
    CHECK_INT(sat(big, "1.0.0"), 1);
    CHECK_INT(sat(big, "99999999999999999999999999999999999999999.0.0"), 1);
}

TEST(range_arguments)
{
    char msg[256];
    int s = 7;
    plg_semver v = must_parse("1.0.0");
    CHECK_INT(plg_range_check(NULL, msg, sizeof msg), PLG_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(msg, "NULL");
    CHECK_INT(plg_range_check(NULL, NULL, 0), PLG_ERR_INVALID_ARGUMENT);
    CHECK_INT(plg_range_check(">=abc", NULL, 0), PLG_ERR_INVALID_RANGE);
    CHECK_INT(plg_range_satisfies(NULL, &v, &s, msg, sizeof msg), PLG_ERR_INVALID_ARGUMENT);
    CHECK_INT(s, 0);
    CHECK_INT(plg_range_satisfies("*", NULL, &s, msg, sizeof msg), PLG_ERR_INVALID_ARGUMENT);
    CHECK_INT(plg_range_satisfies("*", &v, NULL, msg, sizeof msg), PLG_ERR_INVALID_ARGUMENT);
    CHECK_INT(plg_range_satisfies("*", &v, &s, NULL, 0), PLG_OK);
    CHECK_INT(s, 1);
    CHECK_INT(plg_range_satisfies_text(NULL, "1.0.0", &s), PLG_ERR_INVALID_ARGUMENT);
    CHECK_INT(plg_range_satisfies_text("*", NULL, &s), PLG_ERR_INVALID_ARGUMENT);
    CHECK_INT(plg_range_satisfies_text("*", "1.0.0", NULL), PLG_ERR_INVALID_ARGUMENT);
    s = 7;
    CHECK_INT(plg_range_satisfies_text("*", "1.0", &s), PLG_ERR_INVALID_VERSION);
    CHECK_INT(s, 0);
    CHECK_INT(plg_range_satisfies_text("*", "v1.0.0", &s), PLG_ERR_INVALID_VERSION);
}

TEST(range_message_truncation)
{
    char small[10];
    char msg[256];
    memset(small, 'Z', sizeof small);
    CHECK_INT(plg_range_check(">=1.2.3 <", small, sizeof small), PLG_ERR_INVALID_RANGE);
    CHECK_STR(small, "\">=1.2.3 ");
    memset(small, 'Z', sizeof small);
    CHECK_INT(plg_range_check(">=1.2.3 <", small, 1), PLG_ERR_INVALID_RANGE);
    CHECK_INT(small[0], '\0');
    CHECK_INT(small[1], 'Z');
    memset(small, 'Z', sizeof small);
    CHECK_INT(plg_range_check(">=1.2.3 <", small, 0), PLG_ERR_INVALID_RANGE);
    CHECK_INT(small[0], 'Z');
    /* the range is echoed escaped */
    CHECK_INT(plg_range_check("\"1\\\t<", msg, sizeof msg), PLG_ERR_INVALID_RANGE);
    CHECK_CONTAINS(msg, "\"\\\"1\\\\\\x09<\": ");
    /* success clears the message */
    strcpy(msg, "junk");
    CHECK_INT(plg_range_satisfies_text("^1", "1.0.0", NULL), PLG_ERR_INVALID_ARGUMENT);
    CHECK_INT(plg_range_check("^1", msg, sizeof msg), PLG_OK);
    CHECK_STR(msg, "");
}

int main(void)
{
    RUN(parse_valid_spec_examples);
    RUN(parse_fills_offsets);
    RUN(parse_leading_zeros);
    RUN(parse_empty_identifiers);
    RUN(parse_bad_characters);
    RUN(parse_missing_parts);
    RUN(parse_prefix_and_whitespace);
    RUN(parse_max_length);
    RUN(parse_arguments_and_messages);
    RUN(parse_failure_leaves_zeroed_output);
    RUN(accessors);
    RUN(accessors_beyond_64_bits);
    RUN(compare_numbers_beyond_64_bits);
    RUN(precedence_semver_org_chain);
    RUN(precedence_prerelease_identifiers);
    RUN(precedence_ignores_build);
    RUN(compare_antisymmetry_and_order);
    RUN(compare_text_and_null);
    RUN(compare_rejects_forged_struct);
    RUN(range_table);
    RUN(range_desugaring_tilde_caret);
    RUN(range_desugaring_xrange_hyphen);
    RUN(range_valid_forms);
    RUN(range_invalid_forms);
    RUN(range_invalid_agrees_with_satisfies);
    RUN(range_error_in_a_later_set_is_found);
    RUN(range_long_inputs);
    RUN(range_arguments);
    RUN(range_message_truncation);
    return test_summary();
}
