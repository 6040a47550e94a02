/* paravisor/vu_net.c — parses --net and builds the virtio-net model on a
 * slirp backend, on the socket to the netstack process that runs slirp
 * apart (how vmm starts it, so the NAT outlives a servicing), or on a tap
 * vmm opened and handed over (the paravisor may not open one).  vmm's parser
 * lives in a layer the paravisor must not include, so the few keys are read
 * here again; the MAC and hostfwd syntaxes are net/'s, shared with vmm. */
#include "paravisor/vu_net.h"

#include "common/log.h"
#include "net/mac.h"
#include "net/socket.h"
#include "net/tap.h"
#include "virtio/net.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int vu_net__opt(struct vu_net_opts *o, const char *k, const char *v)
{
	if (!strcmp(k, "mac")) {
		if (net_mac__parse(v, o->mac)) {
			pr_err("--net: mac=%s: expected a unicast MAC like 52:54:00:12:34:56", v);
			return -EINVAL;
		}
	} else if (!strcmp(k, "hostfwd") && !o->socket && !o->tap) {
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
	} else if (!strcmp(k, "fd") && (o->socket || o->tap)) {
		char *end;
		long fd = strtol(v, &end, 10);

		if (!*v || *end || fd < 3 || fd > 65535) {
			pr_err("--net: fd=%s: expected a descriptor number from 3 up", v);
			return -EINVAL;
		}
		o->fd = (int)fd;
	} else if (!strcmp(k, "id") && *v && strlen(v) < sizeof(o->id)) {
		snprintf(o->id, sizeof(o->id), "%s", v);
	} else {
		pr_err("--net: %s=%s: unknown key or bad value (%s, mac=MAC, id=NAME)", k, v,
		       o->socket || o->tap ? "fd=N" : "hostfwd=RULE");
		return -EINVAL;
	}
	return 0;
}

static const char *vu_net__kind(const struct vu_net_opts *o)
{
	return o->socket ? "socket" : o->tap ? "tap" : "slirp";
}

static struct virtio_device *vu_net__open(const struct vu_net_opts *o)
{
	struct virtio_device *vdev;
	struct net_backend *be;
	char why[200];

	if (o->socket)
		be = net_socket__new(o->id, o->fd, why, sizeof(why));
	else if (o->tap)
		be = net_tap__new_fd(o->id, o->fd, why, sizeof(why));
	else
		be = net_slirp__new(o->id, o->fwd, o->nr_fwd, why, sizeof(why));
	if (!be) {
		pr_err("NIC \"%s\": %s: %s", o->id, vu_net__kind(o), why);
		return NULL;
	}
	/* Ours now: the sandbox keeps what is close-on-exec. */
	if (o->socket || o->tap)
		fcntl(o->fd, F_SETFD, FD_CLOEXEC);
	vdev = virtio_net__new(o->id, o->mac, be);
	if (!vdev) {
		pr_err("NIC \"%s\": out of memory", o->id);
		net_backend__free(be);
		return NULL;
	}
	if (o->socket || o->tap)
		pr_info("NIC \"%s\": %s on descriptor %d, mac "
			"%02x:%02x:%02x:%02x:%02x:%02x",
			o->id, o->socket ? "the netstack" : "the tap", o->fd, o->mac[0], o->mac[1],
			o->mac[2], o->mac[3], o->mac[4], o->mac[5]);
	else
		pr_info("NIC \"%s\": slirp, mac %02x:%02x:%02x:%02x:%02x:%02x, %d hostfwd "
			"rule(s)",
			o->id, o->mac[0], o->mac[1], o->mac[2], o->mac[3], o->mac[4], o->mac[5],
			o->nr_fwd);
	return vdev;
}

int vu_net__parse(const char *opt, struct vu_net_opts *o)
{
	char *dup, *save = NULL, *tok;
	int err = -EINVAL;

	if (!opt)
		return -EINVAL;
	dup = strdup(opt);
	memset(o, 0, sizeof(*o));
	memcpy(o->mac, (uint8_t[]){0x52, 0x54, 0x00, 0x12, 0x34, 0x50}, sizeof(o->mac));
	snprintf(o->id, sizeof(o->id), "net0");
	o->fd = -1;
	if (!dup)
		return -ENOMEM;
	tok = strtok_r(dup, ",", &save);
	o->socket = tok && !strcmp(tok, "socket");
	o->tap = tok && !strcmp(tok, "tap");
	if (!tok || (strcmp(tok, "slirp") && !o->socket && !o->tap)) {
		pr_err("--net %s: expected slirp[,key=value...], socket,fd=N[,key=value...] or "
		       "tap,fd=N[,key=value...]",
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
		if (vu_net__opt(o, tok, eq + 1))
			goto out_free;
	}
	if ((o->socket || o->tap) && o->fd < 0) {
		pr_err("--net %s: %s needs fd=N (the paravisor cannot open one itself)", opt,
		       vu_net__kind(o));
		goto out_free;
	}
	err = 0;
out_free:
	free(dup);
	return err;
}

struct virtio_device *vu_net__create(const char *opt, struct vu_net_opts *o)
{
	if (vu_net__parse(opt, o))
		return NULL;
	return vu_net__open(o);
}
