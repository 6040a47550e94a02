/* vmm/init.c — runs the self-registered init hooks in priority order. */
#include "common/log.h"
#include "vmm/device.h"
#include "vmm/vm.h"

#include <errno.h>
#include <stdlib.h>

static struct init_hook *hooks; /* sorted by prio, stable within a prio */

void init_hook__register(struct init_hook *hook)
{
	struct init_hook **p = &hooks;

	while (*p && (*p)->prio <= hook->prio)
		p = &(*p)->next;
	hook->next = *p;
	*p = hook;
}

static void init_hooks__unwind(struct vm *vm, struct init_hook *upto)
{
	/* The list is singly linked; unwinding walks it once per hook (a few dozen). */
	while (upto != hooks) {
		struct init_hook *h = hooks;

		while (h->next != upto)
			h = h->next;
		if (h->exit)
			h->exit(vm);
		upto = h;
	}
}

int init_hooks__run(struct vm *vm)
{
	struct init_hook *h;

	for (h = hooks; h; h = h->next) {
		int err = h->init(vm);

		if (err < 0) {
			pr_debug("init %s failed: %d", h->name, err);
			init_hooks__unwind(vm, h);
			return err;
		}
	}
	return 0;
}

void init_hooks__exit(struct vm *vm)
{
	init_hooks__unwind(vm, NULL);
}

int vm__register_state(struct vm *vm, const struct state_ops *ops, void *opaque)
{
	struct state_section *n =
		realloc(vm->states, sizeof(*n) * (size_t)(vm->nr_states + 1));

	if (!n)
		return -ENOMEM;
	vm->states = n;
	vm->states[vm->nr_states++] = (struct state_section){ ops, opaque };
	return 0;
}
