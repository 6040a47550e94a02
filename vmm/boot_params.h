/* vmm/boot_params.h — offsets in the Linux zero page and setup header, from
 * Documentation/arch/x86/boot.rst.  Offsets rather than a struct, so every
 * read of the file is an explicit, bounds-checked access. */
#ifndef VMMD_VMM_BOOT_PARAMS_H
#define VMMD_VMM_BOOT_PARAMS_H

#define BP_ACPI_RSDP_ADDR 0x070 /* u64, protocol 2.14 */
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE 0x0c4
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_E820_ENTRIES 0x1e8
#define BP_E820_TABLE 0x2d0 /* 128 x { u64 addr, u64 size, u32 type } */
#define BP_E820_MAX 128
#define BP_SIZE 0x1000

#define HDR_SETUP_SECTS 0x1f1
#define HDR_SYSSIZE 0x1f4
#define HDR_VID_MODE 0x1fa
#define HDR_BOOT_FLAG 0x1fe /* 0xaa55 */
#define HDR_JUMP 0x200      /* its second byte is the header's length - 0x202 + 0x200 */
#define HDR_MAGIC 0x202     /* "HdrS" */
#define HDR_VERSION 0x206
#define HDR_TYPE_OF_LOADER 0x210
#define HDR_LOADFLAGS 0x211
#define HDR_RAMDISK_IMAGE 0x218
#define HDR_RAMDISK_SIZE 0x21c
#define HDR_HEAP_END_PTR 0x224
#define HDR_CMD_LINE_PTR 0x228
#define HDR_INITRD_ADDR_MAX 0x22c
#define HDR_KERNEL_ALIGNMENT 0x230
#define HDR_RELOCATABLE 0x234
#define HDR_XLOADFLAGS 0x236
#define HDR_CMDLINE_SIZE 0x238
#define HDR_PREF_ADDRESS 0x258
#define HDR_INIT_SIZE 0x260

#define LOADFLAG_LOADED_HIGH 0x01
#define LOADFLAG_CAN_USE_HEAP 0x80
#define XLF_KERNEL_64 0x01
#define XLF_CAN_BE_LOADED_ABOVE_4G 0x02

#define BZ_MIN_VERSION 0x020c /* xloadflags and the 64-bit entry */
#define BZ_ENTRY64_OFFSET 0x200

#endif
