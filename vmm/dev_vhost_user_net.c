/*
 * vmm/dev_vhost_user_net.c — a --net slirp,...,backend=paravisor: the NIC's
 * model and its slirp stack run in a paravisor process (vmm/dev_vhost_user.c
 * starts and watches it).  The hostfwd sockets are the paravisor's: it
 * listens on them, and they close with it.
 *
 * Servicing leaves these NICs alone (not serviceable): slirp's connections
 * are state of the process, and handing them to a new one needs
 * slirp_state_save/load plus the host sockets behind them, not done yet.
 */
#include "virtio/net.h"
#include "vmm/dev_net.h"
#include "vmm/dev_vhost_user.h"

int vhost_user_net__add(struct vm *vm, const char *id, const char *opt, const char **pci_id)
{
	const struct pv_dev_desc desc = {
	    .noun = "NIC",
	    .flag = "--net",
	    .opt = opt,
	    .extra_fd = -1,
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
		    /* Once the paravisor is gone the rings stay unanswered, as
		     * behind a pulled cable: answering receive buffers empty
		     * would only have the guest refill them in a busy loop. */
		    .refuse = NULL,
		},
	};

	return pv_dev__add(vm, &desc, pci_id);
}
