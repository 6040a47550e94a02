/* vmm/control.h — commands on vmm's control socket that a layer above vmm
 * provides (the saved-state layer's "snapshot"): registered from a
 * constructor, so vmm/ never includes what it runs. */
#ifndef VMMD_VMM_CONTROL_H
#define VMMD_VMM_CONTROL_H

#include <jansson.h>

struct vm;

struct control_cmd {
	const char *name;
	/* Runs on the VM's event loop thread; returns the reply object
	 * ({"ok":true,...} or control__fail()). */
	json_t *(*run)(struct vm *vm, json_t *req);
	struct control_cmd *next;
};

void control__register(struct control_cmd *cmd);
json_t *control__fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define control_command(cmdname, fn)                                           \
	static struct control_cmd __ctl_##fn = { .name = cmdname, .run = fn }; \
	static void __attribute__((constructor)) __ctl_register_##fn(void)     \
	{                                                                      \
		control__register(&__ctl_##fn);                                \
	}

#endif
