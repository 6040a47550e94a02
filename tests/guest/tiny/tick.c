/*
 * tests/guest/tiny/tick.c — tick=HZ: a heartbeat that sleeps between beats.
 *
 * The busy heartbeat keeps its vCPU at 100%, so twenty tiny VMs saturate a
 * small host (or the lab's one L1 CPU).  Here the local APIC timer fires
 * about HZ times a second and the CPU halts in between, so the VMM's vCPU
 * thread sleeps in KVM.  The only interrupts taken are these: the IOAPIC's
 * entries and LVT0 (the PIC) stay masked as reset left them.
 */
#include "tiny.h"

#define LAPIC_BASE	0xfee00000u
#define LAPIC_SVR	0x0f0
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_TMICT	0x380
#define LAPIC_TDCR	0x3e0
#define LAPIC_SVR_ENABLE (1u << 8)
#define LAPIC_TIMER_PERIODIC (1u << 17)
#define LAPIC_TDCR_DIV1 0xbu
/* KVM's APIC timer counts at 1 GHz (QEMU's too); HZ is "about" elsewhere. */
#define LAPIC_TIMER_HZ 1000000000u
#define TICK_VECTOR	0x20
#define SPURIOUS_VECTOR 0xff
#define BOOT_CS		0x08
#define IDT_GATE_INTR32 0x8e00u /* present, DPL 0, 32-bit interrupt gate */

extern void tick_isr(void); /* start.S: EOI and iret */

static uint64_t idt[256] __attribute__((aligned(8)));

static void lapic_write(uint32_t reg, uint32_t val)
{
	*(volatile uint32_t *)(LAPIC_BASE + reg) = val;
}

void tick__start(uint32_t hz)
{
	struct {
		uint16_t limit;
		uint32_t base;
	} __attribute__((packed)) desc = { sizeof(idt) - 1, (uint32_t)idt };
	uint32_t isr = (uint32_t)tick_isr;

	/* Every vector from 32 up goes to the one handler: a stray one is
	 * acknowledged and ignored rather than a triple fault. */
	for (unsigned int v = 32; v < 256; v++)
		idt[v] = (uint64_t)(isr & 0xffff) | (uint64_t)BOOT_CS << 16 |
			 (uint64_t)IDT_GATE_INTR32 << 32 |
			 (uint64_t)(isr >> 16) << 48;
	asm volatile("lidt %0" : : "m"(desc));
	lapic_write(LAPIC_SVR, LAPIC_SVR_ENABLE | SPURIOUS_VECTOR);
	lapic_write(LAPIC_TDCR, LAPIC_TDCR_DIV1);
	lapic_write(LAPIC_LVT_TIMER, LAPIC_TIMER_PERIODIC | TICK_VECTOR);
	lapic_write(LAPIC_TMICT, LAPIC_TIMER_HZ / hz);
}

void tick__wait(void)
{
	/* sti's one-instruction shadow: no tick slips in before the hlt. */
	asm volatile("sti; hlt; cli" : : : "memory");
}
