/*
 * tests/guest/tiny/start.S — PVH entry of the tiny test guest.
 *
 * The VMM (or QEMU's PVH option ROM) finds the entry point in the Xen ELF
 * note below and jumps to it in 32-bit flat protected mode, paging off,
 * with %ebx = guest-physical address of struct hvm_start_info.  Nothing
 * else about the CPU state is promised (no valid stack, a GDT we must not
 * rely on), so install our own GDT and stack before running C.
 */

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define BOOT_CS 0x08
#define BOOT_DS 0x10
#define STACK_SIZE 16384

	/* Elf32_Nhdr + "Xen\0" + 32-bit entry address: the PVH boot note. */
	.section .note.Xen, "a", @note
	.balign 4
	.long note_name_end - note_name
	.long note_desc_end - note_desc
	.long XEN_ELFNOTE_PHYS32_ENTRY
note_name:
	.asciz "Xen"
note_name_end:
	.balign 4
note_desc:
	.long pvh_start
note_desc_end:
	.balign 4

	.section .text.start, "ax"
	.code32
	.globl pvh_start
	.type pvh_start, @function
pvh_start:
	cli
	cld
	lgdt gdt_desc
	ljmp $BOOT_CS, $reload_segments
reload_segments:
	movl $BOOT_DS, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %fs
	movl %eax, %gs
	movl %eax, %ss
	movl $stack_top, %esp

	/* Loaders may not zero p_memsz beyond p_filesz; do it ourselves.
	 * %ebx (start info address) survives: rep stosb uses edi/ecx/eax. */
	movl $__bss_start, %edi
	movl $__bss_end, %ecx
	subl %edi, %ecx
	xorl %eax, %eax
	rep stosb

	pushl %ebx
	call tiny_main
halt:
	cli
	hlt
	jmp halt
	.size pvh_start, . - pvh_start

	/* tick.c's handler for every vector from 32 up: acknowledge the local
	 * APIC (harmless for one it did not send) and return.  No register is
	 * touched, so none is saved. */
	.text
	.globl tick_isr
	.type tick_isr, @function
tick_isr:
	movl $0, 0xfee000b0
	iret
	.size tick_isr, . - tick_isr

	.section .rodata
	.balign 8
gdt:
	.quad 0				/* null */
	.quad 0x00cf9a000000ffff	/* 0x08: code, base 0, 4 GiB, 32-bit */
	.quad 0x00cf92000000ffff	/* 0x10: data, base 0, 4 GiB */
gdt_end:
gdt_desc:
	.word gdt_end - gdt - 1
	.long gdt

	.section .bss
	.balign 16
stack:
	.skip STACK_SIZE
stack_top:

	.section .note.GNU-stack, "", @progbits
