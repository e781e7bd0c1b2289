// Linux system calls that Swift's Glibc module does not export. Headers only, nothing to link.
#include <sys/epoll.h>
#include <sys/socket.h>

// accept4(2) is declared only under _GNU_SOURCE, which also turns every sockaddr parameter of
// <sys/socket.h> into a transparent union that Swift cannot pass; declare it plainly instead.
int accept4(int sockfd, struct sockaddr *addr, socklen_t *addrlen, int flags);

// mallopt(3) (glibc's <malloc.h>), for M_ARENA_MAX.
#include <malloc.h>
