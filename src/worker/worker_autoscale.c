/*
 * worker_autoscale.c - how many jobs an autoscaling worker runs at once
 * (naq_worker_opts.autoscale_min/max, `naq worker --autoscale MIN:MAX`).
 *
 * The worker starts one executor thread per slot it may grow to; the
 * number of slots in use (slots_now) is what the fetcher asks for and
 * what lets an executor take a job (worker_pull.c). Changing it is a
 * store: no thread starts or stops, so a shrink never cuts a running job
 * (fewer slots only means fewer new jobs) and a grow takes effect on the
 * fetcher's next request.
 *
 * The keeper calls naq__autoscale_tick every tick with what the fetcher
 * knows: the jobs running, and the jobs waiting (fetched, or pending on
 * the server as the last job message's ack subject said). The rule itself
 * is autoscale.c's.
 */
#include "worker.h"

void naq__autoscale_tick(naq_worker *w, int64_t now_ms)
{
    int slots = atomic_load(&w->slots_now), running = 0;
    long long waiting = 0;
    naq__fetcher_load(w->fetcher, &running, &waiting);
    const char *reason = NULL;
    int to = naq__autoscale_step(&w->scale, slots, w->autoscale_min, w->concurrency, running,
                                 waiting, now_ms, &reason);
    if (to != slots) {
        atomic_store(&w->slots_now, to);
        naq__registry_concurrency(w->registry, slots, to, reason);
    }
}
