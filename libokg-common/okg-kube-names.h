/* Syntax checks for config values that end up in Kubernetes objects, Prometheus output or HTTP
 * requests: annotation and label keys and values, resource quantities, metric names and
 * http(s) URLs. Pure string checks, no I/O. */
#pragma once

#include <stdbool.h>

/* Each *_check() returns NULL when s is valid, else a static phrase saying why, fit to follow
 * `invalid annotation key "x": ` in a message. */

/* A qualified name as annotation and label keys use it: an optional prefix (a lowercase DNS
 * subdomain, at most 253 characters) and '/', then a name of 1-63 characters from
 * [A-Za-z0-9._-] that starts and ends with a letter or digit. */
const char *kube_qualified_name_check(const char *s);
/* A label value: at most 63 characters from [A-Za-z0-9._-], starting and ending with a letter
 * or digit; may be empty. */
const char *kube_label_value_check(const char *s);
/* A lowercase RFC 1123 DNS subdomain: dot-separated labels of [a-z0-9-], each starting and
 * ending with a letter or digit, 253 characters at most. */
const char *kube_dns_subdomain_check(const char *s);
/* A resource quantity such as 100m, 0.5, 128Mi, 1G or 1e3; negative ones are refused. */
const char *kube_quantity_check(const char *s);

/* A Prometheus metric name: [a-zA-Z_:][a-zA-Z0-9_:]*. */
bool prometheus_metric_name_valid(const char *s);

/* An absolute http:// or https:// URL with a host, an optional port 1-65535, no credentials
 * (user:password@) and no spaces or control characters. Every URL a config accepts goes
 * through this (see okg_config_url_check()). */
const char *okg_http_url_check(const char *s);
/* s, with the userinfo of a URL ("user:password@") shown as "***@", into buf (truncated):
 * how a refused URL is shown in a message. */
void okg_url_redact(const char *s, char *buf, size_t size);
/* An HTTP token (RFC 9110), as a header field name must be. */
bool okg_http_token_valid(const char *s);
