/* examples/custom_backend/main.c - the persistence contract suite against the tinyqueue backend,
   registered at run time and opened by its provider name.

   The backend (backends/tinyqueue.h) is not part of the library: it was written the way a third
   party writes one (scaffolded with gen/scaffold.py, then filled in; see README.md). This
   program is what its CI would run: it registers the backend into a plugin registry, and the
   suite's factory opens every store by name with pers_open, exactly as an application does.

   Build and run from the library's root (a third party adds -I<library> or the flags of
   `pkg-config --cflags plugin-persistence`):
       gcc -std=c99 -Wall -Wextra -Wpedantic -Werror -I. -Iexamples/custom_backend \
           examples/custom_backend/main.c -o custom_backend -pthread -lm
       ./custom_backend                  every case
       ./custom_backend PS-LEASE-        the cases whose id starts with PS-LEASE-
       PERS_CONTRACT_SEED=<n> ./custom_backend PS-RANDOM-01    repeats a random sequence
   It prints one line per case (PASS, FAIL with every failed check, NOT SUPPORTED with the
   capability), the suite's summary, then "custom_backend: N passed, N failed"; the exit status
   is 1 when a case failed, 2 when the backend could not be registered. */
#define PLUGIN_REGISTRY_IMPLEMENTATION
#define PERSISTENCE_IMPLEMENTATION
#define PERSISTENCE_MEMORY_IMPLEMENTATION /* the suite compares every backend with memory.h */
#define PERSISTENCE_CONTRACT_IMPLEMENTATION
#define PERSISTENCE_TINYQUEUE_IMPLEMENTATION
#include "backends/tinyqueue.h"
#include "tests/contract/persistence_contract.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The suite's factory: a fresh, empty store per case, opened BY NAME through the registry,
   with the desc the suite passes (its fake clock and its counting allocator). tinyqueue keeps
   its data in the store, so a new store is an empty one. */
static pers_result open_store(void *user, const pers_store_desc *desc, pers_store **out)
{
    plg_registry *reg = (plg_registry *)user;
    return pers_open(reg, "tinyqueue", "{\"max_payload_bytes\":1048576}", desc, out);
}

/* The store may have been closed by the case already; pers_destroy handles both. Nothing
   outlives it, so there is nothing else to remove. */
static void teardown_store(void *user, pers_store *store)
{
    (void)user;
    pers_destroy(store);
}

int main(int argc, char **argv)
{
    const char *seed = getenv("PERS_CONTRACT_SEED");
    plg_registry *reg = NULL;
    pers_contract_target target;
    pers_contract_options opt;
    pers_contract_report rep;

    /* Registration at run time: nothing in the library knows about tinyqueue until here. */
    if (plg_registry_create(NULL, &reg) != PLG_OK) {
        printf("custom_backend: cannot create a registry\n");
        return 2;
    }
    if (tinyqueue_register(reg) != PERS_OK) {
        printf("custom_backend: tinyqueue_register failed: %s\n", plg_errmsg(reg));
        plg_registry_destroy(reg);
        return 2;
    }

    memset(&target, 0, sizeof target);
    target.name = "tinyqueue";
    target.open = open_store;
    target.teardown = teardown_store;
    target.user = reg;
    memset(&opt, 0, sizeof opt); /* zero: every default (3000 random steps, 4 threads...) */
    opt.filter = argc > 1 ? argv[1] : NULL;
    opt.seed = seed != NULL ? (uint64_t)strtoull(seed, NULL, 10) : 0;
    memset(&rep, 0, sizeof rep);
    (void)pers_contract_run(&target, &opt, &rep); /* prints every case and its summary */

    plg_registry_destroy(reg);
    printf("custom_backend: %lu passed, %lu failed\n", (unsigned long)rep.passed,
           (unsigned long)rep.failed);
    return rep.failed > 0 ? 1 : 0;
}
