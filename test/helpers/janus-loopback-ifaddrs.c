/*
 * LD_PRELOAD for the tests' Janus: ICE candidates on 127.0.0.1 and nowhere else.
 *
 * Janus leaves every interface flagged IFF_LOOPBACK out when it gathers host candidates, and the
 * tests must stay on loopback. This getifaddrs() keeps glibc's list as it is (freeifaddrs frees it
 * as one block), clears IFF_LOOPBACK on the 127.0.0.1 entry and blanks the address of every other
 * entry, which Janus then skips.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

int getifaddrs(struct ifaddrs **list) {
  static int (*real_getifaddrs)(struct ifaddrs **) = 0;
  if (!real_getifaddrs) real_getifaddrs = (int (*)(struct ifaddrs **))dlsym(RTLD_NEXT, "getifaddrs");
  int rc = real_getifaddrs(list);
  if (rc != 0) return rc;
  for (struct ifaddrs *entry = *list; entry; entry = entry->ifa_next) {
    int loopback_v4 = entry->ifa_addr && entry->ifa_addr->sa_family == AF_INET &&
                      ((struct sockaddr_in *)entry->ifa_addr)->sin_addr.s_addr == htonl(INADDR_LOOPBACK);
    if (loopback_v4) {
      entry->ifa_flags &= ~IFF_LOOPBACK;
    } else {
      entry->ifa_addr = 0;
      entry->ifa_flags &= ~IFF_UP;
    }
  }
  return 0;
}
