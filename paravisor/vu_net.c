/* paravisor/vu_net.c — parses --net and builds the virtio-net model on a
 * slirp backend.  vmm's parser lives in a layer the paravisor must not
 * include, so the few keys are read here again; the MAC and hostfwd
 * syntaxes are net/'s, shared with vmm. */
#include "paravisor/vu_net.h"

#include "common/log.h"
#include "net/mac.h"
#include "net/slirp.h"
#include "virtio/net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct vu_net_opts {
	struct net_slirp_fwd fwd[NET_SLIRP_MAX_FWD];
	int nr_fwd;
	uint8_t mac[6];
	const char *id;
};

static int vu_net__opt(struct vu_net_opts *o, const char *k, const char *v)
{
	if (!strcmp(k, "mac")) {
		if (net_mac__parse(v, o->mac)) {
			pr_err("--net: mac=%s: expected a unicast MAC like 52:54:00:12:34:56", v);
			return -EINVAL;
		}
	} else if (!strcmp(k, "hostfwd")) {
		if (o->nr_fwd == NET_SLIRP_MAX_FWD) {
			pr_err("--net: hostfwd=%s: too many hostfwd rules (at most %d)", v,
			       NET_SLIRP_MAX_FWD);
			return -EINVAL;
		}
		if (net_slirp__parse_hostfwd(v, &o->fwd[o->nr_fwd])) {
			pr_err("--net: hostfwd=%s: expected "
			       "[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT",
			       v);
			return -EINVAL;
		}
		o->nr_fwd++;
	} else if (!strcmp(k, "id") && *v && strlen(v) < 32) {
		o->id = v;
	} else {
		pr_err("--net: %s=%s: unknown key or bad value (hostfwd=RULE, mac=MAC, id=NAME)", k,
		       v);
		return -EINVAL;
	}
	return 0;
}

static struct virtio_device *vu_net__open(const struct vu_net_opts *o)
{
	struct virtio_device *vdev;
	struct net_backend *be;
	char why[160];

	be = net_slirp__new(o->id, o->fwd, o->nr_fwd, why, sizeof(why));
	if (!be) {
		pr_err("NIC \"%s\": slirp: %s", o->id, why);
		return NULL;
	}
	vdev = virtio_net__new(o->id, o->mac, be);
	if (!vdev) {
		pr_err("NIC \"%s\": out of memory", o->id);
		net_backend__free(be);
		return NULL;
	}
	pr_info("NIC \"%s\": slirp, mac %02x:%02x:%02x:%02x:%02x:%02x, %d hostfwd rule(s)", o->id,
		o->mac[0], o->mac[1], o->mac[2], o->mac[3], o->mac[4], o->mac[5], o->nr_fwd);
	return vdev;
}

struct virtio_device *vu_net__create(const char *opt)
{
	struct vu_net_opts o = {.mac = {0x52, 0x54, 0x00, 0x12, 0x34, 0x50}, .id = "net0"};
	struct virtio_device *vdev = NULL;
	char *dup = strdup(opt), *save = NULL, *tok;

	if (!dup)
		return NULL;
	tok = strtok_r(dup, ",", &save);
	if (!tok || strcmp(tok, "slirp")) {
		pr_err("--net %s: expected slirp[,key=value...] (tap is not served by the "
		       "paravisor yet)",
		       opt);
		goto out_free;
	}
	while ((tok = strtok_r(NULL, ",", &save))) {
		char *eq = strchr(tok, '=');

		if (!eq || eq == tok) {
			pr_err("--net: '%s': expected key=value", tok);
			goto out_free;
		}
		*eq = 0;
		if (vu_net__opt(&o, tok, eq + 1))
			goto out_free;
	}
	vdev = vu_net__open(&o);
out_free:
	free(dup);
	return vdev;
}
