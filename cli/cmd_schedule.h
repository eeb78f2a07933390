/*
 * cmd_schedule.h - `naq schedule ...` (manage schedules) and `naq
 * scheduler` (run a scheduler candidate). Same conventions as cli.h: argv[0]
 * names the command as typed, the return value is the exit code.
 */
#ifndef NAQ_CMD_SCHEDULE_H
#define NAQ_CMD_SCHEDULE_H

int naq_cmd_schedule(int argc, char **argv);
int naq_cmd_scheduler(int argc, char **argv);

#endif
