/* vmm/dev_net.h — the two ways vmm serves a --net: its own virtio-net model
 * (dev_virtio_net.c) or a paravisor process over vhost-user
 * (dev_vhost_user_net.c). */
#ifndef VMMD_VMM_DEV_NET_H
#define VMMD_VMM_DEV_NET_H

#include <stdbool.h>

struct vm;

/* NIC id ("net0") served by a paravisor started with --net nic_opt, its
 * slirp by a netstack started with --net stack_opt (both already checked by
 * vmm); restart: a paravisor of it that dies is restarted.  0 and *pci_id,
 * or negative errno after one error line. */
int vhost_user_net__add(struct vm *vm, const char *id, const char *stack_opt, const char *nic_opt,
			bool restart, const char **pci_id);
/* The same on tap_fd (net_tap__open's, which this takes, also on failure):
 * handed to each of the NIC's paravisors, which get --net tap,fd=N,nic_opt. */
int vhost_user_net__add_tap(struct vm *vm, const char *id, int tap_fd, const char *nic_opt,
			    bool restart, const char **pci_id);

#endif
