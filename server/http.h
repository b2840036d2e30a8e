/* octopusd's HTTP front end: libmicrohttpd feeding libocto's API layer.
 * Bodies are read up to the API's limit, waiting requests are suspended
 * (no thread is held), and one JSON line per request goes to stderr. */
#ifndef OCTOPUSD_HTTP_H
#define OCTOPUSD_HTTP_H

#include <octopus/api.h>

#include "settings.h"

typedef struct http_server http_server;

/* Starts serving `api` (borrowed) on cfg->host:cfg->port. *port receives
 * the bound port (useful with port 0). -1 with a message in `err`. */
int http_start(http_server **out, octo_api *api, const settings *cfg,
               uint16_t *port, char *err, size_t errlen);

/* Stops accepting, answers waiting requests, lets in-flight ones finish
 * (bounded), then stops and frees. NULL-safe. */
void http_stop(http_server *srv);

/* Writes one structured log line to stderr if `level` passes the threshold. */
void http_log(const settings *cfg, log_level level, const char *message);

#endif
