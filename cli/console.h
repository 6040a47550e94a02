/* cli/console.h — `vmmctl console`: an interactive session on a VM's serial
 * console, the terminal in raw mode, Ctrl-] then q to leave. */
#ifndef VMMD_CLI_CONSOLE_H
#define VMMD_CLI_CONSOLE_H

#include "cli/client.h"

/* Attaches to the console of the VM with this id (name: for messages)
 * until the user quits or the daemon ends the stream.  Returns an exit code. */
int console__run(struct client *c, const char *id, const char *name);

/* The escape state machine, separate so it is testable: feeds one input
 * byte, puts the bytes to send into out (at most 2) and their count in
 * *nr_out; returns 1 when the user asked to quit. */
struct console_esc {
	int armed; /* Ctrl-] seen */
};
#define CONSOLE_ESC 0x1d /* Ctrl-] */
int console__key(struct console_esc *e, unsigned char ch, unsigned char *out, size_t *nr_out);

#endif
