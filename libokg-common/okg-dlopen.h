/* Optional shared libraries loaded on first use, as systemd does for its optional
 * dependencies: a daemon that never needs a library never maps it (nor its dependencies, nor
 * the private dirty pages their relocations cost). See docs/footprint.md for who loads what
 * and when. */
#pragma once

#include <stddef.h>

/* One symbol to resolve: its name and where to store its address. */
typedef struct OkgDlSym {
        const char *name;
        void **ptr;
} OkgDlSym;

#define OKG_DL_SYM(var, sym) { #sym, (void **) &(var) }

/* Loads soname (once: *handle caches it) and resolves every symbol of syms. purpose says what
 * the library is needed for and where it comes from ("HTTP requests (Debian package
 * libcurl4)"); it goes into the error message. Returns 0, or
 * -EOPNOTSUPP after logging one clear error when the library or one of its symbols is missing
 * (then nothing is resolved, and the failure is remembered: later calls return it silently). */
int okg_dlopen_many(void **handle, int *error, const char *soname, const char *purpose,
                    const OkgDlSym *syms, size_t n_syms);
