/* The pod sandbox's init for the cri lane (hack/engines.sh cri): what Kubernetes' pause does,
 * built static so the image needs nothing else. It holds the pod's namespaces, reaps the
 * zombies of a shared pid namespace, and exits 0 on SIGTERM/SIGINT: as pid 1 a signal
 * without a handler would be ignored and StopPodSandbox would have to wait for SIGKILL. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void leave(int sig) { (void)sig; _exit(0); }

static void reap(int sig)
{
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
}

int main(void)
{
    struct sigaction quit = {.sa_handler = leave}, child = {.sa_handler = reap};
    sigaction(SIGTERM, &quit, NULL);
    sigaction(SIGINT, &quit, NULL);
    child.sa_flags = SA_NOCLDSTOP | SA_RESTART;
    sigaction(SIGCHLD, &child, NULL);
    for (;;)
        pause();
}
