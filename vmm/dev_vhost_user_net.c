/*
 * vmm/dev_vhost_user_net.c — a --net slirp,...,backend=paravisor: the NIC's
 * virtio-net model runs in a paravisor process, its slirp stack in a
 * netstack process of its own (`paravisor --netstack`), the two joined by a
 * SOCK_SEQPACKET socket that vmm keeps an end of (vmm/dev_vhost_user.c
 * starts and watches both).  The hostfwd sockets are the netstack's.
 *
 * So servicing and restarts replace the NIC's paravisor like a disk's and
 * hand the new one the socket, as a tap fd would be handed on: the slirp
 * stack, its host sockets and its NAT connections never move, and frames
 * that arrive meanwhile wait in the socket.  The netstack itself is not
 * serviced (libslirp 4.7 cannot hand its connections to another process).
 */
#include "virtio/net.h"
#include "vmm/dev_net.h"
#include "vmm/dev_vhost_user.h"

int vhost_user_net__add(struct vm *vm, const char *id, const char *stack_opt, const char *nic_opt,
			bool restart, const char **pci_id)
{
	const struct pv_dev_desc desc = {
	    .noun = "NIC",
	    .flag = "--net",
	    .opt_head = "socket,",
	    .opt = nic_opt,
	    .netstack_opt = stack_opt,
	    .extra_fd = -1,
	    .serviceable = true,
	    .restart = restart,
	    /* The destination's slirp would start empty: no DHCP leases, no
	     * connections; nor is a migration of such a VM tested yet. */
	    .migration_blocker = "served by the paravisor, whose slirp state does not move "
				 "with a live migration yet",
	    .fc =
		{
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
		},
	};

	return pv_dev__add(vm, &desc, pci_id);
}
