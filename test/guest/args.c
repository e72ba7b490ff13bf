// args: prints what the loader put on the initial stack: argc, each argv,
// each envp entry, and the auxv entries readable with getauxval, one per line
// as "AT_X=value". Checks that AT_PAGESZ is 4096, AT_RANDOM is non-null and
// AT_PLATFORM/AT_EXECFN are strings; exits 1 with a message if not.
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>

int main(int argc, char **argv, char **envp) {
    int fails = 0;
    printf("argc=%d\n", argc);
    for (int i = 0; i < argc; i++) printf("argv[%d]=%s\n", i, argv[i]);
    if (argv[argc] != NULL) { printf("FAIL: argv[argc] is not NULL\n"); fails++; }
    for (int i = 0; envp[i]; i++) printf("envp[%d]=%s\n", i, envp[i]);

    unsigned long pagesz = getauxval(AT_PAGESZ);
    unsigned long rnd = getauxval(AT_RANDOM);
    const char *platform = (const char *)getauxval(AT_PLATFORM);
    const char *execfn = (const char *)getauxval(AT_EXECFN);
    printf("AT_PAGESZ=%lu\n", pagesz);
    printf("AT_RANDOM=%s\n", rnd ? "non-null" : "null");
    printf("AT_PLATFORM=%s\n", platform ? platform : "(null)");
    printf("AT_EXECFN=%s\n", execfn ? execfn : "(null)");
    printf("AT_HWCAP=0x%lx\n", getauxval(AT_HWCAP));
    printf("AT_CLKTCK=%lu\n", getauxval(AT_CLKTCK));
    printf("AT_UID=%lu\n", getauxval(AT_UID));
    printf("AT_SECURE=%lu\n", getauxval(AT_SECURE));

    if (pagesz != 4096) { printf("FAIL: AT_PAGESZ is %lu, want 4096\n", pagesz); fails++; }
    if (!rnd) { printf("FAIL: AT_RANDOM missing\n"); fails++; }
    else {
        // The 16 random bytes must be readable (glibc uses them for the stack
        // protector and pointer guard before main).
        const unsigned char *r = (const unsigned char *)rnd;
        unsigned x = 0;
        for (int i = 0; i < 16; i++) x |= r[i];
        printf("AT_RANDOM bytes %s\n", x ? "not all zero" : "all zero");
    }
    if (!platform || strlen(platform) == 0) { printf("FAIL: AT_PLATFORM missing\n"); fails++; }
    if (!execfn || strlen(execfn) == 0) { printf("FAIL: AT_EXECFN missing\n"); fails++; }
    return fails ? 1 : 0;
}
