/* Fuzz target: configuration JSON (and key=value lines) against a schema with every type, a
   secret, bounds, allowed values and defaults. Invariants, checked with abort():
     - the result is PLG_OK, PLG_ERR_CONFIG_SYNTAX or PLG_ERR_CONFIG_INVALID and a config is made;
     - PLG_OK has no error among its problems; an error has at least one; a syntax error has
       exactly one problem, of code PLG_ERR_CONFIG_SYNTAX;
     - no problem key or message contains a control byte; offsets lie within the text;
     - the secret never leaks: its value (read back through a second schema in which the same key
       is an ordinary string), when longer than 3 bytes and marked with a '~', never appears in
       a problem about the secret key, nor does any '~' (no message template has one, so this
       also catches a cut prefix); when the secret is the input's only possible source of '~'
       (one raw '~', no backslash escapes), no '~' appears in any problem or in the
       plg_config_format output;
     - on success plg_config_format has snprintf semantics and its output parses back (strictly,
       without problems) to a config that formats to the same text.
   The input is made NUL-terminated; a NUL byte inside simply ends the text early. */
#define PLUGIN_REGISTRY_IMPLEMENTATION
#include "plugin_registry.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const fz_levels[] = {"debug", "info", "warn", "error"};

#define FZ_KEYS 11
#define FZ_SECRET 5

/* Schema A: the real one. */
static const plg_config_key fz_schema[FZ_KEYS] = {
    {"host", PLG_CONFIG_STRING, PLG_KEY_REQUIRED, NULL, "1", "255", NULL, 0, NULL},
    {"port", PLG_CONFIG_INTEGER, 0, "8080", "1", "65535", NULL, 0, NULL},
    {"verbose", PLG_CONFIG_BOOLEAN, 0, "false", NULL, NULL, NULL, 0, NULL},
    {"ratio", PLG_CONFIG_NUMBER, 0, "0.5", "-1e3", "1e3", NULL, 0, NULL},
    {"timeout", PLG_CONFIG_DURATION, 0, "30s", "0ms", "1d", NULL, 0, NULL},
    /* "<redacted>" (10 bytes) is within the bounds, so formatted output validates again */
    {"password", PLG_CONFIG_STRING, PLG_KEY_SECRET, NULL, "4", "64", NULL, 0, NULL},
    {"level", PLG_CONFIG_STRING, 0, "info", NULL, NULL, fz_levels, 4, NULL},
    {"count", PLG_CONFIG_INTEGER, 0, NULL, NULL, NULL, NULL, 0, NULL},
    {"weight", PLG_CONFIG_NUMBER, 0, NULL, NULL, NULL, NULL, 0, NULL},
    {"grace", PLG_CONFIG_DURATION, 0, NULL, NULL, NULL, NULL, 0, NULL},
    {"name", PLG_CONFIG_STRING, 0, "anon", NULL, NULL, NULL, 0, NULL},
};

/* Schema B: the same keys, the secret an ordinary unconstrained string, to read its value. */
static plg_config_key fz_schema_plain[FZ_KEYS];

static void fz_check(int cond)
{
    if (!cond)
        abort();
}

static size_t fz_errors(const plg_config *c)
{
    size_t i, n = 0;
    for (i = 0; i < plg_config_problem_count(c); i++)
        if (!plg_config_problem_at(c, i)->is_warning)
            n++;
    return n;
}

static void fz_check_text(const char *s)
{
    fz_check(s != NULL);
    for (; *s != '\0'; s++)
        fz_check((unsigned char)*s >= 0x20 && (unsigned char)*s != 0x7f);
}

static void fz_check_result(plg_result r, const plg_config *c, size_t text_len, int json)
{
    size_t i;
    fz_check(r == PLG_OK || r == PLG_ERR_CONFIG_SYNTAX || r == PLG_ERR_CONFIG_INVALID);
    fz_check(c != NULL);
    if (r == PLG_OK)
        fz_check(fz_errors(c) == 0);
    else
        fz_check(fz_errors(c) >= 1);
    if (r == PLG_ERR_CONFIG_SYNTAX) {
        fz_check(json);
        fz_check(plg_config_problem_count(c) == 1);
        fz_check(plg_config_problem_at(c, 0)->code == PLG_ERR_CONFIG_SYNTAX);
    }
    for (i = 0; i < plg_config_problem_count(c); i++) {
        const plg_config_problem *p = plg_config_problem_at(c, i);
        fz_check(p->code >= PLG_ERR_CONFIG_SYNTAX && p->code <= PLG_ERR_CONFIG_DUPLICATE_KEY);
        fz_check(p->code != PLG_ERR_CONFIG_INVALID);
        fz_check(!p->is_warning || p->code == PLG_ERR_CONFIG_UNKNOWN_KEY);
        fz_check_text(p->key);
        fz_check_text(p->message);
        fz_check(p->offset == PLG_NO_OFFSET || (json && p->offset <= text_len));
    }
    fz_check(plg_config_problem_at(c, plg_config_problem_count(c)) == NULL);
}

/* Formats c, checks snprintf semantics, the redaction and the round trip. */
static void fz_check_format(const plg_config *c, const plg_config_key *schema,
                            const char *secret_marked)
{
    size_t n = plg_config_format(c, NULL, 0), n2, cut;
    char *buf = (char *)malloc(n + 1), *small;
    plg_config *again = NULL;
    plg_result r;
    fz_check(buf != NULL);
    fz_check(plg_config_format(c, buf, n + 1) == n);
    fz_check(strlen(buf) == n);
    fz_check(n >= 2 && buf[0] == '{' && buf[n - 1] == '}');
    if (secret_marked != NULL)
        fz_check(strstr(buf, secret_marked) == NULL && strchr(buf, '~') == NULL);
    if (plg_config_is_set(c, "password") && (schema[FZ_SECRET].flags & PLG_KEY_SECRET))
        fz_check(strstr(buf, "\"password\":\"<redacted>\"") != NULL);
    /* truncated output is a prefix */
    cut = n / 2 + 1;
    small = (char *)malloc(cut);
    fz_check(small != NULL);
    fz_check(plg_config_format(c, small, cut) == n);
    fz_check(strlen(small) == cut - 1 && memcmp(small, buf, cut - 1) == 0);
    free(small);
    if (n <= 65536) {
        char *buf2;
        r = plg_config_parse_json(NULL, schema, FZ_KEYS, buf, PLG_CONFIG_STRICT, &again);
        fz_check(r == PLG_OK);
        fz_check(plg_config_problem_count(again) == 0);
        n2 = plg_config_format(again, NULL, 0);
        fz_check(n2 == n);
        buf2 = (char *)malloc(n2 + 1);
        fz_check(buf2 != NULL);
        plg_config_format(again, buf2, n2 + 1);
        fz_check(strcmp(buf, buf2) == 0);
        free(buf2);
        plg_config_destroy(again);
    }
    free(buf);
}

/* The secret's value as given, read through schema B; NULL when not given as a string. */
static char *fz_secret_value(const plg_config *plain_cfg)
{
    plg_config_value v;
    char *copy;
    if (plg_config_get(plain_cfg, "password", &v) != PLG_OK || v.is_set != 1 || v.string == NULL)
        return NULL;
    copy = (char *)malloc(strlen(v.string) + 1);
    fz_check(copy != NULL);
    memcpy(copy, v.string, strlen(v.string) + 1);
    return copy;
}

/* The secret must not appear in problems about its key. No message template contains '~', so a
   secret carrying one must not bring any '~' into its key's problems (this also catches a leak of
   a cut, quoted prefix); when the secret is the input's only source of '~', no '~' may appear in
   any problem at all. */
static void fz_check_secret(const plg_config *c, const char *secret, int marker_only_in_secret)
{
    size_t i;
    int marked;
    if (secret == NULL || strlen(secret) <= 3)
        return;
    marked = strchr(secret, '~') != NULL;
    for (i = 0; i < plg_config_problem_count(c); i++) {
        const plg_config_problem *p = plg_config_problem_at(c, i);
        if (strcmp(p->key, "password") == 0 && marked)
            fz_check(strstr(p->message, secret) == NULL && strchr(p->message, '~') == NULL);
        if (marker_only_in_secret)
            fz_check(strchr(p->message, '~') == NULL && strchr(p->key, '~') == NULL);
    }
}

/* The input can produce a '~' only through the secret: exactly one raw '~', and no escape. */
static int fz_marker_only_in_secret(const char *text, const char *secret)
{
    size_t tildes = 0;
    const char *s;
    if (secret == NULL || strchr(secret, '~') == NULL)
        return 0;
    for (s = text; *s != '\0'; s++) {
        if (*s == '~')
            tildes++;
        if (*s == '\\')
            return 0;
    }
    return tildes == 1;
}

static void fz_json(const char *text, size_t len)
{
    plg_config *c = NULL, *plain_cfg = NULL;
    plg_result r, rp;
    char *secret;
    int marker;
    r = plg_config_parse_json(NULL, fz_schema, FZ_KEYS, text, 0, &c);
    fz_check_result(r, c, len, 1);
    rp = plg_config_parse_json(NULL, fz_schema_plain, FZ_KEYS, text, PLG_CONFIG_LENIENT,
                               &plain_cfg);
    fz_check_result(rp, plain_cfg, len, 1);
    /* syntax does not depend on the schema */
    fz_check((r == PLG_ERR_CONFIG_SYNTAX) == (rp == PLG_ERR_CONFIG_SYNTAX));
    secret = fz_secret_value(plain_cfg);
    marker = fz_marker_only_in_secret(text, secret);
    fz_check_secret(c, secret, marker);
    if (r == PLG_OK) {
        fz_check(plg_config_is_set(c, "host") == 1);
        fz_check_format(c, fz_schema, marker ? secret : NULL);
    }
    if (rp == PLG_OK)
        fz_check_format(plain_cfg, fz_schema_plain, NULL);
    free(secret);
    plg_config_destroy(c);
    plg_config_destroy(plain_cfg);
    /* strict mode differs only in how unknown keys count */
    c = NULL;
    r = plg_config_parse_json(NULL, fz_schema, FZ_KEYS, text, PLG_CONFIG_STRICT, &c);
    fz_check_result(r, c, len, 1);
    plg_config_destroy(c);
}

/* The same text read as "key=value" lines for plg_config_parse_pairs; "key" alone is NULL. */
static void fz_pairs(char *text)
{
    const char *pairs[2 * 32];
    size_t n = 0;
    char *line = text;
    plg_config *c = NULL;
    plg_result r;
    while (line != NULL && *line != '\0' && n < 32) {
        char *next = strchr(line, '\n'), *eq;
        if (next != NULL)
            *next++ = '\0';
        eq = strchr(line, '=');
        pairs[2 * n] = line;
        if (eq != NULL) {
            *eq = '\0';
            pairs[2 * n + 1] = eq + 1;
        } else {
            pairs[2 * n + 1] = NULL;
        }
        n++;
        line = next;
    }
    r = plg_config_parse_pairs(NULL, fz_schema, FZ_KEYS, pairs, n, 0, &c);
    fz_check_result(r, c, 0, 0);
    if (r == PLG_OK)
        fz_check_format(c, fz_schema, NULL);
    plg_config_destroy(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text;
    size_t len;
    if (size > 70000)
        return 0;
    if (fz_schema_plain[0].key == NULL) {
        memcpy(fz_schema_plain, fz_schema, sizeof fz_schema);
        fz_schema_plain[FZ_SECRET].flags = 0;
        fz_schema_plain[FZ_SECRET].min = NULL;
        fz_schema_plain[FZ_SECRET].max = NULL;
        if (plg_schema_check(NULL, fz_schema, FZ_KEYS) != PLG_OK ||
            plg_schema_check(NULL, fz_schema_plain, FZ_KEYS) != PLG_OK)
            abort();
    }
    text = (char *)malloc(size + 1);
    if (text == NULL)
        return 0;
    if (size > 0)
        memcpy(text, data, size);
    text[size] = '\0';
    len = strlen(text);
    fz_json(text, len);
    if (size <= 4096)
        fz_pairs(text);
    free(text);
    return 0;
}
