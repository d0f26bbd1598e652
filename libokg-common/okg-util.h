/* Small I/O and maths helpers shared by the daemons. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Locates one of the suite's daemons: $OKG_LIBEXECDIR/<name> as it is (whether there or not:
 * execve() tells why it cannot run), else the directory of the running executable (also the
 * build tree layout, <exedir>/../<name>/<name>), else the install libexecdir. Returns -ENOENT
 * when none of the last three has an executable file of that name. */
int okg_find_executable(const char *name, char **ret);

/* Finds a data file (e.g. the bus config): $envvar when set, else the build tree, else the
 * install datadir. */
int okg_find_data_file(const char *envvar, const char *subdir, const char *name, char **ret);

int okg_mkdir_p(const char *path, mode_t mode);

/* PATH made absolute against the absolute directory BASE: unchanged when it starts with '/',
 * else BASE/PATH with leading "./" dropped ("." alone gives BASE). Nothing is looked up on disk
 * and symlinks are kept (a ConfigMap's ..data link must stay a link). -EINVAL for an empty PATH
 * or a BASE that is not absolute. Pure. */
int okg_path_join_absolute(const char *base, const char *path, char **ret);
/* The same against the current working directory. */
int okg_path_make_absolute(const char *path, char **ret);
/* Whether S may be sent as an HTTP header value: no control character but a horizontal tab
 * (no CR or LF, no NUL, no DEL). Go's net/http refuses to send any other (httpguts'
 * ValidHeaderFieldValue), so kubelet's probes cannot carry one either. Pure. */
bool okg_http_header_value_valid(const char *s);
/* Whether S is a D-Bus address ("unix:path=/run/x/bus", "tcp:host=h,port=1;unix:...") rather
 * than a file path: a transport name of letters, digits and '-', a ':', and a '=' after it.
 * Pure. */
bool okg_bus_is_address(const char *s);
/* "unix:path=SOCKET" with SOCKET escaped as D-Bus address values need (every byte but
 * [-0-9A-Za-z_/.\*] as %XX). A relative SOCKET stays relative: sd-bus connects to it from the
 * current directory. -EINVAL when SOCKET is empty. Pure. */
int okg_bus_address_from_socket(const char *socket, char **ret);
/* Reads a whole file of at most max bytes (-EFBIG beyond); NUL-terminated. */
/* Reads a whole regular file of at most max bytes. Never blocks on a FIFO or a device:
 * those give -EBADFD (see okg_file_strerror()), a directory -EISDIR, a bigger file -EFBIG. */
int okg_read_file(const char *path, size_t max, char **ret, size_t *ret_len);
/* strerror() for okg_read_file() and okg_read_ca_file() results: -EBADFD reads "not a regular
 * file", -EBADMSG "no PEM certificate in it". */
const char *okg_file_strerror(int r);
/* Whether text holds a PEM certificate: a "-----BEGIN ...CERTIFICATE-----" line (CERTIFICATE,
 * TRUSTED CERTIFICATE, X509 CERTIFICATE). */
bool okg_pem_has_certificate(const char *text, size_t len);
/* okg_read_file() of a CA bundle handed to curl as a blob: -EBADMSG when it holds no PEM
 * certificate (empty, DER, anything else), which curl would only call "error importing CA
 * certificate blob", without the file. */
int okg_read_ca_file(const char *path, size_t max, char **ret, size_t *ret_len);
/* Writes atomically: temp file in the same directory, fsync, rename, fsync of the directory. */
int okg_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* The same replacement (readers see the old file or the new one, never a part) without the
 * fsyncs, for files in a runtime directory that do not outlive a reboot: a journal commit on a
 * busy disk costs milliseconds to tens of milliseconds. */
int okg_write_file_replace(const char *path, const void *data, size_t len, mode_t mode);

/* Exponential back-off: first * 2^(attempt-1), capped. attempt 0 gives 0. Pure. */
uint64_t okg_backoff_usec(unsigned attempt, uint64_t first, uint64_t cap);

/* Monotonic clock in microseconds. */
uint64_t okg_now_usec(void);

