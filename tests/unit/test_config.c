/* Unit tests of the configuration machinery: JSON parser, schema check, validation, typed values,
   formatting, and, through the registry core, strict_config, max_config_bytes, the allocator
   (every allocation made to fail in turn), the logger and plg_errmsg. */
#define PLUGIN_REGISTRY_IMPLEMENTATION
#include "plugin_registry.h"
#include "../test.h"

#include <pthread.h>

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

static const char *const modes[] = {"fast", "safe", "paranoid"};
static const char *const tokens[] = {"alpha-token", "beta-token"};

/* A schema with every type, bounds, defaults, a required key and secrets. */
static const plg_config_key schema[] = {
    {"addr", PLG_CONFIG_STRING, PLG_KEY_REQUIRED, NULL, NULL, NULL, NULL, 0, "host:port"},
    {"port", PLG_CONFIG_INTEGER, 0, "6379", "1", "65535", NULL, 0, NULL},
    {"debug", PLG_CONFIG_BOOLEAN, 0, "false", NULL, NULL, NULL, 0, NULL},
    {"ratio", PLG_CONFIG_NUMBER, 0, "0.5", "0", "1", NULL, 0, NULL},
    {"timeout", PLG_CONFIG_DURATION, 0, "30s", "1ms", "1h", NULL, 0, NULL},
    {"password", PLG_CONFIG_STRING, PLG_KEY_SECRET, NULL, "4", "32", NULL, 0, NULL},
    {"mode", PLG_CONFIG_STRING, 0, "fast", NULL, NULL, modes, 3, NULL},
    {"pin", PLG_CONFIG_INTEGER, PLG_KEY_SECRET, NULL, "0", "9999", NULL, 0, NULL},
    {"token", PLG_CONFIG_STRING, PLG_KEY_SECRET, NULL, NULL, NULL, tokens, 2, NULL},
};
#define NKEYS COUNT_OF(schema)

/* Unconstrained keys of each type. */
static const plg_config_key plain[] = {
    {"s", PLG_CONFIG_STRING, 0, NULL, NULL, NULL, NULL, 0, NULL},
    {"i", PLG_CONFIG_INTEGER, 0, NULL, NULL, NULL, NULL, 0, NULL},
    {"b", PLG_CONFIG_BOOLEAN, 0, NULL, NULL, NULL, NULL, 0, NULL},
    {"n", PLG_CONFIG_NUMBER, 0, NULL, NULL, NULL, NULL, 0, NULL},
    {"d", PLG_CONFIG_DURATION, 0, NULL, NULL, NULL, NULL, 0, NULL},
};
#define NPLAIN COUNT_OF(plain)

static int message_contains(const plg_config *c, const char *text)
{
    size_t i;
    for (i = 0; i < plg_config_problem_count(c); i++) {
        const plg_config_problem *p = plg_config_problem_at(c, i);
        if (strstr(p->message, text) != NULL || strstr(p->key, text) != NULL)
            return 1;
    }
    return 0;
}

static size_t error_count(const plg_config *c)
{
    size_t i, n = 0;
    for (i = 0; i < plg_config_problem_count(c); i++)
        if (!plg_config_problem_at(c, i)->is_warning)
            n++;
    return n;
}

/* Parses text against the unconstrained schema; returns the result. */
static plg_result parse_plain(const char *json, plg_config **out)
{
    return plg_config_parse_json(NULL, plain, NPLAIN, json, PLG_CONFIG_STRICT, out);
}

/* ------------------------------------------------------------------------------------------- */

TEST(test_every_type_valid)
{
    plg_config *c = NULL;
    plg_config_value v;
    plg_result r = plg_config_parse_json(
        NULL, schema, NKEYS,
        "{\"addr\":\"localhost:6379\",\"port\":6380,\"debug\":true,\"ratio\":0.25,"
        "\"timeout\":\"1h\",\"password\":\"hunter22\",\"mode\":\"safe\",\"pin\":1234,"
        "\"token\":\"beta-token\"}",
        0, &c);
    CHECK_INT(r, PLG_OK);
    CHECK(c != NULL);
    CHECK_INT(plg_config_problem_count(c), 0);
    CHECK_STR(plg_config_string(c, "addr"), "localhost:6379");
    CHECK_INT(plg_config_integer(c, "port"), 6380);
    CHECK_INT(plg_config_boolean(c, "debug"), 1);
    CHECK(plg_config_number(c, "ratio") == 0.25);
    CHECK_INT(plg_config_duration_ms(c, "timeout"), 3600000);
    CHECK_STR(plg_config_string(c, "password"), "hunter22");
    CHECK_STR(plg_config_string(c, "mode"), "safe");
    CHECK_INT(plg_config_integer(c, "pin"), 1234);
    CHECK_STR(plg_config_string(c, "token"), "beta-token");
    CHECK_INT(plg_config_is_set(c, "addr"), 1);
    CHECK_INT(plg_config_is_set(c, "port"), 1);
    CHECK_INT(plg_config_get(c, "addr", &v), PLG_OK);
    CHECK_INT(v.type, PLG_CONFIG_STRING);
    CHECK_INT(v.is_set, 1);
    CHECK_INT(v.string_len, 14);
    CHECK_INT(plg_config_get(c, "timeout", &v), PLG_OK);
    CHECK_INT(v.type, PLG_CONFIG_DURATION);
    CHECK_INT(v.integer, 3600000);
    CHECK_INT(plg_config_get(c, "ratio", &v), PLG_OK);
    CHECK(v.number == 0.25);
    CHECK(v.string == NULL);
    CHECK_INT(plg_config_get(c, "debug", &v), PLG_OK);
    CHECK_INT(v.boolean, 1);
    plg_config_destroy(c);
}

TEST(test_defaults_and_is_set)
{
    plg_config *c = NULL;
    plg_config_value v;
    CHECK_INT(plg_config_parse_json(NULL, schema, NKEYS, "{\"addr\":\"a\",\"port\":null}", 0, &c),
              PLG_OK);
    CHECK_INT(plg_config_is_set(c, "addr"), 1);
    CHECK_INT(plg_config_is_set(c, "port"), 2); /* null = not given: default */
    CHECK_INT(plg_config_integer(c, "port"), 6379);
    CHECK_INT(plg_config_is_set(c, "debug"), 2);
    CHECK_INT(plg_config_boolean(c, "debug"), 0);
    CHECK(plg_config_number(c, "ratio") == 0.5);
    CHECK_INT(plg_config_duration_ms(c, "timeout"), 30000);
    CHECK_STR(plg_config_string(c, "mode"), "fast");
    CHECK_INT(plg_config_is_set(c, "password"), 0);
    CHECK(plg_config_string(c, "password") == NULL);
    CHECK_INT(plg_config_get(c, "password", &v), PLG_OK);
    CHECK_INT(v.is_set, 0);
    CHECK_INT(v.type, PLG_CONFIG_STRING);
    CHECK(v.string == NULL);
    CHECK_INT(plg_config_get(c, "mode", &v), PLG_OK);
    CHECK_INT(v.is_set, 2);
    CHECK_STR(v.string, "fast");
    CHECK_INT(v.string_len, 4);
    plg_config_destroy(c);

    /* An explicit value equal to the default is still "given". */
    c = NULL;
    CHECK_INT(plg_config_parse_json(NULL, schema, NKEYS, "{\"addr\":\"a\",\"port\":6379}", 0, &c),
              PLG_OK);
    CHECK_INT(plg_config_is_set(c, "port"), 1);
    plg_config_destroy(c);
}

TEST(test_required_missing)
{
    plg_config *c = NULL;
    const plg_config_problem *p;
    plg_result r = plg_config_parse_json(NULL, schema, NKEYS, "{}", 0, &c);
    CHECK_INT(r, PLG_ERR_CONFIG_INVALID);
    CHECK(c != NULL);
    CHECK_INT(plg_config_problem_count(c), 1);
    p = plg_config_problem_at(c, 0);
    CHECK(p != NULL);
    if (p != NULL) {
        CHECK_INT(p->code, PLG_ERR_CONFIG_MISSING_KEY);
        CHECK_INT(p->is_warning, 0);
        CHECK_STR(p->key, "addr");
        CHECK(p->offset == PLG_NO_OFFSET);
        CHECK_CONTAINS(p->message, "required key \"addr\" is missing");
    }
    /* defaults are still applied to the other keys */
    CHECK_INT(plg_config_integer(c, "port"), 6379);
    plg_config_destroy(c);

    c = NULL;
    r = plg_config_parse_json(NULL, schema, NKEYS, "{\"addr\":null}", 0, &c);
    CHECK_INT(r, PLG_ERR_CONFIG_INVALID);
    p = plg_config_problem_at(c, 0);
    CHECK(p != NULL);
    if (p != NULL) {
        CHECK_INT(p->code, PLG_ERR_CONFIG_MISSING_KEY);
        CHECK_INT(p->offset, 1);
        CHECK_CONTAINS(p->message, "null");
    }
    plg_config_destroy(c);

    /* NULL out: validation only */
    CHECK_INT(plg_config_parse_json(NULL, schema, NKEYS, "{}", 0, NULL), PLG_ERR_CONFIG_INVALID);
    CHECK_INT(plg_config_parse_json(NULL, schema, NKEYS, "{\"addr\":\"x\"}", 0, NULL), PLG_OK);
}

TEST(test_empty_inputs)
{
    plg_config *c = NULL;
    CHECK_INT(parse_plain(NULL, &c), PLG_OK);
    CHECK_INT(plg_config_problem_count(c), 0);
    CHECK_INT(plg_config_is_set(c, "s"), 0);
    plg_config_destroy(c);
    c = NULL;
    CHECK_INT(parse_plain("", &c), PLG_OK);
    plg_config_destroy(c);
    c = NULL;
    CHECK_INT(parse_plain(" \t\r\n", &c), PLG_OK);
    plg_config_destroy(c);
    c = NULL;
    CHECK_INT(parse_plain("  {  }  \n", &c), PLG_OK);
    plg_config_destroy(c);
    /* empty schema */
    c = NULL;
    CHECK_INT(plg_config_parse_json(NULL, NULL, 0, "{}", 0, &c), PLG_OK);
    CHECK_INT(plg_config_is_set(c, "x"), 0);
    plg_config_destroy(c);
    /* text after a NUL byte is not seen */
    c = NULL;
    CHECK_INT(parse_plain("{\"i\":1}\0garbage", &c), PLG_OK);
    plg_config_destroy(c);
}

struct int_case {
    const char *json;
    plg_result result;
    int64_t value;
};

TEST(test_integer_forms)
{
    static const struct int_case cases[] = {
        {"{\"i\":0}", PLG_OK, 0},
        {"{\"i\":-0}", PLG_OK, 0},
        {"{\"i\":42}", PLG_OK, 42},
        {"{\"i\":-42}", PLG_OK, -42},
        {"{\"i\":1e3}", PLG_OK, 1000},
        {"{\"i\":1E+3}", PLG_OK, 1000},
        {"{\"i\":1.0}", PLG_OK, 1},
        {"{\"i\":0.1e1}", PLG_OK, 1},
        {"{\"i\":100e-2}", PLG_OK, 1},
        {"{\"i\":1.5e1}", PLG_OK, 15},
        {"{\"i\":0.0e-999999999999}", PLG_OK, 0},
        {"{\"i\":9223372036854775807}", PLG_OK, INT64_MAX},
        {"{\"i\":-9223372036854775808}", PLG_OK, INT64_MIN},
        {"{\"i\":92233720368547758070e-1}", PLG_OK, INT64_MAX},
        {"{\"i\":9.223372036854775807e18}", PLG_OK, INT64_MAX},
        {"{\"i\":9223372036854775808}", PLG_ERR_CONFIG_RANGE, 0},
        {"{\"i\":-9223372036854775809}", PLG_ERR_CONFIG_RANGE, 0},
        {"{\"i\":18446744073709551616}", PLG_ERR_CONFIG_RANGE, 0},
        {"{\"i\":1e19}", PLG_ERR_CONFIG_RANGE, 0},
        {"{\"i\":1e400}", PLG_ERR_CONFIG_RANGE, 0},
        {"{\"i\":1e999999999999999999}", PLG_ERR_CONFIG_RANGE, 0},
        {"{\"i\":1.5}", PLG_ERR_CONFIG_TYPE, 0},
        {"{\"i\":1e-1}", PLG_ERR_CONFIG_TYPE, 0},
        {"{\"i\":1e-400}", PLG_ERR_CONFIG_TYPE, 0},
        {"{\"i\":1.5e400}", PLG_ERR_CONFIG_RANGE, 0},
        {"{\"i\":\"6379\"}", PLG_OK, 6379},
        {"{\"i\":\" 6379 \"}", PLG_OK, 6379},
        {"{\"i\":\"-12\"}", PLG_OK, -12},
        {"{\"i\":\"1e3\"}", PLG_OK, 1000},
        {"{\"i\":\"0x10\"}", PLG_ERR_CONFIG_TYPE, 0},
        {"{\"i\":\"+1\"}", PLG_ERR_CONFIG_TYPE, 0},
        {"{\"i\":\"007\"}", PLG_ERR_CONFIG_TYPE, 0},
        {"{\"i\":\"\"}", PLG_ERR_CONFIG_TYPE, 0},
        {"{\"i\":\"12abc\"}", PLG_ERR_CONFIG_TYPE, 0},
        {"{\"i\":\"99999999999999999999\"}", PLG_ERR_CONFIG_RANGE, 0},
        {"{\"i\":true}", PLG_ERR_CONFIG_TYPE, 0},
        {"{\"i\":{}}", PLG_ERR_CONFIG_TYPE, 0},
        {"{\"i\":[1]}", PLG_ERR_CONFIG_TYPE, 0},
    };
    size_t i;
    for (i = 0; i < COUNT_OF(cases); i++) {
        plg_config *c = NULL;
        plg_result r = parse_plain(cases[i].json, &c);
        if (cases[i].result == PLG_OK) {
            CHECK_INT(r, PLG_OK);
            CHECK_INT(plg_config_integer(c, "i"), cases[i].value);
            CHECK_INT(plg_config_is_set(c, "i"), 1);
        } else {
            CHECK_INT(r, PLG_ERR_CONFIG_INVALID);
            CHECK_INT(plg_config_problem_count(c), 1);
            if (plg_config_problem_count(c) == 1) {
                CHECK_INT(plg_config_problem_at(c, 0)->code, cases[i].result);
                CHECK_STR(plg_config_problem_at(c, 0)->key, "i");
                CHECK_INT(plg_config_problem_at(c, 0)->offset, 5);
            }
            CHECK_INT(plg_config_is_set(c, "i"), 0);
        }
        if (test_case_failed) {
            printf("    (case %s)\n", cases[i].json);
            break;
        }
        plg_config_destroy(c);
    }
}

TEST(test_integer_messages)
{
    plg_config *c = NULL;
    CHECK_INT(parse_plain("{\"i\":1.5}", &c), PLG_ERR_CONFIG_INVALID);
    CHECK_CONTAINS(plg_config_problem_at(c, 0)->message, "\"i\" must be an integer (got 1.5)");
    plg_config_destroy(c);
    c = NULL;
    CHECK_INT(parse_plain("{\"i\":\"abc\"}", &c), PLG_ERR_CONFIG_INVALID);
    CHECK_CONTAINS(plg_config_problem_at(c, 0)->message, "\"i\" must be an integer (got \"abc\")");
    plg_config_destroy(c);
    c = NULL;
    CHECK_INT(parse_plain("{\"i\":1e400}", &c), PLG_ERR_CONFIG_INVALID);
    CHECK_CONTAINS(plg_config_problem_at(c, 0)->message, "out of the range of a 64-bit integer");
    plg_config_destroy(c);
    c = NULL;
    CHECK_INT(parse_plain("{\"i\":{\"x\":1}}", &c), PLG_ERR_CONFIG_INVALID);
    CHECK_CONTAINS(plg_config_problem_at(c, 0)->message, "must be an integer, not an object");
    plg_config_destroy(c);
    c = NULL;
    CHECK_INT(parse_plain("{\"s\":[1,2]}", &c), PLG_ERR_CONFIG_INVALID);
    CHECK_CONTAINS(plg_config_problem_at(c, 0)->message, "must be a string, not an array");
    CHECK_INT(plg_config_problem_at(c, 0)->code, PLG_ERR_CONFIG_TYPE);
    plg_config_destroy(c);
}

TEST(test_boolean_forms)
{
    static const char *const yes[] = {"true", "TRUE", "True", "1", "yes", "YES", "on", "On", " on "};
    static const char *const no[] = {"false", "FALSE", "0", "no", "No", "off", "OFF"};
    static const char *const bad[] = {"", "maybe", "2", "y", "n", "t", "f", "truee", "10", "o"};
    char json[64];
    size_t i;
    plg_config *c = NULL;
    CHECK_INT(parse_plain("{\"b\":true}", &c), PLG_OK);
    CHECK_INT(plg_config_boolean(c, "b"), 1);
    plg_config_destroy(c);
    c = NULL;
    CHECK_INT(parse_plain("{\"b\":false}", &c), PLG_OK);
    CHECK_INT(plg_config_boolean(c, "b"), 0);
    CHECK_INT(plg_config_is_set(c, "b"), 1);
    plg_config_destroy(c);
    for (i = 0; i < COUNT_OF(yes); i++) {
        c = NULL;
        snprintf(json, sizeof json, "{\"b\":\"%s\"}", yes[i]);
        CHECK_INT(parse_plain(json, &c), PLG_OK);
        CHECK_INT(plg_config_boolean(c, "b"), 1);
        plg_config_destroy(c);
    }
    for (i = 0; i < COUNT_OF(no); i++) {
        c = NULL;
        snprintf(json, sizeof json, "{\"b\":\"%s\"}", no[i]);
        CHECK_INT(parse_plain(json, &c), PLG_OK);
        CHECK_INT(plg_config_boolean(c, "b"), 0);
        CHECK_INT(plg_config_is_set(c, "b"), 1);
        plg_config_destroy(c);
    }
    for (i = 0; i < COUNT_OF(bad); i++) {
        c = NULL;
        snprintf(json, sizeof json, "{\"b\":\"%s\"}", bad[i]);
        CHECK_INT(parse_plain(json, &c), PLG_ERR_CONFIG_INVALID);
        CHECK_INT(plg_config_problem_at(c, 0)->code, PLG_ERR_CONFIG_TYPE);
        CHECK_CONTAINS(plg_config_problem_at(c, 0)->message, "must be a boolean");
        plg_config_destroy(c);
    }
    /* JSON numbers are not booleans */
    c = NULL;
    CHECK_INT(parse_plain("{\"b\":1}", &c), PLG_ERR_CONFIG_INVALID);
    CHECK_INT(plg_config_problem_at(c, 0)->code, PLG_ERR_CONFIG_TYPE);
    plg_config_destroy(c);
}

TEST(test_number_forms)
{
    plg_config *c = NULL;
    CHECK_INT(parse_plain("{\"n\":2.5}", &c), PLG_OK);
    CHECK(plg_config_number(c, "n") == 2.5);
    plg_config_destroy(c);
    c = NULL;
    CHECK_INT(parse_plain("{\"n\":\"2.5\"}", &c), PLG_OK);
    CHECK(plg_config_number(c, "n") == 2.5);
    plg_config_destroy(c);
    c = NULL;
    CHECK_INT(parse_plain("{\"n\":-1.25E-3}", &c), PLG_OK);
    CHECK(plg_config_number(c, "n") == -1.25e-3);
    plg_config_destroy(c);
    c = NULL;
    CHECK_INT(parse_plain("{\"n\":0.1}", &c), PLG_OK);
    CHECK(plg_config_number(c, "n") == 0.1);
    plg_config_destroy(c);
    c = NULL;
    CHECK_INT(parse_plain("{\"n\":1.7976931348623157e308}", &c), PLG_OK);
    CHECK(plg_config_number(c, "n") == 1.7976931348623157e308);
    plg_config_destroy(c);
    c = NULL;
    CHECK_INT(parse_plain("{\"n\":1e-400}", &c), PLG_OK); /* underflows to zero: finite */
    CHECK(plg_config_number(c, "n") == 0.0);
    plg_config_destroy(c);
    c = NULL;
    CHECK_INT(parse_plain("{\"n\":0.000000000000000000000000000000000000001e39}", &c), PLG_OK);
    CHECK(plg_config_number(c, "n") == 1.0);
    plg_config_destroy(c);
    c = NULL;
    CHECK_INT(parse_plain("{\"n\":-0}", &c), PLG_OK);
    CHECK(plg_config_number(c, "n") == 0.0);
    plg_config_destroy(c);
    c = NULL;
    CHECK_INT(parse_plain("{\"n\":1e309}", &c), PLG_ERR_CONFIG_INVALID);
    CHECK_INT(plg_config_problem_at(c, 0)->code, PLG_ERR_CONFIG_RANGE);
    CHECK_CONTAINS(plg_config_problem_at(c, 0)->message, "finite");
    plg_config_destroy(c);
    c = NULL;
    CHECK_INT(parse_plain("{\"n\":\"-1e999\"}", &c), PLG_ERR_CONFIG_INVALID);
    CHECK_INT(plg_config_problem_at(c, 0)->code, PLG_ERR_CONFIG_RANGE);
    plg_config_destroy(c);
    c = NULL;
    CHECK_INT(parse_plain("{\"n\":\"nan\"}", &c), PLG_ERR_CONFIG_INVALID);
    CHECK_INT(plg_config_problem_at(c, 0)->code, PLG_ERR_CONFIG_TYPE);
    CHECK_CONTAINS(plg_config_problem_at(c, 0)->message, "must be a number");
    plg_config_destroy(c);
    c = NULL;
    CHECK_INT(parse_plain("{\"n\":\"inf\"}", &c), PLG_ERR_CONFIG_INVALID);
    plg_config_destroy(c);
    c = NULL;
    CHECK_INT(parse_plain("{\"n\":\"1,5\"}", &c), PLG_ERR_CONFIG_INVALID);
    plg_config_destroy(c);
    c = NULL;
    CHECK_INT(parse_plain("{\"n\":true}", &c), PLG_ERR_CONFIG_INVALID);
    CHECK_INT(plg_config_problem_at(c, 0)->code, PLG_ERR_CONFIG_TYPE);
    plg_config_destroy(c);
}

struct dur_case {
    const char *text;
    plg_result result;
    int64_t ms;
};

TEST(test_duration_forms)
{
    static const struct dur_case cases[] = {
        {"250ms", PLG_OK, 250},
        {"1.5s", PLG_OK, 1500},
        {"2m", PLG_OK, 120000},
        {"1h30m", PLG_OK, 5400000},
        {"1d", PLG_OK, 86400000},
        {"0.5m", PLG_OK, 30000},
        {"1h1m1s1ms", PLG_OK, 3661001},
        {"0s", PLG_OK, 0},
        {"0.001s", PLG_OK, 1},
        {"1.50s", PLG_OK, 1500},
        {"0.25h", PLG_OK, 900000},
        {"1500", PLG_OK, 1500},
        {"1e3", PLG_OK, 1000},
        {" 5s ", PLG_OK, 5000},
        {"106751991167d", PLG_OK, INT64_C(9223372036828800000)},
        {"9223372036854775807ms", PLG_OK, INT64_MAX},
        {"9223372036854775807", PLG_OK, INT64_MAX},
        {"1.0005s", PLG_ERR_CONFIG_TYPE, 0},
        {"1.5ms", PLG_ERR_CONFIG_TYPE, 0},
        {"1.5", PLG_ERR_CONFIG_TYPE, 0},
        {"0.0000000000000001d", PLG_ERR_CONFIG_TYPE, 0},
        {"-5s", PLG_ERR_CONFIG_RANGE, 0},
        {"-5", PLG_ERR_CONFIG_RANGE, 0},
        {"5", PLG_OK, 5},
        {"5x", PLG_ERR_CONFIG_TYPE, 0},
        {"5S", PLG_ERR_CONFIG_TYPE, 0},
        {"s", PLG_ERR_CONFIG_TYPE, 0},
        {"", PLG_ERR_CONFIG_TYPE, 0},
        {"1h 30m", PLG_ERR_CONFIG_TYPE, 0},
        {".5s", PLG_ERR_CONFIG_TYPE, 0},
        {"1.s", PLG_ERR_CONFIG_TYPE, 0},
        {"1hh", PLG_ERR_CONFIG_TYPE, 0},
        {"106751991168d", PLG_ERR_CONFIG_RANGE, 0},
        {"9223372036854775808ms", PLG_ERR_CONFIG_RANGE, 0},
        {"9223372036854775807ms1ms", PLG_ERR_CONFIG_RANGE, 0},
        {"99999999999999999999999s", PLG_ERR_CONFIG_RANGE, 0},
        {"1e30", PLG_ERR_CONFIG_RANGE, 0},
    };
    char json[128];
    size_t i;
    for (i = 0; i < COUNT_OF(cases); i++) {
        plg_config *c = NULL;
        plg_result r;
        snprintf(json, sizeof json, "{\"d\":\"%s\"}", cases[i].text);
        r = parse_plain(json, &c);
        if (cases[i].result == PLG_OK) {
            CHECK_INT(r, PLG_OK);
            CHECK_INT(plg_config_duration_ms(c, "d"), cases[i].ms);
        } else {
            CHECK_INT(r, PLG_ERR_CONFIG_INVALID);
            if (plg_config_problem_count(c) == 1)
                CHECK_INT(plg_config_problem_at(c, 0)->code, cases[i].result);
            else
                CHECK_INT(plg_config_problem_count(c), 1);
        }
        plg_config_destroy(c);
        if (test_case_failed) {
            printf("    (case \"%s\")\n", cases[i].text);
            return;
        }
    }
}

TEST(test_duration_json_numbers)
{
    plg_config *c = NULL;
    CHECK_INT(parse_plain("{\"d\":1500}", &c), PLG_OK);
    CHECK_INT(plg_config_duration_ms(c, "d"), 1500);
    plg_config_destroy(c);
    c = NULL;
    CHECK_INT(parse_plain("{\"d\":1.5e3}", &c), PLG_OK);
    CHECK_INT(plg_config_duration_ms(c, "d"), 1500);
    plg_config_destroy(c);
    c = NULL;
    CHECK_INT(parse_plain("{\"d\":-5}", &c), PLG_ERR_CONFIG_INVALID);
    CHECK_INT(plg_config_problem_at(c, 0)->code, PLG_ERR_CONFIG_RANGE);
    CHECK_CONTAINS(plg_config_problem_at(c, 0)->message, "\"d\" must not be negative (got -5)");
    plg_config_destroy(c);
    c = NULL;
    CHECK_INT(parse_plain("{\"d\":1.5}", &c), PLG_ERR_CONFIG_INVALID);
    CHECK_INT(plg_config_problem_at(c, 0)->code, PLG_ERR_CONFIG_TYPE);
    CHECK_CONTAINS(plg_config_problem_at(c, 0)->message, "whole number of milliseconds");
    plg_config_destroy(c);
    c = NULL;
    CHECK_INT(parse_plain("{\"d\":\"1.0005s\"}", &c), PLG_ERR_CONFIG_INVALID);
    CHECK_CONTAINS(plg_config_problem_at(c, 0)->message, "whole number of milliseconds");
    plg_config_destroy(c);
    c = NULL;
    CHECK_INT(parse_plain("{\"d\":\"soon\"}", &c), PLG_ERR_CONFIG_INVALID);
    CHECK_CONTAINS(plg_config_problem_at(c, 0)->message,
                   "must be a duration such as \"250ms\", \"1.5s\" or \"1h30m\"");
    CHECK_CONTAINS(plg_config_problem_at(c, 0)->message, "(got \"soon\")");
    plg_config_destroy(c);
    c = NULL;
    CHECK_INT(parse_plain("{\"d\":1e19}", &c), PLG_ERR_CONFIG_INVALID);
    CHECK_INT(plg_config_problem_at(c, 0)->code, PLG_ERR_CONFIG_RANGE);
    plg_config_destroy(c);
    c = NULL;
    CHECK_INT(parse_plain("{\"d\":false}", &c), PLG_ERR_CONFIG_INVALID);
    CHECK_INT(plg_config_problem_at(c, 0)->code, PLG_ERR_CONFIG_TYPE);
    plg_config_destroy(c);
}

TEST(test_string_values)
{
    plg_config *c = NULL;
    plg_config_value v;
    CHECK_INT(parse_plain("{\"s\":\"a\\u0000b\"}", &c), PLG_OK);
    CHECK_INT(plg_config_get(c, "s", &v), PLG_OK);
    CHECK_INT(v.string_len, 3);
    CHECK(v.string != NULL && memcmp(v.string, "a\0b", 4) == 0);
    plg_config_destroy(c);
    c = NULL;
    CHECK_INT(parse_plain("{\"s\":\"\"}", &c), PLG_OK);
    CHECK_STR(plg_config_string(c, "s"), "");
    CHECK_INT(plg_config_is_set(c, "s"), 1);
    plg_config_destroy(c);
    c = NULL;
    CHECK_INT(parse_plain("{\"s\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}", &c), PLG_OK);
    CHECK_STR(plg_config_string(c, "s"), "\"\\/\b\f\n\r\t");
    plg_config_destroy(c);
    c = NULL;
    CHECK_INT(parse_plain("{\"s\":\"\\u00e9\\u20AC\\ud83d\\ude00\\uDBFF\\uDFFF\\u0041\"}", &c),
              PLG_OK);
    CHECK_STR(plg_config_string(c, "s"),
              "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\xF4\x8F\xBF\xBF"
              "A");
    plg_config_destroy(c);
    c = NULL;
    CHECK_INT(parse_plain("{\"s\":\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\xED\x9F\xBF\xEE\x80\x80"
                          "\xF4\x8F\xBF\xBF\xEF\xBF\xBF\"}",
                          &c),
              PLG_OK);
    CHECK_STR(plg_config_string(c, "s"), "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\xED\x9F\xBF\xEE\x80"
                                         "\x80\xF4\x8F\xBF\xBF\xEF\xBF\xBF");
    plg_config_destroy(c);
    /* numbers and booleans are not strings */
    c = NULL;
    CHECK_INT(parse_plain("{\"s\":123}", &c), PLG_ERR_CONFIG_INVALID);
    CHECK_INT(plg_config_problem_at(c, 0)->code, PLG_ERR_CONFIG_TYPE);
    CHECK_CONTAINS(plg_config_problem_at(c, 0)->message, "\"s\" must be a string (got 123)");
    plg_config_destroy(c);
    c = NULL;
    CHECK_INT(parse_plain("{\"s\":true}", &c), PLG_ERR_CONFIG_INVALID);
    CHECK_INT(plg_config_problem_at(c, 0)->code, PLG_ERR_CONFIG_TYPE);
    plg_config_destroy(c);
    /* strings keep their spaces */
    c = NULL;
    CHECK_INT(parse_plain("{\"s\":\"  x  \"}", &c), PLG_OK);
    CHECK_STR(plg_config_string(c, "s"), "  x  ");
    plg_config_destroy(c);
}

struct syntax_case {
    const char *json;
    size_t offset;
    const char *fragment;
    const char *key;
};

TEST(test_syntax_errors)
{
    static const struct syntax_case cases[] = {
        {"{\"port\" 1}", 8, "expected ':' after object key \"port\", found '1'", "port"},
        {"{\"a\":1,}", 7, "trailing comma before '}' is not allowed", ""},
        {"{\"a\":[1,]}", 8, "trailing comma before ']' is not allowed", "a"},
        {"{\"a\":{\"b\":1,}}", 12, "trailing comma before '}'", "a"},
        {"{\"a\":1 // c\n}", 7, "comments are not allowed", "a"},
        {"{\"a\":1 /* c */}", 7, "comments are not allowed", "a"},
        {"/* c */{}", 0, "comments are not allowed", ""},
        {"{}// c", 2, "comments are not allowed", ""},
        {"{\"a\":01}", 6, "leading zeros are not allowed", "a"},
        {"{\"a\":-01}", 7, "leading zeros are not allowed", "a"},
        {"{\"a\":-}", 6, "expected a digit after '-', found '}'", "a"},
        {"{\"a\":1.}", 7, "expected a digit after the decimal point", "a"},
        {"{\"a\":1.e5}", 7, "expected a digit after the decimal point", "a"},
        {"{\"a\":1e}", 7, "expected a digit in the exponent", "a"},
        {"{\"a\":1e+}", 8, "expected a digit in the exponent", "a"},
        {"{\"a\":.5}", 5, "expected a value for key \"a\", found '.'", "a"},
        {"{\"a\":+1}", 5, "expected a value for key \"a\", found '+'", "a"},
        {"{\"a\":tru}", 8, "invalid literal: expected true, found '}'", "a"},
        {"{\"a\":nul}", 8, "invalid literal: expected null", "a"},
        {"{\"a\":fals", 9, "invalid literal: expected false, found end of input", "a"},
        {"{\"a\":True}", 5, "expected a value for key \"a\", found 'T'", "a"},
        {"{\"a\":NaN}", 5, "expected a value", "a"},
        {"{\"a\":-Infinity}", 6, "expected a digit after '-'", "a"},
        {"{\"a\":0x10}", 6, "expected ',' or '}' after the value of key \"a\", found 'x'", "a"},
        {"{\"a\":\"x", 7, "unterminated string", "a"},
        {"{\"a\":\"x\\", 8, "unterminated string", "a"},
        {"{\"a", 3, "unterminated string", ""},
        {"{\"a\":\"\\x\"}", 6, "invalid escape sequence '\\x'", "a"},
        {"{\"a\":\"\\'\"}", 6, "invalid escape sequence", "a"},
        {"{\"a\":\"\\u12G4\"}", 6, "invalid \\u escape: expected four hex digits", "a"},
        {"{\"a\":\"\\u12\"}", 6, "invalid \\u escape", "a"},
        {"{\"a\":\"\\uDC00\"}", 6, "unpaired surrogate \\uDC00", "a"},
        {"{\"a\":\"\\uD800\\u0041\"}", 6, "unpaired surrogate \\uD800", "a"},
        {"{\"a\":\"\\uD800\"}", 6, "unpaired surrogate", "a"},
        {"{\"a\":\"\\uD800\\uD800\"}", 6, "unpaired surrogate", "a"},
        {"{\"a\":\"x\\uDBFF\\n\"}", 7, "unpaired surrogate \\uDBFF", "a"},
        {"{\"a\":\"x\ty\"}", 7, "control character 0x09 in a string", "a"},
        {"{\"a\":\"x\ny\"}", 7, "control character 0x0a", "a"},
        {"{\"a\":\"\x1f\"}", 6, "control character 0x1f", "a"},
        {"{\"a\":1} x", 8, "unexpected 'x' after the configuration object", ""},
        {"{\"a\":1}}", 7, "unexpected '}' after the configuration object", ""},
        {"{} {}", 3, "unexpected '{' after", ""},
        {"[]", 0, "the configuration must be a JSON object: expected '{', found '['", ""},
        {"\"a\"", 0, "must be a JSON object", ""},
        {"  42", 2, "must be a JSON object", ""},
        {"null", 0, "must be a JSON object", ""},
        {"{'a':1}", 1, "expected an object key (a string in double quotes), found '''", ""},
        {"{a:1}", 1, "expected an object key", ""},
        {"{\"a\":1 \"b\":2}", 7, "expected ',' or '}' after the value of key \"a\", found '\"'", "a"},
        {"{\"a\"", 4, "expected ':' after object key \"a\", found end of input", "a"},
        {"{\"a\":", 5, "expected a value for key \"a\", found end of input", "a"},
        {"{\"a\": ", 6, "found end of input", "a"},
        {"{", 1, "expected an object key (a string in double quotes), found end of input", ""},
        {"{\"a\":1", 6, "expected ',' or '}' after the value of key \"a\", found end of input", "a"},
        {"{\"a\":1,,\"b\":2}", 7, "expected an object key", ""},
        {"{,}", 1, "expected an object key", ""},
        {"\xEF\xBB\xBF{}", 0, "byte order mark", ""},
        {"{\"a\":{\"b\" 1}}", 10, "expected ':' after an object key", "a"},
        {"{\"a\":[1 2]}", 8, "expected ',' or ']' in an array", "a"},
        {"{\"a\":{\"b\":1 \"c\":2}}", 12, "expected ',' or '}' in an object", "a"},
        {"{\"a\":{1:2}}", 6, "expected an object key", "a"},
        {"{\"a\":[}", 6, "expected a value, found '}'", "a"},
        {"{\"a\":[\"\\q\"]}", 7, "invalid escape", "a"},
        {"{\"\\q\":1}", 2, "invalid escape", ""},
        {"{\"a\":1,\"b\"}", 10, "expected ':' after object key \"b\", found '}'", "b"},
        {"{\"a\"\x01:1}", 4, "found byte 0x01", "a"},
        {"{\"a\":\x7f}", 5, "found byte 0x7f", "a"},
        {"{\"a\" :\v1}", 6, "found byte 0x0b", "a"},
        {"{\"a\":\"\xC3\x28\"}", 6, "invalid UTF-8", "a"},
        {"{\"a\":[1,", 8, "expected a value, found end of input", "a"},
        {"{\"a\":{\"\\q\":1}}", 7, "invalid escape", "a"},
        {"{\"a\":\"\\\x01\"}", 6, "invalid escape sequence (valid are", "a"},
        {"{\"a\":tr ue}", 7, "invalid literal: expected true, found a space", "a"},
    };
    size_t i;
    for (i = 0; i < COUNT_OF(cases); i++) {
        plg_config *c = NULL;
        const plg_config_problem *p;
        char prefix[64];
        plg_result r = plg_config_parse_json(NULL, plain, NPLAIN, cases[i].json, 0, &c);
        CHECK_INT(r, PLG_ERR_CONFIG_SYNTAX);
        CHECK(c != NULL);
        CHECK_INT(plg_config_problem_count(c), 1);
        p = plg_config_problem_at(c, 0);
        CHECK(p != NULL);
        if (p != NULL) {
            CHECK_INT(p->code, PLG_ERR_CONFIG_SYNTAX);
            CHECK_INT(p->is_warning, 0);
            CHECK_INT(p->offset, cases[i].offset);
            snprintf(prefix, sizeof prefix, "malformed JSON at byte %lu: ",
                     (unsigned long)cases[i].offset);
            CHECK(strncmp(p->message, prefix, strlen(prefix)) == 0);
            CHECK_CONTAINS(p->message, cases[i].fragment);
            CHECK_STR(p->key, cases[i].key);
        }
        /* nothing is kept from a malformed text */
        CHECK_INT(plg_config_is_set(c, "a"), 0);
        if (test_case_failed) {
            printf("    (case %lu: %s -> %s)\n", (unsigned long)i, cases[i].json,
                   p != NULL ? p->message : "no problem");
            plg_config_destroy(c);
            return;
        }
        plg_config_destroy(c);
    }
}

TEST(test_syntax_error_discards_other_problems)
{
    plg_config *c = NULL;
    /* an unknown key, a type error and a missing key come first, then a syntax error */
    plg_result r = plg_config_parse_json(NULL, schema, NKEYS,
                                         "{\"adr\":1,\"port\":\"x\",\"debug\":tru}", 0, &c);
    CHECK_INT(r, PLG_ERR_CONFIG_SYNTAX);
    CHECK_INT(plg_config_problem_count(c), 1);
    CHECK_INT(plg_config_problem_at(c, 0)->code, PLG_ERR_CONFIG_SYNTAX);
    CHECK_INT(plg_config_problem_at(c, 0)->offset, 31);
    CHECK_STR(plg_config_problem_at(c, 0)->key, "debug");
    /* no defaults on a malformed text */
    CHECK_INT(plg_config_is_set(c, "port"), 0);
    plg_config_destroy(c);
}

TEST(test_valid_json_shapes)
{
    static const char *const ok[] = {
        "{\"a\" : 1 , \"b\" : 2 }",
        "\r\n\t {\"x\":{\"y\":[1,-2.5e-3,true,false,null,\"s\",{},[]]}}\n",
        "{\"x\":[[[[]]]],\"y\":{\"z\":{}}}",
        "{\"x\":\"\\u0000\\u001f\\/\"}",
        "{\"x\":0,\"y\":-0,\"z\":0.0e0,\"w\":1E-0}",
        "{\"\":1}",
        "{\"x\":\"\xF0\x90\x80\x80\"}",
    };
    size_t i;
    for (i = 0; i < COUNT_OF(ok); i++) {
        plg_config *c = NULL;
        CHECK_INT(plg_config_parse_json(NULL, NULL, 0, ok[i], PLG_CONFIG_LENIENT, &c), PLG_OK);
        CHECK_INT(error_count(c), 0);
        plg_config_destroy(c);
        if (test_case_failed) {
            printf("    (case %s)\n", ok[i]);
            return;
        }
    }
}

TEST(test_utf8_validation)
{
    static const char *const bad[] = {
        "\xC0\x80",         "\xC1\xBF",         "\xE0\x80\x80", "\xE0\x9F\xBF",
        "\xED\xA0\x80",     "\xED\xBF\xBF",     "\xF0\x80\x80\x80", "\xF0\x8F\xBF\xBF",
        "\xF4\x90\x80\x80", "\xF5\x80\x80\x80", "\xFF",         "\xFE",
        "\x80",             "\xBF",             "\xC3",         "\xE2\x82",
        "\xF0\x9F\x98",     "\xC3\xC3\xA9",     "\xE2\x28\xA1", "\xF8\x88\x80\x80\x80",
    };
    static const char *const good[] = {
        "\xC2\x80",         "\xDF\xBF",     "\xE0\xA0\x80", "\xED\x9F\xBF",
        "\xEE\x80\x80",     "\xEF\xBF\xBF", "\xF0\x90\x80\x80", "\xF4\x8F\xBF\xBF",
        "\xF3\xBF\xBF\xBF", "\x7F",
    };
    char json[64];
    size_t i;
    for (i = 0; i < COUNT_OF(bad); i++) {
        plg_config *c = NULL;
        snprintf(json, sizeof json, "{\"s\":\"ab%s\"}", bad[i]);
        CHECK_INT(parse_plain(json, &c), PLG_ERR_CONFIG_SYNTAX);
        if (plg_config_problem_count(c) == 1) {
            CHECK_INT(plg_config_problem_at(c, 0)->offset, 8);
            CHECK_CONTAINS(plg_config_problem_at(c, 0)->message, "invalid UTF-8");
        }
        plg_config_destroy(c);
        /* in a key too */
        c = NULL;
        snprintf(json, sizeof json, "{\"k%s\":1}", bad[i]);
        CHECK_INT(parse_plain(json, &c), PLG_ERR_CONFIG_SYNTAX);
        if (plg_config_problem_count(c) == 1)
            CHECK_INT(plg_config_problem_at(c, 0)->offset, 3);
        plg_config_destroy(c);
        if (test_case_failed) {
            printf("    (bad case %lu)\n", (unsigned long)i);
            return;
        }
    }
    for (i = 0; i < COUNT_OF(good); i++) {
        plg_config *c = NULL;
        char expect[16];
        snprintf(json, sizeof json, "{\"s\":\"%s\"}", good[i]);
        snprintf(expect, sizeof expect, "%s", good[i]);
        CHECK_INT(parse_plain(json, &c), PLG_OK);
        CHECK_STR(plg_config_string(c, "s"), expect);
        plg_config_destroy(c);
        if (test_case_failed) {
            printf("    (good case %lu)\n", (unsigned long)i);
            return;
        }
    }
}

/* "{\"x\":" + depth-1 '[' ... ']' + "}": nesting of `depth` levels counting the object. */
static char *nested(int depth, char open, char close)
{
    size_t n = 6 + 2 * (size_t)depth + 2, o = 0;
    int i;
    char *s = (char *)malloc(n);
    memcpy(s, "{\"x\":", 5);
    o = 5;
    for (i = 1; i < depth; i++)
        s[o++] = open;
    if (open == '{' && depth > 1) {
        /* objects need members: use {"":{"":...{}}} */
        free(s);
        n = 8 + 6 * (size_t)depth;
        s = (char *)malloc(n);
        memcpy(s, "{\"x\":", 5);
        o = 5;
        for (i = 1; i < depth - 1; i++) {
            memcpy(s + o, "{\"\":", 4);
            o += 4;
        }
        s[o++] = '{';
        for (i = 1; i < depth; i++)
            s[o++] = '}';
        s[o++] = '}';
        s[o] = '\0';
        return s;
    }
    for (i = 1; i < depth; i++)
        s[o++] = close;
    s[o++] = '}';
    s[o] = '\0';
    return s;
}

TEST(test_depth_limit)
{
    plg_config *c = NULL;
    char *s = nested(64, '[', ']');
    CHECK_INT(plg_config_parse_json(NULL, NULL, 0, s, PLG_CONFIG_LENIENT, &c), PLG_OK);
    plg_config_destroy(c);
    free(s);
    c = NULL;
    s = nested(65, '[', ']');
    CHECK_INT(plg_config_parse_json(NULL, NULL, 0, s, PLG_CONFIG_LENIENT, &c),
              PLG_ERR_CONFIG_SYNTAX);
    CHECK_INT(plg_config_problem_count(c), 1);
    if (plg_config_problem_count(c) == 1) {
        /* the 65th level opens at byte 5 + 63 */
        CHECK_INT(plg_config_problem_at(c, 0)->offset, 68);
        CHECK_CONTAINS(plg_config_problem_at(c, 0)->message, "nesting deeper than 64 levels");
        CHECK_STR(plg_config_problem_at(c, 0)->key, "x");
    }
    plg_config_destroy(c);
    free(s);
    c = NULL;
    s = nested(64, '{', '}');
    CHECK_INT(plg_config_parse_json(NULL, NULL, 0, s, PLG_CONFIG_LENIENT, &c), PLG_OK);
    plg_config_destroy(c);
    free(s);
    c = NULL;
    s = nested(65, '{', '}');
    CHECK_INT(plg_config_parse_json(NULL, NULL, 0, s, PLG_CONFIG_LENIENT, &c),
              PLG_ERR_CONFIG_SYNTAX);
    CHECK_CONTAINS(plg_config_problem_at(c, 0)->message, "nesting deeper than 64 levels");
    plg_config_destroy(c);
    free(s);
    /* a very deep text fails without exhausting the stack */
    {
        size_t n = 200000, i;
        char *deep = (char *)malloc(n + 8);
        memcpy(deep, "{\"x\":", 5);
        for (i = 5; i < n; i++)
            deep[i] = '[';
        deep[n] = '\0';
        c = NULL;
        CHECK_INT(plg_config_parse_json(NULL, NULL, 0, deep, PLG_CONFIG_LENIENT, &c),
                  PLG_ERR_CONFIG_SYNTAX);
        CHECK_CONTAINS(plg_config_problem_at(c, 0)->message, "longer than the limit");
        plg_config_destroy(c);
        deep[60000] = '\0';
        c = NULL;
        CHECK_INT(plg_config_parse_json(NULL, NULL, 0, deep, PLG_CONFIG_LENIENT, &c),
                  PLG_ERR_CONFIG_SYNTAX);
        CHECK_CONTAINS(plg_config_problem_at(c, 0)->message, "nesting deeper");
        plg_config_destroy(c);
        free(deep);
    }
}

TEST(test_size_limit)
{
    size_t n = 65536, i;
    char *s = (char *)malloc(n + 2);
    plg_config *c = NULL;
    /* exactly the limit: {"s":"xxx...x"} */
    memcpy(s, "{\"s\":\"", 6);
    for (i = 6; i < n - 2; i++)
        s[i] = 'x';
    s[n - 2] = '"';
    s[n - 1] = '}';
    s[n] = '\0';
    CHECK_INT(parse_plain(s, &c), PLG_OK);
    CHECK_INT(strlen(plg_config_string(c, "s")), n - 8);
    plg_config_destroy(c);
    /* one byte more */
    s[n] = ' ';
    s[n + 1] = '\0';
    c = NULL;
    CHECK_INT(parse_plain(s, &c), PLG_ERR_CONFIG_SYNTAX);
    CHECK_INT(plg_config_problem_count(c), 1);
    if (plg_config_problem_count(c) == 1) {
        CHECK_INT(plg_config_problem_at(c, 0)->code, PLG_ERR_CONFIG_SYNTAX);
        CHECK_CONTAINS(plg_config_problem_at(c, 0)->message, "65536");
        CHECK_STR(plg_config_problem_at(c, 0)->key, "");
        CHECK(plg_config_problem_at(c, 0)->offset == PLG_NO_OFFSET);
    }
    plg_config_destroy(c);
    free(s);
}

TEST(test_unknown_keys_lenient_and_strict)
{
    plg_config *c = NULL;
    const plg_config_problem *p;
    /* lenient: a warning, the result is OK */
    CHECK_INT(plg_config_parse_json(NULL, schema, NKEYS, "{\"addr\":\"a\",\"adr\":\"b\"}",
                                    PLG_CONFIG_LENIENT, &c),
              PLG_OK);
    CHECK_INT(plg_config_problem_count(c), 1);
    p = plg_config_problem_at(c, 0);
    CHECK_INT(p->code, PLG_ERR_CONFIG_UNKNOWN_KEY);
    CHECK_INT(p->is_warning, 1);
    CHECK_STR(p->key, "adr");
    CHECK_INT(p->offset, 12);
    CHECK_STR(p->message, "unknown key \"adr\" (did you mean \"addr\"?)");
    CHECK_STR(plg_config_string(c, "addr"), "a");
    plg_config_destroy(c);
    /* a NULL registry and flags 0 are lenient */
    c = NULL;
    CHECK_INT(plg_config_parse_json(NULL, schema, NKEYS, "{\"addr\":\"a\",\"adr\":\"b\"}", 0, &c),
              PLG_OK);
    CHECK_INT(plg_config_problem_at(c, 0)->is_warning, 1);
    plg_config_destroy(c);
    /* strict: an error */
    c = NULL;
    CHECK_INT(plg_config_parse_json(NULL, schema, NKEYS, "{\"addr\":\"a\",\"adr\":\"b\"}",
                                    PLG_CONFIG_STRICT, &c),
              PLG_ERR_CONFIG_INVALID);
    CHECK_INT(plg_config_problem_count(c), 1);
    CHECK_INT(plg_config_problem_at(c, 0)->is_warning, 0);
    CHECK_INT(plg_config_problem_at(c, 0)->code, PLG_ERR_CONFIG_UNKNOWN_KEY);
    plg_config_destroy(c);
}

struct hint_case {
    const char *given;
    const char *hint; /* NULL: no hint */
};

TEST(test_did_you_mean)
{
    static const struct hint_case cases[] = {
        {"adr", "addr"},       {"adddr", "addr"},     {"ADDR", "addr"},    {"Port", "port"},
        {"prot", "port"},      {"timout", "timeout"}, {"timeuot", "timeout"}, {"pasword", "password"},
        {"passwrd", "password"}, {"debgu", "debug"},  {"xyz", NULL},       {"a", NULL},
        {"completely_different", NULL}, {"modes", "mode"}, {"tokens", "token"},
        {"timeout_ms", "timeout"}, {"colour", NULL},
    };
    size_t i;
    for (i = 0; i < COUNT_OF(cases); i++) {
        plg_config *c = NULL;
        char json[128], expect[128];
        snprintf(json, sizeof json, "{\"addr\":\"a\",\"%s\":1}", cases[i].given);
        CHECK_INT(plg_config_parse_json(NULL, schema, NKEYS, json, 0, &c), PLG_OK);
        CHECK_INT(plg_config_problem_count(c), 1);
        if (cases[i].hint != NULL)
            snprintf(expect, sizeof expect, "unknown key \"%s\" (did you mean \"%s\"?)",
                     cases[i].given, cases[i].hint);
        else
            snprintf(expect, sizeof expect, "unknown key \"%s\"", cases[i].given);
        if (plg_config_problem_count(c) == 1)
            CHECK_STR(plg_config_problem_at(c, 0)->message, expect);
        plg_config_destroy(c);
        if (test_case_failed) {
            printf("    (case %s)\n", cases[i].given);
            return;
        }
    }
}

TEST(test_duplicate_keys)
{
    plg_config *c = NULL;
    const plg_config_problem *p;
    CHECK_INT(plg_config_parse_json(NULL, schema, NKEYS,
                                    "{\"addr\":\"a\",\"port\":1,\"port\":2}", 0, &c),
              PLG_ERR_CONFIG_INVALID);
    CHECK_INT(plg_config_problem_count(c), 1);
    p = plg_config_problem_at(c, 0);
    CHECK_INT(p->code, PLG_ERR_CONFIG_DUPLICATE_KEY);
    CHECK_STR(p->key, "port");
    CHECK_INT(p->offset, 21);
    CHECK_STR(p->message, "key \"port\" is given twice (first at byte 12)");
    CHECK_INT(plg_config_integer(c, "port"), 1); /* the first stays */
    plg_config_destroy(c);
    /* null counts as given */
    c = NULL;
    CHECK_INT(plg_config_parse_json(NULL, schema, NKEYS,
                                    "{\"addr\":\"a\",\"port\":null,\"port\":2}", 0, &c),
              PLG_ERR_CONFIG_INVALID);
    CHECK_INT(plg_config_problem_at(c, 0)->code, PLG_ERR_CONFIG_DUPLICATE_KEY);
    plg_config_destroy(c);
    /* unknown keys given twice: one unknown warning, then a duplicate error */
    c = NULL;
    CHECK_INT(plg_config_parse_json(NULL, schema, NKEYS,
                                    "{\"addr\":\"a\",\"zz\":1,\"zz\":2,\"zz\":3}", 0, &c),
              PLG_ERR_CONFIG_INVALID);
    CHECK_INT(plg_config_problem_count(c), 3);
    if (plg_config_problem_count(c) == 3) {
        CHECK_INT(plg_config_problem_at(c, 0)->code, PLG_ERR_CONFIG_UNKNOWN_KEY);
        CHECK_INT(plg_config_problem_at(c, 0)->is_warning, 1);
        CHECK_INT(plg_config_problem_at(c, 1)->code, PLG_ERR_CONFIG_DUPLICATE_KEY);
        CHECK_INT(plg_config_problem_at(c, 1)->offset, 19);
        CHECK_CONTAINS(plg_config_problem_at(c, 1)->message, "first at byte 12");
        CHECK_INT(plg_config_problem_at(c, 2)->code, PLG_ERR_CONFIG_DUPLICATE_KEY);
    }
    plg_config_destroy(c);
    /* keys that differ only after a NUL are different keys */
    c = NULL;
    CHECK_INT(plg_config_parse_json(NULL, NULL, 0, "{\"a\":1,\"a\\u0000\":2,\"a\\u0000b\":3}",
                                    PLG_CONFIG_LENIENT, &c),
              PLG_OK);
    CHECK_INT(plg_config_problem_count(c), 3);
    plg_config_destroy(c);
    /* escapes are decoded before comparing: "\u0061" is "a" */
    c = NULL;
    CHECK_INT(parse_plain("{\"i\":1,\"\\u0069\":2}", &c), PLG_ERR_CONFIG_INVALID);
    CHECK_INT(plg_config_problem_at(c, 0)->code, PLG_ERR_CONFIG_DUPLICATE_KEY);
    plg_config_destroy(c);
    /* keys match case-sensitively */
    c = NULL;
    CHECK_INT(parse_plain("{\"I\":1}", &c), PLG_ERR_CONFIG_INVALID);
    CHECK_INT(plg_config_problem_at(c, 0)->code, PLG_ERR_CONFIG_UNKNOWN_KEY);
    plg_config_destroy(c);
}

TEST(test_bounds)
{
    plg_config *c = NULL;
    const plg_config_problem *p;
    CHECK_INT(plg_config_parse_json(NULL, schema, NKEYS, "{\"addr\":\"a\",\"port\":65536}", 0, &c),
              PLG_ERR_CONFIG_INVALID);
    p = plg_config_problem_at(c, 0);
    CHECK_INT(p->code, PLG_ERR_CONFIG_RANGE);
    CHECK_STR(p->key, "port");
    CHECK_INT(p->offset, 19);
    CHECK_STR(p->message, "\"port\" must be at most 65535 (got 65536)");
    CHECK_INT(plg_config_is_set(c, "port"), 0);
    plg_config_destroy(c);
    c = NULL;
    CHECK_INT(plg_config_parse_json(NULL, schema, NKEYS, "{\"addr\":\"a\",\"port\":\"0\"}", 0, &c),
              PLG_ERR_CONFIG_INVALID);
    CHECK_STR(plg_config_problem_at(c, 0)->message, "\"port\" must be at least 1 (got \"0\")");
    plg_config_destroy(c);
    /* inclusive bounds */
    c = NULL;
    CHECK_INT(plg_config_parse_json(NULL, schema, NKEYS,
                                    "{\"addr\":\"a\",\"port\":65535,\"ratio\":1,\"timeout\":\"1h\"}",
                                    0, &c),
              PLG_OK);
    plg_config_destroy(c);
    c = NULL;
    CHECK_INT(plg_config_parse_json(NULL, schema, NKEYS,
                                    "{\"addr\":\"a\",\"port\":1,\"ratio\":0,\"timeout\":1}", 0, &c),
              PLG_OK);
    plg_config_destroy(c);
    /* numbers */
    c = NULL;
    CHECK_INT(plg_config_parse_json(NULL, schema, NKEYS, "{\"addr\":\"a\",\"ratio\":-0.1}", 0, &c),
              PLG_ERR_CONFIG_INVALID);
    CHECK_STR(plg_config_problem_at(c, 0)->message, "\"ratio\" must be at least 0 (got -0.1)");
    plg_config_destroy(c);
    /* durations: the bound as written in the schema */
    c = NULL;
    CHECK_INT(plg_config_parse_json(NULL, schema, NKEYS, "{\"addr\":\"a\",\"timeout\":\"61m\"}",
                                    0, &c),
              PLG_ERR_CONFIG_INVALID);
    CHECK_STR(plg_config_problem_at(c, 0)->message,
              "\"timeout\" must be at most 1h (got \"61m\")");
    plg_config_destroy(c);
    c = NULL;
    CHECK_INT(plg_config_parse_json(NULL, schema, NKEYS, "{\"addr\":\"a\",\"timeout\":0}", 0, &c),
              PLG_ERR_CONFIG_INVALID);
    CHECK_STR(plg_config_problem_at(c, 0)->message, "\"timeout\" must be at least 1ms (got 0)");
    plg_config_destroy(c);
    /* allowed */
    c = NULL;
    CHECK_INT(plg_config_parse_json(NULL, schema, NKEYS, "{\"addr\":\"a\",\"mode\":\"Fast\"}", 0,
                                    &c),
              PLG_ERR_CONFIG_INVALID);
    p = plg_config_problem_at(c, 0);
    CHECK_INT(p->code, PLG_ERR_CONFIG_RANGE);
    CHECK_STR(p->message,
              "\"mode\" must be one of \"fast\", \"safe\", \"paranoid\" (got \"Fast\")");
    plg_config_destroy(c);
    c = NULL;
    CHECK_INT(plg_config_parse_json(NULL, schema, NKEYS, "{\"addr\":\"a\",\"mode\":\"paranoid\"}",
                                    0, &c),
              PLG_OK);
    CHECK_STR(plg_config_string(c, "mode"), "paranoid");
    plg_config_destroy(c);
}

TEST(test_long_allowed_list)
{
    static const char *const many[] = {"v00", "v01", "v02", "v03", "v04", "v05", "v06",
                                       "v07", "v08", "v09", "v10", "v11", "v12", "v13",
                                       "v14", "v15", "v16", "v17", "v18", "v19"};
    static const plg_config_key k[] = {
        {"v", PLG_CONFIG_STRING, 0, NULL, NULL, NULL, many, 20, NULL},
    };
    plg_config *c = NULL;
    CHECK_INT(plg_config_parse_json(NULL, k, 1, "{\"v\":\"v19\"}", 0, &c), PLG_OK);
    plg_config_destroy(c);
    c = NULL;
    CHECK_INT(plg_config_parse_json(NULL, k, 1, "{\"v\":\"v20\"}", 0, &c), PLG_ERR_CONFIG_INVALID);
    CHECK_CONTAINS(plg_config_problem_at(c, 0)->message, "\"v\" must be one of \"v00\", \"v01\"");
    CHECK_CONTAINS(plg_config_problem_at(c, 0)->message, "\"v15\", ... (got \"v20\")");
    CHECK_NOT_CONTAINS(plg_config_problem_at(c, 0)->message, "v16");
    plg_config_destroy(c);
}

TEST(test_string_length_bounds)
{
    static const plg_config_key k[] = {
        {"name", PLG_CONFIG_STRING, 0, NULL, "2", "4", NULL, 0, NULL},
    };
    plg_config *c = NULL;
    CHECK_INT(plg_config_parse_json(NULL, k, 1, "{\"name\":\"ab\"}", 0, &c), PLG_OK);
    plg_config_destroy(c);
    c = NULL;
    /* bytes, not characters: two 2-byte characters are 4 bytes */
    CHECK_INT(plg_config_parse_json(NULL, k, 1, "{\"name\":\"\xC3\xA9\xC3\xA9\"}", 0, &c), PLG_OK);
    plg_config_destroy(c);
    c = NULL;
    CHECK_INT(plg_config_parse_json(NULL, k, 1, "{\"name\":\"\xC3\xA9\xC3\xA9x\"}", 0, &c),
              PLG_ERR_CONFIG_INVALID);
    CHECK_STR(plg_config_problem_at(c, 0)->message,
              "\"name\" must be at most 4 bytes long (got \"\xC3\xA9\xC3\xA9x\")");
    plg_config_destroy(c);
    c = NULL;
    CHECK_INT(plg_config_parse_json(NULL, k, 1, "{\"name\":\"a\"}", 0, &c), PLG_ERR_CONFIG_INVALID);
    CHECK_STR(plg_config_problem_at(c, 0)->message,
              "\"name\" must be at least 2 bytes long (got \"a\")");
    CHECK_INT(plg_config_problem_at(c, 0)->code, PLG_ERR_CONFIG_RANGE);
    plg_config_destroy(c);
    /* a NUL byte counts */
    c = NULL;
    CHECK_INT(plg_config_parse_json(NULL, k, 1, "{\"name\":\"a\\u0000\"}", 0, &c), PLG_OK);
    plg_config_destroy(c);
}

TEST(test_all_problems_at_once)
{
    plg_config *c = NULL;
    size_t i;
    plg_result r = plg_config_parse_json(
        NULL, schema, NKEYS,
        "{\"port\":\"http\",\"debug\":\"maybe\",\"ratio\":2,\"mode\":\"slow\",\"colour\":1}",
        PLG_CONFIG_STRICT, &c);
    static const char *const keys[] = {"port", "debug", "ratio", "mode", "colour", "addr"};
    static const plg_result codes[] = {PLG_ERR_CONFIG_TYPE,  PLG_ERR_CONFIG_TYPE,
                                       PLG_ERR_CONFIG_RANGE, PLG_ERR_CONFIG_RANGE,
                                       PLG_ERR_CONFIG_UNKNOWN_KEY, PLG_ERR_CONFIG_MISSING_KEY};
    static const size_t offsets[] = {8, 23, 39, 48, 55, (size_t)-1};
    CHECK_INT(r, PLG_ERR_CONFIG_INVALID);
    CHECK_INT(plg_config_problem_count(c), 6);
    for (i = 0; i < 6 && i < plg_config_problem_count(c); i++) {
        const plg_config_problem *p = plg_config_problem_at(c, i);
        CHECK_STR(p->key, keys[i]);
        CHECK_INT(p->code, codes[i]);
        CHECK_INT(p->is_warning, 0);
        CHECK(p->offset == offsets[i]);
        CHECK(strstr(p->message, keys[i]) != NULL);
    }
    CHECK(plg_config_problem_at(c, 6) == NULL);
    plg_config_destroy(c);
}

#define SECRET_VALUE "hunter2-SECRET-value-that-is-too-long-for-the-limit"
#define SECRET_SHORT "hunter2-SECRET"

static void check_no_secret(const plg_config *c, const char *secret)
{
    size_t i;
    for (i = 0; i < plg_config_problem_count(c); i++) {
        const plg_config_problem *p = plg_config_problem_at(c, i);
        CHECK_NOT_CONTAINS(p->message, secret);
        CHECK_NOT_CONTAINS(p->key, secret);
    }
}

TEST(test_secret_redaction)
{
    plg_config *c = NULL;
    char buf[512];
    const plg_config_problem *p;
    /* too long */
    CHECK_INT(plg_config_parse_json(NULL, schema, NKEYS,
                                    "{\"addr\":\"a\",\"password\":\"" SECRET_VALUE "\"}", 0, &c),
              PLG_ERR_CONFIG_INVALID);
    p = plg_config_problem_at(c, 0);
    CHECK_INT(p->code, PLG_ERR_CONFIG_RANGE);
    CHECK_STR(p->key, "password");
    CHECK_STR(p->message, "value of \"password\" is not valid (secret, not shown): it must be at "
                          "most 32 bytes long");
    check_no_secret(c, "hunter2");
    plg_config_destroy(c);
    /* wrong type, number shown nowhere */
    c = NULL;
    CHECK_INT(plg_config_parse_json(NULL, schema, NKEYS,
                                    "{\"addr\":\"a\",\"password\":87654321,\"pin\":\"12x45678\"}",
                                    0, &c),
              PLG_ERR_CONFIG_INVALID);
    CHECK_INT(plg_config_problem_count(c), 2);
    check_no_secret(c, "87654321");
    check_no_secret(c, "12x45678");
    CHECK(message_contains(c, "secret, not shown"));
    plg_config_destroy(c);
    /* out of range integer */
    c = NULL;
    CHECK_INT(plg_config_parse_json(NULL, schema, NKEYS, "{\"addr\":\"a\",\"pin\":123456}", 0, &c),
              PLG_ERR_CONFIG_INVALID);
    check_no_secret(c, "123456");
    CHECK_CONTAINS(plg_config_problem_at(c, 0)->message, "must be at most 9999");
    plg_config_destroy(c);
    /* not among the allowed values */
    c = NULL;
    CHECK_INT(plg_config_parse_json(NULL, schema, NKEYS,
                                    "{\"addr\":\"a\",\"token\":\"gamma-token-SECRET\"}", 0, &c),
              PLG_ERR_CONFIG_INVALID);
    check_no_secret(c, "gamma-token-SECRET");
    plg_config_destroy(c);
    /* an object as a secret value */
    c = NULL;
    CHECK_INT(plg_config_parse_json(NULL, schema, NKEYS,
                                    "{\"addr\":\"a\",\"password\":{\"x\":\"" SECRET_SHORT "\"}}", 0,
                                    &c),
              PLG_ERR_CONFIG_INVALID);
    check_no_secret(c, SECRET_SHORT);
    plg_config_destroy(c);
    /* given twice */
    c = NULL;
    CHECK_INT(plg_config_parse_json(NULL, schema, NKEYS,
                                    "{\"addr\":\"a\",\"password\":\"" SECRET_SHORT
                                    "\",\"password\":\"other-SECRET\"}",
                                    0, &c),
              PLG_ERR_CONFIG_INVALID);
    check_no_secret(c, SECRET_SHORT);
    check_no_secret(c, "other-SECRET");
    plg_config_destroy(c);
    /* malformed inside and after the secret */
    c = NULL;
    CHECK_INT(plg_config_parse_json(NULL, schema, NKEYS,
                                    "{\"addr\":\"a\",\"password\":\"" SECRET_SHORT "\\q\"}", 0, &c),
              PLG_ERR_CONFIG_SYNTAX);
    check_no_secret(c, SECRET_SHORT);
    plg_config_destroy(c);
    c = NULL;
    CHECK_INT(plg_config_parse_json(NULL, schema, NKEYS,
                                    "{\"addr\":\"a\",\"password\":\"" SECRET_SHORT "\" x}", 0, &c),
              PLG_ERR_CONFIG_SYNTAX);
    check_no_secret(c, SECRET_SHORT);
    plg_config_destroy(c);
    c = NULL;
    CHECK_INT(plg_config_parse_json(NULL, schema, NKEYS,
                                    "{\"addr\":\"a\",\"password\":\"" SECRET_SHORT "\x01\"}", 0, &c),
              PLG_ERR_CONFIG_SYNTAX);
    check_no_secret(c, SECRET_SHORT);
    plg_config_destroy(c);
    /* a typo of a secret key is an unknown key: its value is never shown either */
    c = NULL;
    CHECK_INT(plg_config_parse_json(NULL, schema, NKEYS,
                                    "{\"addr\":\"a\",\"pasword\":\"" SECRET_SHORT "\"}",
                                    PLG_CONFIG_STRICT, &c),
              PLG_ERR_CONFIG_INVALID);
    check_no_secret(c, SECRET_SHORT);
    CHECK_CONTAINS(plg_config_problem_at(c, 0)->message, "did you mean \"password\"");
    plg_config_destroy(c);
    /* valid: the getter gives the value, the format output does not */
    c = NULL;
    CHECK_INT(plg_config_parse_json(NULL, schema, NKEYS,
                                    "{\"addr\":\"a\",\"password\":\"" SECRET_SHORT
                                    "\",\"pin\":4321,\"token\":\"alpha-token\"}",
                                    0, &c),
              PLG_OK);
    CHECK_STR(plg_config_string(c, "password"), SECRET_SHORT);
    CHECK_INT(plg_config_integer(c, "pin"), 4321);
    plg_config_format(c, buf, sizeof buf);
    CHECK_NOT_CONTAINS(buf, SECRET_SHORT);
    CHECK_NOT_CONTAINS(buf, "4321");
    CHECK_NOT_CONTAINS(buf, "alpha-token");
    CHECK_CONTAINS(buf, "\"password\":\"<redacted>\"");
    CHECK_CONTAINS(buf, "\"pin\":\"<redacted>\"");
    CHECK_CONTAINS(buf, "\"token\":\"<redacted>\"");
    plg_config_destroy(c);
    /* pairs */
    {
        static const char *const pairs[] = {"addr", "a", "password", SECRET_VALUE, "pin",
                                            "SECRET-pin"};
        c = NULL;
        CHECK_INT(plg_config_parse_pairs(NULL, schema, NKEYS, pairs, 3, 0, &c),
                  PLG_ERR_CONFIG_INVALID);
        CHECK_INT(plg_config_problem_count(c), 2);
        check_no_secret(c, "hunter2");
        check_no_secret(c, "SECRET-pin");
        plg_config_destroy(c);
    }
}

TEST(test_secret_default_redacted)
{
    static const plg_config_key k[] = {
        {"api_key", PLG_CONFIG_STRING, PLG_KEY_SECRET, "default-SECRET", NULL, NULL, NULL, 0, NULL},
        {"level", PLG_CONFIG_INTEGER, 0, "3", NULL, NULL, NULL, 0, NULL},
    };
    plg_config *c = NULL;
    char buf[128];
    CHECK_INT(plg_config_parse_json(NULL, k, 2, NULL, 0, &c), PLG_OK);
    CHECK_STR(plg_config_string(c, "api_key"), "default-SECRET");
    CHECK_INT(plg_config_is_set(c, "api_key"), 2);
    plg_config_format(c, buf, sizeof buf);
    CHECK_STR(buf, "{\"api_key\":\"<redacted>\",\"level\":3}");
    plg_config_destroy(c);
}

TEST(test_values_escaped_in_messages)
{
    plg_config *c = NULL;
    const char *m;
    size_t i;
    CHECK_INT(parse_plain("{\"i\":\"a\\nb\\u001b[31m\\u0000\\\"\\\\\\u007f\\u0085c\"}", &c),
              PLG_ERR_CONFIG_INVALID);
    m = plg_config_problem_at(c, 0)->message;
    CHECK_CONTAINS(m, "(got \"a\\nb\\u001b[31m\\u0000\\\"\\\\\\u007f\\u0085c\")");
    for (i = 0; m[i] != '\0'; i++)
        CHECK((unsigned char)m[i] >= 0x20 && (unsigned char)m[i] != 0x7f);
    CHECK_NOT_CONTAINS(m, "\xC2\x85");
    plg_config_destroy(c);
    /* long values are cut after 40 characters */
    c = NULL;
    CHECK_INT(parse_plain("{\"i\":\"0123456789abcdefghij0123456789ABCDEFGHIJ-tail-not-shown\"}",
                          &c),
              PLG_ERR_CONFIG_INVALID);
    m = plg_config_problem_at(c, 0)->message;
    CHECK_CONTAINS(m, "(got \"0123456789abcdefghij0123456789ABCDEFGHIJ...\")");
    CHECK_NOT_CONTAINS(m, "tail");
    plg_config_destroy(c);
    /* characters, not bytes: a multibyte character is never cut */
    c = NULL;
    CHECK_INT(parse_plain("{\"i\":\"\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC"
                          "\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC"
                          "\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC"
                          "\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC"
                          "\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC"
                          "\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC"
                          "\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC"
                          "\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC"
                          "\xE2\x82\xAC\xE2\x82\xAC\"}",
                          &c),
              PLG_ERR_CONFIG_INVALID);
    m = plg_config_problem_at(c, 0)->message;
    CHECK_CONTAINS(m, "\xE2\x82\xAC...\")");
    CHECK_NOT_CONTAINS(m, "\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC"
                          "\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC"
                          "\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC"
                          "\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC"
                          "\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC"
                          "\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC"
                          "\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC"
                          "\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC"
                          "\xE2\x82\xAC");
    plg_config_destroy(c);
    /* unknown keys with control bytes: escaped in the message and in the key field */
    c = NULL;
    CHECK_INT(parse_plain("{\"bad\\nkey\\u0007\":1}", &c), PLG_ERR_CONFIG_INVALID);
    CHECK_STR(plg_config_problem_at(c, 0)->key, "bad\\nkey\\u0007");
    CHECK_STR(plg_config_problem_at(c, 0)->message, "unknown key \"bad\\nkey\\u0007\"");
    plg_config_destroy(c);
    /* a very long unknown key is cut in the message */
    {
        char json[400];
        memset(json, 'k', sizeof json);
        memcpy(json, "{\"", 2);
        memcpy(json + 300, "\":1}", 5);
        c = NULL;
        CHECK_INT(parse_plain(json, &c), PLG_ERR_CONFIG_INVALID);
        CHECK(strlen(plg_config_problem_at(c, 0)->message) < 80);
        CHECK(strlen(plg_config_problem_at(c, 0)->key) < 120);
        plg_config_destroy(c);
    }
}

TEST(test_pairs)
{
    static const char *const pairs[] = {
        "addr", "redis:6379", "port", " 6380", "debug", "on", "ratio", "0.75",
        "timeout", "1h", "mode", NULL, "password", "hunter22",
    };
    plg_config *c = NULL;
    CHECK_INT(plg_config_parse_pairs(NULL, schema, NKEYS, pairs, 7, 0, &c), PLG_OK);
    CHECK_INT(plg_config_problem_count(c), 0);
    CHECK_STR(plg_config_string(c, "addr"), "redis:6379");
    CHECK_INT(plg_config_integer(c, "port"), 6380);
    CHECK_INT(plg_config_boolean(c, "debug"), 1);
    CHECK(plg_config_number(c, "ratio") == 0.75);
    CHECK_INT(plg_config_duration_ms(c, "timeout"), 3600000);
    CHECK_INT(plg_config_is_set(c, "mode"), 2); /* NULL value: not given */
    CHECK_STR(plg_config_string(c, "password"), "hunter22");
    plg_config_destroy(c);
    /* problems: unknown, duplicate, type, invalid UTF-8 in a string, missing */
    {
        static const char *const bad[] = {"adr", "x", "port", "1",      "port", "2",
                                          "debug", "2", "mode", "\xFF", "ratio", "1e999"};
        const plg_config_problem *p;
        c = NULL;
        CHECK_INT(plg_config_parse_pairs(NULL, schema, NKEYS, bad, 6, PLG_CONFIG_STRICT, &c),
                  PLG_ERR_CONFIG_INVALID);
        CHECK_INT(plg_config_problem_count(c), 6);
        if (plg_config_problem_count(c) == 6) {
            p = plg_config_problem_at(c, 0);
            CHECK_INT(p->code, PLG_ERR_CONFIG_UNKNOWN_KEY);
            CHECK_STR(p->message, "unknown key \"adr\" (did you mean \"addr\"?)");
            CHECK(p->offset == PLG_NO_OFFSET);
            p = plg_config_problem_at(c, 1);
            CHECK_INT(p->code, PLG_ERR_CONFIG_DUPLICATE_KEY);
            CHECK_STR(p->message, "key \"port\" is given twice");
            p = plg_config_problem_at(c, 2);
            CHECK_INT(p->code, PLG_ERR_CONFIG_TYPE);
            CHECK_STR(p->key, "debug");
            p = plg_config_problem_at(c, 3);
            CHECK_INT(p->code, PLG_ERR_CONFIG_TYPE);
            CHECK_STR(p->key, "mode");
            CHECK_CONTAINS(p->message, "UTF-8");
            CHECK_CONTAINS(p->message, "\\xff");
            p = plg_config_problem_at(c, 4);
            CHECK_INT(p->code, PLG_ERR_CONFIG_RANGE);
            CHECK_STR(p->key, "ratio");
            p = plg_config_problem_at(c, 5);
            CHECK_INT(p->code, PLG_ERR_CONFIG_MISSING_KEY);
        }
        CHECK_INT(plg_config_integer(c, "port"), 1);
        plg_config_destroy(c);
    }
    /* arguments */
    {
        static const char *const nullkey[] = {"addr", "a", NULL, "b"};
        c = NULL;
        CHECK_INT(plg_config_parse_pairs(NULL, schema, NKEYS, nullkey, 2, 0, &c),
                  PLG_ERR_INVALID_ARGUMENT);
        CHECK(c == NULL);
        CHECK_INT(plg_config_parse_pairs(NULL, schema, NKEYS, NULL, 1, 0, &c),
                  PLG_ERR_INVALID_ARGUMENT);
        CHECK_INT(plg_config_parse_pairs(NULL, plain, NPLAIN, NULL, 0, 0, &c), PLG_OK);
        CHECK(c != NULL);
        plg_config_destroy(c);
    }
    /* a string value keeps its bytes as given, spaces included */
    {
        static const char *const sp[] = {"s", " a b "};
        c = NULL;
        CHECK_INT(plg_config_parse_pairs(NULL, plain, NPLAIN, sp, 1, 0, &c), PLG_OK);
        CHECK_STR(plg_config_string(c, "s"), " a b ");
        plg_config_destroy(c);
    }
}

TEST(test_getters)
{
    plg_config *c = NULL;
    plg_config_value v;
    CHECK_INT(parse_plain("{\"s\":\"x\",\"i\":5,\"b\":true,\"n\":1.5,\"d\":\"2s\"}", &c), PLG_OK);
    /* NULLs */
    CHECK_INT(plg_config_get(NULL, "s", &v), PLG_ERR_INVALID_ARGUMENT);
    CHECK_INT(plg_config_get(c, NULL, &v), PLG_ERR_INVALID_ARGUMENT);
    CHECK_INT(plg_config_get(c, "s", NULL), PLG_ERR_INVALID_ARGUMENT);
    CHECK_INT(plg_config_get(c, "nope", &v), PLG_ERR_NOT_FOUND);
    CHECK_INT(plg_config_get(c, "", &v), PLG_ERR_NOT_FOUND);
    CHECK_INT(plg_config_is_set(NULL, "s"), 0);
    CHECK_INT(plg_config_is_set(c, NULL), 0);
    CHECK_INT(plg_config_is_set(c, "nope"), 0);
    CHECK(plg_config_string(NULL, "s") == NULL);
    CHECK(plg_config_string(c, NULL) == NULL);
    CHECK_INT(plg_config_integer(NULL, "i"), 0);
    CHECK_INT(plg_config_boolean(NULL, "b"), 0);
    CHECK(plg_config_number(NULL, "n") == 0.0);
    CHECK_INT(plg_config_duration_ms(NULL, "d"), 0);
    /* mismatched types give 0 / NULL */
    CHECK(plg_config_string(c, "i") == NULL);
    CHECK_INT(plg_config_integer(c, "s"), 0);
    CHECK_INT(plg_config_integer(c, "d"), 0);
    CHECK_INT(plg_config_duration_ms(c, "i"), 0);
    CHECK_INT(plg_config_boolean(c, "i"), 0);
    CHECK(plg_config_number(c, "i") == 0.0);
    CHECK(plg_config_string(c, "unknown") == NULL);
    /* matching types */
    CHECK_STR(plg_config_string(c, "s"), "x");
    CHECK_INT(plg_config_integer(c, "i"), 5);
    CHECK_INT(plg_config_boolean(c, "b"), 1);
    CHECK(plg_config_number(c, "n") == 1.5);
    CHECK_INT(plg_config_duration_ms(c, "d"), 2000);
    CHECK_INT(plg_config_get(c, "i", &v), PLG_OK);
    CHECK_INT(v.type, PLG_CONFIG_INTEGER);
    CHECK_INT(v.integer, 5);
    CHECK(v.string == NULL);
    /* problems */
    CHECK_INT(plg_config_problem_count(NULL), 0);
    CHECK(plg_config_problem_at(NULL, 0) == NULL);
    CHECK(plg_config_problem_at(c, 0) == NULL);
    plg_config_destroy(c);
    plg_config_destroy(NULL);
}

TEST(test_format)
{
    plg_config *c = NULL;
    char buf[512], small[8];
    size_t n;
    CHECK_INT(plg_config_parse_json(NULL, schema, NKEYS,
                                    "{\"mode\":\"safe\",\"timeout\":\"1.5s\",\"debug\":\"yes\","
                                    "\"addr\":\"a\\\"b\\\\c\\n\\u0001\\u007f\\u00e9\\u0000\\b\\f\\r\\t\"}",
                                    0, &c),
              PLG_OK);
    n = plg_config_format(c, buf, sizeof buf);
    /* schema order, every set key, defaults included, valid JSON */
    CHECK_STR(buf, "{\"addr\":\"a\\\"b\\\\c\\n\\u0001\x7f\xC3\xA9\\u0000\\b\\f\\r\\t\",\"port\":6379,"
                   "\"debug\":true,\"ratio\":0.5,\"timeout\":1500,\"mode\":\"safe\"}");
    CHECK_INT(n, strlen(buf));
    /* snprintf semantics */
    CHECK_INT(plg_config_format(c, NULL, 0), n);
    CHECK_INT(plg_config_format(c, small, sizeof small), n);
    CHECK_STR(small, "{\"addr\"");
    small[0] = 'x';
    CHECK_INT(plg_config_format(c, small, 1), n);
    CHECK_STR(small, "");
    /* the output parses back to the same configuration */
    {
        plg_config *again = NULL;
        char buf2[512];
        CHECK_INT(plg_config_parse_json(NULL, schema, NKEYS, buf, PLG_CONFIG_STRICT, &again),
                  PLG_OK);
        plg_config_format(again, buf2, sizeof buf2);
        CHECK_STR(buf2, buf);
        plg_config_destroy(again);
    }
    plg_config_destroy(c);
    /* NULL config */
    buf[0] = 'x';
    CHECK_INT(plg_config_format(NULL, buf, sizeof buf), 0);
    CHECK_STR(buf, "");
    /* nothing set */
    c = NULL;
    CHECK_INT(parse_plain("{}", &c), PLG_OK);
    CHECK_INT(plg_config_format(c, buf, sizeof buf), 2);
    CHECK_STR(buf, "{}");
    plg_config_destroy(c);
    /* integers at the limits */
    c = NULL;
    CHECK_INT(parse_plain("{\"i\":-9223372036854775808,\"d\":9223372036854775807,\"b\":false}",
                          &c),
              PLG_OK);
    plg_config_format(c, buf, sizeof buf);
    CHECK_STR(buf, "{\"i\":-9223372036854775808,\"b\":false,\"d\":9223372036854775807}");
    plg_config_destroy(c);
}

struct num_fmt_case {
    const char *in;
    const char *out;
};

TEST(test_format_numbers)
{
    static const struct num_fmt_case cases[] = {
        {"2.5", "2.5"},
        {"3.0", "3"},
        {"-0", "-0"},
        {"0", "0"},
        {"0.1", "0.1"},
        {"0.001", "0.001"},
        {"1e-6", "0.000001"},
        {"1e-7", "1e-7"},
        {"123456789", "123456789"},
        {"1e20", "100000000000000000000"},
        {"1e21", "1e+21"},
        {"1.5e300", "1.5e+300"},
        {"0.3333333333333333", "0.3333333333333333"},
        {"0.30000000000000004", "0.30000000000000004"},
        {"5e-324", "5e-324"},
        {"1.7976931348623157e308", "1.7976931348623157e+308"},
        {"-2.2250738585072014e-308", "-2.2250738585072014e-308"},
        {"123.456", "123.456"},
        {"9007199254740993", "9007199254740992"},
    };
    size_t i;
    for (i = 0; i < COUNT_OF(cases); i++) {
        plg_config *c = NULL, *again = NULL;
        char json[128], buf[128], expect[128], buf2[128];
        snprintf(json, sizeof json, "{\"n\":%s}", cases[i].in);
        CHECK_INT(parse_plain(json, &c), PLG_OK);
        plg_config_format(c, buf, sizeof buf);
        snprintf(expect, sizeof expect, "{\"n\":%s}", cases[i].out);
        CHECK_STR(buf, expect);
        CHECK_INT(parse_plain(buf, &again), PLG_OK);
        CHECK(plg_config_number(again, "n") == plg_config_number(c, "n"));
        plg_config_format(again, buf2, sizeof buf2);
        CHECK_STR(buf2, buf);
        plg_config_destroy(c);
        plg_config_destroy(again);
        if (test_case_failed) {
            printf("    (case %s)\n", cases[i].in);
            return;
        }
    }
}

struct schema_case {
    plg_config_key key;
    const char *fragment;
};

static const char *const allowed_ok[] = {"a", "bb"};
static const char *const allowed_null[] = {"a", NULL};
static const char *const allowed_bad_utf8[] = {"\xC3"};

TEST(test_schema_check)
{
    static const struct schema_case cases[] = {
        {{NULL, PLG_CONFIG_STRING, 0, NULL, NULL, NULL, NULL, 0, NULL}, "key #0: name is missing"},
        {{"", PLG_CONFIG_STRING, 0, NULL, NULL, NULL, NULL, 0, NULL}, "key #0: name is empty"},
        {{"bad key", PLG_CONFIG_STRING, 0, NULL, NULL, NULL, NULL, 0, NULL}, "contains ' '"},
        {{"_x", PLG_CONFIG_STRING, 0, NULL, NULL, NULL, NULL, 0, NULL}, "must start with"},
        {{"x", (plg_config_type)0, 0, NULL, NULL, NULL, NULL, 0, NULL}, "key \"x\": unknown type 0"},
        {{"x", (plg_config_type)6, 0, NULL, NULL, NULL, NULL, 0, NULL}, "unknown type 6"},
        {{"x", PLG_CONFIG_STRING, 4, NULL, NULL, NULL, NULL, 0, NULL}, "unknown flags 0x4"},
        {{"x", PLG_CONFIG_STRING, PLG_KEY_REQUIRED, "d", NULL, NULL, NULL, 0, NULL},
         "is required and has a default"},
        {{"x", PLG_CONFIG_INTEGER, 0, "abc", NULL, NULL, NULL, 0, NULL},
         "key \"x\": default \"abc\" must be an integer"},
        {{"x", PLG_CONFIG_INTEGER, 0, NULL, "1.5", NULL, NULL, 0, NULL}, "min \"1.5\""},
        {{"x", PLG_CONFIG_INTEGER, 0, NULL, NULL, "big", NULL, 0, NULL}, "max \"big\""},
        {{"x", PLG_CONFIG_INTEGER, 0, NULL, "10", "5", NULL, 0, NULL},
         "min \"10\" is greater than max \"5\""},
        {{"x", PLG_CONFIG_NUMBER, 0, NULL, "1e999", NULL, NULL, 0, NULL}, "min \"1e999\""},
        {{"x", PLG_CONFIG_DURATION, 0, NULL, "1h", "1m", NULL, 0, NULL}, "greater than max"},
        {{"x", PLG_CONFIG_DURATION, 0, "1x", NULL, NULL, NULL, 0, NULL}, "default \"1x\""},
        {{"x", PLG_CONFIG_BOOLEAN, 0, "maybe", NULL, NULL, NULL, 0, NULL}, "default \"maybe\""},
        {{"x", PLG_CONFIG_STRING, 0, NULL, "-1", NULL, NULL, 0, NULL}, "min \"-1\""},
        {{"x", PLG_CONFIG_STRING, 0, NULL, NULL, "ten", NULL, 0, NULL},
         "max \"ten\" must be a length in bytes"},
        {{"x", PLG_CONFIG_STRING, 0, "toolong", NULL, "3", NULL, 0, NULL},
         "default \"toolong\" must be at most 3 bytes long"},
        {{"x", PLG_CONFIG_INTEGER, 0, "0", "1", "5", NULL, 0, NULL}, "default \"0\" must be at least 1"},
        {{"x", PLG_CONFIG_STRING, 0, "c", NULL, NULL, allowed_ok, 2, NULL},
         "default \"c\" must be one of \"a\", \"bb\""},
        {{"x", PLG_CONFIG_INTEGER, 0, NULL, NULL, NULL, allowed_ok, 2, NULL},
         "allowed values are only for strings"},
        {{"x", PLG_CONFIG_STRING, 0, NULL, NULL, NULL, allowed_null, 2, NULL},
         "allowed value #1 is NULL"},
        {{"x", PLG_CONFIG_STRING, 0, NULL, NULL, NULL, NULL, 2, NULL},
         "allowed_count is 2 but allowed is NULL"},
        {{"x", PLG_CONFIG_STRING, 0, NULL, NULL, NULL, allowed_ok, 0, NULL},
         "allowed is set but allowed_count is 0"},
        {{"x", PLG_CONFIG_STRING, 0, "\xFF", NULL, NULL, NULL, 0, NULL}, "UTF-8"},
        {{"x", PLG_CONFIG_STRING, 0, NULL, NULL, NULL, allowed_bad_utf8, 1, NULL}, "UTF-8"},
    };
    size_t i;
    /* The messages are recorded through plgi_fail; without a registry only the code is seen. */
    for (i = 0; i < COUNT_OF(cases); i++) {
        plg_config *c = (plg_config *)&c; /* must be reset to NULL */
        CHECK_INT(plg_schema_check(NULL, &cases[i].key, 1), PLG_ERR_INVALID_SCHEMA);
        CHECK_INT(plg_config_parse_json(NULL, &cases[i].key, 1, "{}", 0, &c),
                  PLG_ERR_INVALID_SCHEMA);
        CHECK(c == NULL);
        if (test_case_failed) {
            printf("    (case %lu)\n", (unsigned long)i);
            return;
        }
    }
    /* valid schemas */
    CHECK_INT(plg_schema_check(NULL, schema, NKEYS), PLG_OK);
    CHECK_INT(plg_schema_check(NULL, plain, NPLAIN), PLG_OK);
    CHECK_INT(plg_schema_check(NULL, NULL, 0), PLG_OK);
    {
        static const plg_config_key ok[] = {
            {"a.b-c_d9", PLG_CONFIG_BOOLEAN, 0, "on", "false", "true", NULL, 0, NULL},
            {"9lives", PLG_CONFIG_NUMBER, PLG_KEY_REQUIRED | PLG_KEY_SECRET, NULL, "-1.5", "1e3",
             NULL, 0, NULL},
            {"len", PLG_CONFIG_STRING, 0, "bb", "1", "2", allowed_ok, 2, NULL},
            {"t", PLG_CONFIG_DURATION, 0, "90s", "1m", "1m30s", NULL, 0, NULL},
            {"eq", PLG_CONFIG_INTEGER, 0, "5", "5", "5", NULL, 0, NULL},
        };
        CHECK_INT(plg_schema_check(NULL, ok, COUNT_OF(ok)), PLG_OK);
    }
    /* duplicates, NULL schema */
    {
        static const plg_config_key dup[] = {
            {"x", PLG_CONFIG_STRING, 0, NULL, NULL, NULL, NULL, 0, NULL},
            {"x", PLG_CONFIG_INTEGER, 0, NULL, NULL, NULL, NULL, 0, NULL},
        };
        plg_config *c = NULL;
        CHECK_INT(plg_schema_check(NULL, dup, 2), PLG_ERR_INVALID_SCHEMA);
        CHECK_INT(plg_schema_check(NULL, NULL, 1), PLG_ERR_INVALID_SCHEMA);
        CHECK_INT(plg_config_parse_json(NULL, NULL, 3, "{}", 0, &c), PLG_ERR_INVALID_SCHEMA);
        CHECK(c == NULL);
        CHECK_INT(plg_config_parse_pairs(NULL, dup, 2, NULL, 0, 0, &c), PLG_ERR_INVALID_SCHEMA);
        CHECK(c == NULL);
    }
}

TEST(test_flags)
{
    plg_config *c = NULL;
    CHECK_INT(plg_config_parse_json(NULL, plain, NPLAIN, "{}", 4, &c), PLG_ERR_INVALID_ARGUMENT);
    CHECK(c == NULL);
    CHECK_INT(plg_config_parse_json(NULL, plain, NPLAIN, "{}",
                                    PLG_CONFIG_STRICT | PLG_CONFIG_LENIENT, &c),
              PLG_ERR_INVALID_ARGUMENT);
    CHECK(c == NULL);
}

/* Many threads parse and read at once; every config is read-only after parsing. */
static const plg_config *shared_config;

static void *thread_main(void *arg)
{
    int i, bad = 0;
    (void)arg;
    for (i = 0; i < 200; i++) {
        plg_config *c = NULL;
        char buf[256];
        if (plg_config_parse_json(NULL, schema, NKEYS, "{\"addr\":\"t\",\"port\":\"99\",\"pin\":x}",
                                  0, &c) != PLG_ERR_CONFIG_SYNTAX)
            bad++;
        plg_config_destroy(c);
        c = NULL;
        if (plg_config_parse_json(NULL, schema, NKEYS, "{\"addr\":\"t\",\"port\":\"99\"}", 0, &c) !=
                PLG_OK ||
            plg_config_integer(c, "port") != 99)
            bad++;
        plg_config_destroy(c);
        if (plg_config_integer(shared_config, "port") != 7 ||
            strcmp(plg_config_string(shared_config, "addr"), "shared") != 0)
            bad++;
        plg_config_format(shared_config, buf, sizeof buf);
        if (strstr(buf, "\"port\":7") == NULL)
            bad++;
    }
    return bad ? (void *)1 : NULL;
}

TEST(test_threads)
{
    pthread_t t[4];
    int i;
    plg_config *c = NULL;
    CHECK_INT(plg_config_parse_json(NULL, schema, NKEYS, "{\"addr\":\"shared\",\"port\":7}", 0, &c),
              PLG_OK);
    shared_config = c;
    for (i = 0; i < 4; i++)
        CHECK_INT(pthread_create(&t[i], NULL, thread_main, NULL), 0);
    for (i = 0; i < 4; i++) {
        void *res = (void *)1;
        pthread_join(t[i], &res);
        CHECK(res == NULL);
    }
    plg_config_destroy(c);
}

/* ---------------------------------------------------------------------------------------------
   With the registry core: strict_config, max_config_bytes, logger, plg_errmsg, allocator
   ------------------------------------------------------------------------------------------- */

typedef struct counting_alloc {
    size_t live_bytes, live_blocks, calls, fail_at; /* fail_at: 1-based call to fail, 0 never */
    int size_mismatch;
} counting_alloc;

static void *counting_alloc_fn(size_t size, void *user)
{
    counting_alloc *a = (counting_alloc *)user;
    size_t *block;
    a->calls++;
    if (a->fail_at != 0 && a->calls == a->fail_at)
        return NULL;
    block = (size_t *)malloc(size + sizeof(size_t) * 2);
    if (block == NULL)
        return NULL;
    block[0] = size;
    a->live_bytes += size;
    a->live_blocks++;
    return block + 2;
}

static void counting_free_fn(void *ptr, size_t size, void *user)
{
    counting_alloc *a = (counting_alloc *)user;
    size_t *block = (size_t *)ptr - 2;
    if (block[0] != size)
        a->size_mismatch = 1;
    a->live_bytes -= block[0];
    a->live_blocks--;
    free(block);
}

typedef struct log_capture {
    char text[16384];
    int warnings;
} log_capture;

static void capture_log(void *user, plg_log_level level, const char *message)
{
    log_capture *cap = (log_capture *)user;
    size_t used = strlen(cap->text);
    if (level == PLG_LOG_WARN)
        cap->warnings++;
    snprintf(cap->text + used, sizeof cap->text - used, "%d %s\n", (int)level, message);
}

TEST(test_registry_strict_and_lenient)
{
    plg_registry_desc d;
    plg_registry *reg = NULL;
    plg_config *c = NULL;
    memset(&d, 0, sizeof d);
    d.strict_config = 1;
    CHECK_INT(plg_registry_create(&d, &reg), PLG_OK);
    CHECK_INT(plg_config_parse_json(reg, schema, NKEYS, "{\"addr\":\"a\",\"prot\":1}", 0, &c),
              PLG_ERR_CONFIG_INVALID);
    CHECK_INT(plg_config_problem_at(c, 0)->is_warning, 0);
    CHECK_CONTAINS(plg_errmsg(reg), "1 configuration problem: unknown key \"prot\" (did you mean "
                                    "\"port\"?)");
    plg_config_destroy(c);
    /* the flag overrides the registry */
    c = NULL;
    CHECK_INT(plg_config_parse_json(reg, schema, NKEYS, "{\"addr\":\"a\",\"prot\":1}",
                                    PLG_CONFIG_LENIENT, &c),
              PLG_OK);
    CHECK_INT(plg_config_problem_at(c, 0)->is_warning, 1);
    plg_config_destroy(c);
    plg_registry_destroy(reg);
}

TEST(test_registry_errmsg_and_log)
{
    plg_registry_desc d;
    plg_registry *reg = NULL;
    plg_config *c = NULL;
    log_capture *cap = (log_capture *)calloc(1, sizeof *cap);
    memset(&d, 0, sizeof d);
    d.logger.log_fn = capture_log;
    d.logger.user = cap;
    CHECK_INT(plg_registry_create(&d, &reg), PLG_OK);
    CHECK_INT(plg_config_parse_json(reg, schema, NKEYS,
                                    "{\"port\":\"http\",\"adr\":1,\"password\":\"" SECRET_VALUE
                                    "\",\"pin\":\"SECRET-pin\",\"mode\":\"slow\"}",
                                    0, &c),
              PLG_ERR_CONFIG_INVALID);
    CHECK_INT(error_count(c), 5);
    CHECK(strncmp(plg_errmsg(reg), "5 configuration problems: \"port\" must be an integer", 51) ==
          0);
    CHECK_CONTAINS(plg_errmsg(reg), "; value of \"password\" is not valid (secret, not shown)");
    CHECK_CONTAINS(plg_errmsg(reg), "; required key \"addr\" is missing");
    CHECK_NOT_CONTAINS(plg_errmsg(reg), "unknown key"); /* a warning, logged instead */
    CHECK_NOT_CONTAINS(plg_errmsg(reg), "hunter2");
    CHECK_NOT_CONTAINS(plg_errmsg(reg), "SECRET");
    CHECK_INT(cap->warnings, 1);
    CHECK_CONTAINS(cap->text, "1 configuration: unknown key \"adr\" (did you mean \"addr\"?)");
    CHECK_NOT_CONTAINS(cap->text, "hunter2");
    CHECK_NOT_CONTAINS(cap->text, "SECRET");
    plg_config_destroy(c);
    /* syntax */
    c = NULL;
    CHECK_INT(plg_config_parse_json(reg, schema, NKEYS, "{\"password\":\"" SECRET_SHORT "\\z\"}", 0,
                                    &c),
              PLG_ERR_CONFIG_SYNTAX);
    CHECK_CONTAINS(plg_errmsg(reg), "1 configuration problem: malformed JSON at byte 27: invalid "
                                    "escape sequence '\\z'");
    CHECK_NOT_CONTAINS(plg_errmsg(reg), "SECRET");
    CHECK_NOT_CONTAINS(cap->text, "SECRET");
    plg_config_destroy(c);
    /* schema problems, each named with its key, all at once */
    {
        static const plg_config_key bad[] = {
            {"ok", PLG_CONFIG_STRING, 0, NULL, NULL, NULL, NULL, 0, NULL},
            {"port", PLG_CONFIG_INTEGER, 0, "x", "10", "5", NULL, 0, NULL},
            {"bad name", PLG_CONFIG_STRING, 0, NULL, NULL, NULL, NULL, 0, NULL},
            {"pw", PLG_CONFIG_STRING, PLG_KEY_SECRET, "default-SECRET-too-long", NULL, "4", NULL,
             0, NULL},
        };
        CHECK_INT(plg_schema_check(reg, bad, 4), PLG_ERR_INVALID_SCHEMA);
        CHECK_CONTAINS(plg_errmsg(reg), "4 schema problems: ");
        CHECK_CONTAINS(plg_errmsg(reg), "key \"port\": min \"10\" is greater than max \"5\"");
        CHECK_CONTAINS(plg_errmsg(reg), "key \"port\": default \"x\" must be an integer");
        CHECK_CONTAINS(plg_errmsg(reg), "key #2: name contains ' '");
        CHECK_CONTAINS(plg_errmsg(reg), "key \"pw\": default (secret, not shown) must be at most 4");
        CHECK_NOT_CONTAINS(plg_errmsg(reg), "SECRET");
    }
    /* a long list of problems is cut, never overflowing */
    {
        char json[8192];
        size_t i, o = 0;
        o += (size_t)snprintf(json + o, sizeof json - o, "{");
        for (i = 0; i < 200; i++)
            o += (size_t)snprintf(json + o, sizeof json - o, "%s\"k%lu\":1", i ? "," : "",
                                  (unsigned long)i);
        snprintf(json + o, sizeof json - o, "}");
        c = NULL;
        CHECK_INT(plg_config_parse_json(reg, schema, NKEYS, json, PLG_CONFIG_STRICT, &c),
                  PLG_ERR_CONFIG_INVALID);
        CHECK_INT(plg_config_problem_count(c), 201);
        CHECK_CONTAINS(plg_errmsg(reg), "201 configuration problems: ");
        CHECK(strlen(plg_errmsg(reg)) < 2048);
        CHECK_CONTAINS(plg_errmsg(reg), "...");
        plg_config_destroy(c);
    }
    plg_registry_destroy(reg);
    free(cap);
}

TEST(test_registry_max_config_bytes)
{
    plg_registry_desc d;
    plg_registry *reg = NULL;
    plg_config *c = NULL;
    memset(&d, 0, sizeof d);
    d.max_config_bytes = 16;
    CHECK_INT(plg_registry_create(&d, &reg), PLG_OK);
    CHECK_INT(plg_config_parse_json(reg, plain, NPLAIN, "{\"s\":\"12345678\"}", 0, &c), PLG_OK);
    plg_config_destroy(c);
    c = NULL;
    CHECK_INT(plg_config_parse_json(reg, plain, NPLAIN, "{\"s\":\"123456789\"}", 0, &c),
              PLG_ERR_CONFIG_SYNTAX);
    CHECK_CONTAINS(plg_config_problem_at(c, 0)->message, "limit of 16 bytes");
    CHECK_CONTAINS(plg_errmsg(reg), "limit of 16 bytes");
    plg_config_destroy(c);
    plg_registry_destroy(reg);
}

/* Runs one parse with the n-th allocation failing, for every n until one succeeds. */
static void alloc_failure_sweep(const char *json, const char *const *pairs, size_t pair_count,
                                plg_result expected)
{
    size_t n;
    for (n = 1; n < 10000; n++) {
        counting_alloc a;
        plg_registry_desc d;
        plg_registry *reg = NULL;
        plg_config *c = NULL;
        plg_result r;
        size_t base_bytes, base_blocks;
        memset(&a, 0, sizeof a);
        memset(&d, 0, sizeof d);
        d.allocator.alloc_fn = counting_alloc_fn;
        d.allocator.free_fn = counting_free_fn;
        d.allocator.user = &a;
        if (plg_registry_create(&d, &reg) != PLG_OK) {
            CHECK(0);
            return;
        }
        /* a failed call creates this thread's message buffer before the baseline is taken */
        (void)plg_schema_check(reg, NULL, 1);
        base_bytes = a.live_bytes;
        base_blocks = a.live_blocks;
        a.fail_at = a.calls + n;
        if (json != NULL || pairs == NULL)
            r = plg_config_parse_json(reg, schema, NKEYS, json, 0, &c);
        else
            r = plg_config_parse_pairs(reg, schema, NKEYS, pairs, pair_count, 0, &c);
        if (r == PLG_ERR_NO_MEMORY) {
            CHECK(c == NULL);
            CHECK_INT(a.live_bytes, base_bytes);
            CHECK_INT(a.live_blocks, base_blocks);
        } else {
            CHECK_INT(r, expected);
            CHECK(c != NULL);
            plg_config_destroy(c);
            CHECK_INT(a.live_bytes, base_bytes);
        }
        a.fail_at = 0;
        plg_registry_destroy(reg);
        CHECK_INT(a.live_blocks, 0);
        CHECK_INT(a.size_mismatch, 0);
        if (test_case_failed) {
            printf("    (failing allocation %lu)\n", (unsigned long)n);
            return;
        }
        if (r != PLG_ERR_NO_MEMORY)
            return;
    }
    CHECK(0);
}

TEST(test_registry_allocation_failures)
{
    static const char *const pairs[] = {"addr", "a", "adr", "b", "port", "x", "port", "1",
                                        "mode", "safe"};
    char big[600];
    size_t i;
    alloc_failure_sweep("{\"addr\":\"localhost\",\"port\":1,\"password\":\"hunter22\"}", NULL, 0,
                        PLG_OK);
    alloc_failure_sweep("{\"adr\":1,\"port\":\"x\",\"mode\":\"slow\",\"q\":2,\"q\":3,\"r\":1,"
                        "\"s\":1,\"t\":1,\"u\":1,\"v\":1,\"w\":1,\"x\":1,\"y\":1,\"z\":1,"
                        "\"aa\":1,\"bb\":1,\"cc\":1,\"dd\":1}",
                        NULL, 0, PLG_ERR_CONFIG_INVALID);
    alloc_failure_sweep("{\"adr\":1,\"port\":\"x\",\"mode\":tru}", NULL, 0, PLG_ERR_CONFIG_SYNTAX);
    alloc_failure_sweep(NULL, NULL, 0, PLG_ERR_CONFIG_INVALID);
    alloc_failure_sweep(NULL, pairs, 5, PLG_ERR_CONFIG_INVALID);
    /* a long number for a NUMBER key needs a heap buffer */
    memcpy(big, "{\"addr\":\"a\",\"ratio\":0.", 22);
    for (i = 22; i < 580; i++)
        big[i] = '1';
    memcpy(big + 580, "}", 2);
    alloc_failure_sweep(big, NULL, 0, PLG_OK);
    /* schema check alone */
    {
        counting_alloc a;
        plg_registry_desc d;
        plg_registry *reg = NULL;
        memset(&a, 0, sizeof a);
        memset(&d, 0, sizeof d);
        d.allocator.alloc_fn = counting_alloc_fn;
        d.allocator.free_fn = counting_free_fn;
        d.allocator.user = &a;
        CHECK_INT(plg_registry_create(&d, &reg), PLG_OK);
        (void)plg_schema_check(reg, NULL, 1);
        a.fail_at = a.calls + 1;
        CHECK_INT(plg_schema_check(reg, schema, NKEYS), PLG_ERR_NO_MEMORY);
        a.fail_at = 0;
        plg_registry_destroy(reg);
        CHECK_INT(a.live_blocks, 0);
    }
}


int main(void)
{
    RUN(test_every_type_valid);
    RUN(test_defaults_and_is_set);
    RUN(test_required_missing);
    RUN(test_empty_inputs);
    RUN(test_integer_forms);
    RUN(test_integer_messages);
    RUN(test_boolean_forms);
    RUN(test_number_forms);
    RUN(test_duration_forms);
    RUN(test_duration_json_numbers);
    RUN(test_string_values);
    RUN(test_syntax_errors);
    RUN(test_syntax_error_discards_other_problems);
    RUN(test_valid_json_shapes);
    RUN(test_utf8_validation);
    RUN(test_depth_limit);
    RUN(test_size_limit);
    RUN(test_unknown_keys_lenient_and_strict);
    RUN(test_did_you_mean);
    RUN(test_duplicate_keys);
    RUN(test_bounds);
    RUN(test_long_allowed_list);
    RUN(test_string_length_bounds);
    RUN(test_all_problems_at_once);
    RUN(test_secret_redaction);
    RUN(test_secret_default_redacted);
    RUN(test_values_escaped_in_messages);
    RUN(test_pairs);
    RUN(test_getters);
    RUN(test_format);
    RUN(test_format_numbers);
    RUN(test_schema_check);
    RUN(test_flags);
    RUN(test_threads);
    RUN(test_registry_strict_and_lenient);
    RUN(test_registry_errmsg_and_log);
    RUN(test_registry_max_config_bytes);
    RUN(test_registry_allocation_failures);
    return test_summary();
}
