/*
 * naq/naq.h - the whole public API of libnaq.
 *
 * Thread-safety: a naq_client may be shared by threads; everything reached
 * through it (enqueue, logging, queries) is safe to call concurrently.
 * Plain structs (naq_event, naq_job_opts, naq_config) belong to one thread
 * at a time. Exceptions are marked where they are declared.
 */
#ifndef NAQ_NAQ_H
#define NAQ_NAQ_H

#include "naq/status.h"
#include "naq/config.h"
#include "naq/log.h"
#include "naq/id.h"
#include "naq/event.h"
#include "naq/client.h"
#include "naq/job.h"
#include "naq/dlq.h"
#include "naq/results.h"
#include "naq/worker.h"
#include "naq/store.h"
#include "naq/cron.h"
#include "naq/bench.h"
#include "naq/health.h"
#include "naq/metrics.h"
#include "naq/webhook.h"
#include "naq/ops.h"
#include "naq/processor.h"
#include "naq/schedule.h"
#include "naq/registry.h"
#include "naq/query.h"
#include "naq/stats.h"
#include "naq/auth.h"
#include "naq/backup.h"

#endif
