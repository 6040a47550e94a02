#!/bin/sh
# tests/guest/tiny/build.sh OUTDIR — build tiny.elf without automake.
# Same flags as Makemodule.am; CC and LD may be overridden from the environment.
set -eu

if [ $# -ne 1 ]; then
	echo "usage: $0 OUTDIR" >&2
	exit 2
fi
src=$(cd "$(dirname "$0")" && pwd)
out=$1
mkdir -p "$out"

CC=${CC:-gcc}
LD=${LD:-ld}
# Keep in sync with TINY_CFLAGS in Makemodule.am.
TINY_CFLAGS="-m32 -march=i686 -ffreestanding -nostdlib -fno-pic -fno-pie \
-fno-stack-protector -fno-asynchronous-unwind-tables \
-fno-tree-loop-distribute-patterns -mgeneral-regs-only -O2 -std=gnu11 \
-Wall -Wextra -Werror"

objs=
for f in start.S tiny.c cmdline.c memory.c uart.c rtc.c lib.c pci.c virtio.c \
	vblk.c vnet.c vrng.c tick.c; do
	obj="$out/tiny-${f%.*}.o"
	$CC $TINY_CFLAGS -I"$src" -c "$src/$f" -o "$obj"
	objs="$objs $obj"
done
# shellcheck disable=SC2086 # objs is a list of words
$LD -m elf_i386 -nostdlib -T "$src/tiny.ld" -o "$out/tiny.elf" $objs
echo "$out/tiny.elf"
