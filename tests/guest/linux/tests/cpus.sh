# Prints the number of online CPUs.
echo "VMMD-CPUS $(nproc)"
