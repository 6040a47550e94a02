#!/bin/sh
# Runs the named test scripts one after another (inside the lab, one L1 boot).
here=$(cd "$(dirname "$0")" && pwd)
rc=0
for t in "$@"; do
	echo "# --- $t"
	sh "$here/$t" || rc=1
done
exit $rc
