/* migration/snapshot_file.c — reading and writing a snapshot's two files (the
 * layout is in snapshot_file.h).  Nothing here knows what a VM is. */
#include "migration/page.h"
#include "migration/snapshot_file.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAGE 4096u
#define HDR_LEN 24u
#define WRITE_RUN (2u << 20) /* pwrite up to this many contiguous non-zero bytes */
static const char magic[8] = { 'V', 'M', 'M', 'D', 'S', 'N', 'A', 'P' };

static int fail(char *why, size_t wlen, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, wlen, fmt, ap);
	va_end(ap);
	return err < 0 ? err : -EINVAL;
}

static int write_all(int fd, const void *buf, size_t len, off_t off)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

static int read_all(int fd, void *buf, size_t len, off_t off)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = pread(fd, p, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -ENODATA;
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

static void digest_page(EVP_MD_CTX *md, uint64_t off, const uint8_t *page)
{
	uint64_t le = htole64(off);

	EVP_DigestUpdate(md, &le, sizeof(le));
	EVP_DigestUpdate(md, page, PAGE);
}

int snapshot_file__write_state(int dirfd, const uint8_t *manifest, size_t len, char *why,
			       size_t wlen)
{
	uint8_t hdr[HDR_LEN], sum[32];
	uint32_t v32;
	uint64_t v64;
	EVP_MD_CTX *md;
	int fd, err;

	memcpy(hdr, magic, 8);
	v32 = htole32(SNAPSHOT_FORMAT);
	memcpy(hdr + 8, &v32, 4);
	memset(hdr + 12, 0, 4);
	v64 = htole64(len);
	memcpy(hdr + 16, &v64, 8);
	md = EVP_MD_CTX_new();
	if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL) ||
	    !EVP_DigestUpdate(md, hdr, sizeof(hdr)) || !EVP_DigestUpdate(md, manifest, len) ||
	    !EVP_DigestFinal_ex(md, sum, NULL)) {
		EVP_MD_CTX_free(md);
		return fail(why, wlen, -ENOMEM, "cannot compute the state checksum");
	}
	EVP_MD_CTX_free(md);
	/* Written aside and renamed: a snapshot with a state file is complete. */
	fd = openat(dirfd, SNAPSHOT_STATE ".tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return fail(why, wlen, -errno, "cannot create the state file: %s", strerror(errno));
	err = write_all(fd, hdr, sizeof(hdr), 0);
	if (!err)
		err = write_all(fd, manifest, len, HDR_LEN);
	if (!err)
		err = write_all(fd, sum, sizeof(sum), (off_t)(HDR_LEN + len));
	if (!err && fsync(fd) < 0)
		err = -errno;
	close(fd);
	if (!err && renameat(dirfd, SNAPSHOT_STATE ".tmp", dirfd, SNAPSHOT_STATE) < 0)
		err = -errno;
	if (!err && fsync(dirfd) < 0)
		err = -errno;
	if (err) {
		unlinkat(dirfd, SNAPSHOT_STATE ".tmp", 0);
		return fail(why, wlen, err, "cannot write the state file: %s", strerror(-err));
	}
	return 0;
}

int snapshot_file__read_state(int dirfd, uint8_t **manifest, size_t *len, char *why,
			      size_t wlen)
{
	uint8_t hdr[HDR_LEN], sum[32], want[32];
	uint32_t format;
	uint64_t mlen;
	struct stat st;
	EVP_MD_CTX *md;
	uint8_t *buf;
	int fd, err;

	*manifest = NULL;
	fd = openat(dirfd, SNAPSHOT_STATE, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(why, wlen, -errno, "no state file: %s", strerror(errno));
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size < HDR_LEN + 32) {
		close(fd);
		return fail(why, wlen, -EINVAL, "state file is truncated");
	}
	err = read_all(fd, hdr, sizeof(hdr), 0);
	if (err || memcmp(hdr, magic, 8)) {
		close(fd);
		return fail(why, wlen, -EINVAL, "state file is not a vmmd snapshot (bad magic)");
	}
	memcpy(&format, hdr + 8, 4);
	memcpy(&mlen, hdr + 16, 8);
	format = le32toh(format);
	mlen = le64toh(mlen);
	if (format > SNAPSHOT_FORMAT || format == 0) {
		close(fd);
		return fail(why, wlen, -EINVAL,
			    "snapshot format %u; this vmm reads formats 1 to %u", format,
			    SNAPSHOT_FORMAT);
	}
	if (mlen > SNAPSHOT_MAX_STATE || HDR_LEN + mlen + 32 != (uint64_t)st.st_size) {
		close(fd);
		return fail(why, wlen, -EINVAL,
			    "state file is %lld bytes, its header says %llu: truncated or corrupt",
			    (long long)st.st_size, (unsigned long long)(HDR_LEN + mlen + 32));
	}
	buf = malloc(mlen ? mlen : 1);
	if (!buf) {
		close(fd);
		return fail(why, wlen, -ENOMEM, "out of memory");
	}
	err = read_all(fd, buf, mlen, HDR_LEN);
	if (!err)
		err = read_all(fd, sum, sizeof(sum), (off_t)(HDR_LEN + mlen));
	close(fd);
	if (err) {
		free(buf);
		return fail(why, wlen, err, "cannot read the state file: %s", strerror(-err));
	}
	md = EVP_MD_CTX_new();
	if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL) ||
	    !EVP_DigestUpdate(md, hdr, sizeof(hdr)) || !EVP_DigestUpdate(md, buf, mlen) ||
	    !EVP_DigestFinal_ex(md, want, NULL)) {
		EVP_MD_CTX_free(md);
		free(buf);
		return fail(why, wlen, -ENOMEM, "cannot compute the state checksum");
	}
	EVP_MD_CTX_free(md);
	if (memcmp(sum, want, sizeof(sum))) {
		free(buf);
		return fail(why, wlen, -EINVAL, "state file checksum mismatch: the snapshot is corrupt");
	}
	*manifest = buf;
	*len = mlen;
	return 0;
}

int snapshot_mem__write(int dirfd, const uint8_t *ram, int mem_fd, uint64_t size,
			struct mem_digest *d, char *why, size_t wlen)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint64_t off = 0, run_start = 0, run_len = 0;
	int fd, err = 0;

	memset(d, 0, sizeof(*d));
	if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
		EVP_MD_CTX_free(md);
		return fail(why, wlen, -ENOMEM, "cannot start the memory checksum");
	}
	fd = openat(dirfd, SNAPSHOT_MEMORY, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		err = fail(why, wlen, -errno, "cannot create the memory file: %s", strerror(errno));
		goto out;
	}
	if (ftruncate(fd, (off_t)size) < 0) {
		err = fail(why, wlen, -errno, "memory file of %llu bytes: %s",
			   (unsigned long long)size, strerror(errno));
		goto out_close;
	}
	while (off < size) {
		/* Pages the guest never touched are holes in the memfd too
		 * (without one, mem_fd < 0, every page is looked at). */
		off_t data = mem_fd < 0 ? (off_t)off : lseek(mem_fd, (off_t)off, SEEK_DATA);
		off_t hole;

		if (data < 0)
			break; /* ENXIO: nothing but holes to the end */
		hole = mem_fd < 0 ? (off_t)size : lseek(mem_fd, data, SEEK_HOLE);
		if (hole < 0 || (uint64_t)hole > size)
			hole = (off_t)size;
		for (off = (uint64_t)data & ~(uint64_t)(PAGE - 1); off < (uint64_t)hole; off += PAGE) {
			bool zero = page__is_zero(ram + off);

			if (!zero) {
				digest_page(md, off, ram + off);
				d->pages++;
			}
			if (run_len && (zero || off != run_start + run_len || run_len >= WRITE_RUN)) {
				err = write_all(fd, ram + run_start, run_len, (off_t)run_start);
				if (err)
					goto out_werr;
				run_len = 0;
			}
			if (!zero) {
				if (!run_len)
					run_start = off;
				run_len += PAGE;
			}
		}
		off = (uint64_t)hole;
	}
	if (run_len)
		err = write_all(fd, ram + run_start, run_len, (off_t)run_start);
	if (!err && fsync(fd) < 0)
		err = -errno;
out_werr:
	if (err)
		err = fail(why, wlen, err, "cannot write the memory file: %s", strerror(-err));
	else
		EVP_DigestFinal_ex(md, d->sha256, NULL);
out_close:
	close(fd);
	if (err)
		unlinkat(dirfd, SNAPSHOT_MEMORY, 0);
out:
	EVP_MD_CTX_free(md);
	return err;
}

int snapshot_mem__open(int dirfd, uint64_t size, char *why, size_t wlen)
{
	struct stat st;
	int fd = openat(dirfd, SNAPSHOT_MEMORY, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return fail(why, wlen, -errno, "no memory file: %s", strerror(errno));
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size != size) {
		close(fd);
		return fail(why, wlen, -EINVAL,
			    "memory file is %lld bytes, the manifest says %llu: truncated or not this snapshot's",
			    (long long)st.st_size, (unsigned long long)size);
	}
	return fd;
}

int snapshot_mem__read(int dirfd, uint8_t *ram, uint64_t size, struct mem_digest *d, char *why,
		       size_t wlen)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint64_t off = 0;
	int fd, err = 0;

	memset(d, 0, sizeof(*d));
	if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
		EVP_MD_CTX_free(md);
		return fail(why, wlen, -ENOMEM, "cannot start the memory checksum");
	}
	fd = snapshot_mem__open(dirfd, size, why, wlen);
	if (fd < 0) {
		EVP_MD_CTX_free(md);
		return fd;
	}
	while (off < size) {
		off_t data = lseek(fd, (off_t)off, SEEK_DATA), hole;

		if (data < 0)
			break;
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0 || (uint64_t)hole > size)
			hole = (off_t)size;
		data &= ~(off_t)(PAGE - 1);
		err = read_all(fd, ram + data, (size_t)(hole - data), data);
		if (err) {
			err = fail(why, wlen, err, "cannot read the memory file: %s", strerror(-err));
			break;
		}
		/* A file system may keep zeros in an extent: only non-zero pages count. */
		for (off = (uint64_t)data; off < (uint64_t)hole; off += PAGE) {
			if (!page__is_zero(ram + off)) {
				digest_page(md, off, ram + off);
				d->pages++;
			}
		}
		off = (uint64_t)hole;
	}
	if (!err)
		EVP_DigestFinal_ex(md, d->sha256, NULL);
	close(fd);
	EVP_MD_CTX_free(md);
	return err;
}

int snapshot_mem__map(int dirfd, uint8_t *ram, uint64_t size, char *why, size_t wlen)
{
	int fd = snapshot_mem__open(dirfd, size, why, wlen);
	void *p;

	if (fd < 0)
		return fd;
	p = mmap(ram, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return fail(why, wlen, -errno, "cannot map the memory file: %s", strerror(errno));
	return 0;
}
