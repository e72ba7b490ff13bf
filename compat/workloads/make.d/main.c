#include <stdio.h>
#include <stdlib.h>
#include "calc.h"
int main(int argc, char **argv) {
    int a = argc > 1 ? atoi(argv[1]) : 1, b = argc > 2 ? atoi(argv[2]) : 1;
    printf("add %d mul %d scale %d\n", add(a, b), mul(a, b), scale(a));
    return 0;
}
