/* vmm/kvm_state.c — saved state that lives inside KVM: every vCPU's registers,
 * FPU, MSRs, local APIC and pending events ("vcpu.N"), and the VM's PIC,
 * IOAPIC, PIT and kvmclock ("kvm.irqchip").  Saved while the vCPUs are parked
 * (vm__pause); restored into a VM whose vCPUs have not run yet. */
#include "common/log.h"
#include "vmm/device.h"
#include "vmm/state.pb-c.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define MSR_BATCH 256

struct msr_list {
	uint32_t n;
	uint32_t *index;
};

static struct msr_list kvm_msrs;

static int kvm_state__msr_list(struct vm *vm)
{
	struct kvm_msr_list probe = { .nmsrs = 0 }, *l;

	if (kvm_msrs.index)
		return 0;
	/* E2BIG tells how many there are. */
	if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG)
		return -errno;
	l = calloc(1, sizeof(*l) + probe.nmsrs * sizeof(uint32_t));
	if (!l)
		return -ENOMEM;
	l->nmsrs = probe.nmsrs;
	if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, l) < 0) {
		free(l);
		return -errno;
	}
	kvm_msrs.index = malloc(l->nmsrs * sizeof(uint32_t) + 1);
	if (!kvm_msrs.index) {
		free(l);
		return -ENOMEM;
	}
	memcpy(kvm_msrs.index, l->indices, l->nmsrs * sizeof(uint32_t));
	kvm_msrs.n = l->nmsrs;
	free(l);
	return 0;
}

/* Reads every listed MSR that reads; KVM_GET_MSRS stops at the first one that
 * does not, so the rest are asked again past it. */
static int vcpu_state__get_msrs(struct vcpu *v, Vmmd__State__V1__MsrState **out, size_t *n_out)
{
	struct kvm_msrs *m = calloc(1, sizeof(*m) + MSR_BATCH * sizeof(struct kvm_msr_entry));
	uint32_t next = 0;
	size_t n = 0;

	*out = calloc(kvm_msrs.n + 1, sizeof(**out));
	if (!m || !*out) {
		free(m);
		free(*out);
		return -ENOMEM;
	}
	while (next < kvm_msrs.n) {
		uint32_t cnt = kvm_msrs.n - next < MSR_BATCH ? kvm_msrs.n - next : MSR_BATCH;
		int got;

		m->nmsrs = cnt;
		for (uint32_t i = 0; i < cnt; i++)
			m->entries[i] = (struct kvm_msr_entry){ .index = kvm_msrs.index[next + i] };
		got = ioctl(v->fd, KVM_GET_MSRS, m);
		if (got < 0) {
			free(m);
			return -errno;
		}
		for (int i = 0; i < got; i++) {
			vmmd__state__v1__msr_state__init(&(*out)[n]);
			(*out)[n].index = m->entries[i].index;
			(*out)[n].data = m->entries[i].data;
			n++;
		}
		next += (uint32_t)got;
		if ((uint32_t)got < cnt) {
			pr_debug("vCPU %u: MSR 0x%x does not read; not saved", v->id,
				 kvm_msrs.index[next]);
			next++;
		}
	}
	free(m);
	*n_out = n;
	return 0;
}

struct vcpu_blob {
	unsigned long get, set;
	size_t size;
	const char *name;
};

/* In restore order: LAPIC before MSRs (TSC deadline), events last. */
enum { B_REGS, B_SREGS, B_XSAVE, B_XCRS, B_LAPIC, B_EVENTS, B_DEBUGREGS, NR_BLOBS };
static const struct vcpu_blob blobs[NR_BLOBS] = {
	[B_REGS] = { KVM_GET_REGS, KVM_SET_REGS, sizeof(struct kvm_regs), "registers" },
	[B_SREGS] = { KVM_GET_SREGS, KVM_SET_SREGS, sizeof(struct kvm_sregs), "special registers" },
	[B_XSAVE] = { KVM_GET_XSAVE, KVM_SET_XSAVE, sizeof(struct kvm_xsave), "XSAVE area" },
	[B_XCRS] = { KVM_GET_XCRS, KVM_SET_XCRS, sizeof(struct kvm_xcrs), "XCRs" },
	[B_LAPIC] = { KVM_GET_LAPIC, KVM_SET_LAPIC, sizeof(struct kvm_lapic_state), "local APIC" },
	[B_EVENTS] = { KVM_GET_VCPU_EVENTS, KVM_SET_VCPU_EVENTS, sizeof(struct kvm_vcpu_events),
		       "pending events" },
	[B_DEBUGREGS] = { KVM_GET_DEBUGREGS, KVM_SET_DEBUGREGS, sizeof(struct kvm_debugregs),
			  "debug registers" },
};

static ProtobufCBinaryData *vcpu_state__field(Vmmd__State__V1__VcpuState *s, int b)
{
	ProtobufCBinaryData *f[NR_BLOBS] = { &s->regs,	 &s->sregs,  &s->xsave,	  &s->xcrs,
					     &s->lapic,	 &s->events, &s->debugregs };
	return f[b];
}

static int vcpu_state__save(void *opaque, uint8_t **buf, size_t *len)
{
	struct vcpu *v = opaque;
	Vmmd__State__V1__VcpuState s = VMMD__STATE__V1__VCPU_STATE__INIT;
	Vmmd__State__V1__MsrState *msrs = NULL, **mp = NULL;
	struct kvm_mp_state mp_state;
	uint8_t *data[NR_BLOBS] = { NULL };
	size_t n_msrs = 0;
	int err = 0;

	s.id = v->id;
	for (int b = 0; b < NR_BLOBS; b++) {
		data[b] = calloc(1, blobs[b].size);
		if (!data[b]) {
			err = -ENOMEM;
			goto out;
		}
		if (ioctl(v->fd, blobs[b].get, data[b]) < 0) {
			err = -errno;
			pr_err("vCPU %u: cannot read its %s: %s", v->id, blobs[b].name,
			       strerror(errno));
			goto out;
		}
		*vcpu_state__field(&s, b) = (ProtobufCBinaryData){ blobs[b].size, data[b] };
	}
	if (ioctl(v->fd, KVM_GET_MP_STATE, &mp_state) < 0) {
		err = -errno;
		goto out;
	}
	s.mp_state = mp_state.mp_state;
	err = kvm_state__msr_list(v->vm);
	if (!err)
		err = vcpu_state__get_msrs(v, &msrs, &n_msrs);
	if (err) {
		pr_err("vCPU %u: cannot read its MSRs: %s", v->id, strerror(-err));
		goto out;
	}
	mp = calloc(n_msrs + 1, sizeof(*mp));
	if (!mp) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n_msrs; i++)
		mp[i] = &msrs[i];
	s.n_msrs = n_msrs;
	s.msrs = mp;
	*len = vmmd__state__v1__vcpu_state__get_packed_size(&s);
	*buf = malloc(*len);
	if (!*buf)
		err = -ENOMEM;
	else
		vmmd__state__v1__vcpu_state__pack(&s, *buf);
out:
	for (int b = 0; b < NR_BLOBS; b++)
		free(data[b]);
	free(msrs);
	free(mp);
	return err;
}

static int vcpu_state__set_msrs(struct vcpu *v, const Vmmd__State__V1__VcpuState *s)
{
	struct kvm_msrs *m = calloc(1, sizeof(*m) + (s->n_msrs + 1) * sizeof(struct kvm_msr_entry));
	size_t done = 0;

	if (!m)
		return -ENOMEM;
	/* KVM_SET_MSRS stops at the first MSR this host refuses: that one is
	 * reported and skipped (a host without a feature cannot take it). */
	while (done < s->n_msrs) {
		int got;

		m->nmsrs = (uint32_t)(s->n_msrs - done);
		for (size_t i = 0; i < m->nmsrs; i++)
			m->entries[i] = (struct kvm_msr_entry){ .index = s->msrs[done + i]->index,
								.data = s->msrs[done + i]->data };
		got = ioctl(v->fd, KVM_SET_MSRS, m);
		if (got < 0) {
			free(m);
			return -errno;
		}
		done += (size_t)got;
		if (done < s->n_msrs) {
			pr_warn("vCPU %u: this host refuses MSR 0x%x = 0x%llx; skipped", v->id,
				s->msrs[done]->index, (unsigned long long)s->msrs[done]->data);
			done++;
		}
	}
	free(m);
	return 0;
}

static int vcpu_state__restore(void *opaque, const uint8_t *buf, size_t len)
{
	struct vcpu *v = opaque;
	Vmmd__State__V1__VcpuState *s = vmmd__state__v1__vcpu_state__unpack(NULL, len, buf);
	struct kvm_mp_state mp_state;
	int err = 0;

	if (!s)
		return -EINVAL;
	/* Every length first: a mismatch must leave the vCPU untouched. */
	for (int b = 0; b < NR_BLOBS; b++) {
		if (vcpu_state__field(s, b)->len != blobs[b].size) {
			pr_err("vCPU %u: saved %s are %zu bytes, this build's are %zu", v->id,
			       blobs[b].name, vcpu_state__field(s, b)->len, blobs[b].size);
			err = -EINVAL;
			goto out;
		}
	}
	if (s->id != v->id) {
		pr_err("vCPU %u: saved state is vCPU %u's", v->id, s->id);
		err = -EINVAL;
		goto out;
	}
	for (int b = 0; b < NR_BLOBS; b++) {
		if (b == B_EVENTS) {
			/* MSRs after the LAPIC (TSC deadline), before pending events. */
			err = vcpu_state__set_msrs(v, s);
			if (err) {
				pr_err("vCPU %u: cannot set its MSRs: %s", v->id, strerror(-err));
				goto out;
			}
			mp_state.mp_state = s->mp_state;
			if (ioctl(v->fd, KVM_SET_MP_STATE, &mp_state) < 0) {
				err = -errno;
				pr_err("vCPU %u: cannot set its run state: %s", v->id,
				       strerror(errno));
				goto out;
			}
		}
		if (ioctl(v->fd, blobs[b].set, vcpu_state__field(s, b)->data) < 0) {
			err = -errno;
			pr_err("vCPU %u: cannot set its %s: %s", v->id, blobs[b].name,
			       strerror(errno));
			goto out;
		}
	}
out:
	vmmd__state__v1__vcpu_state__free_unpacked(s, NULL);
	return err;
}

/* One section per vCPU ("vcpu.N"); vmm runs one VM, so these are static. */
#define KVM_STATE_MAX_VCPUS 256
static struct state_ops vcpu_state_ops[KVM_STATE_MAX_VCPUS];
static char vcpu_section[KVM_STATE_MAX_VCPUS][16];

/* --- the VM's in-kernel devices --- */

static int irqchip_state__save(void *opaque, uint8_t **buf, size_t *len)
{
	struct vm *vm = opaque;
	Vmmd__State__V1__IrqchipState s = VMMD__STATE__V1__IRQCHIP_STATE__INIT;
	struct kvm_irqchip chip[3];
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clock = { 0 };

	for (int i = 0; i < 3; i++) {
		memset(&chip[i], 0, sizeof(chip[i]));
		chip[i].chip_id = (uint32_t)i;
		if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &chip[i]) < 0)
			return -errno;
	}
	if (ioctl(vm->vm_fd, KVM_GET_PIT2, &pit) < 0 || ioctl(vm->vm_fd, KVM_GET_CLOCK, &clock) < 0)
		return -errno;
	s.pic_master = (ProtobufCBinaryData){ sizeof(chip[0].chip.pic), (uint8_t *)&chip[0].chip.pic };
	s.pic_slave = (ProtobufCBinaryData){ sizeof(chip[1].chip.pic), (uint8_t *)&chip[1].chip.pic };
	s.ioapic = (ProtobufCBinaryData){ sizeof(chip[2].chip.ioapic),
					  (uint8_t *)&chip[2].chip.ioapic };
	s.pit = (ProtobufCBinaryData){ sizeof(pit), (uint8_t *)&pit };
	s.clock_ns = clock.clock;
	*len = vmmd__state__v1__irqchip_state__get_packed_size(&s);
	*buf = malloc(*len);
	if (!*buf)
		return -ENOMEM;
	vmmd__state__v1__irqchip_state__pack(&s, *buf);
	return 0;
}

static int irqchip_state__restore(void *opaque, const uint8_t *buf, size_t len)
{
	struct vm *vm = opaque;
	Vmmd__State__V1__IrqchipState *s = vmmd__state__v1__irqchip_state__unpack(NULL, len, buf);
	struct kvm_irqchip chip[3] = { { .chip_id = 0 }, { .chip_id = 1 }, { .chip_id = 2 } };
	struct kvm_clock_data clock = { 0 };
	int err = 0;

	if (!s)
		return -EINVAL;
	if (s->pic_master.len != sizeof(chip[0].chip.pic) ||
	    s->pic_slave.len != sizeof(chip[1].chip.pic) ||
	    s->ioapic.len != sizeof(chip[2].chip.ioapic) ||
	    s->pit.len != sizeof(struct kvm_pit_state2)) {
		pr_err("saved PIC/IOAPIC/PIT state does not match this build's sizes");
		err = -EINVAL;
		goto out;
	}
	memcpy(&chip[0].chip.pic, s->pic_master.data, s->pic_master.len);
	memcpy(&chip[1].chip.pic, s->pic_slave.data, s->pic_slave.len);
	memcpy(&chip[2].chip.ioapic, s->ioapic.data, s->ioapic.len);
	for (int i = 0; i < 3; i++) {
		if (ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &chip[i]) < 0) {
			err = -errno;
			pr_err("cannot restore the interrupt controllers: %s", strerror(errno));
			goto out;
		}
	}
	clock.clock = s->clock_ns;
	if (ioctl(vm->vm_fd, KVM_SET_PIT2, s->pit.data) < 0 ||
	    ioctl(vm->vm_fd, KVM_SET_CLOCK, &clock) < 0) {
		err = -errno;
		pr_err("cannot restore the PIT or kvmclock: %s", strerror(errno));
	}
out:
	vmmd__state__v1__irqchip_state__free_unpacked(s, NULL);
	return err;
}

static const struct state_ops irqchip_state_ops = {
	.section = "kvm.irqchip",
	.save = irqchip_state__save,
	.restore = irqchip_state__restore,
};

static int kvm_state__init(struct vm *vm)
{
	int err = vm__register_state(vm, &irqchip_state_ops, vm);

	for (unsigned int i = 0; !err && i < vm->nr_cpus && i < KVM_STATE_MAX_VCPUS; i++) {
		snprintf(vcpu_section[i], sizeof(vcpu_section[i]), "vcpu.%u", i);
		vcpu_state_ops[i] = (struct state_ops){ .section = vcpu_section[i],
							.save = vcpu_state__save,
							.restore = vcpu_state__restore };
		err = vm__register_state(vm, &vcpu_state_ops[i], vm->vcpus[i]);
	}
	return err;
}
core_init(kvm_state__init, NULL);
