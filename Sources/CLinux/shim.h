// Linux system calls that Swift's Glibc module does not export. Headers only, nothing to link.
#include <sys/epoll.h>
#include <sys/socket.h>

// accept4(2) is declared only under _GNU_SOURCE, which also turns every sockaddr parameter of
// <sys/socket.h> into a transparent union that Swift cannot pass; declare it plainly instead.
int accept4(int sockfd, struct sockaddr *addr, socklen_t *addrlen, int flags);

// sem_clockwait(3) is declared only under _GNU_SOURCE (see accept4 above): a semaphore wait
// with a deadline on a clock of the caller's choice, so that a step of the wall clock neither
// lengthens nor cuts a bounded wait (sem_timedwait only takes CLOCK_REALTIME). glibc >= 2.30.
#include <semaphore.h>
#include <time.h>
int sem_clockwait(sem_t *sem, clockid_t clockid, const struct timespec *abstime);

// mallopt(3) (glibc's <malloc.h>), for M_ARENA_MAX.
#include <malloc.h>

// The number of open file descriptors of this process (entries of /proc/self/fd, less the one
// that reads it), or -1 without /proc: for the process_open_fds metric. Kept in C so the DIR
// and dirent pointers never reach Swift.
#include <dirent.h>
static inline int session_open_descriptor_count(void) {
    DIR *directory = opendir("/proc/self/fd");
    if (directory == NULL) return -1;
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir(directory)) != NULL) {
        if (entry->d_name[0] != '.') count++;
    }
    closedir(directory);
    return count > 0 ? count - 1 : 0;
}
