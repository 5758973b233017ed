#include "shown.h"

#include <stdio.h>
#include <string.h>

void sjx_show_name(const char *in, char *out, size_t cap) {
  size_t n = strlen(in), w = 0;
  for (size_t i = 0; i < n && w + 8 < cap; i++) {
    unsigned char ch = (unsigned char)in[i];
    if (n > 600 && i == 250) {
      w += (size_t)snprintf(out + w, cap - w, "...");
      i = n - 250;
      ch = (unsigned char)in[i];
    }
    if (ch < 0x20 || ch == 0x7f || ch == '"' || ch == '\\')
      w += (size_t)snprintf(out + w, cap - w, "\\x%02x", ch);
    else
      out[w++] = (char)ch;
  }
  out[w] = 0;
}
