# tests/guest/linux/kernel.sh — sourced by tests/guest/linux/build and tests/lab/build-l1.
# Fetches Debian's cloud kernel package once into $VMMD_CACHE/kernel/<version>/ and
# answers "which .ko files, in load order" for a list of module names.
# Needs: REPO set by the caller. Sets: CACHE, KVER, KROOT, KMODDIR.

CACHE=${VMMD_CACHE:-$REPO/.cache}

need_tool() {	# need_tool TOOL DEBIAN-PACKAGE
	command -v "$1" >/dev/null 2>&1 ||
		{ echo "error: '$1' not found; install the Debian package '$2'" >&2; exit 1; }
}

kernel_fetch() {
	local kdir=$CACHE/kernel pkg deb tmp
	need_tool apt-cache apt; need_tool dpkg dpkg; need_tool depmod kmod; need_tool modprobe kmod
	mkdir -p "$kdir"
	# The meta package names today's kernel; a glob would fetch every old version.
	# apt-cache takes over a second here, so its answer is kept until the apt lists
	# change (apt-get update rewrites /var/lib/apt/lists and so bumps its mtime).
	local lists_key
	lists_key=$(stat -c %Y /var/lib/apt/lists 2>/dev/null || echo none)
	if [ -s "$kdir/apt-answer" ] && [ "$(head -n1 "$kdir/apt-answer")" = "$lists_key" ]; then
		pkg=$(sed -n 2p "$kdir/apt-answer")
	else
		pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
			awk '/Depends: linux-image-[0-9]/ { print $2; exit }') || true
		[ -z "$pkg" ] || printf '%s\n%s\n' "$lists_key" "$pkg" > "$kdir/apt-answer"
	fi
	if [ -z "$pkg" ]; then
		# Offline or no apt lists: reuse what an earlier run fetched, if anything.
		[ -e "$kdir/current" ] || { echo "error: apt-cache does not know linux-image-cloud-amd64;" \
			"run 'apt-get update' (Debian 12 with its main archive)" >&2; exit 1; }
		pkg=linux-image-$(cat "$kdir/current")
		echo "warning: apt-cache does not know linux-image-cloud-amd64; using cached $pkg" >&2
	fi
	KVER=${pkg#linux-image-}
	KROOT=$kdir/$KVER
	KMODDIR=$KROOT/lib/modules/$KVER
	if [ ! -e "$KROOT/.done" ]; then
		echo "kernel: downloading $pkg" >&2
		tmp=$(mktemp -d "$kdir/dl.XXXXXX")
		# apt runs downloads as _apt when it can; a 0755 dir lets it write there.
		chmod 755 "$tmp"
		(cd "$tmp" && apt-get -o APT::Sandbox::User=root download -q "$pkg" >&2) ||
			{ rm -rf "$tmp"; echo "error: apt-get download $pkg failed" >&2; exit 1; }
		deb=$(ls "$tmp"/*.deb)
		rm -rf "$KROOT"
		dpkg -x "$deb" "$KROOT"
		# The package ships no modules.dep; make one so modprobe can order modules.
		depmod -b "$KROOT" "$KVER"
		rm -rf "$tmp"
		touch "$KROOT/.done"
	fi
	echo "$KVER" > "$kdir/current"
	[ -r "$KROOT/boot/vmlinuz-$KVER" ] || { echo "error: $KROOT/boot/vmlinuz-$KVER missing" >&2; exit 1; }
}

# kernel_modules NAME... -> prints .ko paths (relative to $KMODDIR), dependencies
# first, each once. Built-in names print nothing.
kernel_modules() {
	local m
	for m in "$@"; do
		modprobe -d "$KROOT" -S "$KVER" --show-depends "$m" ||
			{ echo "error: module $m not in $KVER" >&2; exit 1; }
	done | awk '$1 == "insmod" { sub(".*/lib/modules/[^/]+/", "", $2); if (!seen[$2]++) print $2 }'
}
