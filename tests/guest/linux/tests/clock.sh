# Prints the guest's wall clock (seconds since the epoch), set from the CMOS RTC.
echo "VMMD-CLOCK $(date +%s)"
