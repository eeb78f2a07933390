/*
 * cmd_events_webhook.h - `naq events webhook`: POST matching events to a
 * URL from a consumer group (naq/webhook.h). Wired into `naq events` as
 * the subcommand "webhook". Returns the exit code.
 */
#ifndef NAQ_CMD_EVENTS_WEBHOOK_H
#define NAQ_CMD_EVENTS_WEBHOOK_H

int naq_cmd_events_webhook(int argc, char **argv);

#endif
