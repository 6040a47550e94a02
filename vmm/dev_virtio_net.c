/* vmm/dev_virtio_net.c — one virtio-net PCI function per --net option:
 *   --net slirp[,hostfwd=tcp:127.0.0.1:HOSTPORT-:GUESTPORT]...[,mac=MAC]
 *   --net tap=NAME[,mac=MAC]
 * The model and its backend live in virtio/net.c and net/. */
#include "common/log.h"
#include "net/slirp.h"
#include "net/tap.h"
#include "virtio/net.h"
#include "vmm/device.h"
#include "vmm/virtio_pci.h"
#include "vmm/vm.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int net__parse_mac(const char *s, uint8_t mac[6])
{
	unsigned int b[6];
	char end;

	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
		   &end) != 6 ||
	    strlen(s) != 17)
		return -EINVAL;
	for (int i = 0; i < 6; i++)
		mac[i] = b[i];
	if (mac[0] & 1) /* a multicast address cannot be a NIC's */
		return -EINVAL;
	return 0;
}

static int net__bad(int i, const char *key, const char *val, const char *what)
{
	pr_err("--net #%d (net%d): %s=%s: %s", i + 1, i, key, val, what);
	return -EINVAL;
}

/* Builds the backend NIC i asks for; on error says so once and returns NULL. */
static struct net_backend *net__backend(const struct kv_opt *o, int i, const char *id,
					uint8_t mac[6], int *err)
{
	struct net_slirp_fwd fwd[NET_SLIRP_MAX_FWD];
	const char *tap = kv_opt__get(o, "tap");
	struct net_backend *be;
	char why[160];
	int nr_fwd = 0;

	*err = -EINVAL;
	if (o->kind && strcmp(o->kind, "slirp")) {
		pr_err("--net #%d (net%d): unknown kind '%s': expected slirp or tap=NAME", i + 1, i,
		       o->kind);
		return NULL;
	}
	if (!o->kind && !tap) {
		pr_err("--net #%d (net%d): expected slirp[,key=value...] or tap=NAME", i + 1, i);
		return NULL;
	}
	if (o->kind && tap) {
		net__bad(i, "tap", tap, "slirp and tap exclude each other");
		return NULL;
	}
	mac[0] = 0x52, mac[1] = 0x54, mac[2] = 0x00, mac[3] = 0x12, mac[4] = 0x34;
	mac[5] = 0x50 + i;
	for (int k = 0; k < o->n; k++) {
		const char *key = o->key[k], *val = o->val[k];

		if (!strcmp(key, "mac")) {
			if (net__parse_mac(val, mac)) {
				net__bad(i, key, val,
					 "expected a unicast MAC like 52:54:00:12:34:56");
				return NULL;
			}
		} else if (!strcmp(key, "hostfwd") && o->kind) {
			if (nr_fwd == NET_SLIRP_MAX_FWD) {
				net__bad(i, key, val, "too many hostfwd rules (at most 16)");
				return NULL;
			}
			if (net_slirp__parse_hostfwd(val, &fwd[nr_fwd])) {
				net__bad(
				    i, key, val,
				    "expected [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT");
				return NULL;
			}
			nr_fwd++;
		} else if (!strcmp(key, "tap") && !o->kind) {
			continue;
		} else {
			net__bad(i, key, val,
				 o->kind ? "unknown key for slirp (hostfwd, mac)"
					 : "unknown key for tap (tap, mac)");
			return NULL;
		}
	}
	if (o->kind)
		be = net_slirp__new(id, fwd, nr_fwd, why, sizeof(why));
	else
		be = net_tap__new(id, tap, why, sizeof(why));
	if (!be) {
		pr_err("--net #%d (net%d): %s: %s", i + 1, i, o->kind ? "slirp" : tap, why);
		return NULL;
	}
	*err = 0;
	return be;
}

static int virtio_net__init(struct vm *vm)
{
	for (int i = 0; i < vm->cfg->nr_nics; i++) {
		struct virtio_device *vdev;
		struct net_backend *be;
		uint8_t mac[6];
		char id[16];
		int err;

		snprintf(id, sizeof(id), "net%d", i);
		be = net__backend(&vm->cfg->nics[i], i, id, mac, &err);
		if (!be)
			return err;
		vdev = virtio_net__new(id, mac, be);
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
		pr_debug("%s: %s, mac %02x:%02x:%02x:%02x:%02x:%02x", id, be->ops->kind, mac[0],
			 mac[1], mac[2], mac[3], mac[4], mac[5]);
	}
	return 0;
}
device_init(virtio_net__init, NULL);
