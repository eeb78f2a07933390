/*
 * scheduler.h - what the scheduler's modules share, private to them:
 *   schedule.c        the schedule model and its codec
 *   schedule_store.c  the schedules bucket
 *   cron.c, tzif.c    cron expressions, time zones (tzif.h, calendar.h)
 *   lease.c           the leader lease (lease.h)
 *   scheduler.c       the leader loop
 * The due-time index of delayed jobs it ticks is jobs/delay.c (internal.h).
 */
#ifndef NAQ_SRC_SCHEDULER_H
#define NAQ_SRC_SCHEDULER_H

#include "internal.h"

#include "naq/schedule.h"

/* Decodes a KV entry (a put) into out, with its revision. */
naq_status naq__schedule_from_entry(kvEntry *e, naq_schedule *out);
/* The job-level echo of a schedule's transition (schedule_paused,
 * schedule_resumed, schedule_deactivated with a reason): logged on the
 * subject of the job the schedule makes next, or, when it makes no more,
 * the one it made last (schedule.c); nothing when it never ran and never
 * will. */
void naq__schedule_job_event(naq_client *c, naq_event_type t, const naq_schedule *s,
                             const char *reason);

#endif /* NAQ_SRC_SCHEDULER_H */
