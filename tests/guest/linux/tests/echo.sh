# Reads one line from the console and prints it back.
read -r line
echo "VMMD-ECHO $line"
