/* test_registry_describe.c - plg_registry_describe_json: every plugin and key described, secrets
   redacted, snprintf semantics, unregistered plugins left out, valid JSON (a small checker
   below walks the whole text). Given an argument ("-" for stdout, else a file name) it writes
   the JSON of its example registry there instead of testing. */
#define PLUGIN_REGISTRY_IMPLEMENTATION
#include "plugin_registry.h"
#define GREETER_IMPLEMENTATION
#include "examples/plugins/greeter.h"
#define COUNTER_IMPLEMENTATION
#include "examples/plugins/counter.h"
#include "tests/test.h"

#include <stdlib.h>

/* A plugin with every kind of key and a dependency, all inline. */
static plg_result dj_init(plg_plugin *self, const plg_config *config, void **instance)
{
    (void)self;
    (void)config;
    *instance = NULL;
    return PLG_OK;
}

static void dj_shutdown(plg_plugin *self, void *instance)
{
    (void)self;
    (void)instance;
}

static const char *const dj_modes[] = {"fast", "safe"};
static const char *const dj_secret_modes[] = {"hunter2-alpha", "hunter2-beta"};
static const plg_config_key dj_schema[] = {
    {"mode", PLG_CONFIG_STRING, 0, "safe", NULL, NULL, dj_modes, 2, "fast | safe \"quoted\""},
    {"ratio", PLG_CONFIG_NUMBER, 0, "0.5", "0", "1", NULL, 0, NULL},
    {"enabled", PLG_CONFIG_BOOLEAN, 0, "true", NULL, NULL, NULL, 0, "on or off"},
    {"token", PLG_CONFIG_STRING, PLG_KEY_SECRET, "s3cr3t-default-value", "4", "64", NULL, 0,
     "never shown"},
    {"variant", PLG_CONFIG_STRING, PLG_KEY_SECRET, NULL, NULL, NULL, dj_secret_modes, 2, NULL},
    {"endpoint", PLG_CONFIG_STRING, PLG_KEY_REQUIRED, NULL, "1", "255", NULL, 0,
     "line one\nline two\ttabbed"},
};
static const plg_dependency dj_deps[] = {
    {"greeter", "greeter", "^1.0.0", 0},
    {NULL, "helper", NULL, 1},
};
static const char *const dj_caps[] = {"describe", "json"};

static plg_descriptor dj_descriptor(void)
{
    plg_descriptor d;
    memset(&d, 0, sizeof d);
    d.abi_version = PLG_DESCRIPTOR_ABI_VERSION;
    d.struct_size = (uint32_t)sizeof(plg_descriptor);
    d.type = "exporter";
    d.name = "dj";
    d.version = "2.1.0-rc.1";
    d.description = "describes itself";
    d.capabilities = dj_caps;
    d.capability_count = 2;
    d.host_api_range = ">=1.0.0 <2.0.0";
    d.dependencies = dj_deps;
    d.dependency_count = 2;
    d.config_schema = dj_schema;
    d.config_key_count = sizeof dj_schema / sizeof dj_schema[0];
    d.priority = 7;
    d.init = dj_init;
    d.shutdown = dj_shutdown;
    return d;
}

/* A strict JSON checker (RFC 8259 values; no extensions). Returns the position after the value,
   or NULL. */
static const char *dj_ws(const char *s)
{
    while (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r')
        s++;
    return s;
}

static const char *dj_value(const char *s, int depth);

static const char *dj_string(const char *s)
{
    if (*s++ != '"')
        return NULL;
    while (*s != '"') {
        if ((unsigned char)*s < 0x20)
            return NULL;
        if (*s == '\\') {
            s++;
            if (*s == 'u') {
                int i;
                for (i = 1; i <= 4; i++)
                    if (strchr("0123456789abcdefABCDEF", s[i]) == NULL || s[i] == '\0')
                        return NULL;
                s += 4;
            } else if (strchr("\"\\/bfnrt", *s) == NULL || *s == '\0') {
                return NULL;
            }
        }
        s++;
    }
    return s + 1;
}

static const char *dj_value(const char *s, int depth)
{
    s = dj_ws(s);
    if (depth > 64)
        return NULL;
    if (*s == '{' || *s == '[') {
        char close = *s == '{' ? '}' : ']';
        int object = *s == '{';
        s = dj_ws(s + 1);
        if (*s == close)
            return s + 1;
        for (;;) {
            if (object) {
                s = dj_string(dj_ws(s));
                if (s == NULL || *(s = dj_ws(s)) != ':')
                    return NULL;
                s++;
            }
            s = dj_value(s, depth + 1);
            if (s == NULL)
                return NULL;
            s = dj_ws(s);
            if (*s == close)
                return s + 1;
            if (*s++ != ',')
                return NULL;
        }
    }
    if (*s == '"')
        return dj_string(s);
    if (strncmp(s, "true", 4) == 0)
        return s + 4;
    if (strncmp(s, "false", 5) == 0)
        return s + 5;
    if (strncmp(s, "null", 4) == 0)
        return s + 4;
    if (*s == '-' || (*s >= '0' && *s <= '9')) {
        char *end;
        (void)strtod(s, &end);
        return end > s ? end : NULL;
    }
    return NULL;
}

static int dj_valid_json(const char *text)
{
    const char *end = dj_value(text, 0);
    return end != NULL && *dj_ws(end) == '\0';
}

/* The description of reg, allocated (free it). */
static char *dj_describe(plg_registry *reg)
{
    size_t need = plg_registry_describe_json(reg, NULL, 0), got;
    char *text = (char *)malloc(need + 1);
    if (text == NULL)
        return NULL;
    got = plg_registry_describe_json(reg, text, need + 1);
    if (got != need) {
        free(text);
        return NULL;
    }
    return text;
}

static plg_registry *dj_registry(void)
{
    plg_registry *reg = NULL;
    plg_descriptor d = dj_descriptor();
    if (plg_registry_create(NULL, &reg) != PLG_OK)
        return NULL;
    if (greeter_register(reg) != PLG_OK || counter_register(reg) != PLG_OK ||
        plg_register(reg, &d, NULL) != PLG_OK) {
        plg_registry_destroy(reg);
        return NULL;
    }
    return reg;
}

TEST(describes_every_plugin_and_key)
{
    plg_registry *reg = dj_registry();
    char *text;
    CHECK(reg != NULL);
    if (reg == NULL)
        return;
    text = dj_describe(reg);
    CHECK(text != NULL);
    CHECK(dj_valid_json(text));
    CHECK_CONTAINS(text, "\"format\": \"plugin-registry-description\"");
    CHECK_CONTAINS(text, "\"format_version\": 1");
    CHECK_CONTAINS(text, "\"library_version\": \"" PLG_VERSION_STRING "\"");
    CHECK_CONTAINS(text, "\"host_api_version\": \"1.0.0\"");
    CHECK_CONTAINS(text, "\"name\": \"greeter\"");
    CHECK_CONTAINS(text, "\"name\": \"counter\"");
    CHECK_CONTAINS(text, "\"type\": \"exporter\"");
    CHECK_CONTAINS(text, "\"version\": \"2.1.0-rc.1\"");
    CHECK_CONTAINS(text, "\"priority\": 7");
    CHECK_CONTAINS(text, "\"state\": \"registered\"");
    CHECK_CONTAINS(text, "\"capabilities\": [\"describe\", \"json\"]");
    CHECK_CONTAINS(text, "\"host_api_range\": \">=1.0.0 <2.0.0\"");
    /* A dependency without a type has the dependent's type; no range is null. */
    CHECK_CONTAINS(text, "\"type\": \"exporter\",\n          \"name\": \"helper\",\n"
                         "          \"range\": null,\n          \"optional\": true");
    CHECK_CONTAINS(text, "\"range\": \"^1.0.0\"");
    CHECK_CONTAINS(text, "\"interface\": {\n        \"id\": \"greeter.v1\"");
    CHECK_CONTAINS(text, "\"interface\": null");
    CHECK_CONTAINS(text, "\"library\": null");
    /* Every key, with type, flags, default, bounds, allowed values and description. */
    CHECK_CONTAINS(text, "\"key\": \"mode\",\n          \"type\": \"string\",\n"
                         "          \"required\": false,\n          \"secret\": false,\n"
                         "          \"default\": \"safe\",\n          \"min\": null,\n"
                         "          \"max\": null,\n          \"allowed\": [\"fast\", \"safe\"],\n"
                         "          \"description\": \"fast | safe \\\"quoted\\\"\"");
    CHECK_CONTAINS(text, "\"type\": \"number\"");
    CHECK_CONTAINS(text, "\"type\": \"boolean\"");
    CHECK_CONTAINS(text, "\"type\": \"duration\"");
    CHECK_CONTAINS(text, "\"type\": \"integer\"");
    CHECK_CONTAINS(text, "\"min\": \"0\",\n          \"max\": \"1\"");
    CHECK_CONTAINS(text, "\"required\": true");
    CHECK_CONTAINS(text, "\"description\": \"line one\\nline two\\ttabbed\"");
    CHECK_CONTAINS(text, "\"description\": null");
    free(text);
    plg_registry_destroy(reg);
}

TEST(secrets_are_redacted)
{
    plg_registry *reg = dj_registry();
    char *text;
    CHECK(reg != NULL);
    if (reg == NULL)
        return;
    text = dj_describe(reg);
    CHECK(text != NULL);
    CHECK_NOT_CONTAINS(text, "s3cr3t-default-value");
    CHECK_NOT_CONTAINS(text, "greeter-demo-key"); /* greeter's api_key default */
    CHECK_NOT_CONTAINS(text, "hunter2");          /* allowed values of a secret key */
    CHECK_CONTAINS(text, "\"key\": \"token\",\n          \"type\": \"string\",\n"
                         "          \"required\": false,\n          \"secret\": true,\n"
                         "          \"default\": \"<redacted>\",\n          \"min\": \"4\",\n"
                         "          \"max\": \"64\",\n          \"allowed\": null");
    /* A secret without a default says so: null, not "<redacted>". */
    CHECK_CONTAINS(text, "\"key\": \"variant\",\n          \"type\": \"string\",\n"
                         "          \"required\": false,\n          \"secret\": true,\n"
                         "          \"default\": null");
    free(text);
    plg_registry_destroy(reg);
}

TEST(snprintf_semantics)
{
    plg_registry *reg = dj_registry();
    char small[16], *full;
    size_t need, i;
    CHECK(reg != NULL);
    if (reg == NULL)
        return;
    need = plg_registry_describe_json(reg, NULL, 0);
    CHECK(need > 100);
    full = dj_describe(reg);
    CHECK(full != NULL && strlen(full) == need);
    memset(small, 'x', sizeof small);
    CHECK_INT(plg_registry_describe_json(reg, small, sizeof small), need);
    CHECK_INT(strlen(small), sizeof small - 1);
    CHECK(full != NULL && memcmp(small, full, sizeof small - 1) == 0);
    /* Every size: the need is the same, the text a NUL-terminated prefix. */
    for (i = 1; full != NULL && i <= need + 1; i += 97) {
        char *part = (char *)malloc(i);
        CHECK(part != NULL);
        if (part == NULL)
            break;
        CHECK_INT(plg_registry_describe_json(reg, part, i), need);
        CHECK_INT(strlen(part), i - 1 < need ? i - 1 : need);
        CHECK(strncmp(part, full, i - 1) == 0);
        free(part);
    }
    small[0] = 'x';
    CHECK_INT(plg_registry_describe_json(reg, small, 0), need); /* size 0: nothing written */
    CHECK(small[0] == 'x');
    CHECK_INT(plg_registry_describe_json(NULL, small, sizeof small), 0);
    CHECK_STR(small, "");
    free(full);
    plg_registry_destroy(reg);
}

TEST(empty_registry_and_unregistered_plugins)
{
    plg_registry *reg = NULL;
    plg_plugin *p = NULL;
    char *text;
    CHECK(plg_registry_create(NULL, &reg) == PLG_OK);
    if (reg == NULL)
        return;
    text = dj_describe(reg);
    CHECK(text != NULL && dj_valid_json(text));
    CHECK_CONTAINS(text, "\"plugins\": []");
    free(text);
    CHECK(greeter_register(reg) == PLG_OK);
    CHECK(counter_register(reg) == PLG_OK);
    CHECK(plg_find(reg, "greeter", "greeter", &p) == PLG_OK);
    CHECK(plg_unregister(reg, p) == PLG_OK);
    text = dj_describe(reg);
    CHECK(text != NULL && dj_valid_json(text));
    CHECK_NOT_CONTAINS(text, "\"name\": \"greeter\"");
    CHECK_CONTAINS(text, "\"name\": \"counter\"");
    free(text);
    plg_registry_destroy(reg);
}

TEST(state_follows_the_lifecycle)
{
    plg_registry *reg = dj_registry();
    plg_plugin *p = NULL;
    char *text;
    CHECK(reg != NULL);
    if (reg == NULL)
        return;
    CHECK(plg_find(reg, "greeter", "greeter", &p) == PLG_OK);
    CHECK(plg_init(reg, p, "{\"sender\":\"Ada\"}") == PLG_OK);
    CHECK(plg_start(reg, p) == PLG_OK);
    text = dj_describe(reg);
    CHECK(text != NULL);
    CHECK_CONTAINS(text, "\"name\": \"greeter\",\n      \"version\": \"1.2.0\"");
    CHECK_CONTAINS(text, "\"state\": \"started\"");
    CHECK_NOT_CONTAINS(text, "Ada"); /* configuration values are not part of the description */
    free(text);
    plg_registry_destroy(reg);
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        plg_registry *reg = dj_registry();
        char *text = reg != NULL ? dj_describe(reg) : NULL;
        FILE *f = strcmp(argv[1], "-") == 0 ? stdout : fopen(argv[1], "w");
        if (text == NULL || f == NULL)
            return 1;
        fputs(text, f);
        if (f != stdout)
            fclose(f);
        free(text);
        plg_registry_destroy(reg);
        return 0;
    }
    RUN(describes_every_plugin_and_key);
    RUN(secrets_are_redacted);
    RUN(snprintf_semantics);
    RUN(empty_registry_and_unregistered_plugins);
    RUN(state_follows_the_lifecycle);
    return test_summary();
}
