/* Signal names as config files spell them ("SIGHUP", "hup", "SIGRTMIN+2"): pure lookups. */
#pragma once

/* Case-insensitive, with or without the "SIG" prefix; also "RTMIN+N" and "RTMAX-N" within the
 * real-time range. Numbers are refused: they differ between architectures. Returns the signal
 * number or -EINVAL. */
int okg_signal_from_string(const char *s);
/* "SIGHUP" for SIGHUP; NULL for real-time and unknown signals. */
const char *okg_signal_to_string(int sig);
/* The canonical spelling of any signal okg_signal_from_string() accepts ("SIGHUP",
 * "SIGRTMIN+2"), written to buf. Returns buf, or NULL when sig is unknown. */
const char *okg_signal_format(int sig, char *buf, unsigned size);
