/* The `iptables`/`ip6tables` netavark finds first on its PATH when the engine writes the
 * firewall itself (src/sangja/engine/firewall.py): netavark 1.4's iptables driver then
 * believes every rule and chain it asks about exists and every change it makes succeeds,
 * so it writes none, at no cost (the real iptables-nft costs milliseconds per exec, and
 * netavark execs it dozens of times per container).
 *
 * `--version` answers as iptables 1.8 does (the `iptables` crate netavark uses parses
 * "vX.Y.Z" to choose its flags); anything else prints nothing and succeeds. */
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--version") == 0) {
    const char *name = strrchr(argv[0], '/');
    name = name ? name + 1 : argv[0];
    static const char tail[] = " v1.8.9 (nf_tables)\n";
    if (write(1, name, strlen(name)) < 0 || write(1, tail, sizeof tail - 1) < 0)
      return 1;
  }
  return 0;
}
