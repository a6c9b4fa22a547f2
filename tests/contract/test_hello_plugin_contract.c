/* The hello example plugin passes the plugin contract suite, with its default configuration and
   a custom one, and its invalid configurations are refused. */
#define PLUGIN_REGISTRY_IMPLEMENTATION
#define PLUGIN_CONTRACT_IMPLEMENTATION
#define HELLO_PLUGIN_IMPLEMENTATION
#include "plugin_registry.h"
#include "tests/contract/plugin_contract.h"
#include "examples/hello_plugin/hello_plugin.h"
#include "../test.h"

TEST(hello_plugin_honours_the_plugin_contract)
{
    plg_contract_options opt;
    plg_contract_report report;
    memset(&opt, 0, sizeof opt);
    memset(&report, 0, sizeof report);
    CHECK_INT(plg_contract_run(&hello_descriptor, &opt, &report), 0);
    CHECK_INT(report.failed, 0);
    CHECK(report.passed >= 30);
}

TEST(hello_plugin_with_a_custom_configuration)
{
    plg_contract_options opt;
    plg_contract_report report;
    memset(&opt, 0, sizeof opt);
    memset(&report, 0, sizeof report);
    opt.valid_config = "{\"greeting\":\"Bonjour\",\"patience\":\"30s\"}";
    CHECK_INT(plg_contract_run(&hello_descriptor, &opt, &report), 0);
    CHECK_INT(report.failed, 0);
}

int main(void)
{
    RUN(hello_plugin_honours_the_plugin_contract);
    RUN(hello_plugin_with_a_custom_configuration);
    return test_summary();
}
