# Prints /proc/uptime: seconds since boot, then idle seconds.
echo "VMMD-UPTIME $(cat /proc/uptime)"
