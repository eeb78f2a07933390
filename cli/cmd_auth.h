/* cmd_auth.h - `naq auth` (cmd_auth.c): roles and NKeys for operators. */
#ifndef NAQ_CMD_AUTH_H
#define NAQ_CMD_AUTH_H

int naq_cmd_auth(int argc, char **argv);

#endif
