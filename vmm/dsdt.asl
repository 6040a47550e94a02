/*
 * vmm/dsdt.asl — the DSDT: PCI root bridge with its windows, the ISA
 * devices Linux should find (RTC, COM1), the ECAM reservation and \_S5.
 *
 * The numbers are vmm/layout.h's; iasl cannot read its ULL constants, so
 * tests/unit/test_acpi.c checks the compiled AML carries the same values.
 */
DefinitionBlock ("", "DSDT", 2, "VMMD  ", "VMMDDSDT", 1)
{
    Scope (\_SB)
    {
        Device (PCI0)
        {
            Name (_HID, EisaId ("PNP0A03"))
            Name (_UID, Zero)
            Name (_BBN, Zero)
            Name (_SEG, Zero)
            Name (_CRS, ResourceTemplate ()
            {
                /* PCI_LAST_BUS: bus 0 only */
                WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode,
                    0x0000, 0x0000, 0x0000, 0x0000, 0x0001)
                /* Configuration mechanism #1 belongs to the bridge itself. */
                IO (Decode16, 0x0CF8, 0x0CF8, 0x01, 0x08)
                WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange,
                    0x0000, 0x0000, 0x0CF7, 0x0000, 0x0CF8)
                WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange,
                    0x0000, 0x0D00, 0xFFFF, 0x0000, 0xF300)
                /* PCI_MMIO32_START, PCI_MMIO32_SIZE */
                DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed,
                    NonCacheable, ReadWrite,
                    0x00000000, 0xC0000000, 0xDFFFFFFF, 0x00000000, 0x20000000)
                /* PCI_MMIO64_START, PCI_MMIO64_SIZE */
                QWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed,
                    Cacheable, ReadWrite,
                    0x0000000000000000, 0x0000008000000000, 0x000000FFFFFFFFFF,
                    0x0000000000000000, 0x0000008000000000)
            })

            /* PIIX3 at 00:01.0 */
            Device (ISA)
            {
                Name (_ADR, 0x00010000)

                Device (RTC)
                {
                    Name (_HID, EisaId ("PNP0B00"))
                    Name (_CRS, ResourceTemplate ()
                    {
                        IO (Decode16, 0x0070, 0x0070, 0x01, 0x02)
                        IRQNoFlags () {8}
                    })
                }

                Device (COM1)
                {
                    Name (_HID, EisaId ("PNP0501"))
                    Name (_UID, One)
                    Name (_CRS, ResourceTemplate ()
                    {
                        IO (Decode16, 0x03F8, 0x03F8, 0x01, 0x08)
                        IRQNoFlags () {4}
                    })
                }
            }
        }

        /* Linux uses MMCONFIG only when motherboard resources reserve it. */
        Device (MRES)
        {
            Name (_HID, EisaId ("PNP0C02"))
            Name (_UID, Zero)
            Name (_CRS, ResourceTemplate ()
            {
                /* PCI_ECAM_START, PCI_ECAM_SIZE */
                Memory32Fixed (ReadWrite, 0xE0000000, 0x00100000)
            })
        }
    }

    /* ACPI_S5_SLP_TYP: PM1a and PM1b SLP_TYP values for soft-off. */
    Name (\_S5, Package () { 0x05, 0x05, Zero, Zero })
}
