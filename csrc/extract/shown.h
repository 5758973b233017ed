/* A name as an error message shows it (the extractor's tar entries, the layer
 * writer's paths): control bytes, quotes and backslashes escaped, very long
 * names shortened in the middle. */
#ifndef SANGJA_EXTRACT_SHOWN_H
#define SANGJA_EXTRACT_SHOWN_H

#include <stddef.h>

void sjx_show_name(const char *in, char *out, size_t cap);

#endif
