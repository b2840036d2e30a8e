/* octopusd's HTTP front end: libmicrohttpd feeding libocto's API layer.
 * Bodies are read up to the API's limit, waiting requests are suspended
 * (no thread is held); each answer is counted in the registry and
 * written to the access log. */
#ifndef OCTOPUSD_HTTP_H
#define OCTOPUSD_HTTP_H

#include <octopus/api.h>
#include <octopus/log.h>
#include <octopus/metrics.h>

#include "settings.h"

typedef struct http_server http_server;

/* Starts serving `api` on cfg->host:cfg->port. `log` gets the access log
 * and `metrics` the http_* metrics (both may be NULL); all borrowed.
 * *port receives the bound port (useful with port 0). -1 with a message
 * in `err`. */
int http_start(http_server **out, octo_api *api, const settings *cfg,
               octo_log *log, octo_metrics *metrics,
               uint16_t *port, char *err, size_t errlen);

/* Stops accepting, answers waiting requests, lets in-flight ones finish
 * (bounded), then stops and frees. NULL-safe. */
void http_stop(http_server *srv);

#endif
