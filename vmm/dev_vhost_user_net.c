/*
 * vmm/dev_vhost_user_net.c — a --net slirp,...,backend=paravisor or
 * --net tap=NAME,backend=paravisor: the NIC's virtio-net model runs in a
 * paravisor process.  A slirp NIC's stack runs in a netstack process of
 * its own (`paravisor --netstack`), the two joined by a SOCK_SEQPACKET
 * socket that vmm keeps an end of (vmm/dev_vhost_user.c starts and watches
 * both); the hostfwd sockets are the netstack's.  A tap NIC's tap is
 * opened by vmm, which has the privileges, and handed over.
 *
 * So servicing and restarts replace the NIC's paravisor like a disk's and
 * hand the new one the socket or the tap: the slirp stack, its host
 * sockets and its NAT connections never move, nor does the tap, and frames
 * that arrive meanwhile wait in the socket or the tap's queue.  The
 * netstack itself is not serviced (libslirp 4.7 cannot hand its
 * connections to another process).
 */
#include "virtio/net.h"
#include "vmm/dev_net.h"
#include "vmm/dev_vhost_user.h"

static int vhost_user_net__add_desc(struct vm *vm, struct pv_dev_desc *desc, const char *id,
				    bool restart, const char **pci_id)
{
	desc->noun = "NIC";
	desc->flag = "--net";
	desc->serviceable = true;
	desc->restart = restart;
	desc->fc = (struct vhost_user_front_cfg){
	    .id = id,
	    .type = "virtio-net",
	    .device_id = VIRTIO_ID_NET,
	    .config_size = sizeof(struct virtio_net_config),
	    .queue_size = VIRTIO_NET_QUEUE_SIZE,
	    .nr_queues = 2,
	    /* Once the paravisor is gone for good the rings stay
	     * unanswered, as behind a pulled cable: answering receive
	     * buffers empty would only have the guest refill them in a
	     * busy loop. */
	    .refuse = NULL,
	};
	return pv_dev__add(vm, desc, pci_id);
}

int vhost_user_net__add(struct vm *vm, const char *id, const char *stack_opt, const char *nic_opt,
			bool restart, const char **pci_id)
{
	/* No migration blocker: the destination starts its own netstack,
	 * which takes the source's libslirp state (the transport's save). */
	struct pv_dev_desc desc = {
	    .opt_head = "socket,",
	    .opt = nic_opt,
	    .netstack_opt = stack_opt,
	    .extra_fd = -1,
	};

	return vhost_user_net__add_desc(vm, &desc, id, restart, pci_id);
}

/* It migrates as vmm's own tap NIC does: the destination's vmm opens the
 * tap by its name there and hands it to its paravisor. */
int vhost_user_net__add_tap(struct vm *vm, const char *id, int tap_fd, const char *nic_opt,
			    bool restart, const char **pci_id)
{
	struct pv_dev_desc desc = {
	    .opt_head = "tap,",
	    .opt = nic_opt,
	    .extra_fd = tap_fd,
	};

	return vhost_user_net__add_desc(vm, &desc, id, restart, pci_id);
}
