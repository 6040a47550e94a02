/* cli/spec.c — create's --disk and --net strings into the VmSpec messages
 * of api/vmm.proto.  The same key=value syntax as vmm's own options, so a
 * command line moves between the two unchanged. */
#include "cli/args.h"

#include "api/json.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int bad(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int bad(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int parse_port(const char *s, uint32_t *port)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	v = strtoul(s, &end, 10);
	if (*end || v < 1 || v > 65535)
		return -EINVAL;
	*port = (uint32_t)v;
	return 0;
}

int cli_disk__parse(char *buf, Vmmd__V1__Disk *d, char *err, size_t errlen)
{
	char *save = NULL, *kv;
	bool first = true;

	vmmd__v1__disk__init(d);
	for (kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save), first = false) {
		char *val = strchr(kv, '=');

		if (!val) {
			if (!first)
				return bad(err, errlen, "--disk: \"%s\" is not key=value", kv);
			d->path = kv;
			continue;
		}
		*val++ = 0;
		if (!strcmp(kv, "path")) {
			d->path = val;
		} else if (!strcmp(kv, "readonly")) {
			if (!strcmp(val, "on") || !strcmp(val, "true"))
				d->readonly = true;
			else if (strcmp(val, "off") && strcmp(val, "false"))
				return bad(err, errlen, "--disk: readonly=%s: must be on or off",
					   val);
		} else if (!strcmp(kv, "cache")) {
			if (!strcmp(val, "none"))
				d->cache = VMMD__V1__CACHE__CACHE_NONE;
			else if (!strcmp(val, "writeback"))
				d->cache = VMMD__V1__CACHE__CACHE_WRITEBACK;
			else
				return bad(err, errlen,
					   "--disk: cache=%s: must be none or writeback", val);
		} else if (!strcmp(kv, "queues")) {
			uint32_t q;

			if (parse_port(val, &q) || q > 64)
				return bad(err, errlen, "--disk: queues=%s: must be 1-64", val);
			d->queues = q;
		} else if (!strcmp(kv, "id")) {
			d->id = val;
		} else if (!strcmp(kv, "backend")) {
			if (!strcmp(val, "paravisor"))
				d->backend = VMMD__V1__DISK_BACKEND__DISK_BACKEND_PARAVISOR;
			else if (!strcmp(val, "vmm"))
				d->backend = VMMD__V1__DISK_BACKEND__DISK_BACKEND_VMM;
			else
				return bad(err, errlen,
					   "--disk: backend=%s: must be vmm or paravisor", val);
		} else {
			return bad(err, errlen, "--disk: unknown key \"%s\"", kv);
		}
	}
	if (!d->path || !*d->path)
		return bad(err, errlen, "--disk: path=FILE is required");
	return 0;
}

/* hostfwd=tcp:[ADDR]:HPORT-[ADDR]:GPORT, QEMU's syntax.  The guest address
 * is accepted and ignored: slirp forwards to the guest's one address. */
static int parse_hostfwd(char *s, Vmmd__V1__HostFwd *h)
{
	char *addr, *hport, *gport;

	vmmd__v1__host_fwd__init(h);
	addr = strchr(s, ':');
	if (!addr)
		return -EINVAL;
	*addr++ = 0;
	if (!strcmp(s, "tcp") || !*s)
		h->protocol = VMMD__V1__PROTOCOL__PROTOCOL_TCP;
	else if (!strcmp(s, "udp"))
		h->protocol = VMMD__V1__PROTOCOL__PROTOCOL_UDP;
	else
		return -EINVAL;
	hport = strchr(addr, ':');
	if (!hport)
		return -EINVAL;
	*hport++ = 0;
	if (*addr)
		h->host_addr = addr;
	gport = strchr(hport, '-');
	if (!gport)
		return -EINVAL;
	*gport++ = 0;
	if (strchr(gport, ':'))
		gport = strchr(gport, ':') + 1;
	if (parse_port(hport, &h->host_port) || parse_port(gport, &h->guest_port))
		return -EINVAL;
	return 0;
}

void cli_nic__free(Vmmd__V1__Nic *n)
{
	if (n->backend_case == VMMD__V1__NIC__BACKEND_SLIRP && n->slirp) {
		for (size_t i = 0; i < n->slirp->n_host_forwards; i++)
			free(n->slirp->host_forwards[i]);
		free(n->slirp->host_forwards);
		free(n->slirp);
	} else if (n->backend_case == VMMD__V1__NIC__BACKEND_TAP) {
		free(n->tap);
	}
	n->backend_case = VMMD__V1__NIC__BACKEND__NOT_SET;
}

static int nic_add_fwd(Vmmd__V1__Slirp *sl, char *val)
{
	Vmmd__V1__HostFwd **v, *h = malloc(sizeof(*h));

	if (!h)
		return -ENOMEM;
	if (parse_hostfwd(val, h)) {
		free(h);
		return -EINVAL;
	}
	v = realloc(sl->host_forwards, (sl->n_host_forwards + 1) * sizeof(*v));
	if (!v) {
		free(h);
		return -ENOMEM;
	}
	sl->host_forwards = v;
	v[sl->n_host_forwards++] = h;
	return 0;
}

int cli_nic__parse(char *buf, Vmmd__V1__Nic *n, char *err, size_t errlen)
{
	char *save = NULL, *kv, *val;
	int ret;

	vmmd__v1__nic__init(n);
	kv = strtok_r(buf, ",", &save);
	if (kv && !strcmp(kv, "slirp")) {
		n->slirp = malloc(sizeof(*n->slirp));
		if (!n->slirp)
			return -ENOMEM;
		vmmd__v1__slirp__init(n->slirp);
		n->backend_case = VMMD__V1__NIC__BACKEND_SLIRP;
	} else if (kv && !strncmp(kv, "tap=", 4) && kv[4]) {
		n->tap = malloc(sizeof(*n->tap));
		if (!n->tap)
			return -ENOMEM;
		vmmd__v1__tap__init(n->tap);
		n->tap->name = kv + 4;
		n->backend_case = VMMD__V1__NIC__BACKEND_TAP;
	} else {
		return bad(err, errlen, "--net: must start with slirp or tap=NAME");
	}
	while ((kv = strtok_r(NULL, ",", &save))) {
		val = strchr(kv, '=');
		if (!val) {
			ret = bad(err, errlen, "--net: \"%s\" is not key=value", kv);
			goto out_free;
		}
		*val++ = 0;
		if (!strcmp(kv, "mac")) {
			n->mac = val;
		} else if (!strcmp(kv, "id")) {
			n->id = val;
		} else if (!strcmp(kv, "hostfwd") &&
			   n->backend_case == VMMD__V1__NIC__BACKEND_SLIRP) {
			char copy[128];

			snprintf(copy, sizeof(copy), "%s", val);
			ret = nic_add_fwd(n->slirp, val);
			if (ret == -EINVAL)
				bad(err, errlen,
				    "--net: hostfwd=%s: use tcp:[ADDR]:HOSTPORT-:GUESTPORT (ports "
				    "1-65535)",
				    copy);
			if (ret)
				goto out_free;
		} else if (!strcmp(kv, "backend") &&
			   n->backend_case == VMMD__V1__NIC__BACKEND_SLIRP &&
			   (!strcmp(val, "paravisor") || !strcmp(val, "vmm"))) {
			n->paravisor = !strcmp(val, "paravisor");
		} else {
			ret = bad(err, errlen,
				  "--net: unknown key \"%s\" (or backend= other than vmm or "
				  "paravisor, or on a tap NIC)",
				  kv);
			goto out_free;
		}
	}
	return 0;
out_free:
	cli_nic__free(n);
	return ret;
}

json_t *cli_spec__create_request(const struct cli_args *a, char *err, size_t errlen)
{
	Vmmd__V1__CreateVmRequest req = VMMD__V1__CREATE_VM_REQUEST__INIT;
	Vmmd__V1__VmSpec spec = VMMD__V1__VM_SPEC__INIT;
	Vmmd__V1__Disk disks[CLI_MAX_LIST], *disk_ptrs[CLI_MAX_LIST];
	Vmmd__V1__Nic nics[CLI_MAX_LIST], *nic_ptrs[CLI_MAX_LIST];
	char *bufs[2 * CLI_MAX_LIST] = {0};
	size_t nr_bufs = 0, nr_nics = 0;
	json_t *out = NULL;

	spec.name = (char *)a->name;
	spec.memory_mib = a->memory_mib;
	spec.vcpus = a->vcpus;
	spec.kernel = (char *)a->kernel;
	if (a->initrd)
		spec.initrd = (char *)a->initrd;
	if (a->cmdline)
		spec.cmdline = (char *)a->cmdline;
	spec.rng = a->rng;
	spec.memory_prefault = a->prefault;
	spec.stop_timeout_s = a->stop_timeout_s;
	if (a->on_reboot && !strcmp(a->on_reboot, "stop"))
		spec.on_reboot = VMMD__V1__ON_REBOOT__ON_REBOOT_STOP;
	for (size_t i = 0; i < a->nr_disks; i++) {
		bufs[nr_bufs] = strdup(a->disks[i]);
		if (!bufs[nr_bufs] || cli_disk__parse(bufs[nr_bufs++], &disks[i], err, errlen))
			goto out;
		disk_ptrs[i] = &disks[i];
	}
	spec.n_disks = a->nr_disks;
	spec.disks = disk_ptrs;
	for (; nr_nics < a->nr_nets; nr_nics++) {
		bufs[nr_bufs] = strdup(a->nets[nr_nics]);
		if (!bufs[nr_bufs] || cli_nic__parse(bufs[nr_bufs++], &nics[nr_nics], err, errlen))
			goto out;
		nic_ptrs[nr_nics] = &nics[nr_nics];
	}
	spec.n_nics = nr_nics;
	spec.nics = nic_ptrs;
	req.spec = &spec;
	req.start = a->start;
	out = api_json__from_message(&req.base);
	if (!out)
		snprintf(err, errlen, "out of memory");
out:
	for (size_t i = 0; i < nr_nics; i++)
		cli_nic__free(&nics[i]);
	for (size_t i = 0; i < nr_bufs; i++)
		free(bufs[i]);
	return out;
}
