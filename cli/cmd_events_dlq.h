/*
 * cmd_events_dlq.h - `naq events dlq list|replay`: the event dead-letter
 * stream of consumer groups (naq/processor.h).
 *
 * Wired into `naq events` as the subcommand "dlq": argv[0] is "naq events
 * dlq", argv[1] the action. Returns the exit code (0 ok, 1 failure, 2 bad
 * usage).
 */
#ifndef NAQ_CMD_EVENTS_DLQ_H
#define NAQ_CMD_EVENTS_DLQ_H

int naq_cmd_events_dlq(int argc, char **argv);

#endif
