/*
 * cmd_top.h - `naq top`: a full-screen live view of the event stream
 * (rates by state, queue depths, workers and their jobs, recent failures,
 * latency percentiles, a job's history on demand). Needs ncursesw.
 */
#ifndef NAQ_CMD_TOP_H
#define NAQ_CMD_TOP_H

int naq_cmd_top(int argc, char **argv);

#endif
