/*
 * cmd_events_query.h - the `naq events` subcommands that query the event
 * log (list, count, delete, cleanup, replay, stats, workers) and run the
 * stats rollup maintainer. cmd_events.c dispatches to them; each receives
 * argv with argv[0] naming the subcommand as typed ("naq events list") and
 * returns the exit code (0 ok, 1 failure, 2 bad usage).
 */
#ifndef NAQ_CMD_EVENTS_QUERY_H
#define NAQ_CMD_EVENTS_QUERY_H

int naq_cmd_events_list(int argc, char **argv);
int naq_cmd_events_count(int argc, char **argv);
int naq_cmd_events_delete(int argc, char **argv);
int naq_cmd_events_cleanup(int argc, char **argv);
int naq_cmd_events_replay(int argc, char **argv);
int naq_cmd_events_stats(int argc, char **argv);
int naq_cmd_events_workers(int argc, char **argv);
int naq_cmd_events_rollup(int argc, char **argv);

#endif
