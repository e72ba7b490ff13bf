// hostile: spins forever without syscalls. Only a timeout can stop it.
#include <stdio.h>

int main(void) {
    printf("looping forever\n");
    fflush(stdout);
    for (volatile unsigned long i = 0;; i++) {
    }
}
