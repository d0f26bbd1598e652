/* Bus method round trip: io.kruise.game.Sidecar1.GetVersion through the private dbus-daemon,
 * against the daemon's own org.freedesktop.DBus.GetId (the floor: one hop, no second process)
 * in the same run. Prints p50/p99 in microseconds; asserts nothing.
 *   bus-rtt-bench BUS_ADDRESS N */
#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-bus.h>
#include <time.h>

#include "okg-bus-api.h"

static double now_us(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec * 1e6 + (double) ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

static int measure(sd_bus *bus, const char *dest, const char *path, const char *iface,
                   const char *method, int n, double *v) {
        for (int i = 0; i < n; i++) {
                sd_bus_message *reply = NULL;
                double t0 = now_us();
                int r = sd_bus_call_method(bus, dest, path, iface, method, NULL, &reply, "");
                if (r < 0)
                        return r;
                v[i] = now_us() - t0;
                sd_bus_message_unref(reply);
        }
        qsort(v, (size_t) n, sizeof(double), cmp);
        return 0;
}

int main(int argc, char **argv) {
        sd_bus *bus = NULL;
        double *a, *b;
        int n;

        if (argc != 3)
                return 2;
        n = atoi(argv[2]);
        a = calloc((size_t) n, sizeof(double));
        b = calloc((size_t) n, sizeof(double));
        if (sd_bus_new(&bus) < 0 || sd_bus_set_address(bus, argv[1]) < 0 ||
            sd_bus_set_bus_client(bus, 1) < 0 || sd_bus_start(bus) < 0)
                return 1;
        if (measure(bus, OKG_SIDECAR_NAME, OKG_SIDECAR_PATH, OKG_SIDECAR_IFACE, "GetVersion", n, a) < 0 ||
            measure(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                    "GetId", n, b) < 0)
                return 1;
        printf("%.1f %.1f %.1f %.1f\n", a[n / 2], a[(n * 99) / 100], b[n / 2], b[(n * 99) / 100]);
        sd_bus_flush_close_unref(bus);
        free(a);
        free(b);
        return 0;
}
