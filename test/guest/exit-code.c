// exit-code: exits with the status given in argv[1] (default 0), to check that
// the VMM passes the program's exit status through unchanged.
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    int status = argc > 1 ? atoi(argv[1]) : 0;
    printf("exiting with %d\n", status);
    return status;
}
