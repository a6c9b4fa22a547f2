/* examples/custom_backend/app.c - how an application uses a backend registered at run time:
   it opens the store by provider name and never calls the backend directly.

       gcc -std=c99 -Wall -Wextra -Wpedantic -Werror -I. -Iexamples/custom_backend \
           examples/custom_backend/app.c -o custom_backend_app -pthread -lm
       ./custom_backend_app              uses "tinyqueue"
       ./custom_backend_app redis        an unknown provider: the message lists the known ones

   A producer enqueues three tasks (one of them twice, with an idempotency key), a worker claims
   them in priority order, fails one once (nack with a retry delay), completes the others, and
   the program prints the results and the queue's statistics. Swapping the backend is changing
   the provider name (or PERSISTENCE_PROVIDER with pers_open_env): nothing else here changes. */
#define PLUGIN_REGISTRY_IMPLEMENTATION
#define PERSISTENCE_IMPLEMENTATION
#define PERSISTENCE_TINYQUEUE_IMPLEMENTATION
#include "backends/tinyqueue.h"

#include <stdio.h>
#include <string.h>

static int enqueue(pers_store *store, const char *text, int32_t priority, const char *key)
{
    pers_enqueue_req req;
    pers_enqueue_res res;
    memset(&req, 0, sizeof req); /* zero means default, field by field */
    req.tenant = "acme";
    req.queue = "email";
    req.payload = text;
    req.payload_len = strlen(text);
    req.priority = priority;
    req.idempotency_key = key;
    if (pers_enqueue(store, &req, &res) != PERS_OK) {
        fprintf(stderr, "enqueue: %s\n", pers_errmsg(store));
        return -1;
    }
    printf("enqueued \"%s\" (priority %d)%s\n", text, (int)priority,
           res.duplicate ? ": a duplicate, the first task stands" : "");
    return 0;
}

int main(int argc, char **argv)
{
    const char *provider = argc > 1 ? argv[1] : "tinyqueue";
    const char *queues[] = {"email"};
    plg_registry *reg = NULL;
    pers_store *store = NULL;
    pers_store_desc desc;
    pers_claim_req claim;
    pers_claim_res got;
    pers_task task;
    pers_lease lease;
    pers_completion done;
    pers_task_result result;
    pers_task_state state;
    pers_stats stats;
    char why[512];
    int round, status = 0;

    memset(&desc, 0, sizeof desc);
    desc.open_message = why; /* where pers_open explains a failure */
    desc.open_message_size = sizeof why;
    if (plg_registry_create(NULL, &reg) != PLG_OK || tinyqueue_register(reg) != PERS_OK)
        return 1;
    if (pers_open(reg, provider, "{\"max_tasks\":1000}", &desc, &store) != PERS_OK) {
        fprintf(stderr, "cannot open provider \"%s\": %s\n", provider, why);
        plg_registry_destroy(reg);
        return 1;
    }
    printf("opened provider \"%s\"\n", pers_store_provider(store));

    if (enqueue(store, "welcome mail to ada", 0, NULL) != 0 ||
        enqueue(store, "password reset for bob", 10, "reset-bob") != 0 ||
        enqueue(store, "password reset for bob", 10, "reset-bob") != 0 ||
        enqueue(store, "newsletter", -5, NULL) != 0)
        status = 1;

    memset(&claim, 0, sizeof claim);
    claim.tenant = "acme";
    claim.queues = queues;
    claim.queue_count = 1;
    claim.worker_id = "worker-1";
    claim.lease_ms = 30000;
    claim.max_tasks = 1; /* `task` has room for one */
    for (round = 0; status == 0; round++) {
        if (pers_claim(store, &claim, &task, &got) != PERS_OK) {
            fprintf(stderr, "claim: %s\n", pers_errmsg(store));
            status = 1;
            break;
        }
        if (got.count == 0) {
            printf("nothing left to claim\n");
            break;
        }
        lease.tenant = task.tenant;
        lease.task_id = task.id;
        lease.token = task.lease_token;
        printf("claimed \"%s\" (attempt %u)\n", (const char *)task.payload,
               (unsigned)task.attempts);
        if (round == 0) {
            /* The first one fails once: retried at once (delay 0), the reason kept. */
            if (pers_nack(store, &lease, 0, "smtp timeout", &state) == PERS_OK)
                printf("  nack: \"smtp timeout\", now %s\n", pers_state_name(state));
            else
                status = 1;
        } else {
            memset(&done, 0, sizeof done);
            done.data = "sent";
            done.data_len = 4;
            if (pers_complete(store, &lease, &done) != PERS_OK ||
                pers_get_result(store, "acme", task.id, &result) != PERS_OK) {
                fprintf(stderr, "complete: %s\n", pers_errmsg(store));
                status = 1;
            } else {
                printf("  completed: %s, result \"%s\"\n", pers_state_name(result.state),
                       (const char *)result.data);
                pers_task_result_free(store, &result);
            }
        }
        pers_task_free(store, &task); /* the payload belongs to the caller */
    }

    if (pers_queue_stats(store, "acme", "email", &stats) == PERS_OK)
        printf("stats: %lu ready, %lu leased, %lu completed, %lu dead\n",
               (unsigned long)stats.ready, (unsigned long)stats.leased,
               (unsigned long)stats.completed, (unsigned long)stats.dead);
    pers_destroy(store); /* closes, then frees the handle */
    plg_registry_destroy(reg);
    return status;
}
