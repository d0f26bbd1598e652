/* See okg-dlopen.h. */
#include <dlfcn.h>
#include <errno.h>

#include "log.h"
#include "okg-dlopen.h"

int okg_dlopen_many(void **handle, int *error, const char *soname, const char *purpose,
                    const OkgDlSym *syms, size_t n_syms) {
        void *dl;

        if (*handle)
                return 0;
        if (*error < 0)
                return *error;

        /* RTLD_NOW: a missing symbol shows here, once, not as a crash on some later call. */
        dl = dlopen(soname, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
        if (!dl) {
                log_error("Cannot load %s, needed for %s: %s", soname, purpose, dlerror());
                return (*error = -EOPNOTSUPP);
        }

        for (size_t i = 0; i < n_syms; i++) {
                void *p = dlsym(dl, syms[i].name);
                if (!p) {
                        log_error("%s has no symbol %s (needed for %s): the library is too old.",
                                  soname, syms[i].name, purpose);
                        for (size_t j = 0; j < i; j++)
                                *syms[j].ptr = NULL;
                        dlclose(dl);
                        return (*error = -EOPNOTSUPP);
                }
                *syms[i].ptr = p;
        }

        *handle = dl;
        return 0;
}
