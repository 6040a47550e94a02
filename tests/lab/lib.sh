# tests/lab/lib.sh — sourced by tests/lab/build-l1 and tests/lab/run.

# elf_libs FILE... -> the shared libraries (and ld.so) that `ldd` resolves for the
# dynamic ELF files among FILE..., one absolute path per line, each once. Non-ELF
# files are skipped; a library ldd cannot find is reported on stderr.
elf_libs() {
	[ $# -gt 0 ] || return 0
	# Only files starting with the ELF magic are worth an ldd (a few ms each).
	printf '%s\0' "$@" | LC_ALL=C xargs -0 grep -l -m1 -a $'^\x7fELF' 2>/dev/null |
		tr '\n' '\0' | xargs -0 -r ldd 2>/dev/null |
		awk '/=> not found/ { print "warning: ldd: " $1 " not found" > "/dev/stderr"; next }
		     $2 == "=>" && $3 ~ /^\// { print $3; next }
		     $1 ~ /^\/.*\.so/ && $2 ~ /^\(0x/ { print $1 }' | LC_ALL=C sort -u
}

# copy_with_libs DEST FILE... -> copies each FILE (dereferenced) and its libraries
# to DEST/<same absolute path>, with /lib, /lib64, /bin, /sbin folded into /usr (the
# L1 root is merged-/usr, so both spellings resolve).
copy_with_libs() {
	local dest=$1 f; shift
	for f in "$@" $(elf_libs "$@"); do
		install -D -m 755 "$f" "$dest$(usr_path "$f")"
	done
}

usr_path() {
	case $1 in
	/lib/*|/lib64/*|/bin/*|/sbin/*) echo "/usr$1" ;;
	*) echo "$1" ;;
	esac
}
