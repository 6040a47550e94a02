/* vmm/dev_virtio_net.c — one virtio-net PCI function per --net option:
 *   --net slirp[,hostfwd=tcp:127.0.0.1:HOSTPORT-:GUESTPORT]...[,mac=MAC][,backend=vmm|paravisor]
 *   --net tap=NAME[,mac=MAC][,backend=vmm|paravisor][,restart=on|off]
 * The model and its backend live in virtio/net.c and net/, in vmm or, with
 * backend=paravisor, in a paravisor process (dev_vhost_user_net.c). */
#include "common/log.h"
#include "net/mac.h"
#include "net/slirp.h"
#include "net/tap.h"
#include "virtio/net.h"
#include "vmm/dev_net.h"
#include "vmm/device.h"
#include "vmm/paravisor_proc.h"
#include "vmm/virtio_pci.h"
#include "vmm/vm.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* One --net, checked. */
struct net_nic {
	struct net_slirp_fwd fwd[NET_SLIRP_MAX_FWD];
	int nr_fwd;
	uint8_t mac[6];
	const char *tap;
	bool paravisor;
	bool restart; /* restart=on|off: a paravisor NIC's process, when it dies */
	/* The hostfwd rules as given, for the paravisor's --net. */
	const char *fwd_str[NET_SLIRP_MAX_FWD];
};

static int net__bad(int i, const char *key, const char *val, const char *what)
{
	pr_err("--net #%d (net%d): %s=%s: %s", i + 1, i, key, val, what);
	return -EINVAL;
}

static int net__key(const struct kv_opt *o, int i, const char *key, const char *val,
		    struct net_nic *n)
{
	if (!strcmp(key, "mac")) {
		if (net_mac__parse(val, n->mac))
			return net__bad(i, key, val,
					"expected a unicast MAC like 52:54:00:12:34:56");
	} else if (!strcmp(key, "hostfwd") && o->kind) {
		if (n->nr_fwd == NET_SLIRP_MAX_FWD)
			return net__bad(i, key, val, "too many hostfwd rules (at most 16)");
		if (net_slirp__parse_hostfwd(val, &n->fwd[n->nr_fwd]))
			return net__bad(
			    i, key, val,
			    "expected [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT");
		n->fwd_str[n->nr_fwd++] = val;
	} else if (!strcmp(key, "hostfwd")) {
		return net__bad(i, key, val,
				"only for slirp (a tap's host side is the host's own network)");
	} else if (!strcmp(key, "backend")) {
		if (strcmp(val, "vmm") && strcmp(val, "paravisor"))
			return net__bad(i, key, val, "expected vmm or paravisor");
		n->paravisor = !strcmp(val, "paravisor");
	} else if (!strcmp(key, "restart")) {
		if (strcmp(val, "on") && strcmp(val, "off"))
			return net__bad(i, key, val, "expected on or off");
		n->restart = !strcmp(val, "on");
	} else if (!strcmp(key, "tap") && !o->kind) {
		n->tap = val;
	} else {
		return net__bad(i, key, val,
				o->kind ? "unknown key for slirp (hostfwd, mac, backend, restart)"
					: "unknown key for tap (tap, mac, backend, restart)");
	}
	return 0;
}

/* Checks NIC i's option into n; on error says so once. */
static int net__parse(const struct kv_opt *o, int i, struct net_nic *n)
{
	const char *tap = kv_opt__get(o, "tap");

	if (o->kind && strcmp(o->kind, "slirp")) {
		pr_err("--net #%d (net%d): unknown kind '%s': expected slirp or tap=NAME", i + 1, i,
		       o->kind);
		return -EINVAL;
	}
	if (!o->kind && !tap) {
		pr_err("--net #%d (net%d): expected slirp[,key=value...] or tap=NAME", i + 1, i);
		return -EINVAL;
	}
	if (o->kind && tap)
		return net__bad(i, "tap", tap, "slirp and tap exclude each other");
	memset(n, 0, sizeof(*n));
	n->mac[0] = 0x52, n->mac[1] = 0x54, n->mac[2] = 0x00, n->mac[3] = 0x12, n->mac[4] = 0x34;
	n->mac[5] = 0x50 + i;
	n->restart = true;
	for (int k = 0; k < o->n; k++)
		if (net__key(o, i, o->key[k], o->val[k], n))
			return -EINVAL;
	if (kv_opt__get(o, "restart") && !n->paravisor)
		return net__bad(i, "restart", kv_opt__get(o, "restart"),
				"only for backend=paravisor");
	return 0;
}

/* The netstack's --net (slirp and the hostfwd rules) and the paravisor's
 * (the socket to the netstack or the tap, whose fd= vmm adds, the MAC made
 * explicit).  The tap is opened here: the paravisor has no privileges. */
static int net__paravisor(struct vm *vm, const struct net_nic *n, int i, const char *id)
{
	char stack[1024], nic[128], mac[NET_MAC_STRLEN], why[160];
	const char *pci_id;
	size_t len;
	int fd;

	net_mac__format(n->mac, mac);
	snprintf(nic, sizeof(nic), "mac=%s,id=%s", mac, id);
	if (n->tap) {
		fd = net_tap__open(n->tap, why, sizeof(why));
		if (fd < 0) {
			pr_err("--net #%d (net%d): %s: %s", i + 1, i, n->tap, why);
			return fd;
		}
		pr_info("%s: tap %s, served by the paravisor", id, n->tap);
		return vhost_user_net__add_tap(vm, id, fd, nic, n->restart, &pci_id);
	}
	len = (size_t)snprintf(stack, sizeof(stack), "slirp,id=%s", id);
	for (int k = 0; k < n->nr_fwd && len < sizeof(stack); k++)
		len += (size_t)snprintf(stack + len, sizeof(stack) - len, ",hostfwd=%s",
					n->fwd_str[k]);
	return vhost_user_net__add(vm, id, stack, nic, n->restart, &pci_id);
}

static int virtio_net__init(struct vm *vm)
{
	for (int i = 0; i < vm->cfg->nr_nics; i++) {
		struct virtio_device *vdev;
		struct net_backend *be;
		struct net_nic n;
		char id[16], why[160];
		int err;

		snprintf(id, sizeof(id), "net%d", i);
		err = net__parse(&vm->cfg->nics[i], i, &n);
		if (err)
			return err;
		if (n.paravisor) {
			err = net__paravisor(vm, &n, i, id);
			if (err)
				return err;
			continue;
		}
		if (n.tap)
			be = net_tap__new(id, n.tap, why, sizeof(why));
		else
			be = net_slirp__new(id, n.fwd, n.nr_fwd, why, sizeof(why));
		if (!be) {
			pr_err("--net #%d (net%d): %s: %s", i + 1, i, n.tap ? n.tap : "slirp", why);
			return -EINVAL;
		}
		vdev = virtio_net__new(id, n.mac, be);
		if (!vdev) {
			net_backend__free(be);
			pr_err("%s: out of memory", id);
			return -ENOMEM;
		}
		err = virtio_pci__register(vm, vdev);
		if (err < 0) {
			pr_err("%s: cannot add the PCI device: %s", id, strerror(-err));
			vdev->ops->destroy(vdev);
			return err;
		}
		pr_debug("%s: %s, mac %02x:%02x:%02x:%02x:%02x:%02x", id, be->ops->kind, n.mac[0],
			 n.mac[1], n.mac[2], n.mac[3], n.mac[4], n.mac[5]);
	}
	return 0;
}
device_init(virtio_net__init, NULL);
